"""Security groups end to end: boto3, boto 2, the aws cli and raw signed requests against a bridge
on the CloudStack simulator. Every action, every mapped filter, the legacy flat parameters,
AWS's errors, atomicity of multi-permission requests and isolation between accounts."""

from __future__ import annotations

import os
import subprocess
import uuid
import xml.etree.ElementTree as ET

import boto.ec2.connection
import boto.exception
import boto3
import botocore.exceptions
import pytest
from boto.ec2.regioninfo import RegionInfo
from botocore.config import Config as BotoConfig

from cloudstack_sim.faults import FaultRule
from cloudstack_sim.seed import USER_TYPE, add_account, add_user
from ec2bridge.cloudstack import CloudStackError
from ec2bridge.config import DEMO_CREDENTIALS
from tests.bridge_server import REGION
from tests.wire import sigv4

ANYWHERE = "0.0.0.0/0"


# --- helpers -------------------------------------------------------------------------------------

def unique(prefix: str = "sg-test") -> str:
    return f"{prefix.replace('sg-', 'grp-')}-{uuid.uuid4().hex[:8]}"


def new_group(ec2, name: str | None = None, **extra) -> tuple[str, str]:
    name = name or unique()
    group_id = ec2.create_security_group(GroupName=name, Description=f"group {name}", **extra)["GroupId"]
    return group_id, name


def error_code(call, **params) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(**params)
    return caught.value.response["Error"]["Code"]


def describe(ec2, group_id: str) -> dict:
    return ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]


def rules_of(ec2, group_id: str) -> list[dict]:
    return ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]


def tcp(port: int, *cidrs: str, **extra) -> dict:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": c} for c in cidrs], **extra}


def ids_named(ec2, **params) -> set[str]:
    return {g["GroupId"] for g in ec2.describe_security_groups(**params)["SecurityGroups"]}


@pytest.fixture(scope="module")
def other(bridge):
    """A second CloudStack account (with its own user and keys) and a boto3 client for it."""
    async def create():
        state = bridge.services.simulator.state
        domain = next(iter(state.store("domain")))
        account = add_account(state, unique("other"), USER_TYPE, domain["id"])
        user = add_user(state, account, unique("other-user"))
        return user["apikey"], user["secretkey"]
    return bridge.client(credentials=bridge.call(create()))


@pytest.fixture()
def faults(bridge):
    state = bridge.services.simulator.state
    yield state.faults
    state.faults.clear()


class SigV2Connection(boto.ec2.connection.EC2Connection):
    """boto 2.49 asks for SigV4 on EC2; the 'ec2' capability makes it sign with SigV2."""

    def _required_auth_capability(self):
        return ["ec2"]


@pytest.fixture(scope="module")
def boto2(bridge):
    port = int(bridge.url.rsplit(":", 1)[1].rstrip("/"))
    return SigV2Connection(aws_access_key_id=DEMO_CREDENTIALS[0], aws_secret_access_key=DEMO_CREDENTIALS[1],
                           is_secure=False, port=port, path="/", region=RegionInfo(name=REGION, endpoint="127.0.0.1"))


def flat(bridge, action: str, **params) -> ET.Element:
    """A raw SigV4-signed request with the flat parameters boto 2 and euca2ools send."""
    reply = sigv4(bridge.url, DEMO_CREDENTIALS, {"Action": action, "Version": "2016-11-15", **params})
    assert reply.status == 200, reply.body
    return ET.fromstring(reply.body)


def flat_error(bridge, action: str, **params) -> str:
    reply = sigv4(bridge.url, DEMO_CREDENTIALS, {"Action": action, "Version": "2016-11-15", **params})
    assert reply.status == 400, reply.body
    return reply.error_code


# --- groups: create, describe, delete --------------------------------------------------------------

def test_fresh_account_sees_its_own_default_group(ec2, other):
    theirs = other.describe_security_groups()["SecurityGroups"]
    assert [g["GroupName"] for g in theirs] == ["default"]
    mine = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]
    assert theirs[0]["GroupId"] != mine["GroupId"]
    assert theirs[0]["OwnerId"] != mine["OwnerId"]
    assert theirs[0]["OwnerId"].isdigit() and len(theirs[0]["OwnerId"]) == 12
    assert theirs[0]["IpPermissionsEgress"] == [] and "VpcId" not in theirs[0]


def test_create_describe_delete(ec2):
    tags = [{"Key": "env", "Value": "test"}, {"Key": "team", "Value": ""}]
    name = unique()
    created = ec2.create_security_group(GroupName=name, Description="Web tier (HTTP)",
                                        TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}])
    group_id = created["GroupId"]
    assert group_id.startswith("sg-") and len(group_id) == 20
    assert created["Tags"] == tags
    group = describe(ec2, group_id)
    assert group["GroupName"] == name and group["Description"] == "Web tier (HTTP)"
    assert group["OwnerId"] == describe(ec2, ids_named(ec2, GroupNames=["default"]).pop())["OwnerId"]
    assert group["IpPermissions"] == [] and group["IpPermissionsEgress"] == []
    assert sorted(group["Tags"], key=lambda t: t["Key"]) == tags
    assert ec2.describe_security_groups(GroupNames=[name])["SecurityGroups"][0]["GroupId"] == group_id
    assert ec2.delete_security_group(GroupName=name)["Return"] is True
    assert error_code(ec2.describe_security_groups, GroupIds=[group_id]) == "InvalidGroup.NotFound"
    assert error_code(ec2.delete_security_group, GroupId=group_id) == "InvalidGroup.NotFound"


