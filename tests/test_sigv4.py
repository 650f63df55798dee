"""SigV4 step by step: known answers from AWS's test suite and documentation, then each
canonicalisation rule and each parse error on its own."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from multidict import CIMultiDict

from signing import sigv4
from signing.errors import AuthError
from signing.request import HttpRequest

DATA = Path(__file__).parent / "data" / "sigv4"
SUITE = json.loads((DATA / "aws_testsuite.json").read_text("utf-8"))
DOCS = json.loads((DATA / "aws_docs_examples.json").read_text("utf-8"))
CREDS = SUITE["credentials"]
SUITE_NOW = datetime(2015, 8, 30, 12, 36, tzinfo=timezone.utc)
SKEW = timedelta(minutes=15)


def suite_request(case: dict) -> HttpRequest:
    r = case["request"]
    headers = CIMultiDict(r["headers"])
    headers["Authorization"] = case["authorization"]
    return HttpRequest(r["method"], headers["Host"], r["path"], r["query"], headers,
                       r["body"].encode("utf-8"))


def docs_request(example: dict) -> HttpRequest:
    r = example["request"]
    headers = CIMultiDict(r["headers"])
    headers["Host"] = r["host"]
    return HttpRequest(r["method"], r["host"], r["path"], r["query"], headers,
                       r["body"].encode("utf-8"))


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


CASES = [pytest.param(case, id=case["name"]) for case in SUITE["cases"]]


# --- known answers ------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
def test_suite_canonical_request(case):
    req = suite_request(case)
    sig = sigv4.parse_authorization(req, ("service",))
    assert sigv4.canonical_request_for(req, sig) == case["canonical_request"]


@pytest.mark.parametrize("case", CASES)
def test_suite_string_to_sign(case):
    scope = sigv4.credential_scope(CREDS["date"], CREDS["region"], CREDS["service"])
    to_sign = sigv4.string_to_sign(CREDS["timestamp"], scope, case["canonical_request"])
    assert to_sign == case["string_to_sign"]


@pytest.mark.parametrize("case", CASES)
def test_suite_signature(case):
    key = sigv4.signing_key(CREDS["secret_key"], CREDS["date"], CREDS["region"], CREDS["service"])
    assert sigv4.signature(key, case["string_to_sign"]) == case["signature"]


@pytest.mark.parametrize("case", CASES)
def test_suite_request_verifies_end_to_end(case):
    req = suite_request(case)
    sig = sigv4.parse_authorization(req, ("service",))
    assert (sig.access_key, sig.region, sig.service) == ("AKIDEXAMPLE", "us-east-1", "service")
    sigv4.verify(req, sig, CREDS["secret_key"], now=SUITE_NOW, max_skew=SKEW)


@pytest.mark.parametrize("case", CASES)
def test_suite_request_with_another_secret_does_not_match(case):
    req = suite_request(case)
    sig = sigv4.parse_authorization(req, ("service",))
    with pytest.raises(AuthError) as err:
        sigv4.verify(req, sig, CREDS["secret_key"][:-1] + "X", now=SUITE_NOW, max_skew=SKEW)
    assert err.value.code == "SignatureDoesNotMatch"
    assert err.value.message == sigv4.SIGNATURE_MISMATCH


def test_signing_key_matches_aws_documented_derivation():
    example = DOCS["signing_key"]
    key = sigv4.signing_key(example["secret_key"], example["date"], example["region"],
                            example["service"])
    assert key.hex() == example["expected_hex"]


def test_iam_header_example_from_aws_docs():
    example = DOCS["iam_list_users_header"]
    req = docs_request(example)
    sig = sigv4.parse_authorization(req, ("iam",))
    canonical = sigv4.canonical_request_for(req, sig)
    assert hashlib.sha256(canonical.encode()).hexdigest() == example["canonical_request_sha256"]
    assert sigv4.expected_signature(req, sig, example["secret_key"]) == example["signature"]
    sigv4.verify(req, sig, example["secret_key"], now=parse_time(example["now"]), max_skew=SKEW)


def test_iam_presigned_example_from_aws_docs():
    example = DOCS["iam_list_users_presigned"]
    req = docs_request(example)
    sig = sigv4.parse_presigned_query(sigv4.query_params(req.query_string), ("iam",))
    assert sig.presigned and sig.expires == 60
    assert sig.signed_headers == ("content-type", "host")
    assert sigv4.expected_signature(req, sig, example["secret_key"]) == example["signature"]
    sigv4.verify(req, sig, example["secret_key"], now=parse_time(example["now"]), max_skew=SKEW)


def test_presigned_example_expires_after_its_lifetime():
    example = DOCS["iam_list_users_presigned"]
    req = docs_request(example)
    sig = sigv4.parse_presigned_query(sigv4.query_params(req.query_string), ("iam",))
    sigv4.verify(req, sig, example["secret_key"], now=sig.moment + timedelta(seconds=60),
                 max_skew=SKEW)
    with pytest.raises(AuthError) as err:
        sigv4.verify(req, sig, example["secret_key"], now=sig.moment + timedelta(seconds=61),
                     max_skew=SKEW)
    assert (err.value.code, err.value.message) == ("RequestExpired", "Request has expired.")


# --- canonical URI ------------------------------------------------------------------------

@pytest.mark.parametrize("raw, canonical", [
    ("", "/"),
    ("/", "/"),
    ("/services/compute", "/services/compute"),
    ("/services/compute/", "/services/compute/"),
    ("//example//", "/example/"),
    ("/./example", "/example"),
    ("/example/..", "/"),
    ("/a/b/../../..", "/"),
    ("/a/./b/../c", "/a/c"),
    ("/example space/", "/example%20space/"),
    ("/a%20b", "/a%2520b"),                      # the wire form is encoded a second time
    ("/%C3%BCber", "/%25C3%25BCber"),
    ("/\u1234", "/%E1%88%B4"),
    ("/-._~AZaz09", "/-._~AZaz09"),
    ("/$delete", "/%24delete"),
    ("/a:b@c!d", "/a%3Ab%40c%21d"),
])
def test_canonical_uri(raw, canonical):
    assert sigv4.canonical_uri(raw) == canonical


# --- canonical query string ---------------------------------------------------------------

@pytest.mark.parametrize("raw, canonical", [
    ("", ""),
    ("Param2=value2&Param1=value1", "Param1=value1&Param2=value2"),
    ("Param1=value2&Param1=Value1", "Param1=Value1&Param1=value2"),
    ("Param1", "Param1="),
    ("a=1&&b=2", "a=1&b=2"),
    ("Value=a+b", "Value=a%20b"),                 # form encoding: '+' is a space
    ("Value=a%2Bb", "Value=a%2Bb"),
    ("Value=a%20b", "Value=a%20b"),
    ("Value=%7E%2D%2E%5F", "Value=~-._"),         # unreserved characters come out plain
    ("Value=%e1%88%b4", "Value=%E1%88%B4"),       # hex digits are upper-cased
    ("%E1%88%B4=Value1&Param=Value2&Param-3=Value3",
     "%E1%88%B4=Value1&Param=Value2&Param-3=Value3"),
    ("Filter.1.Value.2=x&Filter.1.Name=y", "Filter.1.Name=y&Filter.1.Value.2=x"),
    ("a=%FF", "a=%FF"),                           # bytes that are not UTF-8 survive intact
    ("a=%zz", "a=%25zz"),                         # a broken escape is just text
    ("a=b=c", "a=b%3Dc"),
])
def test_canonical_query_string(raw, canonical):
    assert sigv4.canonical_query_string(raw) == canonical


def test_canonical_query_string_drops_excluded_names():
    raw = "X-Amz-Signature=abc&Action=Run&X-Amz-Date=20150830T123600Z"
    assert (sigv4.canonical_query_string(raw, exclude=("X-Amz-Signature",))
            == "Action=Run&X-Amz-Date=20150830T123600Z")


# --- canonical headers, payload -----------------------------------------------------------

def test_canonical_headers_trims_collapses_and_joins_repeats():
    values = {"my-header1": ["  a   b\t c  "], "my-header2": ["x", " y  z "], "host": ["h:1"]}
    block = sigv4.canonical_headers(["host", "my-header1", "my-header2"], values.__getitem__)
    assert block == "host:h:1\nmy-header1:a b c\nmy-header2:x,y z\n"


def test_header_values_reads_host_from_the_request_and_keeps_repeats():
    headers = CIMultiDict([("Host", "ignored"), ("X-A", "1"), ("x-a", "2")])
    values_of = sigv4.header_values(HttpRequest("GET", "real:8080", "/", "", headers, b""))
    assert values_of("host") == ["real:8080"]
    assert values_of("x-a") == ["1", "2"]
    assert values_of("absent") == []


def test_header_values_with_a_plain_mapping():
    values_of = sigv4.header_values(HttpRequest("GET", "h", "/", "", {"x-a": "1"}, b""))
    assert values_of("x-a") == ["1"] and values_of("x-b") == []


def test_payload_hash_of_empty_and_form_bodies():
    assert sigv4.payload_hash(b"") == hashlib.sha256(b"").hexdigest()
    assert sigv4.payload_hash(b"Param1=value1") == (
        "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e")


def _vanilla() -> tuple[HttpRequest, sigv4.V4Signature]:
    case = next(c for c in SUITE["cases"] if c["name"] == "post-x-www-form-urlencoded")
    req = suite_request(case)
    return req, sigv4.parse_authorization(req, ("service",))


def test_matching_content_sha256_header_is_accepted():
    req, sig = _vanilla()
    headers = CIMultiDict(req.headers)
    headers["X-Amz-Content-SHA256"] = hashlib.sha256(req.body).hexdigest()
    sigv4.verify(replace(req, headers=headers), sig, CREDS["secret_key"], now=SUITE_NOW,
                 max_skew=SKEW)


@pytest.mark.parametrize("claimed", ["UNSIGNED-PAYLOAD", hashlib.sha256(b"other").hexdigest()])
def test_content_sha256_header_that_disagrees_with_the_body_is_refused(claimed):
    req, sig = _vanilla()
    headers = CIMultiDict(req.headers)
    headers["X-Amz-Content-SHA256"] = claimed
    with pytest.raises(AuthError) as err:
        sigv4.verify(replace(req, headers=headers), sig, CREDS["secret_key"], now=SUITE_NOW,
                     max_skew=SKEW)
    assert err.value.code == "SignatureDoesNotMatch"
    assert "x-amz-content-sha256" in err.value.message


def test_changed_body_does_not_match():
    req, sig = _vanilla()
    with pytest.raises(AuthError) as err:
        sigv4.verify(replace(req, body=b"Param1=value2"), sig, CREDS["secret_key"],
                     now=SUITE_NOW, max_skew=SKEW)
    assert err.value.code == "SignatureDoesNotMatch"


# --- time ---------------------------------------------------------------------------------

@pytest.mark.parametrize("offset, ok", [
    (timedelta(0), True),
    (timedelta(minutes=15), True),
    (-timedelta(minutes=15), True),
    (timedelta(minutes=15, seconds=1), False),
    (-timedelta(minutes=15, seconds=1), False),
])
def test_header_timestamp_skew(offset, ok):
    req, sig = _vanilla()
    now = SUITE_NOW + offset
    if ok:
        sigv4.verify(req, sig, CREDS["secret_key"], now=now, max_skew=SKEW)
    else:
        with pytest.raises(AuthError) as err:
            sigv4.verify(req, sig, CREDS["secret_key"], now=now, max_skew=SKEW)
        assert (err.value.code, err.value.message) == ("RequestExpired", "Request has expired.")


def test_skew_is_configurable():
    req, sig = _vanilla()
    with pytest.raises(AuthError) as err:
        sigv4.verify(req, sig, CREDS["secret_key"], now=SUITE_NOW + timedelta(minutes=6),
                     max_skew=timedelta(minutes=5))
    assert err.value.code == "RequestExpired"


def test_presigned_dated_in_the_future_is_refused():
    example = DOCS["iam_list_users_presigned"]
    req = docs_request(example)
    sig = sigv4.parse_presigned_query(sigv4.query_params(req.query_string), ("iam",))
    with pytest.raises(AuthError) as err:
        sigv4.verify(req, sig, example["secret_key"],
                     now=sig.moment - timedelta(minutes=15, seconds=1), max_skew=SKEW)
    assert err.value.code == "RequestExpired"


@pytest.mark.parametrize("text, expected", [
    ("20150830T123600Z", datetime(2015, 8, 30, 12, 36, tzinfo=timezone.utc)),
    ("20150830T123600", None),
    ("2015-08-30T12:36:00Z", None),
    ("20151330T123600Z", None),
    ("2015083OT123600Z", None),
    ("\uff12\uff10150830T123600Z", None),         # full-width digits are not ASCII digits
    ("20150830T1236.0Z", None),                  # other ISO 8601 spellings are refused
    ("2015-08-30T1236Z", None),
])
def test_parse_amz_date(text, expected):
    assert sigv4.parse_amz_date(text) == expected


# --- parsing the Authorization header -----------------------------------------------------

GOOD_AUTH = ("AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/ec2/aws4_request, "
             "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64)


def header_request(authorization: str | None = GOOD_AUTH, **headers: str) -> HttpRequest:
    h = CIMultiDict({"X-Amz-Date": "20150830T123600Z"})
    if authorization is not None:
        h["Authorization"] = authorization
    for name, value in headers.items():
        h[name.replace("_", "-")] = value
    return HttpRequest("POST", "ec2.local:8788", "/", "", h, b"")


def parse_error(req: HttpRequest, services=("ec2", "sts")) -> AuthError:
    with pytest.raises(AuthError) as err:
        sigv4.parse_authorization(req, services)
    return err.value


def test_parse_authorization_fields():
    sig = sigv4.parse_authorization(header_request(), ("ec2", "sts"))
    assert sig.access_key == "AKID" and sig.scope == "20150830/us-east-1/ec2/aws4_request"
    assert sig.signed_headers == ("host", "x-amz-date") and sig.signature == "0" * 64
    assert sig.timestamp == "20150830T123600Z" and not sig.presigned
    assert "0" * 64 not in repr(sig)


def test_signed_headers_are_lowercased_and_sorted():
    auth = GOOD_AUTH.replace("host;x-amz-date", "X-Amz-Date;Host;Content-Type")
    sig = sigv4.parse_authorization(header_request(auth), ("ec2",))
    assert sig.signed_headers == ("content-type", "host", "x-amz-date")


def test_date_header_stands_in_for_x_amz_date():
    h = CIMultiDict({"Authorization": GOOD_AUTH, "Date": "Sun, 30 Aug 2015 12:36:00 GMT"})
    sig = sigv4.parse_authorization(HttpRequest("GET", "h", "/", "", h, b""), ("ec2",))
    assert sig.timestamp == "20150830T123600Z"
    assert sig.moment == datetime(2015, 8, 30, 12, 36, tzinfo=timezone.utc)


def test_iso_basic_date_header_and_empty_x_amz_date():
    h = CIMultiDict({"Authorization": GOOD_AUTH, "X-Amz-Date": "", "Date": "20150830T123600Z"})
    sig = sigv4.parse_authorization(HttpRequest("GET", "h", "/", "", h, b""), ("ec2",))
    assert sig.timestamp == "20150830T123600Z"


def test_bad_date_header():
    h = CIMultiDict({"Authorization": GOOD_AUTH, "Date": "tomorrow"})
    err = parse_error(HttpRequest("GET", "h", "/", "", h, b""))
    assert err.code == "IncompleteSignature" and "Got 'tomorrow'" in err.message


def test_missing_parts_are_all_reported():
    auth = "AWS4-HMAC-SHA256 Credential=AKID/20150830/r/ec2/aws4_request"
    err = parse_error(header_request(auth))
    assert err.code == "IncompleteSignature" and err.status == 400
    assert err.message == ("Authorization header requires 'Signature' parameter. "
                           "Authorization header requires 'SignedHeaders' parameter. "
                           "Authorization=AWS4-HMAC-SHA256")


def test_missing_date_is_reported():
    h = CIMultiDict({"Authorization": GOOD_AUTH})
    err = parse_error(HttpRequest("GET", "h", "/", "", h, b""))
    assert err.code == "IncompleteSignature"
    assert "requires existence of either a 'X-Amz-Date' or a 'Date' header" in err.message


def test_empty_authorization_parameters():
    err = parse_error(header_request("AWS4-HMAC-SHA256"))
    assert err.code == "IncompleteSignature"
    assert err.message.startswith("Authorization header requires 'Credential' parameter.")


@pytest.mark.parametrize("auth", [
    "AWS4-HMAC-SHA512 Credential=a/b/c/d/e, SignedHeaders=host, Signature=0",
    "AWS4-ECDSA-P256-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=0",
    "AWS AKID:c2lnbmF0dXJl",
    "Bearer token",
    "",
])
def test_unsupported_algorithm(auth):
    err = parse_error(header_request(auth))
    assert err.code == "IncompleteSignature"
    assert err.message.startswith("Unsupported AWS 'algorithm'")


def test_field_without_equal_sign():
    err = parse_error(header_request(GOOD_AUTH.replace("Credential=", "Credential ")))
    assert err.code == "IncompleteSignature" and "missing equal-sign" in err.message


@pytest.mark.parametrize("credential", ["AKID/20150830/us-east-1/ec2", "AKID",
                                        "AKID/20150830/us-east-1/ec2/aws4_request/x"])
def test_credential_needs_five_elements(credential):
    err = parse_error(header_request(GOOD_AUTH.replace(
        "AKID/20150830/us-east-1/ec2/aws4_request", credential)))
    assert err.code == "IncompleteSignature"
    assert err.message.startswith("Credential must have exactly 5 slash-delimited elements")


def test_bad_x_amz_date():
    err = parse_error(header_request(X_Amz_Date="2015-08-30T12:36:00Z"))
    assert err.code == "IncompleteSignature"
    assert err.message.startswith("Date must be in ISO-8601 'basic format'. Got '2015-08-30")


def test_scope_date_must_match_the_request_date():
    err = parse_error(header_request(X_Amz_Date="20150831T000000Z"))
    assert err.code == "SignatureDoesNotMatch" and err.status == 403
    assert err.message == ("Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                           "version of date from HTTP: '20150830' != '20150831', "
                           "from '20150831T000000Z'.")


def test_wrong_service_is_refused_with_the_service_we_expect():
    err = parse_error(header_request(GOOD_AUTH.replace("/ec2/", "/s3/")))
    assert err.code == "SignatureDoesNotMatch"
    assert err.message == "Credential should be scoped to correct service: 'ec2'."


def test_every_scope_problem_is_reported_at_once():
    auth = GOOD_AUTH.replace("AKID/20150830/us-east-1/ec2/aws4_request",
                             "AKID/20150829//iam/aws5_request")
    err = parse_error(header_request(auth))
    assert err.code == "SignatureDoesNotMatch"
    assert err.message.split(". ")[0:3] == [
        "Credential should be scoped to a valid region, not ''",
        "Credential should be scoped to correct service: 'ec2'",
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'",
    ]
    assert "Date in Credential scope does not match" in err.message


def test_any_region_is_accepted():
    for region in ("undefined-1234", "RegionOne", "cn-north-1"):
        sig = sigv4.parse_authorization(header_request(GOOD_AUTH.replace("us-east-1", region)),
                                        ("ec2",))
        assert sig.region == region


def test_host_must_be_signed():
    err = parse_error(header_request(GOOD_AUTH.replace("host;x-amz-date", "x-amz-date")))
    assert err.code == "SignatureDoesNotMatch"
    assert err.message == ("'Host' or ':authority' must be a 'SignedHeader' in the AWS "
                           "Authorization.")


def test_security_token_header_is_carried():
    sig = sigv4.parse_authorization(header_request(X_Amz_Security_Token="tok"), ("ec2",))
    assert sig.security_token == "tok"


# --- parsing the presigned query ----------------------------------------------------------

PRESIGNED = {
    "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
    "X-Amz-Credential": "AKID/20150830/us-east-1/ec2/aws4_request",
    "X-Amz-Date": "20150830T123600Z",
    "X-Amz-Expires": "300",
    "X-Amz-SignedHeaders": "host",
    "X-Amz-Signature": "0" * 64,
}


def presign_error(**changes: str | None) -> AuthError:
    query = {**PRESIGNED, **changes}
    query = {k: v for k, v in query.items() if v is not None}
    with pytest.raises(AuthError) as err:
        sigv4.parse_presigned_query(query, ("ec2", "sts"))
    return err.value


def test_parse_presigned_query():
    sig = sigv4.parse_presigned_query({**PRESIGNED, "X-Amz-Security-Token": "t"}, ("ec2",))
    assert sig.presigned and sig.expires == 300 and sig.security_token == "t"
    assert sig.signed_headers == ("host",) and sig.access_key == "AKID"


def test_presigned_without_expires_uses_the_skew_window():
    query = {k: v for k, v in PRESIGNED.items() if k != "X-Amz-Expires"}
    assert sigv4.parse_presigned_query(query, ("ec2",)).expires is None


def test_presigned_missing_parameters_are_all_reported():
    err = presign_error(**{"X-Amz-Credential": None, "X-Amz-Date": None})
    assert err.code == "IncompleteSignature"
    assert err.message == ("AWS query-string parameters must include 'X-Amz-Credential'. "
                           "AWS query-string parameters must include 'X-Amz-Date'. "
                           "Re-examine the query-string parameters.")


def test_presigned_unsupported_algorithm():
    err = presign_error(**{"X-Amz-Algorithm": "AWS4-HMAC-SHA1"})
    assert err.code == "IncompleteSignature" and "Unsupported AWS 'algorithm'" in err.message


@pytest.mark.parametrize("expires, message", [
    ("-1", "X-Amz-Expires must be non-negative"),
    ("ten", "X-Amz-Expires should be a number"),
    ("1e3", "X-Amz-Expires should be a number"),
    ("604801", "X-Amz-Expires must be less than a week (in seconds) that is 604800"),
])
def test_presigned_bad_expires(expires, message):
    err = presign_error(**{"X-Amz-Expires": expires})
    assert (err.code, err.message) == ("IncompleteSignature", message)


def test_presigned_bad_date():
    err = presign_error(**{"X-Amz-Date": "yesterday"})
    assert err.code == "IncompleteSignature" and "ISO-8601 'basic format'" in err.message


def test_presigned_scope_checks():
    err = presign_error(**{"X-Amz-Credential": "AKID/20150830/us-east-1/ec2/x"})
    assert err.code == "SignatureDoesNotMatch" and "valid terminator" in err.message
    err = presign_error(**{"X-Amz-SignedHeaders": "x-amz-date"})
    assert err.code == "SignatureDoesNotMatch" and "'Host'" in err.message


def test_query_params_keeps_the_first_of_repeated_names():
    assert sigv4.query_params("a=1&a=2&b=x+y&c") == {"a": "1", "b": "x y", "c": ""}


def test_has_presigned_params():
    assert sigv4.has_presigned_params({"X-Amz-Signature": "x"})
    assert not sigv4.has_presigned_params({"X-Amz-Date": "x", "Action": "Run"})


def test_non_utf8_header_value_yields_a_mismatch_not_a_traceback():
    req, sig = _vanilla()
    headers = CIMultiDict(req.headers)
    headers["Content-Type"] = "application/x-www-form-urlencoded\udcff\ud800"
    with pytest.raises(AuthError) as err:
        sigv4.verify(replace(req, headers=headers), sig, CREDS["secret_key"], now=SUITE_NOW,
                     max_skew=SKEW)
    assert err.value.code == "SignatureDoesNotMatch"


def test_non_ascii_signature_is_a_mismatch_not_a_traceback():
    req, sig = _vanilla()
    with pytest.raises(AuthError) as err:
        sigv4.verify(req, replace(sig, signature="\u00e9" * 64), CREDS["secret_key"],
                     now=SUITE_NOW, max_skew=SKEW)
    assert err.value.code == "SignatureDoesNotMatch"
