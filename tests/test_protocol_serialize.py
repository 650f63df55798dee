"""Response rendering, checked against botocore's own response parsers.

Every document :func:`render_response` writes is read back with
``botocore.parsers.create_parser("ec2")`` (or ``"query"`` for STS), exactly as boto3 and the
aws cli read it, and must give back the dict that was rendered. A seeded random walk over
every EC2 operation's output shape does the same at scale. The exact text (namespace,
element order, timestamp form, escaping) is pinned where clients depend on it.
"""

from __future__ import annotations

import json
import random
import re
import string
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from xml.etree import ElementTree

import pytest
from botocore.model import ServiceModel
from botocore.parsers import create_parser

from ec2bridge.protocol import ServiceModels, prepare, render_error, render_response
from ec2bridge.protocol.parse import _INPUTS
from ec2bridge.protocol.serialize import _WRITERS, _output_writer

DATA = Path(__file__).parent / "data" / "protocol"
UTC = timezone.utc
T0 = datetime(2026, 11, 22, 1, 2, 3, tzinfo=UTC)


@pytest.fixture(scope="module")
def models() -> ServiceModels:
    return ServiceModels()


def read_back(operation, body: bytes, status: int = 200) -> dict:
    """What boto3 makes of ``body``."""
    parser = create_parser(operation.service_model.protocol)
    return parser.parse({"body": body, "headers": {}, "status_code": status}, operation.output_shape)


def assert_round_trip(operation, output: dict, request_id: str = "7a62c49f-347e-4fc4-9331-6e8eEXAMPLE") -> None:
    parsed = read_back(operation, render_response(operation, output, version="2016-11-15", request_id=request_id))
    assert parsed.pop("ResponseMetadata")["RequestId"] == request_id
    assert parsed == output


def instance(number: int) -> dict:
    """An instance as the engine describes one: the members a CloudStack VM fills."""
    return {
        "AmiLaunchIndex": 0, "ImageId": "ami-0123456789abcdef0", "InstanceId": f"i-{number:017x}",
        "InstanceType": "t3.micro", "KeyName": "deploy", "LaunchTime": T0, "Monitoring": {"State": "disabled"},
        "Placement": {"AvailabilityZone": "zone1", "GroupName": "", "Tenancy": "default"},
        "PrivateDnsName": "ip-10-1-0-5.ec2.internal", "PrivateIpAddress": "10.1.0.5", "ProductCodes": [],
        "PublicDnsName": "", "PublicIpAddress": "203.0.113.5", "State": {"Code": 16, "Name": "running"},
        "StateTransitionReason": "", "SubnetId": "subnet-1", "VpcId": "vpc-1", "Architecture": "x86_64",
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"AttachTime": T0, "DeleteOnTermination": True,
                                                                   "Status": "attached", "VolumeId": "vol-1"}}],
        "ClientToken": "", "EbsOptimized": False, "EnaSupport": True, "Hypervisor": "xen",
        "NetworkInterfaces": [{
            "Attachment": {"AttachTime": T0, "AttachmentId": "eni-attach-1", "DeleteOnTermination": True,
                           "DeviceIndex": 0, "Status": "attached"},
            "Description": "", "Groups": [{"GroupName": "default", "GroupId": "sg-1"}], "Ipv6Addresses": [],
            "MacAddress": "02:00:00:00:00:01", "NetworkInterfaceId": "eni-1", "OwnerId": "123456789012",
            "PrivateIpAddress": "10.1.0.5",
            "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": "10.1.0.5"}],
            "SourceDestCheck": True, "Status": "in-use", "SubnetId": "subnet-1", "VpcId": "vpc-1",
        }],
        "RootDeviceName": "/dev/xvda", "RootDeviceType": "ebs",
        "SecurityGroups": [{"GroupName": "default", "GroupId": "sg-1"}], "SourceDestCheck": True,
        "Tags": [{"Key": "Name", "Value": f"web-{number}"}, {"Key": "owner", "Value": "R&D <ops>"}],
        "VirtualizationType": "hvm", "CpuOptions": {"CoreCount": 1, "ThreadsPerCore": 2},
        "MetadataOptions": {"State": "applied", "HttpTokens": "optional", "HttpPutResponseHopLimit": 1,
                            "HttpEndpoint": "enabled"},
        "PlatformDetails": "Linux/UNIX", "UsageOperation": "RunInstances", "UsageOperationUpdateTime": T0,
    }


