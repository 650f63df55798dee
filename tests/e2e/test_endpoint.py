"""The EC2 endpoint end to end: real clients authenticate and parse DescribeRegions; every
authentication failure is the EC2 error AWS gives; malformed requests never get a 5xx."""

import os
import random
import subprocess
import xml.etree.ElementTree as ET

import boto.ec2.connection
import botocore.exceptions
import pytest
from boto.ec2.regioninfo import RegionInfo
from libcloud.compute.providers import get_driver
from libcloud.compute.types import Provider

from ec2bridge.config import DEMO_CREDENTIALS
from signing.keystore import Credential
from tests.bridge_server import REGION
from tests.wire import minutes, now, send, sigv2, sigv4

REGIONS = {"Action": "DescribeRegions", "Version": "2016-11-15"}
OTHER = ("AKIAOTHERTESTKEY0001", "other-test-secret-key-0001")


@pytest.fixture(scope="module")
def registered(bridge):
    """A key registered by the operator, acting as the demo CloudStack user."""
    keys = bridge.services.keys
    bridge.call(keys.put(Credential(OTHER[0], OTHER[1], *DEMO_CREDENTIALS, source="manual")))
    yield OTHER
    bridge.call(keys.set_enabled(OTHER[0], True))


def test_boto3_sigv4_post(ec2, bridge):
    regions = ec2.describe_regions()["Regions"]
    assert [r["RegionName"] for r in regions] == [REGION]
    assert regions[0]["Endpoint"] == bridge.url.split("//")[1].rstrip("/")


def test_aws_cli(bridge):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": DEMO_CREDENTIALS[0], "AWS_SECRET_ACCESS_KEY": DEMO_CREDENTIALS[1],
           "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    result = subprocess.run([os.path.join(os.path.dirname(os.sys.executable), "aws"), "--endpoint-url", bridge.url,
                             "ec2", "describe-regions", "--output", "text"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert REGION in result.stdout


class SigV2Connection(boto.ec2.connection.EC2Connection):
    """boto 2.49 asks for SigV4 on EC2; the 'ec2' capability makes it sign with SigV2 HmacSHA256."""

    def _required_auth_capability(self):
        return ["ec2"]


def _boto2(bridge, creds=DEMO_CREDENTIALS, path="/"):
    port = int(bridge.url.rsplit(":", 1)[1].rstrip("/"))
    return SigV2Connection(aws_access_key_id=creds[0], aws_secret_access_key=creds[1], is_secure=False,
                           port=port, path=path, region=RegionInfo(name=REGION, endpoint="127.0.0.1"))


@pytest.mark.parametrize("path", ["/", "/services/compute"])
def test_boto2_sigv2_post(bridge, path):
    regions = _boto2(bridge, path=path).get_all_regions()
    assert [r.name for r in regions] == [REGION]


def test_boto2_wrong_secret_is_refused(bridge):
    with pytest.raises(boto.exception.EC2ResponseError) as caught:
        _boto2(bridge, creds=(DEMO_CREDENTIALS[0], "not-the-secret")).get_all_regions()
    assert caught.value.error_code == "SignatureDoesNotMatch"


def test_libcloud_sigv2_get(bridge):
    port = int(bridge.url.rsplit(":", 1)[1].rstrip("/"))
    driver = get_driver(Provider.EC2)(*DEMO_CREDENTIALS, region="us-east-1", host="127.0.0.1", port=port, secure=False)
    assert driver.connection.signature_version == "2"
    reply = driver.connection.request("/", params={"Action": "DescribeRegions"}, method="GET").object
    names = [el.text for el in reply.iter() if el.tag.endswith("regionName")]
    assert names == [REGION]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_sigv4_presigned_and_sigv2_get(bridge, method):
    assert sigv4(bridge.url, DEMO_CREDENTIALS, REGIONS, method="GET", presign=True).status == 200
    assert sigv2(bridge.url, DEMO_CREDENTIALS, REGIONS, method=method).status == 200
    assert sigv4(bridge.url, DEMO_CREDENTIALS, REGIONS, method=method, region="undefined-4242").status == 200


