"""The catalog actions end to end: availability zones, account attributes, instance types and
their offerings, and STS GetCallerIdentity, through boto3 and the aws cli.

Expected values are read from the simulator's own state, never written down twice. Tests that
change the catalog (more zones, a disabled one) or need instance type aliases run on a bridge of
their own (``catalog_bridge``), so that the shared one keeps the seeded catalog. What the
simulator cannot show (customized, inactive and zone-restricted offerings, listUsers without
API keys, the cache's clock) is checked on the functions themselves.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from types import SimpleNamespace

import botocore.exceptions
import pytest

from ec2bridge.config import DEMO_CREDENTIALS
from ec2bridge.ids import owner_id
from mappings.account import ATTRIBUTE_NAMES, UNLIMITED, supported_platforms
from mappings.instance_types import DESCRIBE_INSTANCE_TYPES, offering_locations, types_by_name
from mappings.sources import owner_key
from mappings.sts import get_caller_identity
from mappings.zones import CatalogCache
from tests.bridge_server import REGION, start_bridge

ALIASES = {"m1.small": "Small Instance", "m1.ghost": "No Such Offering"}


# --- helpers -------------------------------------------------------------------------------

def error_code(call, *args, **kwargs) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(*args, **kwargs)
    return raised.value.response["Error"]["Code"]


def error_of(call, *args, **kwargs) -> dict:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(*args, **kwargs)
    return raised.value.response["Error"]


def on_sim(bridge, change):
    """Run ``change(simulator state)`` on the bridge's loop, where the simulator lives."""
    return bridge.run(change, bridge.services.simulator.state)


def sim_rows(bridge, kind: str) -> list[dict]:
    return on_sim(bridge, lambda state: [dict(row) for row in state.store(kind)])


def new_account(bridge, name: str, users: tuple[str, ...] = ("",), **limits) -> list[tuple[str, str]]:
    """A CloudStack account of its own (with users ``name`` + suffix); their keys."""
    def make(state):
        from cloudstack_sim.seed import USER_TYPE, add_account, add_user
        domain = next(iter(state.store("domain")))
        account = add_account(state, name, USER_TYPE, domain["id"])
        account["limits"].update(limits)
        added = [add_user(state, account, name + suffix) for suffix in users]
        return [(user["apikey"], user["secretkey"]) for user in added]
    return on_sim(bridge, make)


def add_zone(state, name: str, network_type: str = "Advanced", sg_enabled: bool = False,
             allocation: str = "Enabled") -> dict:
    return state.add("zone", {"name": name, "description": name, "network_type": network_type,
                              "sg_enabled": sg_enabled, "dns1": "8.8.8.8", "dns2": "8.8.4.4",
                              "internal_dns1": "10.0.0.2", "public_cidr": "198.51.100.0/24",
                              "guest_cidr": "10.2.0.0/24", "allocation_state": allocation})


@pytest.fixture(scope="module")
def catalog_bridge(tmp_path_factory):
    """A bridge with instance type aliases and three zones: the seeded one, a second enabled
    one and a disabled one."""
    server = start_bridge(tmp_path_factory.mktemp("catalog"), instance_type_aliases=ALIASES)
    on_sim(server, lambda state: (add_zone(state, "sim-zone-2"),
                                  add_zone(state, "sim-zone-off", allocation="Disabled")))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def admin_ec2(catalog_bridge):
    return catalog_bridge.client(credentials=catalog_bridge.services.simulator.admin_credentials)


def aws_cli(bridge, *args: str) -> dict:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": DEMO_CREDENTIALS[0], "AWS_SECRET_ACCESS_KEY": DEMO_CREDENTIALS[1],
           "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    result = subprocess.run([os.path.join(os.path.dirname(sys.executable), "aws"), "--endpoint-url", bridge.url,
                             "--output", "json", "ec2", *args], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- DescribeAvailabilityZones -------------------------------------------------------------