ROUND_TRIPS = {
    "DescribeInstances": {"Reservations": [
        {"ReservationId": "r-1", "OwnerId": "123456789012", "Groups": [], "Instances": [instance(1), instance(2)]},
        {"ReservationId": "r-2", "OwnerId": "123456789012", "Instances": [instance(3)]},
    ], "NextToken": "bmV4dA=="},
    "RunInstances": {"ReservationId": "r-1", "OwnerId": "123456789012", "Groups": [],
                     "Instances": [instance(1)]},
    "DescribeImages": {"Images": [{
        "ImageId": "ami-1", "ImageLocation": "cloudstack/ubuntu", "State": "available", "OwnerId": "123456789012",
        "CreationDate": "2026-11-22T01:02:03.000Z", "Public": True, "Architecture": "x86_64", "ImageType": "machine",
        "Name": "ubuntu-24.04", "Description": "Ubuntu \"Noble\" & friends", "RootDeviceType": "ebs",
        "RootDeviceName": "/dev/xvda", "VirtualizationType": "hvm", "Hypervisor": "xen", "EnaSupport": True,
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-1", "VolumeSize": 8,
                                                                   "DeleteOnTermination": True, "VolumeType": "gp2",
                                                                   "Encrypted": False}}],
        "Tags": [], "ProductCodes": [], "PlatformDetails": "Linux/UNIX",
    }]},
    "DescribeRegions": {"Regions": [{"RegionName": "zone-a", "Endpoint": "http://127.0.0.1:8788/",
                                     "OptInStatus": "opt-in-not-required"}]},
    "DescribeAvailabilityZones": {"AvailabilityZones": [{
        "ZoneName": "zone1", "ZoneId": "zone1-id", "State": "available", "RegionName": "zone-a",
        "Messages": [{"Message": "verbose"}], "ZoneType": "availability-zone", "OptInStatus": "opt-in-not-required",
    }]},
    "DescribeSecurityGroups": {"SecurityGroups": [{
        "GroupId": "sg-1", "GroupName": "web", "Description": "web servers", "OwnerId": "123456789012", "VpcId": "vpc-1",
        "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                           "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "ssh"}], "Ipv6Ranges": [],
                           "PrefixListIds": [], "UserIdGroupPairs": [{"GroupId": "sg-2", "UserId": "123456789012"}]}],
        "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
        "Tags": [{"Key": "env", "Value": "prod"}],
    }]},
    "AuthorizeSecurityGroupIngress": {"Return": True, "SecurityGroupRules": [{
        "SecurityGroupRuleId": "sgr-1", "GroupId": "sg-1", "GroupOwnerId": "123456789012", "IsEgress": False,
        "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIpv4": "0.0.0.0/0"}]},
    "CreateKeyPair": {"KeyName": "k", "KeyFingerprint": "1f:51:ae", "KeyPairId": "key-1",
                      "KeyMaterial": "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----"},
    "ImportKeyPair": {"KeyName": "k", "KeyFingerprint": "1f:51:ae", "KeyPairId": "key-1", "Tags": []},
    "DeleteKeyPair": {"Return": True, "KeyPairId": "key-1"},
    "DescribeVolumes": {"Volumes": [{
        "VolumeId": "vol-1", "Size": 20, "SnapshotId": "", "AvailabilityZone": "zone1", "State": "in-use",
        "CreateTime": T0, "VolumeType": "gp2", "Encrypted": False, "Iops": 100, "MultiAttachEnabled": False,
        "Attachments": [{"AttachTime": T0, "Device": "/dev/xvda", "InstanceId": "i-1", "State": "attached",
                         "VolumeId": "vol-1", "DeleteOnTermination": True}],
    }]},
    "DescribeTags": {"Tags": [{"Key": "Name", "Value": "web", "ResourceId": "i-1", "ResourceType": "instance"}]},
    "AllocateAddress": {"PublicIp": "203.0.113.7", "AllocationId": "eipalloc-1", "Domain": "vpc"},
    "GetConsoleOutput": {"InstanceId": "i-1", "Output": "Ym9vdGluZy4uLg==", "Timestamp": T0},
    "DescribeInstanceAttribute": {"InstanceId": "i-1", "UserData": {"Value": "IyEvYmluL3No"},
                                  "SourceDestCheck": {"Value": True}, "Groups": [{"GroupId": "sg-1"}]},
    "DescribeSpotPriceHistory": {"SpotPriceHistory": [{"InstanceType": "t3.micro", "SpotPrice": "0.0104",
                                                       "Timestamp": T0, "AvailabilityZone": "zone1"}]},
    "TerminateInstances": {"TerminatingInstances": [{"InstanceId": "i-1", "CurrentState": {"Code": 32, "Name": "shutting-down"},
                                                     "PreviousState": {"Code": 16, "Name": "running"}}]},
}


