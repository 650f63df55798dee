"""The server's two calls, parse_auth and verify: scheme detection, the claim, every error
code, and a seeded cross-check against botocore's own signers (SigV4 header, SigV4
presigned, SigV2) over a few hundred random requests, each then tampered with."""

from __future__ import annotations

import random
from dataclasses import FrozenInstanceError, dataclass, replace
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from multidict import CIMultiDict

from signing import sigv2, sigv4
from signing.errors import AuthError
from signing.request import HttpRequest
from signing.verifier import AuthClaim, parse_auth, verify

NOW = datetime(2026, 11, 22, 1, 2, 3, tzinfo=timezone.utc)
SKEW = timedelta(minutes=15)
FORM = "application/x-www-form-urlencoded; charset=utf-8"


# --- the wire, as the server will see it --------------------------------------------------

@dataclass(frozen=True)
class Wire:
    """One HTTP request as sent: what the server turns into an HttpRequest."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def to_http(self) -> HttpRequest:
        parts = urlsplit(self.url)
        headers = CIMultiDict(self.headers)
        form = self.body.decode() if self.method == "POST" and self.body else parts.query
        return HttpRequest(self.method, headers["Host"], parts.path, parts.query, headers,
                           self.body, dict(parse_qsl(form, keep_blank_values=True)))

    def with_param(self, name: str, value: str) -> Wire:
        """Change one parameter where it travels (form body or query string)."""
        if self.method == "POST" and self.body:
            pairs = [(k, value if k == name else v)
                     for k, v in parse_qsl(self.body.decode(), keep_blank_values=True)]
            return replace(self, body=urlencode(pairs).encode())
        parts = urlsplit(self.url)
        pairs = [(k, value if k == name else v)
                 for k, v in parse_qsl(parts.query, keep_blank_values=True)]
        query = urlencode(pairs, quote_via=quote)
        return replace(self, url=parts._replace(query=query).geturl())


def host_header(url: str) -> str:
    """The Host header urllib3 sends for ``url``: the default port is left out."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.netloc.rsplit("@", 1)[-1]
    return host[: -len(f":{default}")] if host.endswith(f":{default}") else host


def to_wire(request: AWSRequest) -> Wire:
    prepared = request.prepare()
    body = prepared.body or b""
    body = body.encode() if isinstance(body, str) else body
    headers = {"Host": host_header(prepared.url), **dict(prepared.headers.items())}
    return Wire(prepared.method, prepared.url, tuple(headers.items()), body)


# --- random requests ----------------------------------------------------------------------

HOSTS = ["127.0.0.1:8788", "localhost:5000", "ec2.example.com", "[::1]:8443", "10.0.0.1:80"]
PATHS = ["/", "", "/services/compute", "/services/compute/", "/a%20b/c~d", "/%C3%BCber/x",
         "/x/./y/../z", "//double//slash/", "/!$&'()*+,;=:@"]
REGIONS = ["us-east-1", "undefined-1234", "eu-west-3", "RegionOne"]
NAMES = ["Filter.1.Name", "Filter.1.Value.1", "Filter.1.Value.2", "InstanceId.1", "MaxResults",
         "TagSpecification.1.Tag.1.Key", "Description", "KeyName", "\u00fcName", "a~b", "x-y_z"]
VALUES = ["i-0123456789abcdef0", "", "a b", "a+b", "~", "x=y", "a&b", "\u00fcber \u65e5\u672c",
          "tag:Name", "100", "50%", "slash/and?question", "*", "line\nbreak", "  padded  "]


def random_params(rng: random.Random, action: str) -> dict[str, str]:
    params = {"Action": action, "Version": "2016-11-15"}
    for name in rng.sample(NAMES, rng.randint(0, 6)):
        params[name] = rng.choice(VALUES)
    return params


def random_credentials(rng: random.Random, token: bool = False) -> Credentials:
    key = "AKIA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
    secret = "".join(rng.choice("abcdefXYZ0123456789/+=") for _ in range(40))
    return Credentials(key, secret, "session-token/+=" if token else None)


def botocore_request(rng: random.Random, method: str, params: dict[str, str],
                     hosts: list[str] = HOSTS) -> AWSRequest:
    url = f"http://{rng.choice(hosts)}{rng.choice(PATHS)}"
    if method == "GET":
        return AWSRequest(method="GET", url=url, params=params)
    return AWSRequest(method="POST", url=url, data=params, headers={"Content-Type": FORM})


