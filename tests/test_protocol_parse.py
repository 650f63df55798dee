"""Request parsing, checked against botocore itself.

The reference for "what a client sends" is botocore's own serializer: a params dict goes
through ``botocore.serialize`` (the ec2 or query protocol), is form-encoded and decoded the
way the server decodes it, and ``parse_request`` must give back the very same dict. A seeded
random walk over every EC2 operation's input shape does the same at scale. Error paths are
data: tests/data/protocol/parse_errors.json.
"""

from __future__ import annotations

import json
import random
import string
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
from botocore.loaders import Loader
from botocore.model import ServiceModel
from botocore.serialize import create_serializer

from ec2bridge.errors import EC2Error
from ec2bridge.protocol import ServiceModels, parse_request, request_version
from ec2bridge.protocol.parse import MAX_LIST_INDEX, _input_node

DATA = Path(__file__).parent / "data" / "protocol"
UTC = timezone.utc


@pytest.fixture(scope="module")
def models() -> ServiceModels:
    return ServiceModels()


@pytest.fixture(scope="module")
def sts_model() -> ServiceModel:
    # The whole STS model, to reach query-protocol inputs (GetCallerIdentity has none).
    return ServiceModel(Loader().load_service_model("sts", "service-2", "2011-06-15"), "sts")


def on_the_wire(operation, params: dict, *, validate: bool = True) -> dict[str, str]:
    """What botocore sends for ``params``, form-encoded and decoded back as the server does."""
    serializer = create_serializer(operation.service_model.protocol, include_validation=validate)
    body = serializer.serialize_to_request(params, operation)["body"]
    return dict(parse_qsl(urlencode(body), keep_blank_values=True))


def assert_round_trip(operation, params: dict) -> None:
    assert parse_request(operation, on_the_wire(operation, params)) == params


# --- round trips through botocore's serializer --------------------------------------------

NOW = datetime(2026, 11, 22, 1, 2, 3, tzinfo=UTC)

ROUND_TRIPS = {
    "DescribeInstances": {
        "Filters": [{"Name": "instance-state-name", "Values": ["running", "pending"]},
                    {"Name": "tag:Name", "Values": ["web & db <1>"]}],
        "InstanceIds": ["i-0123456789abcdef0", "i-1"], "MaxResults": 5, "NextToken": "abc=", "DryRun": False,
    },
    "RunInstances": {
        "ImageId": "ami-12345678", "MinCount": 1, "MaxCount": 3, "InstanceType": "t3.micro", "KeyName": "deploy",
        "SecurityGroupIds": ["sg-1", "sg-2"], "SecurityGroups": ["default"], "UserData": "IyEvYmluL3NoCg==",
        "BlockDeviceMappings": [
            {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 20, "VolumeType": "gp3", "DeleteOnTermination": True,
                                                "Encrypted": False, "Iops": 3000}},
            {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
            {"DeviceName": "/dev/sdc", "NoDevice": ""},
        ],
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web"}, {"Key": "env", "Value": ""}]},
            {"ResourceType": "volume", "Tags": [{"Key": "backup", "Value": "daily"}]},
        ],
        "NetworkInterfaces": [{
            "DeviceIndex": 0, "SubnetId": "subnet-1", "Groups": ["sg-1"], "AssociatePublicIpAddress": True,
            "PrivateIpAddresses": [{"PrivateIpAddress": "10.0.0.5", "Primary": True}],
            "Ipv6Addresses": [{"Ipv6Address": "2001:db8::1"}], "DeleteOnTermination": True,
        }],
        "Placement": {"AvailabilityZone": "zone1", "Tenancy": "default"},
        "Monitoring": {"Enabled": False}, "DisableApiTermination": True,
        "InstanceInitiatedShutdownBehavior": "stop", "ClientToken": "token-1",
        "LaunchTemplate": {"LaunchTemplateId": "lt-1", "Version": "$Latest"},  # a nested "Version"
        "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2},
        "CpuOptions": {"CoreCount": 2, "ThreadsPerCore": 1},
        "DryRun": True,
    },
    "AuthorizeSecurityGroupIngress": {
        "GroupId": "sg-1",
        "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
             "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "ssh from anywhere"}],
             "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
            {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1,
             "UserIdGroupPairs": [{"GroupId": "sg-2", "UserId": "123456789012"}],
             "PrefixListIds": [{"PrefixListId": "pl-1"}]},
        ],
    },
    "CreateTags": {"Resources": ["i-1", "vol-2"], "Tags": [{"Key": "Name", "Value": "a=b&c"}]},
    "DescribeImages": {"Owners": ["self", "amazon"], "ExecutableUsers": ["all"], "ImageIds": ["ami-1"],
                       "Filters": [{"Name": "name", "Values": ["ubuntu*"]}], "IncludeDeprecated": True},
    "ModifyInstanceAttribute": {
        "InstanceId": "i-1", "SourceDestCheck": {"Value": False}, "InstanceType": {"Value": "t3.large"},
        "UserData": {"Value": b"#!/bin/sh\necho \x00\xff\n"}, "Groups": ["sg-1", "sg-2"],
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"DeleteOnTermination": False, "VolumeId": "vol-1"}}],
    },
    "ImportKeyPair": {"KeyName": "mine", "PublicKeyMaterial": b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 me@host",
                      "TagSpecifications": [{"ResourceType": "key-pair", "Tags": [{"Key": "k", "Value": "v"}]}]},
    "DescribeRegions": {"RegionNames": ["zone-a", "zone-b"], "AllRegions": True},
    "DescribeAvailabilityZones": {"ZoneNames": ["verbose"], "AllAvailabilityZones": False},
    "DescribeSpotPriceHistory": {"StartTime": NOW, "EndTime": NOW + timedelta(microseconds=123456),
                                 "InstanceTypes": ["t3.micro"], "MaxResults": 10},
    "CreateVolume": {"AvailabilityZone": "zone1", "Size": 100, "Iops": 3000, "Throughput": 125, "Encrypted": True},
    "DeleteKeyPair": {"KeyName": "mine"},
    "RebootInstances": {"InstanceIds": ["i-1"]},
}