@pytest.mark.parametrize("action", sorted(ROUND_TRIPS))
def test_round_trip_through_botocore(models, action):
    assert_round_trip(models.operation(action), ROUND_TRIPS[action])


def test_sts_get_caller_identity(models):
    operation = models.operation("GetCallerIdentity")
    output = {"UserId": "AIDAEXAMPLE", "Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/me"}
    body = render_response(operation, output, version="2011-06-15", request_id="req-1")
    assert body.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>'
        "<UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account><Arn>arn:aws:iam::123456789012:user/me</Arn>"
        "</GetCallerIdentityResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata>"
        "</GetCallerIdentityResponse>")
    parsed = read_back(operation, body)
    assert parsed.pop("ResponseMetadata")["RequestId"] == "req-1"
    assert parsed == output


def synthetic_model(protocol: str) -> ServiceModel:
    """A small model with what neither EC2's nor STS's outputs have: maps, flattened lists."""
    output = {"shape": "GetResult", "resultWrapper": "GetResult"} if protocol == "query" else {"shape": "GetResult"}
    return ServiceModel({
        "metadata": {"protocol": protocol, "apiVersion": "2020-01-01", "serviceId": "Synthetic",
                     "endpointPrefix": "synthetic", "signatureVersion": "v4",
                     "xmlNamespace": "https://synthetic.example/doc/2020-01-01/"},
        "operations": {"Get": {"name": "Get", "http": {"method": "POST", "requestUri": "/"},
                               "output": output}},
        "shapes": {
            "GetResult": {"type": "structure", "members": {
                "Attributes": {"shape": "AttributeMap"},
                "Labels": {"shape": "LabelMap", "locationName": "labelSet"},
                "Counts": {"shape": "CountMap"},
                "Flat": {"shape": "FlatList"},
                "Named": {"shape": "NamedList"},
                "Nested": {"shape": "NestedList"},
                "Stamp": {"shape": "Stamp"},
            }},
            "Text": {"type": "string"},
            "Count": {"type": "long"},
            "Stamp": {"type": "timestamp"},
            "AttributeMap": {"type": "map", "key": {"shape": "Text"}, "value": {"shape": "Text"}},
            "LabelMap": {"type": "map", "key": {"shape": "Text", "locationName": "name"},
                         "value": {"shape": "Text", "locationName": "text"}},
            "CountMap": {"type": "map", "key": {"shape": "Text"}, "value": {"shape": "Count"}, "flattened": True},
            "FlatList": {"type": "list", "member": {"shape": "Text", "locationName": "Item"}, "flattened": True},
            "NamedList": {"type": "list", "member": {"shape": "Text", "locationName": "Entry"}},
            "NestedList": {"type": "list", "member": {"shape": "NamedList"}},
        },
    }, "synthetic")


@pytest.mark.parametrize("protocol", ["query", "ec2"])
def test_maps_and_flattened_lists_round_trip(protocol):
    operation = synthetic_model(protocol).operation_model("Get")
    output = {"Attributes": {"a": "1 & 2", "b": ""}, "Labels": {"x": "y"}, "Counts": {"c": 3, "d": -4},
              "Flat": ["f1", "f2"], "Named": ["e1", "e2"], "Nested": [["n1"], []], "Stamp": T0}
    body = render_response(operation, output, version="2020-01-01", request_id="r")
    text = body.decode()
    assert "<labelSet><entry><name>x</name><text>y</text></entry></labelSet>" in text
    assert "<Named><Entry>e1</Entry><Entry>e2</Entry></Named>" in text
    if protocol == "query":
        assert "<GetResult>" in text and "<Item>f1</Item><Item>f2</Item>" in text  # flattened
        assert "<Counts><key>c</key><value>3</value></Counts>" in text
    parsed = read_back(operation, body)
    assert parsed.pop("ResponseMetadata")["RequestId"] == "r"
    assert parsed == output


# --- seeded random round trips over every EC2 output shape --------------------------------------

