"""SigV2 step by step: AWS's documented example, each rule of the canonical query, each
parse error, and boto 2.49 (the legacy client that still signs SigV2) as a witness."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from multidict import CIMultiDict

from signing import sigv2
from signing.errors import AuthError
from signing.request import HttpRequest

DOCS = json.loads((Path(__file__).parent / "data" / "sigv4" / "aws_docs_examples.json")
                  .read_text("utf-8"))["sigv2_describe_job_flows"]
SKEW = timedelta(minutes=15)
NOW = datetime(2026, 11, 22, 1, 2, 3, tzinfo=timezone.utc)
SECRET = "s3cr3t/with+odd=chars"


def v2_request(params: dict[str, str], *, method: str = "GET", host: str = "127.0.0.1:8788",
               path: str = "/") -> HttpRequest:
    return HttpRequest(method, host, path, "", CIMultiDict({"Host": host}), b"", params)


def signed_params(extra: dict[str, str] | None = None, *, method: str = "HmacSHA256",
                  host: str = "127.0.0.1:8788", path: str = "/", secret: str = SECRET,
                  http_method: str = "GET", **auth: str) -> dict[str, str]:
    params = {"Action": "DescribeInstances", "Version": "2016-11-15", "AWSAccessKeyId": "AK",
              "SignatureVersion": "2", "SignatureMethod": method,
              "Timestamp": "2026-11-22T01:02:03Z", **(extra or {}), **auth}
    params = {k: v for k, v in params.items() if v is not None}
    to_sign = sigv2.string_to_sign(http_method, host, path, params)
    params["Signature"] = sigv2.signature(secret, to_sign, method)
    return params


def verify(req: HttpRequest, *, now: datetime = NOW, secret: str = SECRET) -> None:
    sigv2.verify(req, sigv2.parse(req.params), secret, now=now, max_skew=SKEW)


def error_of(call, *args, **kwargs) -> AuthError:
    with pytest.raises(AuthError) as err:
        call(*args, **kwargs)
    return err.value


# --- known answer -------------------------------------------------------------------------

def test_aws_documented_string_to_sign_and_signature():
    to_sign = sigv2.string_to_sign(DOCS["method"], DOCS["host"], DOCS["path"], DOCS["params"])
    assert to_sign == DOCS["string_to_sign"]
    assert sigv2.signature(DOCS["secret_key"], to_sign, "HmacSHA256") == DOCS["signature"]


def test_aws_documented_request_verifies_end_to_end():
    params = {**DOCS["params"], "Signature": DOCS["signature"]}
    req = v2_request(params, host=DOCS["host"], path=DOCS["path"])
    sig = sigv2.parse(params)
    assert sig.timestamp == datetime(2011, 10, 3, 15, 19, 30, tzinfo=timezone.utc)
    sigv2.verify(req, sig, DOCS["secret_key"], now=datetime.fromisoformat(DOCS["now"]),
                 max_skew=SKEW)


# --- the steps ----------------------------------------------------------------------------

def test_canonical_query_sorts_by_byte_order_and_skips_the_signature():
    params = {"b": "1", "B": "2", "a.1": "3", "a": "4", "Signature": "zzz", "\u00e9": "5"}
    assert sigv2.canonical_query(params) == "B=2&a=4&a.1=3&b=1&%C3%A9=5"


@pytest.mark.parametrize("value, encoded", [
    ("a b", "a%20b"),
    ("a+b", "a%2Bb"),
    ("~-._", "~-._"),
    ("a=b&c", "a%3Db%26c"),
    ("a/b:c", "a%2Fb%3Ac"),
    ("*", "%2A"),
    ("\u65e5\u672c", "%E6%97%A5%E6%9C%AC"),
    ("", ""),
])
def test_canonical_query_encodes_rfc3986(value, encoded):
    assert sigv2.canonical_query({"V": value}) == f"V={encoded}"


def test_string_to_sign_lowercases_host_and_defaults_path():
    assert sigv2.string_to_sign("POST", "EC2.Example.COM:8788", "", {"A": "1"}) == (
        "POST\nec2.example.com:8788\n/\nA=1")


def test_sha1_and_sha256_differ():
    sha256 = sigv2.signature("k", "text", "HmacSHA256")
    sha1 = sigv2.signature("k", "text", "HmacSHA1")
    assert len(sha256) == 44 and len(sha1) == 28


# --- verification -------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["HmacSHA256", "HmacSHA1"])
@pytest.mark.parametrize("http_method", ["GET", "POST"])
def test_signed_request_verifies(method, http_method):
    params = signed_params({"Filter.1.Value.2": "a b+c~"}, method=method, http_method=http_method)
    verify(v2_request(params, method=http_method))


@pytest.mark.parametrize("change", [
    {"Filter.1.Value.2": "other"},                  # a parameter
    {"Extra": "1"},                                 # an added parameter
    {"Signature": "x" * 44},                        # the signature
])
def test_changed_parameters_do_not_match(change):
    params = {**signed_params({"Filter.1.Value.2": "a"}), **change}
    err = error_of(verify, v2_request(params))
    assert (err.code, err.message) == ("SignatureDoesNotMatch", sigv2.signature_mismatch().message)


@pytest.mark.parametrize("field, value", [("host", "127.0.0.1"), ("path", "/services/compute"),
                                          ("method", "POST")])
def test_changed_request_line_does_not_match(field, value):
    req = v2_request(signed_params())
    err = error_of(verify, replace(req, **{field: value}))
    assert err.code == "SignatureDoesNotMatch"


def test_wrong_secret_does_not_match():
    assert error_of(verify, v2_request(signed_params()), secret="other").code == (
        "SignatureDoesNotMatch")


def test_host_case_does_not_matter():
    verify(v2_request(signed_params(host="ec2.local:8788"), host="EC2.Local:8788"))


def test_signature_with_plus_decoded_as_space_still_matches():
    params = signed_params()
    for n in range(200):   # find a request whose signature holds a '+'
        if "+" in params["Signature"]:
            break
        params = signed_params({"Nonce": str(n)})
    assert "+" in params["Signature"]
    params["Signature"] = params["Signature"].replace("+", " ")
    verify(v2_request(params))


@pytest.mark.parametrize("offset, ok", [
    (timedelta(0), True), (timedelta(minutes=15), True), (-timedelta(minutes=15), True),
    (timedelta(minutes=15, seconds=1), False), (-timedelta(minutes=15, seconds=1), False),
])
def test_timestamp_skew(offset, ok):
    req = v2_request(signed_params())
    if ok:
        verify(req, now=NOW + offset)
    else:
        err = error_of(verify, req, now=NOW + offset)
        assert (err.code, err.message, err.status) == (
            "RequestExpired", "Request has expired.", 400)


def test_timestamp_skew_is_configurable():
    req = v2_request(signed_params())
    err = error_of(sigv2.verify, req, sigv2.parse(req.params), SECRET,
                   now=NOW + timedelta(minutes=2), max_skew=timedelta(minutes=1))
    assert err.code == "RequestExpired"


def test_expires_in_the_future_is_accepted_and_in_the_past_refused():
    req = v2_request(signed_params(Timestamp=None, Expires="2026-11-22T01:10:00Z"))
    verify(req, now=datetime(2026, 11, 22, 1, 9, 59, tzinfo=timezone.utc))
    verify(req, now=datetime(2026, 11, 22, 1, 10, 0, tzinfo=timezone.utc))
    err = error_of(verify, req, now=datetime(2026, 11, 22, 1, 10, 1, tzinfo=timezone.utc))
    assert err.code == "RequestExpired"


@pytest.mark.parametrize("text, moment", [
    ("2026-11-22T01:02:03Z", NOW),
    ("2026-11-22T01:02:03.000Z", NOW),
    ("2026-11-22T02:02:03+01:00", NOW),
    ("2026-11-22T01:02:03", NOW),
])
def test_timestamp_formats(text, moment):
    assert sigv2.parse_time("Timestamp", text) == moment


# --- parse errors -------------------------------------------------------------------------

def parse_error(**changes: str | None) -> AuthError:
    return error_of(sigv2.parse, signed_params(**changes))


@pytest.mark.parametrize("name", ["AWSAccessKeyId", "SignatureVersion", "SignatureMethod"])
def test_missing_parameter(name):
    err = parse_error(**{name: None})
    assert (err.code, err.message) == ("MissingParameter",
                                       f"The request must contain the parameter {name}")


def test_missing_signature():
    params = signed_params()
    del params["Signature"]
    err = error_of(sigv2.parse, params)
    assert (err.code, err.message) == ("MissingParameter",
                                       "The request must contain the parameter Signature")


def test_empty_access_key_is_missing():
    assert parse_error(AWSAccessKeyId="").code == "MissingParameter"


def test_neither_timestamp_nor_expires():
    err = parse_error(Timestamp=None)
    assert err.code == "MissingParameter" and "Timestamp or Expires" in err.message


def test_both_timestamp_and_expires():
    err = parse_error(Expires="2026-11-22T01:10:00Z")
    assert (err.code, err.message) == (
        "InvalidParameterCombination",
        "The parameter Timestamp cannot be used with the parameter Expires")
    assert err.status == 400


@pytest.mark.parametrize("version", ["0", "1"])
def test_old_signature_versions_are_refused_clearly(version):
    err = parse_error(SignatureVersion=version)
    assert err.code == "InvalidParameterValue"
    assert err.message.startswith(f"Value ({version}) for parameter SignatureVersion is invalid.")
    assert "no longer supported" in err.message


def test_unknown_signature_version():
    err = parse_error(SignatureVersion="3")
    assert err.code == "InvalidParameterValue" and "SignatureVersion" in err.message


@pytest.mark.parametrize("method", ["HmacSHA512", "hmacsha256", "RSA"])
def test_unknown_signature_method(method):
    err = parse_error(SignatureMethod=method)
    assert err.code == "InvalidParameterValue"
    assert "HmacSHA256 | HmacSHA1" in err.message


@pytest.mark.parametrize("name", ["Timestamp", "Expires"])
def test_malformed_time(name):
    changes = {"Timestamp": None, name: "yesterday"}
    err = parse_error(**changes)
    assert err.code == "InvalidParameterValue"
    assert err.message.startswith(f"Value (yesterday) for parameter {name} is invalid.")


def test_security_token_is_carried_and_signature_kept_out_of_repr():
    sig = sigv2.parse(signed_params(SecurityToken="tok"))
    assert sig.security_token == "tok"
    assert sig.signature not in repr(sig)


def test_has_params():
    assert sigv2.has_params({"AWSAccessKeyId": "a"})
    assert sigv2.has_params({"Signature": "a"})
    assert not sigv2.has_params({"Action": "DescribeRegions"})


# --- boto 2.49 as a witness ---------------------------------------------------------------

class _Captured(Exception):
    pass


def boto2_wire(call: str, *, use_sha1: bool = False, **kwargs):
    """Run a real boto 2 EC2Connection call up to the socket and return what it would send:
    (method, Host header, path, query, body)."""
    from boto.ec2.connection import EC2Connection
    from boto.regioninfo import RegionInfo

    sent = {}

    class SigV2Connection(EC2Connection):
        def _required_auth_capability(self):
            return ["ec2"]   # boto 2's capability for QuerySignatureV2AuthHandler

        def _mexe(self, request, sender=None, override_num_retries=None, retry_handler=None):
            if use_sha1:
                self._auth_handler._hmac_256 = None   # as boto 2 does without hashlib.sha256

            def capture(connection, method, path, body, headers):
                sent.update(method=method, path=path, body=body, headers=dict(headers))
                raise _Captured

            return super()._mexe(request, sender=capture, override_num_retries=0)

    conn = SigV2Connection("AKIDBOTO2", SECRET, is_secure=False, port=8773,
                           region=RegionInfo(None, "RegionOne", "127.0.0.1"),
                           path="/services/compute")
    with pytest.raises(_Captured):
        getattr(conn, call)(**kwargs)
    return sent


def boto2_request(sent: dict) -> HttpRequest:
    parts = urlsplit(sent["path"])
    body = sent["body"] or b""
    body = body.encode() if isinstance(body, str) else body
    form = body.decode() if sent["method"] == "POST" else parts.query
    headers = CIMultiDict(sent["headers"])
    return HttpRequest(sent["method"], headers["Host"], parts.path, parts.query, headers, body,
                       dict(parse_qsl(form, keep_blank_values=True)))


@pytest.mark.parametrize("use_sha1", [False, True])
@pytest.mark.parametrize("call, kwargs", [
    ("get_all_reservations", {"filters": {"tag:Name": ["web server+1 ~", "\u00fcber"]}}),
    ("get_all_zones", {}),
    ("reboot_instances", {"instance_ids": ["i-12345678"]}),     # boto 2 sends this as GET
    ("create_key_pair", {"key_name": "a b&c=d"}),
])
def test_boto2_signed_request_verifies(call, kwargs, use_sha1):
    sent = boto2_wire(call, use_sha1=use_sha1, **kwargs)
    req = boto2_request(sent)
    # boto 2 signs and sends Host without the port (and adds a slash to the path); whatever
    # arrives is what was signed.
    assert req.host == "127.0.0.1" and req.path == "/services/compute/"
    sig = sigv2.parse(req.params)
    assert sig.signature_method == ("HmacSHA1" if use_sha1 else "HmacSHA256")
    assert sig.access_key == "AKIDBOTO2"
    sigv2.verify(req, sig, SECRET, now=sig.timestamp, max_skew=SKEW)
    tampered = replace(req, params={**req.params, "Version": "2010-01-01"})
    err = error_of(sigv2.verify, tampered, sig, SECRET, now=sig.timestamp, max_skew=SKEW)
    assert err.code == "SignatureDoesNotMatch"
    with_port = replace(req, host="127.0.0.1:8773")
    err = error_of(sigv2.verify, with_port, sig, SECRET, now=sig.timestamp, max_skew=SKEW)
    assert err.code == "SignatureDoesNotMatch"


def test_boto2_uses_get_and_post():
    methods = {boto2_wire("reboot_instances", instance_ids=["i-1"])["method"],
               boto2_wire("get_all_zones")["method"]}
    assert methods == {"GET", "POST"}