def test_zones_describe_every_cloudstack_zone(ec2, bridge):
    zones = sorted(sim_rows(bridge, "zone"), key=lambda zone: zone["name"])
    answered = ec2.describe_availability_zones()["AvailabilityZones"]
    assert answered == [{"ZoneName": zone["name"], "ZoneId": zone["id"], "State": "available",
                         "OptInStatus": "opt-in-not-required", "Messages": [], "RegionName": REGION,
                         "GroupName": REGION, "NetworkBorderGroup": REGION, "ZoneType": "availability-zone"}
                        for zone in zones]
    assert ec2.describe_availability_zones(AllAvailabilityZones=True)["AvailabilityZones"] == answered


def test_zones_by_name_and_id(ec2):
    [zone] = ec2.describe_availability_zones(ZoneNames=["sim-zone-1"])["AvailabilityZones"]
    assert ec2.describe_availability_zones(ZoneIds=[zone["ZoneId"]])["AvailabilityZones"] == [zone]


def test_eucalyptus_verbose_lists_every_zone(ec2):
    everything = ec2.describe_availability_zones()["AvailabilityZones"]
    assert ec2.describe_availability_zones(ZoneNames=["verbose"])["AvailabilityZones"] == everything
    assert ec2.describe_availability_zones(ZoneNames=["verbose", "sim-zone-1"])["AvailabilityZones"] == \
        [zone for zone in everything if zone["ZoneName"] == "sim-zone-1"]


@pytest.mark.parametrize("param", ["ZoneNames", "ZoneIds"])
def test_unknown_zones_are_invalid(ec2, param):
    error = error_of(ec2.describe_availability_zones, **{param: ["sim-zone-1", "atlantis-1a", "mu-1b"]})
    assert error["Code"] == "InvalidParameterValue"
    if param == "ZoneNames":
        assert error["Message"] == "Invalid availability zone: [atlantis-1a, mu-1b]"
    else:
        assert "atlantis-1a" in error["Message"] and "mu-1b" in error["Message"]


ZONE_FILTERS = {  # filter -> (a value matching sim-zone-1, a value matching nothing)
    "zone-name": ("sim-zone-?", "us-east-1a"),
    "state": ("available", "impaired"),
    "region-name": (REGION, "us-east-1"),
    "group-name": (REGION, "us-east-1-zg-1"),
    "opt-in-status": ("opt-in-not-required", "opted-in"),
    "zone-type": ("availability-zone", "local-zone"),
    "network-border-group": (REGION + "*", "us-east-1"),
}


@pytest.mark.parametrize("name", sorted(ZONE_FILTERS))
def test_zone_filters(ec2, name):
    hit, miss = ZONE_FILTERS[name]
    found = ec2.describe_availability_zones(Filters=[{"Name": name, "Values": [miss, hit]}])["AvailabilityZones"]
    assert "sim-zone-1" in [zone["ZoneName"] for zone in found]
    assert ec2.describe_availability_zones(Filters=[{"Name": name, "Values": [miss]}])["AvailabilityZones"] == []


def test_zone_id_filter(ec2):
    [zone] = ec2.describe_availability_zones(ZoneNames=["sim-zone-1"])["AvailabilityZones"]
    found = ec2.describe_availability_zones(Filters=[{"Name": "zone-id", "Values": [zone["ZoneId"]]}])
    assert found["AvailabilityZones"] == [zone]


def test_zone_errors(ec2):
    assert error_code(ec2.describe_availability_zones, Filters=[{"Name": "colour", "Values": ["x"]}]) == \
        "InvalidParameterValue"
    assert error_code(ec2.describe_availability_zones, DryRun=True) == "DryRunOperation"


def test_disabled_zone_is_unavailable_with_a_message(admin_ec2, catalog_bridge):
    zones = {zone["ZoneName"]: zone for zone in admin_ec2.describe_availability_zones()["AvailabilityZones"]}
    assert sorted(zones) == ["sim-zone-1", "sim-zone-2", "sim-zone-off"]
    assert zones["sim-zone-off"]["State"] == "unavailable"
    assert zones["sim-zone-off"]["Messages"] == [{"Message": "CloudStack allocation state: Disabled"}]
    unavailable = admin_ec2.describe_availability_zones(Filters=[
        {"Name": "state", "Values": ["unavailable"]}, {"Name": "message", "Values": ["*Disabled"]}])
    assert [zone["ZoneName"] for zone in unavailable["AvailabilityZones"]] == ["sim-zone-off"]