class OutputSampler:
    """Random output dicts: any subset of members, lists of 0-3 items, hostile text."""

    TEXT = string.ascii_letters + string.digits + " &<>\"'=/;:.-_\t\n\r" + "éß漢字😀\u00a0\u2028"

    def __init__(self, seed: int):
        self.random = random.Random(seed)

    def value(self, shape, depth: int = 0):
        return getattr(self, shape.type_name)(shape, depth)

    def structure(self, shape, depth):
        odds = 0.6 if depth < 5 else 0.1
        return {name: self.value(member, depth + 1) for name, member in shape.members.items()
                if self.random.random() < odds}

    def list(self, shape, depth):
        return [self.value(shape.member, depth + 1) for _ in range(self.random.randint(0, 3 if depth < 5 else 1))]

    def string(self, shape, depth):
        if shape.enum and self.random.random() < 0.5:
            return self.random.choice(shape.enum)
        return "".join(self.random.choice(self.TEXT) for _ in range(self.random.randint(0, 16)))

    def integer(self, shape, depth):
        return self.random.randint(-(2 ** 31), 2 ** 31 - 1)

    def long(self, shape, depth):
        return self.random.randint(-(2 ** 63), 2 ** 63 - 1)

    def boolean(self, shape, depth):
        return self.random.random() < 0.5

    def double(self, shape, depth):
        return self.random.choice([0.0, -0.5, 1e-9, 6.02e23, self.random.uniform(-1e6, 1e6)])

    float = double

    def timestamp(self, shape, depth):
        moment = T0 + timedelta(seconds=self.random.randint(-10 ** 9, 10 ** 8), milliseconds=self.random.randint(0, 999))
        zone = timezone(timedelta(hours=self.random.choice([0, 2, -7])))
        return moment.astimezone(zone)  # rendered in UTC; botocore compares instants

    def blob(self, shape, depth):
        return bytes(self.random.randrange(256) for _ in range(self.random.randint(0, 24)))


def test_every_ec2_output_round_trips(models):
    sampler = OutputSampler(seed=1122)
    checked = 0
    for action in models.ec2.operation_names:
        operation = models.operation(action)
        if operation.output_shape is None:
            continue
        for _ in range(2):
            output = sampler.value(operation.output_shape)
            body = render_response(operation, output, version="2016-11-15", request_id="r")
            parsed = read_back(operation, body)
            parsed.pop("ResponseMetadata")
            assert parsed == output, action
            checked += 1
    assert checked > 1500


# --- the exact text clients depend on -----------------------------------------------------------

@pytest.mark.parametrize("version", ["2014-10-01", "2015-10-01", "2016-11-15"])
def test_namespace_follows_the_request_version(models, version):
    body = render_response(models.operation("DescribeRegions"), {"Regions": []}, version=version, request_id="r")
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    root = ElementTree.fromstring(body)
    assert root.tag == f"{{http://ec2.amazonaws.com/doc/{version}/}}DescribeRegionsResponse"
    assert root[0].tag.endswith("}requestId") and root[0].text == "r"  # requestId first
    assert body.endswith(b"<regionInfo/></DescribeRegionsResponse>")


def test_members_in_model_order_with_items(models):
    operation = models.operation("DescribeTags")
    # Keys in the "wrong" order: the model's order wins.
    output = {"NextToken": "n", "Tags": [{"Value": "v", "ResourceType": "instance", "ResourceId": "i-1", "Key": "k"}]}
    body = render_response(operation, output, version="2016-11-15", request_id="r").decode()
    assert body.endswith(
        "<requestId>r</requestId><nextToken>n</nextToken><tagSet><item><key>k</key><resourceId>i-1</resourceId>"
        "<resourceType>instance</resourceType><value>v</value></item></tagSet></DescribeTagsResponse>")


def test_scalar_forms(models):
    operation = models.operation("DescribeVolumes")
    paris = timezone(timedelta(hours=1))
    volume = {"VolumeId": "vol-1", "Size": 8, "Encrypted": True, "MultiAttachEnabled": False,
              "CreateTime": datetime(2026, 11, 22, 2, 2, 3, 987654, tzinfo=paris),
              "Attachments": [{"AttachTime": datetime(2026, 11, 22, 1, 2, 3), "VolumeId": "vol-1"},
                              {"AttachTime": "2026-11-22T01:02:03+00:00", "VolumeId": "vol-1"},
                              {"AttachTime": "2026-11-22T01:02:03.000Z", "VolumeId": "vol-1"}],
              "KmsKeyId": None}
    body = render_response(operation, {"Volumes": [volume]}, version="2016-11-15", request_id="r").decode()
    assert "<size>8</size><snapshotId" not in body  # absent members are not invented
    assert "<encrypted>true</encrypted>" in body and "<multiAttachEnabled>false</multiAttachEnabled>" in body
    assert "<createTime>2026-11-22T01:02:03.987Z</createTime>" in body  # UTC, milliseconds, Z
    assert body.count("<attachTime>2026-11-22T01:02:03.000Z</attachTime>") == 3  # naive = UTC; strings rewritten
    assert "kmsKeyId" not in body  # None is left out


