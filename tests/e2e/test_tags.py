"""Tags end to end: CreateTags, DeleteTags and DescribeTags through boto3, the aws cli and
boto 2, on kinds CloudStack tags itself (security groups, images) and on key pairs, whose tags
the bridge keeps.

Each module run works in fresh CloudStack accounts made in the simulator (an owner and a
stranger). The owner's security group is created through CloudStack's API and its image
seeded into the simulator, and their EC2 ids come from the id map as every area mints them
(CloudStack id and owner ``domainid/account``), so these tests need no other EC2 area.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid

import boto.ec2.connection
import boto3
import botocore.exceptions
import pytest
from boto.ec2.regioninfo import RegionInfo
from botocore.config import Config as BotoConfig

from cloudstack_sim.faults import FaultRule
from cloudstack_sim.seed import USER_TYPE, add_account, add_user
from mappings.tags import EMPTY_VALUE
from tests.bridge_server import REGION


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def code_of(caught: pytest.ExceptionInfo) -> str:
    return caught.value.response["Error"]["Code"]


class Account:
    """A fresh CloudStack account of the simulator, its keys and a boto3 client for it."""

    def __init__(self, bridge, prefix: str):
        self.bridge = bridge

        async def create():
            state = bridge.services.simulator.state
            root = next(d for d in state.store("domain") if d["name"] == "ROOT")
            account = add_account(state, unique(prefix), USER_TYPE, root["id"])
            user = add_user(state, account, account["name"])
            return account, (user["apikey"], user["secretkey"])
        self.record, self.keys = bridge.call(create())
        self.owner = f"{self.record['domain_id']}/{self.record['name']}"
        self.ec2 = bridge.client(credentials=self.keys)

    def cloudstack(self, command: str, **params) -> dict:
        return self.bridge.call(self.bridge.services.cloudstack.run(self.keys, command, params))

    def ec2_id(self, kind: str, backend_id: str) -> str:
        return self.bridge.call(self.bridge.services.ids.ec2_id(kind, backend_id, self.owner))

    def security_group(self) -> str:
        group = self.cloudstack("createSecurityGroup", name=unique("sg"))["securitygroup"]
        return self.ec2_id("sg", group["id"])

    def image(self) -> str:
        async def seed():
            state = self.bridge.services.simulator.state
            zone = next(iter(state.store("zone")))
            os_type = next(iter(state.store("os_type")))
            return state.add("template", {
                "name": unique("img"), "displaytext": "tagged image", "ispublic": False, "isfeatured": False,
                "passwordenabled": False, "format": "QCOW2", "hypervisor": "KVM", "ostype_id": os_type["id"],
                "size": 2 ** 30, "account_id": self.record["id"], "templatetype": "USER", "zone_ids": [zone["id"]],
                "isready": True, "bootable": True, "isextractable": False, "sshkeyenabled": False,
                "permitted_accounts": [], "crosszones": False, "url": None})
        return self.ec2_id("ami", self.bridge.call(seed())["id"])

    def key_pair(self) -> str:
        return self.ec2.create_key_pair(KeyName=unique("key"))["KeyPairId"]


@pytest.fixture(scope="module")
def owner(bridge):
    return Account(bridge, "tag-owner")


@pytest.fixture(scope="module")
def stranger(bridge):
    return Account(bridge, "tag-stranger")


@pytest.fixture(params=["security-group", "image", "key-pair"])
def resource(request, owner):
    """(EC2 id, EC2 resource type) of a fresh resource of the owner, of each kind."""
    make = {"security-group": owner.security_group, "image": owner.image, "key-pair": owner.key_pair}
    return make[request.param](), request.param


def tags_of(ec2, resource_id: str) -> dict[str, str]:
    items = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource_id]}])["Tags"]
    return {item["Key"]: item["Value"] for item in items}


def cloudstack_tags(account: Account, resource_id: str) -> dict[str, str]:
    record = account.bridge.call(account.bridge.services.ids.lookup(resource_id))
    rows = account.cloudstack("listTags", resourceid=record.backend_id).get("tag", [])
    return {row["key"]: row["value"] for row in rows}


# --- CreateTags ----------------------------------------------------------------------------

def test_create_and_describe(owner, resource):
    resource_id, resource_type = resource
    assert owner.ec2.create_tags(Resources=[resource_id], Tags=[{"Key": "Name", "Value": "web"},
                                                                {"Key": "env", "Value": "prod"}])
    items = owner.ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource_id]}])["Tags"]
    assert items == [{"Key": "Name", "ResourceId": resource_id, "ResourceType": resource_type, "Value": "web"},
                     {"Key": "env", "ResourceId": resource_id, "ResourceType": resource_type, "Value": "prod"}]


def test_cloudstack_kinds_keep_tags_in_cloudstack(owner):
    group, image, key = owner.security_group(), owner.image(), owner.key_pair()
    owner.ec2.create_tags(Resources=[group, image, key], Tags=[{"Key": "where", "Value": "cloud"}])
    assert cloudstack_tags(owner, group) == {"where": "cloud"}
    assert cloudstack_tags(owner, image) == {"where": "cloud"}
    # CloudStack cannot tag key pairs: their tags are the bridge's, and still described.
    assert owner.cloudstack("listTags", key="where").get("count") == 2
    assert tags_of(owner.ec2, key) == {"where": "cloud"}


def test_create_overwrites_values(owner, resource):
    resource_id, _ = resource
    owner.ec2.create_tags(Resources=[resource_id], Tags=[{"Key": "v", "Value": "1"}, {"Key": "keep", "Value": "k"}])
    owner.ec2.create_tags(Resources=[resource_id], Tags=[{"Key": "v", "Value": "2"}, {"Key": "keep", "Value": "k"}])
    assert tags_of(owner.ec2, resource_id) == {"v": "2", "keep": "k"}


def test_empty_values(owner, resource):
    resource_id, resource_type = resource
    owner.ec2.create_tags(Resources=[resource_id], Tags=[{"Key": "flag"}, {"Key": "blank", "Value": ""}])
    assert tags_of(owner.ec2, resource_id) == {"flag": "", "blank": ""}
    if resource_type != "key-pair":  # CloudStack refuses empty values: the bridge stores a marker
        assert cloudstack_tags(owner, resource_id) == {"flag": EMPTY_VALUE, "blank": EMPTY_VALUE}


def test_many_resources_in_one_call(owner):
    groups = [owner.security_group() for _ in range(3)]
    owner.ec2.create_tags(Resources=[groups[0]], Tags=[{"Key": "x", "Value": "old"}])
    owner.ec2.create_tags(Resources=groups + [owner.key_pair()], Tags=[{"Key": "x", "Value": "new"}])
    assert [tags_of(owner.ec2, group) for group in groups] == [{"x": "new"}] * 3


def test_tag_limit(owner, resource):
    resource_id, _ = resource
    fifty = [{"Key": f"k{i:02d}", "Value": str(i)} for i in range(50)]
    owner.ec2.create_tags(Resources=[resource_id], Tags=fifty)
    owner.ec2.create_tags(Resources=[resource_id], Tags=[{"Key": "k00", "Value": "overwritten"}])
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        owner.ec2.create_tags(Resources=[resource_id], Tags=[{"Key": "one-too-many", "Value": "x"}])
    assert code_of(caught) == "TagLimitExceeded"
    tags = tags_of(owner.ec2, resource_id)
    assert len(tags) == 50 and tags["k00"] == "overwritten" and "one-too-many" not in tags


def test_too_many_tags_in_one_request(owner):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        owner.ec2.create_tags(Resources=[owner.key_pair()], Tags=[{"Key": f"k{i}", "Value": ""} for i in range(51)])
    assert code_of(caught) == "TagLimitExceeded"


@pytest.mark.parametrize("tag", [
    {"Key": "k" * 129, "Value": "v"},
    {"Key": "k", "Value": "v" * 257},
    {"Key": "aws:cloudformation:stack", "Value": "v"},
    {"Key": "AWS:upper", "Value": "v"},
    {"Key": "", "Value": "v"},
])
def test_invalid_tags(owner, tag):
    group = owner.security_group()
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        owner.ec2.create_tags(Resources=[group], Tags=[tag])
    assert code_of(caught) == "InvalidParameterValue"
    assert tags_of(owner.ec2, group) == {}


def test_longest_key_and_value(owner, resource):
    resource_id, _ = resource
    owner.ec2.create_tags(Resources=[resource_id], Tags=[{"Key": "k" * 128, "Value": "v" * 255}])
    assert tags_of(owner.ec2, resource_id) == {"k" * 128: "v" * 255}


@pytest.mark.parametrize("resource_id, code", [
    ("foo-0123456789abcdef0", "InvalidID"),
    ("i-xyz", "InvalidID"),
    ("r-0123456789abcdef0", "InvalidID"),
    ("i-0123456789abcdef0", "InvalidInstanceID.NotFound"),
    ("ami-0123456789abcdef0", "InvalidAMIID.NotFound"),
    ("sg-0123456789abcdef0", "InvalidGroup.NotFound"),
    ("vol-0123456789abcdef0", "InvalidVolume.NotFound"),
    ("key-0123456789abcdef0", "InvalidKeyPair.NotFound"),
])
def test_unknown_resources(owner, resource_id, code):
    for call in (owner.ec2.create_tags, owner.ec2.delete_tags):
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            call(Resources=[resource_id], Tags=[{"Key": "a", "Value": "b"}])
        assert code_of(caught) == code


def test_one_bad_resource_fails_the_whole_call(owner):
    group = owner.security_group()
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        owner.ec2.create_tags(Resources=[group, "i-0123456789abcdef0"], Tags=[{"Key": "a", "Value": "b"}])
    assert code_of(caught) == "InvalidInstanceID.NotFound"
    assert tags_of(owner.ec2, group) == {}


def test_others_public_image_cannot_be_tagged(owner, bridge):
    """The seeded public templates belong to the admin account: visible, not taggable."""
    async def public_template():
        state = bridge.services.simulator.state
        template = next(t for t in state.store("template") if t.get("ispublic"))
        admin = state.get("account", template["account_id"])
        return template["id"], f"{admin['domain_id']}/{admin['name']}"
    template_id, admin_owner = bridge.call(public_template())
    image = bridge.call(bridge.services.ids.ec2_id("ami", template_id, admin_owner))
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        owner.ec2.create_tags(Resources=[image], Tags=[{"Key": "mine", "Value": "no"}])
    assert code_of(caught) == "InvalidAMIID.NotFound"


def test_failed_overwrite_puts_the_old_value_back(owner, bridge):
    """Overwriting is delete-then-create in CloudStack; when the create fails, the deleted
    value is created again. The simulator's seeded fault draws fail exactly the first
    ``createTags`` here (one draw per call at a 50% rate) and let the second through."""
    group = owner.security_group()
    owner.ec2.create_tags(Resources=[group], Tags=[{"Key": "v", "Value": "old"}])
    once = boto3.client("ec2", endpoint_url=bridge.url, region_name=REGION, aws_access_key_id=owner.keys[0],
                        aws_secret_access_key=owner.keys[1], config=BotoConfig(retries={"total_max_attempts": 1}))
    seed = next(s for s in range(1000) if (lambda r: r.random() < 0.5 <= r.random())(random.Random(s)))
    faults = bridge.services.simulator.state.faults
    faults.seed(seed)
    faults.add(FaultRule(command="createTags", error_rate=0.5))
    try:
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            once.create_tags(Resources=[group], Tags=[{"Key": "v", "Value": "new"}])
    finally:
        faults.clear()
    assert code_of(caught) == "InternalError"
    assert tags_of(owner.ec2, group) == {"v": "old"}


def test_create_dry_run(owner):
    group = owner.security_group()
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        owner.ec2.create_tags(Resources=[group], Tags=[{"Key": "a", "Value": "b"}], DryRun=True)
    assert code_of(caught) == "DryRunOperation"
    assert tags_of(owner.ec2, group) == {}
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        owner.ec2.create_tags(Resources=["sg-0123456789abcdef0"], Tags=[{"Key": "a", "Value": "b"}], DryRun=True)
    assert code_of(caught) == "InvalidGroup.NotFound"


# --- DeleteTags ----------------------------------------------------------------------------

def test_delete_semantics(owner, resource):
    resource_id, _ = resource
    owner.ec2.create_tags(Resources=[resource_id], Tags=[
        {"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}, {"Key": "c", "Value": ""},
        {"Key": "d", "Value": "4"}, {"Key": "e", "Value": "Five"}])
    owner.ec2.delete_tags(Resources=[resource_id], Tags=[{"Key": "a", "Value": "other"}])  # value differs: kept
    owner.ec2.delete_tags(Resources=[resource_id], Tags=[{"Key": "e", "Value": "five"}])  # values are exact
    owner.ec2.delete_tags(Resources=[resource_id], Tags=[{"Key": "b", "Value": ""}])  # only if empty: kept
    owner.ec2.delete_tags(Resources=[resource_id], Tags=[{"Key": "c", "Value": ""}])  # empty: deleted
    owner.ec2.delete_tags(Resources=[resource_id], Tags=[{"Key": "d"}, {"Key": "absent"}])  # any value
    assert tags_of(owner.ec2, resource_id) == {"a": "1", "b": "2", "e": "Five"}
    owner.ec2.delete_tags(Resources=[resource_id], Tags=[{"Key": "a", "Value": "1"}])
    assert tags_of(owner.ec2, resource_id) == {"b": "2", "e": "Five"}
    owner.ec2.delete_tags(Resources=[resource_id])  # no Tags: every tag
    assert tags_of(owner.ec2, resource_id) == {}
    owner.ec2.delete_tags(Resources=[resource_id])  # nothing left to delete still succeeds


def test_delete_reserved_key(owner):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        owner.ec2.delete_tags(Resources=[owner.security_group()], Tags=[{"Key": "aws:thing"}])
    assert code_of(caught) == "InvalidParameterValue"


def test_delete_dry_run(owner):
    group = owner.security_group()
    owner.ec2.create_tags(Resources=[group], Tags=[{"Key": "a", "Value": "b"}])
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        owner.ec2.delete_tags(Resources=[group], DryRun=True)
    assert code_of(caught) == "DryRunOperation"
    assert tags_of(owner.ec2, group) == {"a": "b"}


def test_tags_of_a_key_pair_deleted_in_cloudstack_are_not_described(owner):
    created = owner.ec2.create_key_pair(KeyName=unique("gone"), TagSpecifications=[
        {"ResourceType": "key-pair", "Tags": [{"Key": "a", "Value": "b"}]}])
    owner.cloudstack("deleteSSHKeyPair", name=created["KeyName"])
    assert tags_of(owner.ec2, created["KeyPairId"]) == {}
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        owner.ec2.create_tags(Resources=[created["KeyPairId"]], Tags=[{"Key": "a", "Value": "c"}])
    assert code_of(caught) == "InvalidKeyPair.NotFound"


# --- accounts ------------------------------------------------------------------------------

def test_strangers_cannot_tag_or_see(owner, stranger):
    group, key = owner.security_group(), owner.key_pair()
    owner.ec2.create_tags(Resources=[group, key], Tags=[{"Key": "secret", "Value": "owner"}])
    for resource_id, code in ((group, "InvalidGroup.NotFound"), (key, "InvalidKeyPair.NotFound")):
        for call in (stranger.ec2.create_tags, stranger.ec2.delete_tags):
            with pytest.raises(botocore.exceptions.ClientError) as caught:
                call(Resources=[resource_id], Tags=[{"Key": "secret", "Value": "owner"}])
            assert code_of(caught) == code
    assert stranger.ec2.describe_tags(Filters=[{"Name": "key", "Values": ["secret"]}])["Tags"] == []
    assert tags_of(stranger.ec2, group) == {} and tags_of(stranger.ec2, key) == {}
    own = stranger.key_pair()
    stranger.ec2.create_tags(Resources=[own], Tags=[{"Key": "secret", "Value": "stranger"}])
    assert [(t["ResourceId"], t["Value"]) for t in stranger.ec2.describe_tags()["Tags"]] == [(own, "stranger")]
    assert tags_of(owner.ec2, group) == {"secret": "owner"} and tags_of(owner.ec2, key) == {"secret": "owner"}


# --- DescribeTags --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def catalogue(bridge):
    """A separate account with a known set of tags: two groups, an image and two key pairs."""
    account = Account(bridge, "tag-catalogue")
    group_a, group_b, image = account.security_group(), account.security_group(), account.image()
    key_a, key_b = account.key_pair(), account.key_pair()
    tag = account.ec2.create_tags
    tag(Resources=[group_a, image, key_a], Tags=[{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "blue"}])
    tag(Resources=[group_b, key_b], Tags=[{"Key": "env", "Value": "dev"}, {"Key": "cost", "Value": "12"}])
    tag(Resources=[image], Tags=[{"Key": "Name", "Value": "base image"}])
    return account, {"group_a": group_a, "group_b": group_b, "image": image, "key_a": key_a, "key_b": key_b}


def described(account: Account, *filters: tuple[str, list[str]]) -> set[tuple[str, str, str]]:
    params = {"Filters": [{"Name": name, "Values": values} for name, values in filters]} if filters else {}
    return {(t["ResourceId"], t["Key"], t["Value"]) for t in account.ec2.describe_tags(**params)["Tags"]}


def test_describe_everything(catalogue):
    account, ids = catalogue
    items = account.ec2.describe_tags()["Tags"]
    assert len(items) == 11
    assert [(t["ResourceId"], t["Key"]) for t in items] == sorted((t["ResourceId"], t["Key"]) for t in items)
    types = {t["ResourceId"]: t["ResourceType"] for t in items}
    assert types == {ids["group_a"]: "security-group", ids["group_b"]: "security-group", ids["image"]: "image",
                     ids["key_a"]: "key-pair", ids["key_b"]: "key-pair"}


def test_describe_filters(catalogue):
    account, ids = catalogue
    assert described(account, ("key", ["cost"])) == {(ids["group_b"], "cost", "12"), (ids["key_b"], "cost", "12")}
    assert described(account, ("value", ["base*"])) == {(ids["image"], "Name", "base image")}
    assert described(account, ("key", ["env"]), ("value", ["d?v"])) == {(ids["group_b"], "env", "dev"),
                                                                       (ids["key_b"], "env", "dev")}
    assert {r for r, _, _ in described(account, ("resource-type", ["key-pair"]))} == {ids["key_a"], ids["key_b"]}
    assert {r for r, _, _ in described(account, ("resource-type", ["image", "security-group"]))} == {
        ids["group_a"], ids["group_b"], ids["image"]}
    assert {r for r, _, _ in described(account, ("resource-type", ["instance"]))} == set()
    assert described(account, ("resource-id", [ids["key_a"]])) == {(ids["key_a"], "env", "prod"),
                                                                   (ids["key_a"], "team", "blue")}
    assert {r for r, _, _ in described(account, ("resource-id", [ids["group_a"], ids["key_b"]]))} == {
        ids["group_a"], ids["key_b"]}
    assert described(account, ("resource-id", ["i-0123456789abcdef0"])) == set()


def test_describe_tag_filter_selects_resources(catalogue):
    """``tag:<key>`` picks resources carrying that tag and returns all their tags."""
    account, ids = catalogue
    assert described(account, ("tag:Name", ["base image"])) == {
        (ids["image"], "env", "prod"), (ids["image"], "team", "blue"), (ids["image"], "Name", "base image")}
    assert described(account, ("tag:env", ["prod"]), ("key", ["team"])) == {
        (ids["group_a"], "team", "blue"), (ids["image"], "team", "blue"), (ids["key_a"], "team", "blue")}


@pytest.mark.parametrize("params, code", [
    ({"Filters": [{"Name": "colour", "Values": ["x"]}]}, "InvalidParameterValue"),
    ({"Filters": [{"Name": "tag-key", "Values": ["x"]}]}, "InvalidParameterValue"),
    ({"MaxResults": 4}, "InvalidParameterValue"),
    ({"MaxResults": 1001}, "InvalidParameterValue"),
    ({"NextToken": "forged"}, "InvalidNextToken"),
    ({"DryRun": True}, "DryRunOperation"),
])
def test_describe_errors(catalogue, params, code):
    account, _ = catalogue
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        account.ec2.describe_tags(**params)
    assert code_of(caught) == code


def test_describe_paging(catalogue):
    account, _ = catalogue
    everything = account.ec2.describe_tags()["Tags"]
    pages = list(account.ec2.get_paginator("describe_tags").paginate(PaginationConfig={"PageSize": 5}))
    assert [len(page["Tags"]) for page in pages] == [5, 5, 1]
    assert [item for page in pages for item in page["Tags"]] == everything
    filtered = account.ec2.get_paginator("describe_tags").paginate(
        Filters=[{"Name": "resource-type", "Values": ["security-group"]}], PaginationConfig={"PageSize": 5})
    assert [t["Key"] for page in filtered for t in page["Tags"]] == [
        t["Key"] for t in everything if t["ResourceType"] == "security-group"]


def test_cli_describe_tags(bridge, catalogue):
    account, ids = catalogue
    env = {**os.environ, "AWS_ACCESS_KEY_ID": account.keys[0], "AWS_SECRET_ACCESS_KEY": account.keys[1],
           "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    result = subprocess.run([os.path.join(os.path.dirname(sys.executable), "aws"), "--endpoint-url", bridge.url,
                             "--output", "json", "ec2", "describe-tags", "--filters", "Name=key,Values=Name"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["Tags"] == [
        {"Key": "Name", "ResourceId": ids["image"], "ResourceType": "image", "Value": "base image"}]


# --- boto 2 --------------------------------------------------------------------------------

class SigV2Connection(boto.ec2.connection.EC2Connection):
    """boto 2.49 asks for SigV4 on EC2; the 'ec2' capability makes it sign with SigV2."""

    def _required_auth_capability(self):
        return ["ec2"]


def test_boto2_tags(bridge, owner):
    port = int(bridge.url.rsplit(":", 1)[1].rstrip("/"))
    conn = SigV2Connection(aws_access_key_id=owner.keys[0], aws_secret_access_key=owner.keys[1], is_secure=False,
                           port=port, region=RegionInfo(name=REGION, endpoint="127.0.0.1"))
    group, key = owner.security_group(), owner.key_pair()
    assert conn.create_tags([group, key], {"Name": "b2", "flag": None}) is True
    listed = {(t.res_id, t.res_type, t.name, t.value)
              for t in conn.get_all_tags(filters={"resource-id": [group, key]})}
    assert listed == {(group, "security-group", "Name", "b2"), (group, "security-group", "flag", ""),
                      (key, "key-pair", "Name", "b2"), (key, "key-pair", "flag", "")}
    assert conn.delete_tags([group, key], ["flag"]) is True
    assert {(t.res_id, t.name) for t in conn.get_all_tags(filters={"resource-id": [group, key]})} == {
        (group, "Name"), (key, "Name")}