@pytest.mark.parametrize("name, description, code", [
    ("default", "x", "InvalidGroup.Reserved"),
    ("sg-123", "x", "InvalidParameterValue"),
    ("n" * 256, "x", "InvalidParameterValue"),
    ("valid-name", "d" * 256, "InvalidParameterValue"),
    ("valid-name", "caf\u00e9", "InvalidParameterValue"),
    ("valid-name", "", "MissingParameter"),
    ("", "x", "MissingParameter"),
])
def test_create_refuses_what_aws_refuses(ec2, name, description, code):
    assert error_code(ec2.create_security_group, GroupName=name, Description=description) == code


def test_create_duplicate_and_bad_options(ec2):
    group_id, name = new_group(ec2)
    assert error_code(ec2.create_security_group, GroupName=name, Description="again") == "InvalidGroup.Duplicate"
    # CloudStack compares names without regard to case.
    assert error_code(ec2.create_security_group, GroupName=name.upper(), Description="again") == "InvalidGroup.Duplicate"
    assert error_code(ec2.create_security_group, GroupName=unique(), Description="x",
                      VpcId="vpc-0123456789abcdef0") == "InvalidVpcID.NotFound"
    assert error_code(ec2.create_security_group, GroupName=unique(), Description="x",
                      VpcId="not-a-vpc") == "InvalidVpcID.Malformed"
    assert error_code(ec2.create_security_group, GroupName=unique(), Description="x",
                      TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "b"}]}]
                      ) == "InvalidParameterValue"
    assert error_code(ec2.create_security_group, GroupName=unique(), Description="x",
                      TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": "aws:x", "Value": "b"}]}]
                      ) == "InvalidParameterValue"
    names = {g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    assert name.upper() not in names


def test_delete_errors(ec2):
    default_id = ids_named(ec2, GroupNames=["default"]).pop()
    assert error_code(ec2.delete_security_group, GroupId=default_id) == "CannotDelete"
    assert error_code(ec2.delete_security_group, GroupName="default") == "CannotDelete"
    assert error_code(ec2.delete_security_group, GroupId="sg-0123456789abcdef0") == "InvalidGroup.NotFound"
    assert error_code(ec2.delete_security_group, GroupId="bogus") == "InvalidGroupId.Malformed"
    assert error_code(ec2.delete_security_group, GroupName="no-such-group-here") == "InvalidGroup.NotFound"
    assert error_code(ec2.delete_security_group) == "MissingParameter"


def test_delete_in_use_by_an_instance_is_a_dependency_violation(bridge, ec2):
    group_id, name = new_group(ec2)
    cloudstack, creds = bridge.services.cloudstack, bridge.services.simulator.demo_credentials
    backend_id = bridge.call(bridge.services.ids.backend_id("sg", group_id)).backend_id
    zone = bridge.call(cloudstack.list_all(creds, "listZones"))[0]
    template = bridge.call(cloudstack.list_all(creds, "listTemplates", {"templatefilter": "featured"}))[0]
    offering = bridge.call(cloudstack.list_all(creds, "listServiceOfferings"))[0]
    vm = bridge.call(cloudstack.run(creds, "deployVirtualMachine", {
        "zoneid": zone["id"], "templateid": template["id"], "serviceofferingid": offering["id"],
        "securitygroupids": backend_id}))["virtualmachine"]
    assert error_code(ec2.delete_security_group, GroupId=group_id) == "DependencyViolation"
    assert error_code(ec2.delete_security_group, GroupName=name, DryRun=True) == "DependencyViolation"
    # A destroyed VM keeps its groups until it is expunged, which users may not do by default.
    bridge.call(cloudstack.run(creds, "destroyVirtualMachine", {"id": vm["id"]}))
    assert error_code(ec2.delete_security_group, GroupId=group_id) == "DependencyViolation"
    bridge.call(cloudstack.run(bridge.services.simulator.admin_credentials, "expungeVirtualMachine",
                               {"id": vm["id"]}))
    assert ec2.delete_security_group(GroupId=group_id)["Return"] is True


def test_delete_group_allowed_by_another_groups_rule_is_a_dependency_violation(ec2):
    source_id, source_name = new_group(ec2)
    target_id, _ = new_group(ec2)
    ec2.authorize_security_group_ingress(GroupId=target_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": source_id}]}])
    assert error_code(ec2.delete_security_group, GroupId=source_id) == "DependencyViolation"
    ec2.delete_security_group(GroupId=target_id)
    ec2.delete_security_group(GroupName=source_name)


def test_a_group_allowing_itself_can_be_deleted(bridge, ec2):
    group_id, name = new_group(ec2)
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group_id}]}, tcp(22, ANYWHERE)])
    # CloudStack alone refuses (536): every rule allowing a group counts, the group's own included.
    backend_id = bridge.call(bridge.services.ids.backend_id("sg", group_id)).backend_id
    with pytest.raises(CloudStackError) as refused:
        bridge.call(bridge.services.cloudstack.call(bridge.services.simulator.demo_credentials, "deleteSecurityGroup",
                                                    {"id": backend_id}))
    assert refused.value.code == 536
    assert error_code(ec2.delete_security_group, GroupId=group_id, DryRun=True) == "DryRunOperation"
    assert len(rules_of(ec2, group_id)) == 2   # a dry run changes nothing
    assert ec2.delete_security_group(GroupName=name)["Return"] is True   # as on AWS
    assert error_code(ec2.describe_security_groups, GroupIds=[group_id]) == "InvalidGroup.NotFound"


