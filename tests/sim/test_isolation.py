"""Accounts: a user sees and touches only its own account's resources; the root admin sees all."""

from __future__ import annotations

import pytest

from .conftest import Api, catalog, deploy


@pytest.fixture
def other(sim, session) -> Api:
    """A second normal account, created through the seeding helpers."""
    from cloudstack_sim.seed import add_account, add_user
    domain = next(iter(sim.state.store("domain")))
    account = add_account(sim.state, "other", 0, domain["id"])
    user = add_user(sim.state, account, "other")
    return Api(session, sim.url, (user["apikey"], user["secretkey"]))


async def test_users_cannot_see_or_touch_each_other(demo, other, admin):
    ids = await catalog(demo)
    vm = await deploy(demo, ids, name="mine")
    assert await other.call("listVirtualMachines") == {}
    assert await other.call("listVirtualMachines", id=vm["id"]) == {}
    status, _, body = await other.error("stopVirtualMachine", id=vm["id"])
    assert status == 531 and body["cserrorcode"] == 4365
    job = await other.job("createTags", resourcetype="UserVm", resourceids=vm["id"],
                          **{"tags[0].key": "a", "tags[0].value": "b"})
    assert job["jobstatus"] == 2 and job["jobresult"]["errorcode"] == 530
    vm_volume = (await demo.call("listVolumes", virtualmachineid=vm["id"]))["volume"][0]
    assert (await other.error("createSnapshot", volumeid=vm_volume["id"]))[0] == 531
    submitted = await demo.call("stopVirtualMachine", id=vm["id"])
    assert (await other.error("queryAsyncJobResult", jobid=submitted["jobid"]))[0] == 531
    # the admin sees its own resources by default, everyone's with listall
    assert await admin.call("listVirtualMachines") == {}
    assert (await admin.call("listVirtualMachines", listall="true"))["count"] == 1
    demo_account = (await demo.call("listAccounts"))["account"][0]
    scoped = await admin.call("listVirtualMachines", account="demo", domainid=demo_account["domainid"])
    assert scoped["virtualmachine"][0]["id"] == vm["id"]


async def test_each_account_has_its_own_default_group_and_key_names(demo, other):
    demo_groups = (await demo.call("listSecurityGroups"))["securitygroup"]
    other_groups = (await other.call("listSecurityGroups"))["securitygroup"]
    assert [g["name"] for g in demo_groups] == ["default"] == [g["name"] for g in other_groups]
    assert demo_groups[0]["id"] != other_groups[0]["id"]
    await demo.call("createSSHKeyPair", name="same")
    await other.call("createSSHKeyPair", name="same")   # names are unique per account only
    assert (await other.call("listSSHKeyPairs"))["count"] == 1


async def test_user_keys_are_private(sim, demo, other, admin):
    demo_user = (await demo.call("listUsers"))["user"][0]
    assert (await other.error("getUserKeys", id=demo_user["id"]))[0] == 531
    keys = (await demo.call("getUserKeys", id=demo_user["id"]))["userkeys"]
    assert keys["apikey"] == sim.demo_credentials[0]
    fresh = (await admin.call("registerUserKeys", id=demo_user["id"]))["userkeys"]
    assert (await demo.error("listZones"))[0] == 401          # the old keys stop working
    renewed = Api(demo.session, demo.url, (fresh["apikey"], fresh["secretkey"]))
    assert (await renewed.call("listZones"))["count"] == 1
    looked_up = (await admin.call("getUser", userapikey=fresh["apikey"]))["user"]
    assert looked_up["username"] == "demo" and "secretkey" not in looked_up
    assert (await renewed.error("getUser", userapikey=fresh["apikey"]))[0] == 531


async def test_resource_limits(sim, demo):
    limits = (await demo.call("listResourceLimits"))["resourcelimit"]
    vm_limit = next(limit for limit in limits if limit["resourcetypename"] == "user_vm")
    assert vm_limit == {**vm_limit, "resourcetype": "0", "max": 20, "account": "demo"}
    account = next(a for a in sim.state.store("account") if a["name"] == "demo")
    account["limits"]["user_vm"] = 1
    ids = await catalog(demo)
    await deploy(demo, ids)
    status, _, body = await demo.error("deployVirtualMachine", zoneid=ids["zone"], templateid=ids["linux"],
                                       serviceofferingid=ids["offering"])
    assert status == 535 and "'user_vm'" in body["errortext"]