@pytest.mark.parametrize("action", sorted(ROUND_TRIPS))
def test_round_trip_through_botocore(models, action):
    assert_round_trip(models.operation(action), ROUND_TRIPS[action])


def test_sts_get_caller_identity(models):
    operation = models.operation("GetCallerIdentity")
    wire = on_the_wire(operation, {})
    assert wire == {"Action": "GetCallerIdentity", "Version": "2011-06-15"}
    assert parse_request(operation, wire) == {}


def test_sts_query_protocol_lists(sts_model):
    # Query lists are Name.member.N (EC2's are Name.N); an empty one is sent as "Name=".
    operation = sts_model.operation_model("AssumeRole")
    params = {
        "RoleArn": "arn:aws:iam::123456789012:role/demo", "RoleSessionName": "session", "DurationSeconds": 900,
        "PolicyArns": [{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}, {"arn": "arn:aws:iam::aws:policy/Other"}],
        "Tags": [{"Key": "team", "Value": "blue"}], "TransitiveTagKeys": ["team"],
        "ProvidedContexts": [],
    }
    wire = on_the_wire(operation, params, validate=False)  # botocore's validator wants min 1 item
    assert "PolicyArns.member.2.arn" in wire and wire["ProvidedContexts"] == ""
    assert parse_request(operation, wire) == params


def synthetic_model(protocol: str) -> ServiceModel:
    """A small model with what neither EC2's nor STS's inputs have: maps, flattened lists."""
    return ServiceModel({
        "metadata": {"protocol": protocol, "apiVersion": "2020-01-01", "serviceId": "Synthetic",
                     "endpointPrefix": "synthetic", "signatureVersion": "v4"},
        "operations": {"Put": {"name": "Put", "http": {"method": "POST", "requestUri": "/"},
                               "input": {"shape": "PutRequest"}}},
        "shapes": {
            "PutRequest": {"type": "structure", "required": ["Name"], "members": {
                "Name": {"shape": "Text"},
                "Attributes": {"shape": "AttributeMap"},
                "Labels": {"shape": "LabelMap", "locationName": "label"},
                "Flat": {"shape": "FlatList"},
                "Named": {"shape": "NamedList"},
                "Ratio": {"shape": "Ratio"},
            }},
            "Text": {"type": "string"},
            "Ratio": {"type": "double"},
            "AttributeMap": {"type": "map", "key": {"shape": "Text"}, "value": {"shape": "Text"}},
            "LabelMap": {"type": "map", "key": {"shape": "Text", "locationName": "name"},
                         "value": {"shape": "Text", "locationName": "text"}},
            "FlatList": {"type": "list", "member": {"shape": "Text", "locationName": "Item"}, "flattened": True},
            "NamedList": {"type": "list", "member": {"shape": "Text", "locationName": "Entry"}},
        },
    }, "synthetic")