def test_dry_run_on_every_mutating_action(ec2):
    name = unique()
    assert error_code(ec2.create_security_group, GroupName=name, Description="x", DryRun=True) == "DryRunOperation"
    assert error_code(ec2.describe_security_groups, GroupNames=[name]) == "InvalidGroup.NotFound"
    group_id, _ = new_group(ec2)
    permission = [tcp(22, ANYWHERE)]
    for call in (ec2.authorize_security_group_ingress, ec2.authorize_security_group_egress):
        assert error_code(call, GroupId=group_id, IpPermissions=permission, DryRun=True) == "DryRunOperation"
    assert rules_of(ec2, group_id) == []
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=permission)
    ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=permission)
    for call in (ec2.revoke_security_group_ingress, ec2.revoke_security_group_egress):
        assert error_code(call, GroupId=group_id, IpPermissions=permission, DryRun=True) == "DryRunOperation"
    assert len(rules_of(ec2, group_id)) == 2
    assert error_code(ec2.delete_security_group, GroupId=group_id, DryRun=True) == "DryRunOperation"
    assert error_code(ec2.describe_security_groups, GroupIds=[group_id], DryRun=True) == "DryRunOperation"
    assert error_code(ec2.describe_security_group_rules, DryRun=True) == "DryRunOperation"
    # A request that would fail answers its real error, not DryRunOperation.
    assert error_code(ec2.authorize_security_group_ingress, GroupId=group_id, IpPermissions=permission,
                      DryRun=True) == "InvalidPermission.Duplicate"
    assert error_code(ec2.delete_security_group, GroupName="default", DryRun=True) == "CannotDelete"
    assert describe(ec2, group_id)["GroupId"] == group_id


# --- rules -------------------------------------------------------------------------------------

def test_authorize_ingress_with_full_ip_permissions(ec2):
    group_id, _ = new_group(ec2)
    default_id = ids_named(ec2, GroupNames=["default"]).pop()
    answer = ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 443,
         "IpRanges": [{"CidrIp": "10.0.0.0/8"}, {"CidrIp": "192.168.7.9/24"}],
         "Ipv6Ranges": [{"CidrIpv6": "2001:DB8::/32"}], "UserIdGroupPairs": [{"GroupId": default_id}]},
        {"IpProtocol": "icmp", "FromPort": 8, "ToPort": 0, "IpRanges": [{"CidrIp": ANYWHERE}]},
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupName": "default"}]},
        {"IpProtocol": "17", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": ANYWHERE}]},
        {"IpProtocol": "50", "IpRanges": [{"CidrIp": "198.51.100.0/24"}]},
        {"IpProtocol": "icmpv6", "FromPort": -1, "ToPort": -1, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
    ])
    assert answer["Return"] is True
    added = answer["SecurityGroupRules"]
    assert len(added) == 9 and len({r["SecurityGroupRuleId"] for r in added}) == 9
    assert all(r["SecurityGroupRuleId"].startswith("sgr-") and r["GroupId"] == group_id and not r["IsEgress"]
               for r in added)
    group = describe(ec2, group_id)
    by_protocol = {(p["IpProtocol"], p.get("FromPort"), p.get("ToPort")): p for p in group["IpPermissions"]}
    assert set(by_protocol) == {("tcp", 80, 443), ("icmp", 8, 0), ("-1", None, None), ("udp", 53, 53),
                                ("50", None, None), ("icmpv6", -1, -1)}
    web = by_protocol[("tcp", 80, 443)]
    # CIDRs come back in canonical form, as AWS stores them.
    assert [r["CidrIp"] for r in web["IpRanges"]] == ["10.0.0.0/8", "192.168.7.0/24"]
    assert web["Ipv6Ranges"] == [{"CidrIpv6": "2001:db8::/32"}]
    assert web["UserIdGroupPairs"] == [{"GroupId": default_id, "GroupName": "default", "UserId": group["OwnerId"]}]
    assert by_protocol[("-1", None, None)]["UserIdGroupPairs"][0]["GroupId"] == default_id
    assert group["IpPermissionsEgress"] == []
    rules = {(r["IpProtocol"], r.get("CidrIpv4") or r.get("CidrIpv6") or r["ReferencedGroupInfo"]["GroupId"]): r
             for r in rules_of(ec2, group_id)}
    assert rules[("-1", default_id)]["FromPort"] == -1 and rules[("-1", default_id)]["ToPort"] == -1
    assert rules[("icmp", ANYWHERE)]["FromPort"] == 8 and rules[("icmp", ANYWHERE)]["ToPort"] == 0
    assert rules[("tcp", default_id)]["ReferencedGroupInfo"] == {"GroupId": default_id, "UserId": group["OwnerId"]}
    assert {r["GroupOwnerId"] for r in rules.values()} == {group["OwnerId"]}


def test_authorize_egress_shows_in_ip_permissions_egress(ec2):
    group_id, _ = new_group(ec2)
    answer = ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=[tcp(443, ANYWHERE),
                                                                                  {"IpProtocol": "all", "IpRanges": [{"CidrIp": "10.1.0.0/16"}]}])
    assert [r["IsEgress"] for r in answer["SecurityGroupRules"]] == [True, True]
    group = describe(ec2, group_id)
    assert group["IpPermissions"] == []
    assert {(p["IpProtocol"], p.get("FromPort")) for p in group["IpPermissionsEgress"]} == {("tcp", 443), ("-1", None)}
    assert error_code(ec2.authorize_security_group_egress, GroupId=group_id,
                      IpPermissions=[tcp(443, ANYWHERE)]) == "InvalidPermission.Duplicate"
    # The same rule on the other side is a different rule.
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[tcp(443, ANYWHERE)])