def test_zone_listing_is_cached_per_account(catalog_bridge):
    """Back-to-back calls of one account share a listZones; another account gets its own."""
    calls = lambda: on_sim(catalog_bridge, lambda state: state.call_counts["listZones"])  # noqa: E731
    [first] = new_account(catalog_bridge, "catalog-cache-a")
    [second] = new_account(catalog_bridge, "catalog-cache-b")
    one, two = catalog_bridge.client(credentials=first), catalog_bridge.client(credentials=second)
    before = calls()
    one.describe_availability_zones()
    one.describe_availability_zones(ZoneNames=["sim-zone-1"])
    assert calls() == before + 1
    two.describe_availability_zones()
    assert calls() == before + 2


# --- the catalog cache itself --------------------------------------------------------------

class FakeContext:
    def __init__(self, api_key: str, backend):
        self.creds = (api_key, "secret")
        self.cs_list = backend


class FakeBackend:
    def __init__(self, failures: int = 0):
        self.calls: list[tuple] = []
        self.failures = failures
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, command: str, **params):
        self.calls.append((command, params))
        await self.release.wait()
        if self.failures:
            self.failures -= 1
            raise RuntimeError("CloudStack is down")
        return [{"id": str(len(self.calls))}]


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_cache_expires_and_scopes_by_key():
    backend, clock = FakeBackend(), Clock()
    cache = CatalogCache(ttl=5, clock=clock)
    alice, bob = FakeContext("alice", backend), FakeContext("bob", backend)
    first = await cache.listing(alice, "listZones", available="true")
    assert await cache.listing(alice, "listZones", available="true") == first
    assert len(backend.calls) == 1
    await cache.listing(bob, "listZones", available="true")
    await cache.listing(alice, "listServiceOfferings")
    assert len(backend.calls) == 3
    clock.now += 5
    assert await cache.listing(alice, "listZones", available="true") != first
    assert len(backend.calls) == 4


async def test_cache_shares_one_call_between_concurrent_callers():
    backend = FakeBackend()
    backend.release.clear()
    cache = CatalogCache(ttl=5, clock=Clock())
    ctx = FakeContext("alice", backend)
    waiting = [asyncio.ensure_future(cache.listing(ctx, "listZones")) for _ in range(3)]
    await asyncio.sleep(0)
    waiting[0].cancel()  # one caller leaving does not cancel the call the others wait for
    backend.release.set()
    results = await asyncio.gather(*waiting[1:])
    assert results[0] == results[1] and len(backend.calls) == 1


async def test_cache_never_keeps_a_failure():
    backend = FakeBackend(failures=1)
    cache = CatalogCache(ttl=5, clock=Clock())
    ctx = FakeContext("alice", backend)
    with pytest.raises(RuntimeError):
        await cache.listing(ctx, "listZones")
    assert await cache.listing(ctx, "listZones") == [{"id": "2"}]


async def test_cache_is_bounded():
    backend = FakeBackend()
    cache = CatalogCache(ttl=5, clock=Clock(), max_entries=2)
    for key in ("a", "b", "c"):
        await cache.listing(FakeContext(key, backend), "listZones")
    await cache.listing(FakeContext("c", backend), "listZones")
    assert len(backend.calls) == 3          # c is still cached
    await cache.listing(FakeContext("a", backend), "listZones")
    assert len(backend.calls) == 4          # a, the oldest, was dropped


# --- DescribeAccountAttributes -------------------------------------------------------------

def attributes(client, **kwargs) -> dict[str, list[str]]:
    answer = client.describe_account_attributes(**kwargs)["AccountAttributes"]
    return {a["AttributeName"]: [v["AttributeValue"] for v in a["AttributeValues"]] for a in answer}


def test_account_attributes(ec2):
    answer = ec2.describe_account_attributes()["AccountAttributes"]
    assert [a["AttributeName"] for a in answer] == list(ATTRIBUTE_NAMES)
    # the demo account has CloudStack's default limits (max.account.user.vms, .public.ips: 20)
    assert attributes(ec2) == {"vpc-max-security-groups-per-interface": ["5"], "max-instances": ["20"],
                               "supported-platforms": ["EC2", "VPC"], "default-vpc": ["none"],
                               "max-elastic-ips": ["20"], "vpc-max-elastic-ips": ["20"]}