def sign_v4(rng, monkeypatch, *, presign: bool) -> tuple[Wire, Credentials, dict]:
    monkeypatch.setattr(botocore.auth, "get_current_datetime",
                        lambda remove_tzinfo=True: NOW.replace(tzinfo=None))
    service = rng.choice(["ec2", "sts"])
    action = "GetCallerIdentity" if service == "sts" else "DescribeInstances"
    creds = random_credentials(rng, token=rng.random() < 0.2)
    region = rng.choice(REGIONS)
    request = botocore_request(rng, rng.choice(["GET", "POST"]), random_params(rng, action))
    expires = rng.choice([60, 300, 3600])
    signer = (botocore.auth.SigV4QueryAuth(creds, service, region, expires=expires) if presign
              else botocore.auth.SigV4Auth(creds, service, region))
    signer.add_auth(request)
    return to_wire(request), creds, {"service": service, "region": region, "expires": expires}


# botocore's SigV2 signs the endpoint's netloc as written, so an explicit default port
# (":80") is signed while urllib3 leaves it out of the Host header: AWS refuses those too.
V2_HOSTS = [host for host in HOSTS if not host.endswith(":80")]


def sign_v2(rng) -> tuple[Wire, Credentials, dict]:
    creds = random_credentials(rng, token=rng.random() < 0.2)
    request = botocore_request(rng, rng.choice(["GET", "POST"]),
                               random_params(rng, "DescribeInstances"), V2_HOSTS)
    botocore.auth.SigV2Auth(creds).add_auth(request)
    return to_wire(request), creds, {}


def expect_error(code: str, req: HttpRequest, claim: AuthClaim, secret: str, now: datetime):
    with pytest.raises(AuthError) as err:
        verify(req, claim, secret, now=now)
    assert err.value.code == code, err.value.message


def flip_last(text: str) -> str:
    return text[:-1] + ("0" if text[-1] != "0" else "1")


def tampered_signature(wire: Wire, claim: AuthClaim) -> Wire:
    if claim.scheme == "sigv4":
        headers = tuple((k, flip_last(v) if k == "Authorization" else v) for k, v in wire.headers)
        return replace(wire, headers=headers)
    name = "X-Amz-Signature" if claim.scheme == "sigv4-query" else "Signature"
    original = claim.signature.signature
    return wire.with_param(name, original[:5] + ("A" if original[5] != "A" else "B") + original[6:])


def check_tampering(wire: Wire, claim: AuthClaim, secret: str, now: datetime, rng) -> None:
    req = wire.to_http()
    expect_error("SignatureDoesNotMatch", req, claim, flip_last(secret), now)
    tampered = tampered_signature(wire, claim)
    expect_error("SignatureDoesNotMatch", tampered.to_http(), parse_auth(tampered.to_http()),
                 secret, now)
    changed = wire.with_param("Version", rng.choice(["2014-10-01", "2016-11-16", ""]))
    expect_error("SignatureDoesNotMatch", changed.to_http(), claim, secret, now)
    added = wire.with_param("Action", "RunInstances")
    expect_error("SignatureDoesNotMatch", added.to_http(), claim, secret, now)
    expect_error("SignatureDoesNotMatch", replace(req, host=req.host + "x"), claim, secret, now)
    expect_error("SignatureDoesNotMatch", replace(req, path=req.path + "x"), claim, secret, now)


CASES = 100


@pytest.mark.parametrize("presign", [False, True], ids=["header", "presigned"])
def test_botocore_sigv4_requests_verify_and_tampering_is_caught(presign, monkeypatch):
    rng = random.Random(4 + presign)
    for _ in range(CASES):
        wire, creds, scope = sign_v4(rng, monkeypatch, presign=presign)
        req = wire.to_http()
        claim = parse_auth(req)
        assert claim.scheme == ("sigv4-query" if presign else "sigv4")
        assert (claim.access_key, claim.region, claim.service) == (
            creds.access_key, scope["region"], scope["service"])
        assert claim.security_token == creds.token
        verify(req, claim, creds.secret_key, now=NOW)
        check_tampering(wire, claim, creds.secret_key, NOW, rng)
        lifetime = timedelta(seconds=scope["expires"]) if presign else SKEW
        late = NOW + lifetime + timedelta(seconds=1)
        expect_error("RequestExpired", req, claim, creds.secret_key, late)
        expect_error("RequestExpired", req, claim, creds.secret_key,
                     NOW - SKEW - timedelta(seconds=1))