@pytest.mark.parametrize("permission, code", [
    ({"IpProtocol": "bogus", "IpRanges": [{"CidrIp": ANYWHERE}]}, "InvalidParameterValue"),
    ({"IpProtocol": "256", "IpRanges": [{"CidrIp": ANYWHERE}]}, "InvalidParameterValue"),
    ({"IpProtocol": "tcp", "FromPort": 22, "IpRanges": [{"CidrIp": ANYWHERE}]}, "InvalidParameterValue"),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 70000, "IpRanges": [{"CidrIp": ANYWHERE}]},
     "InvalidPermission.Malformed"),
    ({"IpProtocol": "udp", "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": ANYWHERE}]},
     "InvalidPermission.Malformed"),
    ({"IpProtocol": "tcp", "FromPort": 90, "ToPort": 80, "IpRanges": [{"CidrIp": ANYWHERE}]}, "InvalidParameterValue"),
    ({"IpProtocol": "tcp", "FromPort": 0, "ToPort": 0, "IpRanges": [{"CidrIp": ANYWHERE}]}, "InvalidParameterValue"),
    ({"IpProtocol": "icmp", "FromPort": -1, "IpRanges": [{"CidrIp": ANYWHERE}]}, "InvalidParameterValue"),
    ({"IpProtocol": "icmp", "FromPort": -1, "ToPort": 3, "IpRanges": [{"CidrIp": ANYWHERE}]}, "InvalidParameterValue"),
    ({"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1, "IpRanges": [{"CidrIp": ANYWHERE}]}, "InvalidParameterValue"),
    ({"IpProtocol": "icmp", "FromPort": 300, "ToPort": 0, "IpRanges": [{"CidrIp": ANYWHERE}]},
     "InvalidPermission.Malformed"),
    ({"IpProtocol": "icmpv6", "FromPort": 128, "ToPort": 0, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
     "InvalidParameterValue"),
    (tcp(22, "10.0.0.0/33"), "InvalidParameterValue"),
    (tcp(22, "10.0.0.1"), "InvalidParameterValue"),
    (tcp(22, "::/0"), "InvalidParameterValue"),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "Ipv6Ranges": [{"CidrIpv6": "10.0.0.0/8"}]},
     "InvalidParameterValue"),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22}, "MissingParameter"),
    (tcp(22, ANYWHERE, ANYWHERE), "InvalidParameterValue"),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "PrefixListIds": [{"PrefixListId": "pl-12345678"}]},
     "InvalidPrefixListID.NotFound"),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupName": "no-such-group"}]},
     "InvalidGroup.NotFound"),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupId": "sg-0123456789abcdef0"}]},
     "InvalidGroup.NotFound"),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupId": "nope"}]},
     "InvalidGroupId.Malformed"),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
      "UserIdGroupPairs": [{"GroupName": "default", "UserId": "000000000000"}]}, "InvalidGroup.NotFound"),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"UserId": "000000000000"}]},
     "InvalidGroup.NotFound"),
    (tcp(22, ANYWHERE) | {"IpRanges": [{"CidrIp": ANYWHERE, "Description": "no <tags> here"}]}, "InvalidParameterValue"),
])
def test_authorize_refuses_bad_permissions_and_adds_nothing(ec2, permission, code):
    group_id, _ = new_group(ec2)
    good = tcp(8080, ANYWHERE)
    assert error_code(ec2.authorize_security_group_ingress, GroupId=group_id, IpPermissions=[good, permission]) == code
    assert rules_of(ec2, group_id) == []


def test_authorize_request_errors(ec2):
    group_id, name = new_group(ec2)
    assert error_code(ec2.authorize_security_group_ingress, GroupId=group_id) == "MissingParameter"
    assert error_code(ec2.authorize_security_group_ingress, IpPermissions=[tcp(22, ANYWHERE)]) == "MissingParameter"
    assert error_code(ec2.authorize_security_group_ingress, GroupId="sg-0123456789abcdef0",
                      IpPermissions=[tcp(22, ANYWHERE)]) == "InvalidGroup.NotFound"
    assert error_code(ec2.authorize_security_group_ingress, GroupName="no-such-group",
                      IpPermissions=[tcp(22, ANYWHERE)]) == "InvalidGroup.NotFound"
    assert error_code(ec2.authorize_security_group_ingress, GroupId="sg-bad",
                      IpPermissions=[tcp(22, ANYWHERE)]) == "InvalidGroupId.Malformed"
    assert error_code(ec2.authorize_security_group_ingress, GroupName=name, IpPermissions=[tcp(22, ANYWHERE)],
                      CidrIp=ANYWHERE) == "InvalidParameterCombination"
    assert error_code(ec2.authorize_security_group_ingress, GroupName=name, IpPermissions=[tcp(22, ANYWHERE)],
                      TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": "a", "Value": "b"}]}]
                      ) == "InvalidParameterValue"
    assert rules_of(ec2, group_id) == []