def test_floats_and_blobs(models):
    operation = models.operation("DescribeInstanceTypes")
    output = {"InstanceTypes": [{"InstanceType": "t3.micro",
                                 "ProcessorInfo": {"SustainedClockSpeedInGhz": 2.5},
                                 "MemoryInfo": {"SizeInMiB": 1024}}]}
    body = render_response(operation, output, version="2016-11-15", request_id="r").decode()
    assert "<sustainedClockSpeedInGhz>2.5</sustainedClockSpeedInGhz>" in body
    assert_round_trip(operation, output)


def test_escaping(models):
    operation = models.operation("DescribeTags")
    nasty = 'a&b <c> "d" \'e\' ]]> \r\n\t é 漢 😀'
    body = render_response(operation, {"Tags": [{"Key": nasty, "Value": "&amp;"}]}, version="2016-11-15",
                           request_id="r").decode()
    assert "<key>a&amp;b &lt;c&gt; \"d\" 'e' ]]&gt; &#13;\n\t é 漢 😀</key>" in body
    assert "<value>&amp;amp;</value>" in body
    assert_round_trip(operation, {"Tags": [{"Key": nasty, "Value": "&amp;"}]})


def test_characters_xml_cannot_carry_are_replaced(models):
    operation = models.operation("DescribeTags")
    output = {"Tags": [{"Key": "bell\x07nul\x00", "Value": "lone \ud800 surrogate \uffff"}]}
    body = render_response(operation, output, version="2016-11-15", request_id="r")
    parsed = read_back(operation, body)  # still well-formed XML
    assert parsed["Tags"] == [{"Key": "bell\ufffdnul\ufffd", "Value": "lone \ufffd surrogate \ufffd"}]


def test_lists_of_scalars(models):
    operation = models.operation("DescribeInstanceTypes")
    output = {"InstanceTypes": [{"InstanceType": "t3.micro", "SupportedUsageClasses": ["on-demand", "spot"],
                                 "ProcessorInfo": {"SupportedArchitectures": ["x86_64"]},
                                 "VCpuInfo": {"ValidCores": [1, 2], "ValidThreadsPerCore": []}}]}
    body = render_response(operation, output, version="2016-11-15", request_id="r").decode()
    assert "<supportedUsageClasses><item>on-demand</item><item>spot</item></supportedUsageClasses>" in body
    assert "<validCores><item>1</item><item>2</item></validCores><validThreadsPerCore/>" in body
    assert_round_trip(operation, output)


@pytest.mark.parametrize("action", ["CreateTags", "RebootInstances", "DeleteVolume", "ModifyInstanceAttribute"])
def test_actions_without_an_output_shape_say_return_true(models, action):
    # libcloud and boto 2 read <return>; botocore's model has no output shape for these.
    operation = models.operation(action)
    assert operation.output_shape is None
    body = render_response(operation, {"Return": True}, version="2014-10-01", request_id="r").decode()
    assert body.endswith(f"<requestId>r</requestId><return>true</return></{action}Response>")
    assert read_back(operation, body.encode())["ResponseMetadata"]["RequestId"] == "r"
    with pytest.raises(ValueError, match="Other"):
        render_response(operation, {"Other": 1}, version="2016-11-15", request_id="r")


def test_boolean_actions_with_an_output_shape(models):
    body = render_response(models.operation("DeleteKeyPair"), {"Return": True}, version="2016-11-15", request_id="r")
    assert b"<return>true</return>" in body


def test_cached_writers_are_reused(models):
    operation = models.operation("DescribeInstances")
    assert _output_writer(operation, careful=False) is _output_writer(operation, careful=False)


# --- engine bugs surface as ValueError ------------------------------------------------------------