@pytest.mark.parametrize("protocol", ["query", "ec2"])
def test_maps_and_list_naming_round_trip(protocol):
    operation = synthetic_model(protocol).operation_model("Put")
    params = {"Name": "n", "Attributes": {"a": "1", "b": ""}, "Labels": {"x": "y"},
              "Flat": ["f1", "f2"], "Named": ["e1"], "Ratio": 0.25}
    wire = on_the_wire(operation, params)
    if protocol == "query":
        assert wire["Attributes.entry.2.key"] == "b" and wire["label.entry.1.name"] == "x"
        assert wire["Item.2"] == "f2" and wire["Named.Entry.1"] == "e1"
    else:
        assert wire["Label.entry.1.Name"] == "x" and wire["Flat.2"] == "f2" and wire["Named.1"] == "e1"
    assert parse_request(operation, wire) == params


# --- seeded random round trips over every EC2 operation ----------------------------------------

class InputSampler:
    """Random input dicts for a shape: every required member, a random subset of the rest."""

    TEXT = string.ascii_letters + string.digits + " .=&%+/<>_-:*?\"'é漢\t\n"

    def __init__(self, seed: int):
        self.random = random.Random(seed)

    def value(self, shape, depth: int = 0):
        return getattr(self, shape.type_name)(shape, depth)

    def structure(self, shape, depth):
        names = list(shape.members)
        chosen = set(shape.required_members)
        if depth < 6:
            chosen.update(name for name in names if self.random.random() < 0.4)
        if not chosen and names:
            # EC2 sends nothing for an empty structure, so every structure gets a member.
            chosen.add(min(names, key=lambda name: self._weight(shape.members[name])))
        return {name: self.value(shape.members[name], depth + 1) for name in names if name in chosen}

    @staticmethod
    def _weight(shape) -> int:
        return {"structure": 2, "list": 1}.get(shape.type_name, 0)

    def list(self, shape, depth):
        # EC2 sends nothing for an empty list: at least one item.
        return [self.value(shape.member, depth + 1) for _ in range(self.random.randint(1, 3))]

    def map(self, shape, depth):
        return {self.string(shape.key, depth): self.value(shape.value, depth + 1) for _ in range(2)}

    def string(self, shape, depth):
        if shape.enum and self.random.random() < 0.5:
            return self.random.choice(shape.enum)
        return "".join(self.random.choice(self.TEXT) for _ in range(self.random.randint(0, 12)))

    def integer(self, shape, depth):
        return self.random.randint(-(2 ** 31), 2 ** 31 - 1)

    def long(self, shape, depth):
        return self.random.randint(-(2 ** 63), 2 ** 63 - 1)

    def boolean(self, shape, depth):
        return self.random.random() < 0.5

    def double(self, shape, depth):
        return self.random.choice([0.0, 1.5, -2.25, self.random.uniform(-1e9, 1e9), 1e-7, 3e21])

    float = double

    def timestamp(self, shape, depth):
        return datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=self.random.randint(0, 10 ** 9),
                                                            microseconds=self.random.randint(0, 999_999))

    def blob(self, shape, depth):
        return bytes(self.random.randrange(256) for _ in range(self.random.randint(0, 40)))


def test_every_ec2_operation_round_trips(models):
    sampler = InputSampler(seed=20261122)
    checked = 0
    for action in models.ec2.operation_names:
        operation = models.operation(action)
        if operation.input_shape is None:
            continue
        for _ in range(2):
            params = sampler.value(operation.input_shape)
            wire = on_the_wire(operation, params, validate=False)
            assert parse_request(operation, wire) == params, (action, wire)
            checked += 1
    assert checked > 1500


