"""Resource tags on every ``ResourceObjectType`` the simulator models, and CloudStack's refusals
for the others (TaggedResourceManagerImpl / ResourceManagerUtilImpl)."""

from __future__ import annotations

import pytest

from cloudstack_sim.commands.tags import OBJECT_TYPES, RESOURCE_KINDS

from .conftest import account_api, catalog, deploy
from .reference import object_problems

TAG = {"tags[0].key": "team", "tags[0].value": "ops"}


async def tag(api, resourcetype: str, resource_id: str) -> dict:
    return await api.job("createTags", resourcetype=resourcetype, resourceids=resource_id, **TAG)


async def tags_of(api, resourcetype: str, resource_id: str) -> list[dict]:
    return (await api.call("listTags", resourcetype=resourcetype, resourceid=resource_id)).get("tag", [])


async def group_with_rule(api) -> tuple[str, str]:
    group = (await api.call("createSecurityGroup", name="web"))["securitygroup"]
    added = await api.result("authorizeSecurityGroupIngress", securitygroupid=group["id"], protocol="tcp",
                             startport=22, endport=22, cidrlist="10.0.0.0/8")
    return group["id"], added["securitygroup"]["ingressrule"][0]["ruleid"]


async def test_security_group_rules_carry_their_tags(demo):
    group_id, rule_id = await group_with_rule(demo)
    assert (await tag(demo, "securitygrouprule", rule_id))["jobstatus"] == 1   # names match without case
    listed = (await demo.call("listSecurityGroups", id=group_id))["securitygroup"][0]
    assert not object_problems(listed, "SecurityGroupResponse", "listSecurityGroups")
    [rule_tag] = listed["ingressrule"][0]["tags"]
    assert (rule_tag["key"], rule_tag["value"], rule_tag["resourcetype"], rule_tag["resourceid"],
            rule_tag["account"]) == ("team", "ops", "SecurityGroupRule", rule_id, "demo")
    assert listed["tags"] == []   # the group itself is untagged
    assert [t["resourceid"] for t in await tags_of(demo, "SecurityGroupRule", rule_id)] == [rule_id]
    await demo.result("deleteTags", resourcetype="SecurityGroupRule", resourceids=rule_id,
                      **{"tags[0].key": "team"})
    assert (await demo.call("listSecurityGroups", id=group_id))["securitygroup"][0]["ingressrule"][0]["tags"] == []
    await tag(demo, "SecurityGroupRule", rule_id)
    await demo.result("revokeSecurityGroupIngress", id=rule_id)
    assert await tags_of(demo, "SecurityGroupRule", rule_id) == []   # revoking a rule deletes its tags


async def test_rules_of_other_accounts_cannot_be_tagged(sim, session, demo):
    _, rule_id = await group_with_rule(demo)
    other = account_api(sim, session, "other")
    job = await tag(other, "SecurityGroupRule", rule_id)
    assert (job["jobstatus"], job["jobresult"]["errorcode"]) == (2, 530)


async def modelled_resources(demo) -> dict[str, str]:
    """One resource id per modelled taggable type, owned by demo (VPC offerings: the system's)."""
    ids = await catalog(demo)
    vm = await deploy(demo, ids)
    await demo.result("stopVirtualMachine", id=vm["id"])
    root = (await demo.call("listVolumes", virtualmachineid=vm["id"]))["volume"][0]
    template = (await demo.result("createTemplate", name="img", volumeid=root["id"],
                                  ostypeid=(await demo.call("listOsTypes"))["ostype"][0]["id"]))["template"]
    volume = (await demo.result("createVolume", name="d", zoneid=ids["zone"], diskofferingid=ids["disk"]))["volume"]
    snapshot = (await demo.result("createSnapshot", volumeid=root["id"]))["snapshot"]
    group_id, rule_id = await group_with_rule(demo)
    address = (await demo.result("associateIpAddress", zoneid=ids["zone"]))["ipaddress"]
    offering = (await demo.call("listVPCOfferings"))["vpcoffering"][0]["id"]
    vpc = (await demo.result("createVPC", name="v", zoneid=ids["zone"], vpcofferingid=offering,
                             cidr="10.20.0.0/16"))["vpc"]
    isolated = next(o for o in (await demo.call("listNetworkOfferings"))["networkoffering"]
                    if o["guestiptype"] == "Isolated" and not o["forvpc"])
    network = (await demo.call("createNetwork", name="n", zoneid=ids["zone"],
                               networkofferingid=isolated["id"]))["network"]
    account = (await demo.call("listAccounts"))["account"][0]
    return {"UserVm": vm["id"], "Template": template["id"], "ISO": template["id"], "VnfTemplate": template["id"],
            "Volume": volume["id"], "Snapshot": snapshot["id"], "Network": network["id"], "SecurityGroup": group_id,
            "SecurityGroupRule": rule_id, "PublicIpAddress": address["id"], "Account": account["id"],
            "Vpc": vpc["id"], "User": account["user"][0]["id"], "VpcOffering": offering}


async def test_every_modelled_type_can_be_tagged(demo, admin):
    resources = await modelled_resources(demo)
    assert set(resources) == set(RESOURCE_KINDS)
    for type_name, resource_id in resources.items():
        api = admin if type_name == "VpcOffering" else demo   # the system's objects: root admins only
        job = await tag(api, type_name.upper(), resource_id)
        assert job["jobstatus"] == 1, (type_name, job)
        [found] = await tags_of(api, type_name, resource_id)
        assert (found["resourcetype"], found["key"], found["value"]) == (type_name, "team", "ops")
        assert not object_problems(found, "ResourceTagResponse", f"listTags {type_name}")
    job = await tag(demo, "VpcOffering", resources["VpcOffering"])
    assert job["jobresult"] == {"errorcode": 530, "errortext": "Caller does not have permission to operate with "
                                                               "provided resource."}


@pytest.mark.parametrize("type_name", sorted(name for name, taggable in OBJECT_TYPES.items() if not taggable))
async def test_types_without_tag_support_are_refused(demo, type_name):
    zone = (await demo.call("listZones"))["zone"][0]["id"]
    job = await tag(demo, type_name, zone)
    assert (job["jobstatus"], job["jobresult"]) == (2, {   # an InvalidParameterValueException in the job: 431
        "errorcode": 431, "errortext": f"The resource type {type_name} doesn't support resource tags"})


async def test_unknown_and_unmodelled_types(demo):
    ids = await catalog(demo)
    vm = await deploy(demo, ids)
    job = await tag(demo, "Spaceship", vm["id"])   # resolved in the job, as CreateTagsCmd.execute does
    assert job["jobresult"] == {"errorcode": 431, "errortext": "Invalid resource type Spaceship"}
    job = await tag(demo, "LoadBalancer", vm["id"])
    assert job["jobresult"]["errortext"] == f"Unable to find resource by id {vm['id']} and type LoadBalancer"
    job = await demo.job("deleteTags", resourcetype="Spaceship", resourceids=vm["id"])
    assert job["jobresult"]["errortext"] == "Invalid resource type Spaceship"
    await tag(demo, "UserVm", vm["id"])
    assert await demo.call("listTags", resourcetype="Spaceship") == {}   # a plain string filter: no match
    assert [t["resourcetype"] for t in (await demo.call("listTags", resourcetype="uservm"))["tag"]] == ["UserVm"]