def test_duplicate_rules_change_nothing(ec2):
    group_id, _ = new_group(ec2)
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[tcp(22, "10.0.0.0/8")])
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[tcp(80, ANYWHERE), tcp(22, "10.0.0.0/8")])
    assert caught.value.response["Error"]["Code"] == "InvalidPermission.Duplicate"
    assert "10.0.0.0/8" in caught.value.response["Error"]["Message"]
    # Numbers and names are the same protocol; a host-bits CIDR is the same network.
    assert error_code(ec2.authorize_security_group_ingress, GroupId=group_id, IpPermissions=[
        {"IpProtocol": "6", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.9.9.9/8"}]}
    ]) == "InvalidPermission.Duplicate"
    assert [(r["FromPort"], r["CidrIpv4"]) for r in rules_of(ec2, group_id)] == [(22, "10.0.0.0/8")]


def test_a_request_that_fails_part_way_undoes_what_it_added(bridge, ec2, faults):
    # One attempt per call: botocore would otherwise retry the InternalError and double the counts.
    once = boto3.client("ec2", endpoint_url=bridge.url, region_name=REGION, aws_access_key_id=DEMO_CREDENTIALS[0],
                        aws_secret_access_key=DEMO_CREDENTIALS[1], config=BotoConfig(retries={"total_max_attempts": 1}))
    group_id, _ = new_group(ec2)
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[tcp(22, ANYWHERE)])
    calls = bridge.services.simulator.state.call_counts
    before = calls["authorizeSecurityGroupIngress"], calls["revokeSecurityGroupIngress"]
    # Every rule is added in CloudStack; tagging the new rules then fails.
    faults.add(FaultRule(command="createTags", error_rate=1.0))
    assert error_code(once.authorize_security_group_ingress, GroupId=group_id, IpPermissions=[
        tcp(80, ANYWHERE, "10.0.0.0/8"), {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53,
                                         "IpRanges": [{"CidrIp": ANYWHERE}]}],
        TagSpecifications=[{"ResourceType": "security-group-rule", "Tags": [{"Key": "k", "Value": "v"}]}]
    ) == "InternalError"
    assert calls["authorizeSecurityGroupIngress"] - before[0] == 2   # both batches ran...
    assert calls["revokeSecurityGroupIngress"] - before[1] == 3      # ...and their 3 rules were undone
    assert [(r["FromPort"], r["CidrIpv4"]) for r in rules_of(ec2, group_id)] == [(22, ANYWHERE)]


def test_a_failed_backend_call_leaves_no_rule(ec2, faults):
    group_id, _ = new_group(ec2)
    faults.add(FaultRule(command="authorizeSecurityGroupIngress", error_rate=1.0))
    assert error_code(ec2.authorize_security_group_ingress, GroupId=group_id,
                      IpPermissions=[tcp(80, ANYWHERE), tcp(443, ANYWHERE)]) == "InternalError"
    faults.clear()
    assert rules_of(ec2, group_id) == []


def test_revoke_by_ip_permissions(ec2):
    group_id, _ = new_group(ec2)
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[
        tcp(22, "10.0.0.0/8", "172.16.0.0/12"), {"IpProtocol": "icmp", "FromPort": 0, "ToPort": 0,
                                                 "UserIdGroupPairs": [{"GroupName": "default"}]}])
    answer = ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=[
        tcp(22, "10.0.0.0/8", "192.0.2.0/24"),
        {"IpProtocol": "1", "FromPort": 0, "ToPort": 0, "UserIdGroupPairs": [{"GroupName": "default"}]}])
    assert answer["Return"] is True
    # AWS (EC2-Classic and default VPC): entries matching no rule come back, the rest is revoked.
    assert answer["UnknownIpPermissions"] == [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                                               "IpRanges": [{"CidrIp": "192.0.2.0/24"}], "Ipv6Ranges": [],
                                               "UserIdGroupPairs": [], "PrefixListIds": []}]
    revoked = {r.get("CidrIpv4") or r.get("ReferencedGroupId") for r in answer["RevokedSecurityGroupRules"]}
    assert revoked == {"10.0.0.0/8", ids_named(ec2, GroupNames=["default"]).pop()}
    assert [r["CidrIpv4"] for r in rules_of(ec2, group_id)] == ["172.16.0.0/12"]
    nothing = ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=[tcp(23, "172.16.0.0/12")])
    assert nothing["Return"] is True and "RevokedSecurityGroupRules" not in nothing
    assert error_code(ec2.revoke_security_group_ingress, GroupId=group_id,
                      IpPermissions=[{"IpProtocol": "tcp", "IpRanges": [{"CidrIp": ANYWHERE}]}]) == "InvalidParameterValue"
    assert error_code(ec2.revoke_security_group_ingress, GroupId="sg-0123456789abcdef0",
                      IpPermissions=[tcp(22, ANYWHERE)]) == "InvalidGroup.NotFound"


def test_revoke_by_rule_ids(ec2):
    group_id, name = new_group(ec2)
    ingress = ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[tcp(22, ANYWHERE, "10.0.0.0/8")])
    egress = ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=[tcp(25, ANYWHERE)])
    ingress_ids = [r["SecurityGroupRuleId"] for r in ingress["SecurityGroupRules"]]
    egress_id = egress["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    assert error_code(ec2.revoke_security_group_ingress, GroupId=group_id,
                      SecurityGroupRuleIds=[ingress_ids[0], egress_id]) == "InvalidSecurityGroupRuleId.NotFound"
    assert error_code(ec2.revoke_security_group_ingress, GroupId=group_id,
                      SecurityGroupRuleIds=["sgr-bad"]) == "InvalidSecurityGroupRuleId.Malformed"
    assert error_code(ec2.revoke_security_group_ingress, GroupId=group_id, SecurityGroupRuleIds=ingress_ids,
                      IpPermissions=[tcp(22, ANYWHERE)]) == "InvalidParameterCombination"
    assert len(rules_of(ec2, group_id)) == 3  # nothing was revoked by the failed calls
    answer = ec2.revoke_security_group_ingress(GroupName=name, SecurityGroupRuleIds=ingress_ids)
    assert {r["SecurityGroupRuleId"] for r in answer["RevokedSecurityGroupRules"]} == set(ingress_ids)
    assert ec2.revoke_security_group_egress(GroupId=group_id, SecurityGroupRuleIds=[egress_id])["Return"] is True
    assert rules_of(ec2, group_id) == []
    assert error_code(ec2.describe_security_group_rules,
                      SecurityGroupRuleIds=[egress_id]) == "InvalidSecurityGroupRuleId.NotFound"