def test_account_attributes_by_name(ec2):
    answer = ec2.describe_account_attributes(AttributeNames=["default-vpc", "supported-platforms", "default-vpc"])
    assert [a["AttributeName"] for a in answer["AccountAttributes"]] == ["default-vpc", "supported-platforms"]
    error = error_of(ec2.describe_account_attributes, AttributeNames=["max-instances", "max-unicorns"])
    assert error["Code"] == "InvalidParameterValue" and "max-unicorns" in error["Message"]
    assert error_code(ec2.describe_account_attributes, DryRun=True) == "DryRunOperation"


def test_account_limits_are_the_callers_own(bridge):
    [keys] = new_account(bridge, "catalog-limits", user_vm=7, public_ip=-1)
    assert attributes(bridge.client(credentials=keys), AttributeNames=["max-instances", "max-elastic-ips",
                                                                        "vpc-max-elastic-ips"]) == \
        {"max-instances": ["7"], "max-elastic-ips": [str(UNLIMITED)], "vpc-max-elastic-ips": [str(UNLIMITED)]}


def test_admin_limits_are_unlimited(admin_ec2):
    assert attributes(admin_ec2, AttributeNames=["max-instances"]) == {"max-instances": [str(UNLIMITED)]}


@pytest.mark.parametrize("zones, platforms", [
    ([{"networktype": "Basic"}], ["EC2"]),
    ([{"networktype": "Advanced", "securitygroupsenabled": False}], ["VPC"]),
    ([{"networktype": "Advanced", "securitygroupsenabled": True}], ["EC2", "VPC"]),
    ([{"networktype": "Basic"}, {"networktype": "Advanced"}], ["EC2", "VPC"]),
    ([], []),
])
def test_supported_platforms(zones, platforms):
    assert supported_platforms(zones) == platforms


# --- DescribeInstanceTypes -----------------------------------------------------------------

def offerings(bridge) -> dict[str, dict]:
    return {o["name"]: o for o in sim_rows(bridge, "service_offering")}


def all_types(client, **kwargs) -> list[dict]:
    pages = client.get_paginator("describe_instance_types").paginate(**kwargs)
    return [item for page in pages for item in page["InstanceTypes"]]


def test_instance_types_are_the_offerings(ec2, bridge):
    known = offerings(bridge)
    types = {t["InstanceType"]: t for t in all_types(ec2)}
    assert sorted(types) == sorted(known)
    micro, offering = types["t2.micro"], known["t2.micro"]
    assert micro["VCpuInfo"] == {"DefaultVCpus": offering["cpunumber"], "DefaultCores": offering["cpunumber"],
                                 "DefaultThreadsPerCore": 1}
    assert micro["MemoryInfo"] == {"SizeInMiB": offering["memory"]}
    assert micro["ProcessorInfo"] == {"SupportedArchitectures": ["x86_64"],
                                      "SustainedClockSpeedInGhz": offering["cpuspeed"] / 1000}
    assert micro["SupportedUsageClasses"] == ["on-demand"] and micro["SupportedRootDeviceTypes"] == ["ebs"]
    assert micro["SupportedVirtualizationTypes"] == ["hvm"] and micro["CurrentGeneration"] is True
    assert micro["InstanceStorageSupported"] is False and micro["BareMetal"] is False
    assert micro["AutoRecoverySupported"] is offering["offerha"]
    assert types["Small Instance"]["MemoryInfo"]["SizeInMiB"] == known["Small Instance"]["memory"]


def test_instance_types_by_name(ec2):
    found = ec2.describe_instance_types(InstanceTypes=["t2.micro", "Small Instance"])["InstanceTypes"]
    assert sorted(t["InstanceType"] for t in found) == ["Small Instance", "t2.micro"]
    error = error_of(ec2.describe_instance_types, InstanceTypes=["t2.micro", "z9.huge"])
    assert error == {"Code": "InvalidInstanceType",
                     "Message": "The following supplied instance types do not exist: [z9.huge]"}