def test_the_parser_is_built_once_per_operation(models):
    # The lookup structure is built once per operation and reused (speed is for bench/).
    operation = models.operation("RunInstances")
    assert _input_node(operation) is _input_node(operation)
    wire = on_the_wire(operation, ROUND_TRIPS["RunInstances"])
    assert parse_request(operation, wire) == parse_request(operation, wire)


# --- what real clients send -----------------------------------------------------------------

def test_data_file_cases(models):
    cases = json.loads((DATA / "parse_cases.json").read_text())
    assert cases
    for case in cases:
        operation = models.operation(case["params"]["Action"])
        assert parse_request(operation, case["params"]) == case["expected"], case["name"]


def test_scalar_forms_aws_accepts(models):
    operation = models.operation("DescribeSpotPriceHistory")
    cases = {
        "2026-11-22T01:02:03Z": NOW,
        "2026-11-22T01:02:03.000Z": NOW,
        "2026-11-22t01:02:03z": NOW,
        "2026-11-22T03:02:03+02:00": NOW,
        "2026-11-22T03:02:03+0200": NOW,
        "2026-11-22T01:02:03": NOW,  # no zone: UTC
        "2026-11-22T01:02:03.5Z": NOW + timedelta(milliseconds=500),
        "2026-11-22T01:02:03.123456789Z": NOW + timedelta(microseconds=123456),
        "2026-11-22": datetime(2026, 11, 22, tzinfo=UTC),
    }
    for text, expected in cases.items():
        parsed = parse_request(operation, {"StartTime": text, "MaxResults": "+0007"})
        assert parsed == {"StartTime": expected, "MaxResults": 7}, text
        assert parsed["StartTime"].tzinfo is not None


def test_blob_accepts_wrapped_base64(models):
    operation = models.operation("ImportKeyPair")
    parsed = parse_request(operation, {"KeyName": "k", "PublicKeyMaterial": "c3NoLXJz\r\nYSBBQUFB\n"})
    assert parsed["PublicKeyMaterial"] == b"ssh-rsa AAAA"


def test_list_gaps_collapse_in_numeric_order(models):
    operation = models.operation("DescribeInstances")
    params = {"InstanceId.10": "i-10", "InstanceId.2": "i-2", "InstanceId.7": "i-7",
              "Filter.3.Name": "b", "Filter.3.Value.5": "y", "Filter.3.Value.1": "x", "Filter.1.Name": "a"}
    assert parse_request(operation, params) == {
        "InstanceIds": ["i-2", "i-7", "i-10"],
        "Filters": [{"Name": "a"}, {"Name": "b", "Values": ["x", "y"]}],
    }
    index = str(MAX_LIST_INDEX)
    assert parse_request(operation, {f"InstanceId.{index}": "i-last"}) == {"InstanceIds": ["i-last"]}


def test_common_and_signature_parameters_are_ignored(models):
    params = {
        "Action": "DescribeRegions", "Version": "2014-10-01", "AWSAccessKeyId": "AKID", "SignatureVersion": "2",
        "SignatureMethod": "HmacSHA256", "Signature": "c2ln", "Timestamp": "2026-11-22T01:02:03Z",
        "Expires": "2026-11-22T01:12:03Z", "SecurityToken": "tok", "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": "AKID/20261122/us-east-1/ec2/aws4_request", "X-Amz-Date": "20261122T010203Z",
        "X-Amz-SignedHeaders": "host", "X-Amz-Signature": "ab", "X-Amz-Security-Token": "tok",
        "RegionName.1": "zone-a",
    }
    assert parse_request(models.operation("DescribeRegions"), params) == {"RegionNames": ["zone-a"]}


# --- errors -------------------------------------------------------------------------------

def load_error_cases() -> list[dict]:
    return json.loads((DATA / "parse_errors.json").read_text())