def test_botocore_sigv2_requests_verify_and_tampering_is_caught():
    rng = random.Random(2)
    for _ in range(CASES):
        wire, creds, _ = sign_v2(rng)
        req = wire.to_http()
        claim = parse_auth(req)
        assert (claim.scheme, claim.access_key, claim.region, claim.service) == (
            "sigv2", creds.access_key, None, "ec2")
        assert claim.security_token == creds.token
        signed_at = claim.signature.timestamp
        verify(req, claim, creds.secret_key, now=signed_at)
        check_tampering(wire, claim, creds.secret_key, signed_at, rng)
        expect_error("RequestExpired", req, claim, creds.secret_key,
                     signed_at + SKEW + timedelta(seconds=1))


def test_botocore_requests_with_a_wrong_service_scope_are_refused(monkeypatch):
    monkeypatch.setattr(botocore.auth, "get_current_datetime",
                        lambda remove_tzinfo=True: NOW.replace(tzinfo=None))
    request = AWSRequest(method="POST", url="http://127.0.0.1:8788/",
                         data={"Action": "ListBuckets"}, headers={"Content-Type": FORM})
    botocore.auth.SigV4Auth(Credentials("AK", "SK"), "s3", "us-east-1").add_auth(request)
    with pytest.raises(AuthError) as err:
        parse_auth(to_wire(request).to_http())
    assert err.value.code == "SignatureDoesNotMatch"
    assert err.value.message == "Credential should be scoped to correct service: 'ec2'."


# --- scheme detection and the claim -------------------------------------------------------

def request(*, headers=(), query: str = "", params: dict | None = None, method="POST",
            body: bytes = b"") -> HttpRequest:
    return HttpRequest(method, "127.0.0.1:8788", "/", query,
                       CIMultiDict([("Host", "127.0.0.1:8788"), *headers]), body, params or {})