@pytest.mark.parametrize("version", ["2014-10-01", "2015-10-01", "2016-11-15"])
def test_namespace_follows_the_requested_version(bridge, version):
    reply = sigv4(bridge.url, DEMO_CREDENTIALS, {**REGIONS, "Version": version})
    root = ET.fromstring(reply.body)
    assert root.tag == f"{{http://ec2.amazonaws.com/doc/{version}/}}DescribeRegionsResponse"
    assert root.find(f"{{http://ec2.amazonaws.com/doc/{version}/}}requestId").text == reply.headers["x-amzn-RequestId"]


def _swap_param(name, value):
    def tamper(request):
        request.data[name] = value
    return tamper


@pytest.mark.parametrize("case, code, status", [
    ("unknown key", "AuthFailure", 401),
    ("wrong secret", "SignatureDoesNotMatch", 403),
    ("tampered parameter", "SignatureDoesNotMatch", 403),
    ("stale sigv4", "RequestExpired", 400),
    ("future sigv4", "RequestExpired", 400),
    ("stale sigv2 timestamp", "RequestExpired", 400),
    ("expired sigv2", "RequestExpired", 400),
    ("incomplete sigv4", "IncompleteSignature", 400),
    ("no signature at all", "MissingParameter", 400),
    ("security token", "AuthFailure", 401),
])
def test_auth_failures(bridge, case, code, status):
    url = bridge.url
    replies = {
        "unknown key": lambda: sigv4(url, ("AKIANOBODYHASTHISKEY", "x"), REGIONS),
        "wrong secret": lambda: sigv4(url, (DEMO_CREDENTIALS[0], "wrong"), REGIONS),
        "tampered parameter": lambda: sigv2(url, DEMO_CREDENTIALS, REGIONS,
                                            tamper=lambda p: p.update(Version="2014-10-01")),
        "stale sigv4": lambda: sigv4(url, DEMO_CREDENTIALS, REGIONS, when=now() - minutes(16)),
        "future sigv4": lambda: sigv4(url, DEMO_CREDENTIALS, REGIONS, when=now() + minutes(16)),
        "stale sigv2 timestamp": lambda: sigv2(url, DEMO_CREDENTIALS, REGIONS, timestamp=now() - minutes(20)),
        "expired sigv2": lambda: sigv2(url, DEMO_CREDENTIALS, REGIONS, expires=now() - minutes(1)),
        "incomplete sigv4": lambda: send(url, params=REGIONS, headers={
            "Authorization": f"AWS4-HMAC-SHA256 Credential={DEMO_CREDENTIALS[0]}/20261122/x/ec2/aws4_request",
            "X-Amz-Date": now().strftime("%Y%m%dT%H%M%SZ")}),
        "no signature at all": lambda: send(url, params=REGIONS),
        "security token": lambda: sigv2(url, DEMO_CREDENTIALS, {**REGIONS, "SecurityToken": "session-token"}),
    }
    reply = replies[case]()
    assert (reply.error_code, reply.status) == (code, status), reply.body


def test_disabled_and_deleted_keys_stop_working_at_once(bridge, registered):
    client = bridge.client(credentials=registered)
    assert client.describe_regions()["Regions"]
    bridge.call(bridge.services.keys.set_enabled(registered[0], False))
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.describe_regions()
    assert caught.value.response["Error"]["Code"] == "AuthFailure"
    bridge.call(bridge.services.keys.set_enabled(registered[0], True))
    assert client.describe_regions()["Regions"]


def test_enrolled_key_is_stored_sealed(bridge, ec2):
    ec2.describe_regions()  # the demo key is a CloudStack user's key, enrolled on first use
    stored = bridge.call(bridge.services.keys.get(DEMO_CREDENTIALS[0]))
    assert stored.source == "cloudstack"
    bridge_files = [p for p in bridge.config.data_dir.iterdir() if p.name.startswith(("ec2bridge.sqlite3", "master"))]
    assert bridge_files
    for path in bridge_files:
        assert DEMO_CREDENTIALS[1].encode() not in path.read_bytes(), path