# Real CloudStack tags rules (ResourceObjectType.SecurityGroupRule) and lists each rule's tags.
def test_rule_descriptions_and_tags(ec2):
    group_id, _ = new_group(ec2)
    answer = ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "Office (SSH)"}, {"CidrIp": "192.0.2.0/24"}],
         "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32", "Description": "v6 office"}],
         "UserIdGroupPairs": [{"GroupName": "default", "Description": "Bastions"}]}],
        TagSpecifications=[{"ResourceType": "security-group-rule", "Tags": [{"Key": "owner", "Value": "ops"}]}])
    assert {r.get("Description") for r in answer["SecurityGroupRules"]} == {"Office (SSH)", None, "v6 office", "Bastions"}
    assert all(r["Tags"] == [{"Key": "owner", "Value": "ops"}] for r in answer["SecurityGroupRules"])
    permission = describe(ec2, group_id)["IpPermissions"][0]
    assert permission["IpRanges"] == [{"CidrIp": "10.0.0.0/8", "Description": "Office (SSH)"}, {"CidrIp": "192.0.2.0/24"}]
    assert permission["Ipv6Ranges"] == [{"CidrIpv6": "2001:db8::/32", "Description": "v6 office"}]
    assert permission["UserIdGroupPairs"][0]["Description"] == "Bastions"
    rules = rules_of(ec2, group_id)
    assert all(r["Tags"] == [{"Key": "owner", "Value": "ops"}] for r in rules)
    tagged = ec2.describe_security_group_rules(Filters=[{"Name": "tag:owner", "Values": ["ops"]},
                                                        {"Name": "group-id", "Values": [group_id]}])
    assert len(tagged["SecurityGroupRules"]) == 4
    # The description is not a tag and does not count as one.
    assert ec2.describe_security_group_rules(Filters=[{"Name": "tag-key", "Values": ["aws:*"]},
                                                      {"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"] == []


# --- describe: filters and paging ----------------------------------------------------------------

@pytest.fixture(scope="module")
def filtered(ec2):
    """Two groups with distinct rules on both sides, for the filter tests."""
    web_id, web = new_group(ec2, unique("flt-web"),
                            TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": "tier", "Value": "web"}]}])
    db_id, db = new_group(ec2, unique("flt-db"))
    ec2.authorize_security_group_ingress(GroupId=web_id, IpPermissions=[
        tcp(443, "203.0.113.0/24"), {"IpProtocol": "udp", "FromPort": 500, "ToPort": 600,
                                     "Ipv6Ranges": [{"CidrIpv6": "2001:db8:1::/48"}]}])
    ec2.authorize_security_group_ingress(GroupId=db_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": web_id}]}])
    ec2.authorize_security_group_egress(GroupId=db_id, IpPermissions=[
        {"IpProtocol": "icmp", "FromPort": 3, "ToPort": 4, "IpRanges": [{"CidrIp": "198.51.100.0/24"}]},
        {"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8001, "UserIdGroupPairs": [{"GroupName": web}],
         "Ipv6Ranges": [{"CidrIpv6": "2001:db8:2::/48"}]}])
    owner = describe(ec2, web_id)["OwnerId"]
    return {"web": web_id, "db": db_id, "web_name": web, "db_name": db, "owner": owner}


FILTER_CASES = [
    ("description", lambda f: [f"group {f['web_name']}"], {"web"}),
    ("group-id", lambda f: [f["db"]], {"db"}),
    ("group-name", lambda f: [f["web_name"], f["db_name"]], {"web", "db"}),
    ("group-name", lambda f: ["flt-db-*"], {"db"}),
    ("owner-id", lambda f: [f["owner"]], {"web", "db"}),
    ("vpc-id", lambda f: ["vpc-0123456789abcdef0"], set()),
    ("tag:tier", lambda f: ["web"], {"web"}),
    ("tag-key", lambda f: ["tier"], {"web"}),
    ("tag-value", lambda f: ["we?"], {"web"}),
    ("ip-permission.cidr", lambda f: ["203.0.113.0/24"], {"web"}),
    ("ip-permission.from-port", lambda f: ["500"], {"web"}),
    ("ip-permission.to-port", lambda f: ["5432"], {"db"}),
    ("ip-permission.protocol", lambda f: ["udp"], {"web"}),
    ("ip-permission.group-id", lambda f: [f["web"]], {"db"}),
    ("ip-permission.group-name", lambda f: [f["web_name"]], {"db"}),
    ("ip-permission.ipv6-cidr", lambda f: ["2001:db8:1::/48"], {"web"}),
    ("ip-permission.user-id", lambda f: [f["owner"]], {"db"}),
    ("ip-permission.prefix-list-id", lambda f: ["pl-12345678"], set()),
    ("egress.ip-permission.cidr", lambda f: ["198.51.100.0/24"], {"db"}),
    ("egress.ip-permission.from-port", lambda f: ["3"], {"db"}),
    ("egress.ip-permission.to-port", lambda f: ["8001"], {"db"}),
    ("egress.ip-permission.protocol", lambda f: ["icmp"], {"db"}),
    ("egress.ip-permission.group-id", lambda f: [f["web"]], {"db"}),
    ("egress.ip-permission.group-name", lambda f: [f["web_name"]], {"db"}),
    ("egress.ip-permission.ipv6-cidr", lambda f: ["2001:db8:2::/48"], {"db"}),
    ("egress.ip-permission.user-id", lambda f: [f["owner"]], {"db"}),
    ("egress.ip-permission.prefix-list-id", lambda f: ["pl-12345678"], set()),
]


@pytest.mark.parametrize("name, values, expected", FILTER_CASES, ids=[f"{c[0]}:{i}" for i, c in enumerate(FILTER_CASES)])
def test_describe_security_groups_filters(ec2, filtered, name, values, expected):
    scope = {"Name": "group-id", "Values": [filtered["web"], filtered["db"]]}
    found = ids_named(ec2, Filters=[scope, {"Name": name, "Values": values(filtered)}])
    assert found == {filtered[key] for key in expected}


def test_describe_security_groups_selection_errors(bridge, ec2, filtered):
    assert error_code(ec2.describe_security_groups, Filters=[{"Name": "no-such-filter", "Values": ["x"]}]
                      ) == "InvalidParameterValue"
    assert error_code(ec2.describe_security_groups, GroupIds=[filtered["web"], "sg-0123456789abcdef0"]
                      ) == "InvalidGroup.NotFound"
    assert error_code(ec2.describe_security_groups, GroupIds=["sg-nope"]) == "InvalidGroupId.Malformed"
    assert error_code(ec2.describe_security_groups, GroupNames=["no-such-group"]) == "InvalidGroup.NotFound"
    assert error_code(ec2.describe_security_groups, GroupIds=[filtered["web"]], MaxResults=5
                      ) == "InvalidParameterCombination"
    # boto3 checks the lower bound itself: send those raw.
    assert flat_error(bridge, "DescribeSecurityGroups", MaxResults="4") == "InvalidParameterValue"
    assert error_code(ec2.describe_security_groups, MaxResults=1001) == "InvalidParameterValue"
    assert flat_error(bridge, "DescribeSecurityGroupRules", MaxResults="4") == "InvalidParameterValue"


def test_describe_security_groups_pages(ec2):
    prefix = unique("page")
    created = {new_group(ec2, f"{prefix}-{i}")[0] for i in range(7)}
    pages = list(ec2.get_paginator("describe_security_groups").paginate(
        Filters=[{"Name": "group-name", "Values": [f"{prefix}-*"]}], PaginationConfig={"PageSize": 5}))
    all_pages = list(ec2.get_paginator("describe_security_groups").paginate(PaginationConfig={"PageSize": 5}))
    assert len(all_pages) >= 2 and all(len(p["SecurityGroups"]) <= 5 for p in all_pages)
    seen = [g["GroupId"] for p in all_pages for g in p["SecurityGroups"]]
    assert len(seen) == len(set(seen)) and created <= set(seen)
    assert {g["GroupId"] for p in pages for g in p["SecurityGroups"]} == created
    for group_id in created:
        ec2.delete_security_group(GroupId=group_id)


def test_describe_security_group_rules(ec2, filtered):
    rules = rules_of(ec2, filtered["db"])
    assert len(rules) == 4 and {r["IsEgress"] for r in rules} == {True, False}
    first = rules[0]["SecurityGroupRuleId"]
    assert ec2.describe_security_group_rules(SecurityGroupRuleIds=[first])["SecurityGroupRules"] == [rules[0]]
    by_id = ec2.describe_security_group_rules(Filters=[{"Name": "security-group-rule-id", "Values": [first]}])
    assert by_id["SecurityGroupRules"] == [rules[0]]
    assert error_code(ec2.describe_security_group_rules,
                      SecurityGroupRuleIds=["sgr-0123456789abcdef0"]) == "InvalidSecurityGroupRuleId.NotFound"
    assert error_code(ec2.describe_security_group_rules, SecurityGroupRuleIds=["nope"]
                      ) == "InvalidSecurityGroupRuleId.Malformed"
    assert error_code(ec2.describe_security_group_rules, Filters=[{"Name": "ip-protocol", "Values": ["tcp"]}]
                      ) == "InvalidParameterValue"
    scope = [{"Name": "group-id", "Values": [filtered["web"], filtered["db"]]}]
    pages = list(ec2.get_paginator("describe_security_group_rules").paginate(
        Filters=scope, PaginationConfig={"PageSize": 5}))
    assert [len(p["SecurityGroupRules"]) for p in pages] == [5, 1]
    assert len({r["SecurityGroupRuleId"] for p in pages for r in p["SecurityGroupRules"]}) == 6


# --- legacy clients ------------------------------------------------------------------------------

def test_flat_parameters_authorize_and_revoke(bridge, ec2):
    group_id, name = new_group(ec2)
    answer = flat(bridge, "AuthorizeSecurityGroupIngress", GroupName=name, IpProtocol="tcp", FromPort="22",
                  ToPort="22", CidrIp="10.0.0.0/8")
    assert answer.find("{*}return").text == "true"
    flat(bridge, "AuthorizeSecurityGroupEgress", GroupId=group_id, IpProtocol="udp", FromPort="53", ToPort="53",
         CidrIp=ANYWHERE)
    # A source group alone grants ICMP, TCP and UDP in full, as AWS documents.
    flat(bridge, "AuthorizeSecurityGroupIngress", GroupName=name, SourceSecurityGroupName="default",
         SourceSecurityGroupOwnerId=describe(ec2, group_id)["OwnerId"])
    group = describe(ec2, group_id)
    heads = {(p["IpProtocol"], p["FromPort"], p["ToPort"]) for p in group["IpPermissions"]}
    assert heads == {("tcp", 22, 22), ("icmp", -1, -1), ("tcp", 0, 65535), ("udp", 0, 65535)}
    assert group["IpPermissionsEgress"][0]["IpRanges"] == [{"CidrIp": ANYWHERE}]
    assert flat_error(bridge, "AuthorizeSecurityGroupIngress", GroupName=name, IpProtocol="tcp", FromPort="22",
                      ToPort="22", CidrIp="10.0.0.0/8") == "InvalidPermission.Duplicate"
    assert flat_error(bridge, "AuthorizeSecurityGroupIngress", GroupName=name, IpProtocol="tcp", FromPort="23",
                      ToPort="23") == "MissingParameter"
    assert flat_error(bridge, "AuthorizeSecurityGroupIngress", GroupName=name, IpProtocol="tcp", FromPort="23",
                      ToPort="23", CidrIp=ANYWHERE, SourceSecurityGroupName="default") == "InvalidParameterCombination"
    flat(bridge, "RevokeSecurityGroupIngress", GroupName=name, SourceSecurityGroupName="default")
    flat(bridge, "RevokeSecurityGroupIngress", GroupName=name, IpProtocol="tcp", FromPort="22", ToPort="22",
         CidrIp="10.0.0.0/8")
    assert describe(ec2, group_id)["IpPermissions"] == []


def test_boto2(boto2, ec2):
    name = unique()
    group = boto2.create_security_group(name, "made by boto 2")
    assert group.id.startswith("sg-")
    assert boto2.authorize_security_group(group_name=name, ip_protocol="tcp", from_port=80, to_port=80,
                                          cidr_ip="10.0.0.0/8") is True
    assert boto2.authorize_security_group_deprecated(name, ip_protocol="udp", from_port=53, to_port=53,
                                                     cidr_ip="10.0.0.0/8") is True
    assert boto2.authorize_security_group(group_name=name, src_security_group_name="default") is True
    [listed] = boto2.get_all_security_groups(groupnames=[name])
    assert listed.id == group.id and listed.description == "made by boto 2"
    rules = {(r.ip_protocol, r.from_port, r.to_port): r for r in listed.rules}
    assert set(rules) == {("tcp", "80", "80"), ("udp", "53", "53"), ("icmp", "-1", "-1"), ("tcp", "0", "65535"),
                          ("udp", "0", "65535")}
    assert [g.cidr_ip for g in rules[("tcp", "80", "80")].grants] == ["10.0.0.0/8"]
    assert [g.name for g in rules[("icmp", "-1", "-1")].grants] == ["default"]
    assert boto2.revoke_security_group(group_name=name, ip_protocol="tcp", from_port=80, to_port=80,
                                       cidr_ip="10.0.0.0/8") is True
    assert ("tcp", 80, 80) not in {(p["IpProtocol"], p.get("FromPort"), p.get("ToPort"))
                                   for p in describe(ec2, group.id)["IpPermissions"]}
    with pytest.raises(boto.exception.EC2ResponseError) as caught:
        boto2.delete_security_group(name="default")
    assert caught.value.error_code == "CannotDelete"
    assert boto2.delete_security_group(group_id=group.id) is True


def test_aws_cli(bridge, ec2):
    group_id, name = new_group(ec2)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": DEMO_CREDENTIALS[0], "AWS_SECRET_ACCESS_KEY": DEMO_CREDENTIALS[1],
           "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    aws = os.path.join(os.path.dirname(os.sys.executable), "aws")
    result = subprocess.run([aws, "--endpoint-url", bridge.url, "ec2", "authorize-security-group-ingress",
                             "--group-name", name, "--protocol", "tcp", "--port", "8000-8080", "--cidr", "10.0.0.0/8"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    [permission] = describe(ec2, group_id)["IpPermissions"]
    assert (permission["FromPort"], permission["ToPort"], permission["IpRanges"]) == (8000, 8080, [{"CidrIp": "10.0.0.0/8"}])


# --- isolation between accounts ------------------------------------------------------------------

def test_accounts_cannot_see_or_touch_each_others_groups(ec2, other):
    group_id, name = new_group(ec2)
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[tcp(22, ANYWHERE)])
    rule_id = rules_of(ec2, group_id)[0]["SecurityGroupRuleId"]
    assert group_id not in ids_named(other)
    assert error_code(other.describe_security_groups, GroupIds=[group_id]) == "InvalidGroup.NotFound"
    assert error_code(other.describe_security_groups, GroupNames=[name]) == "InvalidGroup.NotFound"
    assert error_code(other.delete_security_group, GroupId=group_id) == "InvalidGroup.NotFound"
    assert error_code(other.authorize_security_group_ingress, GroupId=group_id,
                      IpPermissions=[tcp(23, ANYWHERE)]) == "InvalidGroup.NotFound"
    assert error_code(other.revoke_security_group_ingress, GroupId=group_id,
                      IpPermissions=[tcp(22, ANYWHERE)]) == "InvalidGroup.NotFound"
    assert error_code(other.describe_security_group_rules,
                      SecurityGroupRuleIds=[rule_id]) == "InvalidSecurityGroupRuleId.NotFound"
    theirs, _ = new_group(other, name)  # names are per account
    assert error_code(other.authorize_security_group_ingress, GroupId=theirs, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupId": group_id}]}]
    ) == "InvalidGroup.NotFound"
    assert [r["FromPort"] for r in rules_of(ec2, group_id)] == [22]
    assert describe(ec2, group_id)["GroupName"] == name