def _value_text(value) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _values_at(item, path: list[str]) -> list:
    for part in path:
        item = item.get(part) if isinstance(item, dict) else None
    if item is None:
        return []
    return item if isinstance(item, list) else [item]


@pytest.mark.parametrize("name", sorted(DESCRIBE_INSTANCE_TYPES.filters))
def test_every_instance_type_filter(ec2, name):
    """Each filter, with t2.micro's own value, finds exactly the types having that value."""
    types = all_types(ec2)
    path = DESCRIBE_INSTANCE_TYPES.filters[name].split(".")
    micro = next(t for t in types if t["InstanceType"] == "t2.micro")
    values = [_value_text(v) for v in _values_at(micro, path)]
    if not values:  # the simulator's offerings state nothing for it: the filter then finds none
        assert all_types(ec2, Filters=[{"Name": name, "Values": ["*"]}]) == []
        return
    expected = sorted(t["InstanceType"] for t in types
                      if set(values) & {_value_text(v) for v in _values_at(t, path)})
    found = all_types(ec2, Filters=[{"Name": name, "Values": values}])
    assert sorted(t["InstanceType"] for t in found) == expected and "t2.micro" in expected


@pytest.mark.parametrize("filters, expected", [
    ([{"Name": "instance-type", "Values": ["t2.*"]}], ["t2.large", "t2.medium", "t2.micro", "t2.nano", "t2.small"]),
    ([{"Name": "vcpu-info.default-vcpus", "Values": ["4"]}], ["m5.xlarge"]),
    ([{"Name": "memory-info.size-in-mib", "Values": ["4096"]}], ["c5.large", "t2.medium"]),
    ([{"Name": "processor-info.sustained-clock-speed-in-ghz", "Values": ["2.5"]}], ["m5.large", "m5.xlarge"]),
    ([{"Name": "processor-info.supported-architecture", "Values": ["arm64"]}], []),
    ([{"Name": "current-generation", "Values": ["false"]}], []),
    ([{"Name": "vcpu-info.default-vcpus", "Values": ["2"]}, {"Name": "memory-info.size-in-mib", "Values": ["8192"]}],
     ["m5.large", "t2.large"]),
])
def test_instance_type_filter_values(ec2, filters, expected):
    assert sorted(t["InstanceType"] for t in all_types(ec2, Filters=filters)) == expected


def test_instance_type_paging(ec2, bridge):
    pages = list(ec2.get_paginator("describe_instance_types").paginate(PaginationConfig={"PageSize": 5}))
    names = [t["InstanceType"] for page in pages for t in page["InstanceTypes"]]
    assert all(len(page["InstanceTypes"]) <= 5 for page in pages) and len(pages) > 1
    assert names == sorted(names) and sorted(names) == sorted(offerings(bridge))
    unchecked = bridge.client(parameter_validation=False)  # boto3 itself refuses out-of-range values
    for bad in (4, 101):
        assert error_code(unchecked.describe_instance_types, MaxResults=bad) == "InvalidParameterValue"
    assert error_code(ec2.describe_instance_types, NextToken="forged") == "InvalidNextToken"
    assert error_code(ec2.describe_instance_types, DryRun=True) == "DryRunOperation"
    assert error_code(ec2.describe_instance_types, Filters=[{"Name": "hue", "Values": ["x"]}]) == \
        "InvalidParameterValue"


def test_aliases_name_offerings_too(catalog_bridge):
    ec2 = catalog_bridge.client()
    small = ec2.describe_instance_types(InstanceTypes=["m1.small", "Small Instance"])["InstanceTypes"]
    assert sorted(t["InstanceType"] for t in small) == ["Small Instance", "m1.small"]
    assert small[0]["MemoryInfo"] == small[1]["MemoryInfo"] and small[0]["VCpuInfo"] == small[1]["VCpuInfo"]
    assert error_code(ec2.describe_instance_types, InstanceTypes=["m1.ghost"]) == "InvalidInstanceType"
    names = [t["InstanceType"] for t in all_types(ec2)]
    assert "m1.small" in names and "m1.ghost" not in names