def test_unknown_action_and_unsupported_and_missing(bridge):
    assert sigv4(bridge.url, DEMO_CREDENTIALS, {"Action": "NoSuchThing", "Version": "2016-11-15"}).error_code == "InvalidAction"
    assert sigv4(bridge.url, DEMO_CREDENTIALS, {"Version": "2016-11-15"}).error_code == "MissingAction"
    reply = sigv4(bridge.url, DEMO_CREDENTIALS, {**REGIONS, "Bogus": "1"})
    assert (reply.error_code, reply.status) == ("UnknownParameter", 400)
    reply = sigv4(bridge.url, DEMO_CREDENTIALS, {**REGIONS, "AllRegions": "maybe"})
    assert reply.error_code == "InvalidParameterValue"


def test_describe_regions_filters_and_dry_run(ec2):
    assert ec2.describe_regions(Filters=[{"Name": "region-name", "Values": ["cloud*"]}])["Regions"]
    assert not ec2.describe_regions(Filters=[{"Name": "endpoint", "Values": ["nowhere"]}])["Regions"]
    assert ec2.describe_regions(AllRegions=True, RegionNames=[REGION])["Regions"]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ec2.describe_regions(Filters=[{"Name": "colour", "Values": ["red"]}])
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ec2.describe_regions(DryRun=True)
    assert caught.value.response["Error"]["Code"] == "DryRunOperation"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_healthz_and_request_ids(bridge):
    assert send(bridge.url, "GET", path="/healthz").status == 200
    first, second = (send(bridge.url, params=REGIONS) for _ in range(2))
    assert first.headers["x-amzn-RequestId"] != second.headers["x-amzn-RequestId"]
    assert first.headers["x-amzn-RequestId"].encode() in first.body


def _assert_clean(reply):
    assert reply.status < 500, reply.body
    assert reply.body.startswith(b"<?xml") or reply.body.startswith(b"<Response"), reply.body[:200]
    assert reply.error_code, reply.body[:200]


def test_oversized_body_and_headers(bridge):
    _assert_clean(send(bridge.url, body=b"Action=DescribeRegions&x=" + b"a" * (2 * 1024 * 1024),
                       headers={"Content-Type": "application/x-www-form-urlencoded"}))
    _assert_clean(send(bridge.url, params=REGIONS, headers={f"X-Pad-{n}": "b" * 1000 for n in range(20)}))


def test_malformed_requests_never_5xx(bridge):
    rng = random.Random(20261122)
    bodies = [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 400))) for _ in range(40)]
    bodies += [b"Action=DescribeRegions&%zz=%", b"%E0%A4%A", b"Action=%FF%FE", b"a=1&a=2&Action=DescribeRegions",
               b"&".join(b"Filter.%d.Value.%d=x" % (i, j) for i in range(30) for j in range(30)),
               b"Filter.1.Value.99999999999999999999=x&Action=DescribeRegions",
               b"X." * 2000 + b"=1"]
    for body in bodies:
        _assert_clean(send(bridge.url, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"}))
    for query in ("Action=DescribeRegions&%", "Action=DescribeRegions&Version=%GG", "%00=%00", "&&&&=="):
        _assert_clean(send(bridge.url, "GET", query=query))


def test_signed_but_malformed_parameters(bridge):
    deep = {**REGIONS, **{f"Filter.1.Value.{n}": "x" for n in range(1, 50)}, "Filter.1.Name": "region-name"}
    assert sigv4(bridge.url, DEMO_CREDENTIALS, deep).status == 200
    nested = {**REGIONS, "Filter.1.Name.2.Value.3": "x"}
    assert sigv4(bridge.url, DEMO_CREDENTIALS, nested).error_code in ("UnknownParameter", "InvalidParameterValue")
    for bad in ({"RegionName.0": "x"}, {"Filter.0.Name": "x"}, {"Filter.-1.Name": "x"}, {"Filter.x.Name": "y"}):
        reply = sigv4(bridge.url, DEMO_CREDENTIALS, {**REGIONS, **bad})
        assert 400 <= reply.status < 500 and reply.error_code, (bad, reply.body)