V4_AUTH = ("AWS4-HMAC-SHA256 Credential=AK/20261122/us-east-1/ec2/aws4_request, "
           "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64)
V2_PARAMS = {"AWSAccessKeyId": "AK2", "SignatureVersion": "2", "SignatureMethod": "HmacSHA256",
             "Timestamp": "2026-11-22T01:02:03Z", "Signature": "c2ln"}
PRESIGN_QUERY = ("Action=DescribeRegions&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
                 "AK3%2F20261122%2Fundefined-42%2Fec2%2Faws4_request&X-Amz-Date=20261122T010203Z"
                 "&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=" + "0" * 64)


def auth_error(req: HttpRequest) -> AuthError:
    with pytest.raises(AuthError) as err:
        parse_auth(req)
    return err.value


def test_authorization_header_means_sigv4():
    claim = parse_auth(request(headers=[("Authorization", V4_AUTH),
                                        ("X-Amz-Date", "20261122T010203Z")]))
    assert (claim.scheme, claim.access_key, claim.region, claim.service) == (
        "sigv4", "AK", "us-east-1", "ec2")
    assert isinstance(claim.signature, sigv4.V4Signature)


def test_presigned_query_means_sigv4_query():
    claim = parse_auth(request(query=PRESIGN_QUERY, method="GET"))
    assert (claim.scheme, claim.access_key, claim.region, claim.service) == (
        "sigv4-query", "AK3", "undefined-42", "ec2")


def test_v2_parameters_mean_sigv2():
    claim = parse_auth(request(params=V2_PARAMS))
    assert (claim.scheme, claim.access_key, claim.region, claim.service) == (
        "sigv2", "AK2", None, "ec2")
    assert isinstance(claim.signature, sigv2.V2Signature)


def test_a_foreign_authorization_header_does_not_hide_sigv2():
    claim = parse_auth(request(headers=[("Authorization", "Basic dXNlcjpwYXNz")],
                               params=V2_PARAMS))
    assert claim.scheme == "sigv2"


def test_a_foreign_authorization_header_alone_is_incomplete():
    err = auth_error(request(headers=[("Authorization", "Basic dXNlcjpwYXNz")]))
    assert err.code == "IncompleteSignature" and "Unsupported AWS 'algorithm'" in err.message


def test_sigv4_header_wins_over_stray_v2_parameters():
    claim = parse_auth(request(headers=[("Authorization", V4_AUTH),
                                        ("X-Amz-Date", "20261122T010203Z")], params=V2_PARAMS))
    assert claim.scheme == "sigv4"


def test_header_and_presigned_query_together_are_refused():
    err = auth_error(request(headers=[("Authorization", V4_AUTH),
                                      ("X-Amz-Date", "20261122T010203Z")], query=PRESIGN_QUERY))
    assert err.code == "SignatureDoesNotMatch" and "one way only" in err.message


def test_other_x_amz_query_parameters_are_not_a_presigned_request():
    claim = parse_auth(request(query="X-Amz-Date=20261122T010203Z&Action=x", params=V2_PARAMS))
    assert claim.scheme == "sigv2"


@pytest.mark.parametrize("req", [
    request(),
    request(method="GET", query="Action=DescribeRegions&Version=2016-11-15",
            params={"Action": "DescribeRegions", "Version": "2016-11-15"}),
    request(query="X-Amz-Date=20261122T010203Z"),
], ids=["empty", "unsigned-get", "only-a-date"])
def test_unsigned_request_is_answered_as_ec2_does(req):
    err = auth_error(req)
    assert (err.code, err.message, err.status) == (
        "MissingParameter", "The request must contain the parameter AWSAccessKeyId", 400)


@pytest.mark.parametrize("headers, code", [
    ([("Authorization", "AWS4-HMAC-SHA256 Credential=AK/20261122/us-east-1/ec2/aws4_request")],
     "IncompleteSignature"),
    ([("Authorization", V4_AUTH)], "IncompleteSignature"),                  # no date at all
    ([("Authorization", V4_AUTH), ("X-Amz-Date", "20261123T010203Z")], "SignatureDoesNotMatch"),
    ([("Authorization", V4_AUTH.replace("/ec2/", "/iam/")),
      ("X-Amz-Date", "20261122T010203Z")], "SignatureDoesNotMatch"),
    ([("Authorization", V4_AUTH.replace("host;", "")),
      ("X-Amz-Date", "20261122T010203Z")], "SignatureDoesNotMatch"),
])
def test_bad_sigv4_headers(headers, code):
    assert auth_error(request(headers=headers)).code == code


@pytest.mark.parametrize("drop, code", [
    ("X-Amz-Credential", "IncompleteSignature"),
    ("X-Amz-SignedHeaders", "IncompleteSignature"),
    ("X-Amz-Date", "IncompleteSignature"),
    ("X-Amz-Algorithm", "IncompleteSignature"),
])
def test_half_presigned_queries(drop, code):
    query = "&".join(p for p in PRESIGN_QUERY.split("&") if not p.startswith(drop + "="))
    err = auth_error(request(query=query, method="GET"))
    assert err.code == code and drop in err.message


@pytest.mark.parametrize("change, code", [
    ({"Signature": None}, "MissingParameter"),
    ({"AWSAccessKeyId": None}, "MissingParameter"),
    ({"SignatureVersion": "1"}, "InvalidParameterValue"),
    ({"SignatureMethod": "HmacMD5"}, "InvalidParameterValue"),
    ({"Timestamp": None}, "MissingParameter"),
    ({"Expires": "2026-11-22T01:10:00Z"}, "InvalidParameterCombination"),
    ({"Timestamp": "soon"}, "InvalidParameterValue"),
])
def test_bad_sigv2_parameters(change, code):
    params = {k: v for k, v in {**V2_PARAMS, **change}.items() if v is not None}
    assert auth_error(request(params=params)).code == code


def test_claim_is_frozen_and_keeps_the_signature_out_of_repr():
    claim = parse_auth(request(params=V2_PARAMS))
    with pytest.raises(FrozenInstanceError):
        claim.access_key = "other"
    assert "c2ln" not in repr(claim)


# --- verify's own arguments ---------------------------------------------------------------

def signed_v2_request(timestamp: str) -> tuple[HttpRequest, str]:
    secret = "secret"
    params = {**V2_PARAMS, "Timestamp": timestamp, "Action": "DescribeRegions"}
    params["Signature"] = sigv2.signature(
        secret, sigv2.string_to_sign("POST", "127.0.0.1:8788", "/", params), "HmacSHA256")
    return request(params=params), secret


def test_verify_defaults_to_the_clock():
    now = datetime.now(timezone.utc).replace(microsecond=0)
    req, secret = signed_v2_request(now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    verify(req, parse_auth(req), secret)
    old, secret = signed_v2_request("2001-01-01T00:00:00Z")
    with pytest.raises(AuthError) as err:
        verify(old, parse_auth(old), secret)
    assert err.value.code == "RequestExpired"


def test_verify_takes_a_naive_now_as_utc_and_a_custom_skew():
    req, secret = signed_v2_request("2026-11-22T01:02:03Z")
    claim = parse_auth(req)
    verify(req, claim, secret, now=datetime(2026, 11, 22, 1, 10))
    with pytest.raises(AuthError) as err:
        verify(req, claim, secret, now=datetime(2026, 11, 22, 1, 10),
               max_skew=timedelta(minutes=5))
    assert err.value.code == "RequestExpired"


def test_verify_refuses_a_claim_it_did_not_make():
    with pytest.raises(ValueError):
        verify(request(), AuthClaim("AK", "sigv2", None, "ec2"), "secret", now=NOW)