BAD_OUTPUTS = [
    ({"Reservations": [{"Instances": [{"InstanceID": "i-1"}]}]}, "Instance has no member 'InstanceID'"),
    ({"Reservations": [{"Instances": [{"InstanceId": 5}]}]}, "Instance.InstanceId expects a str"),
    ({"Reservations": [{"Instances": [{"Tags": [{"Key": "a", "Value": None}, {"Key": 1}]}]}]}, "Tag.Key expects a str"),
    ({"Reservations": [{"Instances": [{"AmiLaunchIndex": "0"}]}]}, "Instance.AmiLaunchIndex expects an int"),
    ({"Reservations": [{"Instances": [{"AmiLaunchIndex": True}]}]}, "Instance.AmiLaunchIndex expects an int"),
    ({"Reservations": [{"Instances": [{"EbsOptimized": "true"}]}]}, "Instance.EbsOptimized expects a bool"),
    ({"Reservations": [{"Instances": [{"LaunchTime": "yesterday"}]}]}, "Instance.LaunchTime expects an ISO 8601"),
    ({"Reservations": [{"Instances": [{"LaunchTime": 1700000000}]}]}, "Instance.LaunchTime expects a datetime"),
    ({"Reservations": [{"Instances": {"InstanceId": "i-1"}}]}, "Reservation.Instances expects a list"),
    ({"Reservations": [{"Instances": ["i-1"]}]}, "Instance expects a dict"),
    ({"Reservations": "r-1"}, "DescribeInstancesResult.Reservations expects a list"),
    ({"Reservations": [{"Groups": [{"GroupId": ["sg-1"]}]}]}, "GroupIdentifier.GroupId expects a str"),
    ({"Reservations": [], "requestId": "x"}, "DescribeInstancesResult has no member 'requestId'"),
]


@pytest.mark.parametrize("output, message", BAD_OUTPUTS)
def test_output_that_does_not_fit_the_shape(models, output, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        render_response(models.operation("DescribeInstances"), output, version="2016-11-15", request_id="r")


def test_unvalidated_version_is_a_programming_error(models):
    with pytest.raises(ValueError, match="version"):
        render_response(models.operation("DescribeRegions"), {}, version='2016"><x', request_id="r")


# --- errors -----------------------------------------------------------------------------------------

def test_ec2_error_envelope(models):
    body = render_error("InvalidInstanceID.NotFound", "The instance ID 'i-1' does not exist", "req-1")
    assert body.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code>'
        "<Message>The instance ID 'i-1' does not exist</Message></Error></Errors><RequestID>req-1</RequestID></Response>")


def test_error_cases_read_by_botocore(models):
    cases = json.loads((DATA / "render_errors.json").read_text())
    assert cases
    for case in cases:
        protocol = case["protocol"]
        operation = models.operation("GetCallerIdentity" if protocol == "query" else "DescribeInstances")
        body = render_error(case["code"], case["message"], case["request_id"], protocol=protocol)
        parsed = read_back(operation, body, status=case["status"])
        assert parsed["Error"]["Code"] == case["code"], case
        assert parsed["Error"]["Message"] == case["message"], case
        assert parsed["ResponseMetadata"]["RequestId"] == case["request_id"], case
        if protocol == "query":
            assert parsed["Error"]["Type"] == case["type"], case


def test_unknown_error_protocol():
    with pytest.raises(ValueError):
        render_error("X", "y", "r", protocol="json")


def test_realistic_page_renders_quickly(models):
    # The benchmark's shape at a tenth of its size; a generous bound that still catches a
    # writer that walks the model per element (several times slower).
    operation = models.operation("DescribeInstances")
    output = {"Reservations": [{"ReservationId": f"r-{n}", "OwnerId": "1", "Instances": [instance(n)]}
                               for n in range(1000)]}
    render_response(operation, output, version="2016-11-15", request_id="r")
    started = time.process_time()
    body = render_response(operation, output, version="2016-11-15", request_id="r")
    assert time.process_time() - started < 1.0
    assert body.count(b"<instanceId>") == 1000


def test_prepare_compiles_up_front(models):
    operations = [models.operation(action) for action in ("DescribeKeyPairs", "GetCallerIdentity", "CreateTags")]
    prepare(operations)
    for operation in operations:
        service = operation.service_model
        key = (service.service_name, service.api_version, service.protocol)
        assert key + (operation.name,) in _INPUTS
        assert key + (False, operation.name) in _WRITERS and key + (True, operation.name) in _WRITERS