@pytest.mark.parametrize("case", load_error_cases(), ids=lambda case: case["name"])
def test_error_cases(models, case):
    operation = models.operation(case["params"]["Action"])
    with pytest.raises(EC2Error) as raised:
        parse_request(operation, case["params"])
    assert raised.value.code == case["code"]
    assert raised.value.status == 400
    if "message" in case:
        assert raised.value.message == case["message"]


def test_absurd_names_fail_fast(models):
    operation = models.operation("DescribeInstances")
    deep = "Filter" + ".1" * 100_000
    with pytest.raises(EC2Error) as raised:
        parse_request(operation, {deep: "x"})
    assert raised.value.code == "UnknownParameter"
    assert len(raised.value.message) < 200  # the name is abbreviated, not echoed whole
    with pytest.raises(EC2Error) as raised:
        parse_request(operation, {"Filter.99999999999999999999999.Name": "x"})
    assert raised.value.code == "InvalidParameterValue"


def test_seeded_garbage_never_crashes(models):
    # Mutated real requests: every outcome is a parsed dict or an EC2Error, never another exception.
    rng = random.Random(7)
    pieces = ["Filter", "1", "0", "01", "Name", "Value", "", "member", "entry", "Ebs", "VolumeSize", "99999999",
              "BlockDeviceMapping", "Tag", "Key", "x", "Placement", "DryRun", "-1", "Groups"]
    values = ["", "true", "TRUE", "no", "12", "1.5", "abc", "2026-13-01", "=", "\x00", "é"]
    outcomes = {"ok": 0, "error": 0}
    for action in ("RunInstances", "DescribeInstances", "AuthorizeSecurityGroupIngress", "CreateTags"):
        operation = models.operation(action)
        base = on_the_wire(operation, ROUND_TRIPS[action])
        for _ in range(300):
            params = dict(base)
            for _ in range(rng.randint(1, 3)):
                name = ".".join(rng.choice(pieces) for _ in range(rng.randint(1, 6)))
                params[rng.choice([name, rng.choice(list(base))])] = rng.choice(values)
            try:
                assert isinstance(parse_request(operation, params), dict)
                outcomes["ok"] += 1
            except EC2Error as error:
                assert error.code in {"UnknownParameter", "InvalidParameterValue", "MissingParameter"}
                outcomes["error"] += 1
    assert outcomes["ok"] > 0 and outcomes["error"] > 0


# --- service models and versions ----------------------------------------------------------

def test_unknown_action(models):
    for action in ("DescribeInstancez", "AssumeRole", "", "describeinstances"):
        with pytest.raises(EC2Error) as raised:
            models.operation(action)
        assert raised.value.code == "InvalidAction"
        assert raised.value.message == f"The action {action} is not valid for this web service."


def test_operations_come_from_the_right_model(models):
    assert models.operation("DescribeInstances").service_model.protocol == "ec2"
    assert models.operation("DescribeInstances").service_model.api_version == "2016-11-15"
    sts = models.operation("GetCallerIdentity")
    assert (sts.service_model.protocol, sts.service_model.api_version) == ("query", "2011-06-15")
    assert "RunInstances" in models and "AssumeRole" not in models


@pytest.mark.parametrize("version", ["2014-10-01", "2015-10-01", "2016-11-15", "2010-08-31"])
def test_client_versions_are_accepted(models, version):
    operation = models.operation("DescribeRegions")
    assert request_version(operation, {"Version": version}) == version
    assert parse_request(operation, {"Version": version}) == {}


def test_version_defaults_to_the_model(models):
    assert request_version(models.operation("DescribeRegions"), {}) == "2016-11-15"
    assert request_version(models.operation("DescribeRegions"), {"Version": ""}) == "2016-11-15"
    assert request_version(models.operation("GetCallerIdentity"), {}) == "2011-06-15"


@pytest.mark.parametrize("version", ["latest", "2016-11-15/", "2016-13-01", "2016-02-30", "16-11-15",
                                     '2016-11-15"><x', "２０１６-11-15"])
def test_malformed_versions_are_refused(models, version):
    operation = models.operation("DescribeRegions")
    for check in (request_version, parse_request):
        with pytest.raises(EC2Error) as raised:
            check(operation, {"Version": version})
        assert raised.value.code == "InvalidParameterValue"
        assert "Version" in raised.value.message