OFFERING = {"created": "2024-01-01T00:00:00+0000", "cpunumber": 1, "memory": 512, "state": "Active"}


def test_which_offerings_are_types():
    listing = [
        {**OFFERING, "id": "new", "name": "dup", "created": "2025-01-01T00:00:00+0000"},
        {**OFFERING, "id": "old", "name": "dup"},
        {**OFFERING, "id": "custom", "name": "custom", "iscustomized": True, "cpunumber": None, "memory": None},
        {**OFFERING, "id": "retired", "name": "retired", "state": "Inactive"},
        {**OFFERING, "id": "plain", "name": "plain"},
    ]
    types = types_by_name(listing, {"x1.dup": "dup", "x1.id": "plain", "plain": "dup", "x1.none": "custom"})
    assert {name: offering["id"] for name, offering in types.items()} == \
        {"dup": "old", "plain": "old", "x1.dup": "old", "x1.id": "plain"}


# --- DescribeInstanceTypeOfferings ---------------------------------------------------------

def all_offerings(client, **kwargs) -> list[tuple[str, str, str]]:
    pages = client.get_paginator("describe_instance_type_offerings").paginate(**kwargs)
    return [(o["InstanceType"], o["LocationType"], o["Location"]) for page in pages
            for o in page["InstanceTypeOfferings"]]


def test_offerings_per_region_and_zone(catalog_bridge):
    ec2 = catalog_bridge.client()
    types = sorted(t["InstanceType"] for t in all_types(ec2))
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert all_offerings(ec2) == [(name, "region", REGION) for name in types]
    by_name = all_offerings(ec2, LocationType="availability-zone")
    assert sorted(by_name) == sorted((name, "availability-zone", z["ZoneName"]) for name in types for z in zones)
    by_id = all_offerings(ec2, LocationType="availability-zone-id")
    assert sorted(by_id) == sorted((name, "availability-zone-id", z["ZoneId"]) for name in types for z in zones)
    assert all_offerings(ec2, LocationType="outpost") == []


def test_offering_filters_and_paging(catalog_bridge):
    ec2 = catalog_bridge.client()
    everything = all_offerings(ec2, LocationType="availability-zone")
    pages = list(ec2.get_paginator("describe_instance_type_offerings").paginate(
        LocationType="availability-zone", PaginationConfig={"PageSize": 5}))
    assert len(pages) > 1 and all(len(page["InstanceTypeOfferings"]) <= 5 for page in pages)
    # each type is offered in several zones, so pages cut between two rows of one type
    assert [(o["InstanceType"], o["LocationType"], o["Location"]) for page in pages
            for o in page["InstanceTypeOfferings"]] == everything
    found = all_offerings(ec2, LocationType="availability-zone", Filters=[
        {"Name": "instance-type", "Values": ["t2.micro", "m1.small"]}, {"Name": "location", "Values": ["sim-zone-2"]}])
    assert found == [("m1.small", "availability-zone", "sim-zone-2"), ("t2.micro", "availability-zone", "sim-zone-2")]
    unchecked = catalog_bridge.client(parameter_validation=False)
    for bad in (4, 1001):
        assert error_code(unchecked.describe_instance_type_offerings, MaxResults=bad) == "InvalidParameterValue"
    assert error_code(ec2.describe_instance_type_offerings, LocationType="planet") == "InvalidParameterValue"
    assert error_code(ec2.describe_instance_type_offerings, Filters=[{"Name": "zone", "Values": ["x"]}]) == \
        "InvalidParameterValue"
    assert error_code(ec2.describe_instance_type_offerings, NextToken="forged") == "InvalidNextToken"
    assert error_code(ec2.describe_instance_type_offerings, DryRun=True) == "DryRunOperation"


def test_zone_restricted_offerings():
    zones = [{"id": "z1", "name": "one"}, {"id": "z2", "name": "two"}]
    assert offering_locations({"zoneid": "z2"}, "availability-zone", "r", zones) == ["two"]
    assert offering_locations({"zoneid": "z1, z2"}, "availability-zone-id", "r", zones) == ["z1", "z2"]
    assert offering_locations({}, "availability-zone", "r", zones) == ["one", "two"]
    assert offering_locations({"zoneid": "z9"}, "region", "r", zones) == []
    assert offering_locations({"zoneid": "z1"}, "region", "r", zones) == ["r"]


# --- the aws cli -------------------------------------------------------------------------

def test_aws_cli_lists_zones_and_types(bridge):
    zones = aws_cli(bridge, "describe-availability-zones")["AvailabilityZones"]
    assert "sim-zone-1" in [zone["ZoneName"] for zone in zones]
    types = aws_cli(bridge, "describe-instance-types")["InstanceTypes"]
    assert sorted(t["InstanceType"] for t in types) == sorted(offerings(bridge))


# --- STS GetCallerIdentity ---------------------------------------------------------------

def test_caller_identity(bridge):
    sts = bridge.client("sts")
    sent, received = [], []
    sts.meta.events.register("before-send", lambda request, **kw: sent.append(request.body))
    sts.meta.events.register("after-call", lambda http_response, **kw: received.append(http_response.content))
    identity = sts.get_caller_identity()
    demo = next(u for u in sim_rows(bridge, "user") if u["apikey"] == DEMO_CREDENTIALS[0])
    account = next(a for a in sim_rows(bridge, "account") if a["id"] == demo["account_id"])
    # the OwnerId every area gives the demo account's objects
    number = owner_id(owner_key({"domainid": account["domain_id"], "account": account["name"]}))
    assert re.fullmatch(r"[0-9]{12}", identity["Account"]) and identity["Account"] == number
    assert identity["Arn"] == f"arn:aws:iam::{number}:user/demo"
    assert identity["UserId"] == demo["id"]
    body = sent[0].decode() if isinstance(sent[0], bytes) else sent[0]
    assert "Action=GetCallerIdentity" in body and "Version=2011-06-15" in body
    assert b'xmlns="https://sts.amazonaws.com/doc/2011-06-15/"' in received[0]


def test_caller_identity_names_the_user_that_signed(bridge):
    first, second = new_account(bridge, "catalog-sts", users=("-alice", "-bob"))
    alice = bridge.client("sts", credentials=first).get_caller_identity()
    bob = bridge.client("sts", credentials=second).get_caller_identity()
    assert alice["Account"] == bob["Account"] != bridge.client("sts").get_caller_identity()["Account"]
    assert alice["Arn"].endswith(":user/catalog-sts-alice") and bob["Arn"].endswith(":user/catalog-sts-bob")
    assert alice["UserId"] != bob["UserId"]


def test_caller_identity_refuses_a_bad_signature(bridge):
    sts = bridge.client("sts", credentials=(DEMO_CREDENTIALS[0], "not-the-secret"))
    assert error_code(sts.get_caller_identity) == "SignatureDoesNotMatch"


def test_caller_identity_owns_the_callers_groups(bridge, ec2):
    """Ansible compares this account id with the OwnerId of the groups it manages."""
    [default] = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"]
    assert bridge.client("sts").get_caller_identity()["Account"] == default["OwnerId"]


class IdentityContext:
    """A caller whose CloudStack does not show API keys in listUsers."""

    def __init__(self, usernames: list[str]):
        self.creds = ("caller-key", "secret")
        self.users = [{"id": f"uuid-{name}", "username": name} for name in usernames]

    async def account(self):
        return SimpleNamespace(name="acme", domain_id="domain-uuid")

    async def cs_list(self, command: str, **params):
        assert command == "listUsers" and params == {"account": "acme", "domainid": "domain-uuid"}
        return self.users


@pytest.mark.parametrize("usernames, arn, user_id", [
    (["solo"], ":user/solo", "uuid-solo"),
    (["alice", "bob"], ":root", None),  # cannot tell: the account's root identity, as AWS
])
async def test_caller_identity_without_api_keys_in_listusers(usernames, arn, user_id):
    identity = await get_caller_identity(IdentityContext(usernames), {})
    number = owner_id("domain-uuid/acme")
    assert identity == {"Account": number, "Arn": f"arn:aws:iam::{number}{arn}", "UserId": user_id or number}
