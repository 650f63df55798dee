"""The request path's cheaper forms answer exactly as before.

- The EC2 envelope without an aiohttp middleware: every route, the catch-all included, answers
  with a request id and EC2's error documents (404/405 for what no route takes, 413, 500).
- ``KeyPairStore.details_and_tags``: one statement over a JSON array of ids gives what
  ``details`` and ``TagStore.tags_of`` gave, whatever the ids hold and however many.
- SigV4's HMAC from cached keyed hash states equals the plain HMAC of the signing key.
- CloudStack signing: ``java_url_encode``'s fast paths and the pre-encoded ``expires`` and
  signature still produce what CloudStack verifies.
- The Authenticator's re-check of enrolled keys (one clock reading per request).
"""

from __future__ import annotations

import asyncio
import base64
import random
import string
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qsl, quote

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from multidict import CIMultiDict

from ec2bridge.auth import Authenticator
from ec2bridge.config import DEMO_CREDENTIALS
from ec2bridge.stores.sqlite import SqliteDatabase, SqliteKeyStore
from ec2bridge.stores.tags import KeyPairDetails, KeyPairStore, TagStore
from signing import cloudstack as cs_signing
from signing import sigv4
from signing.errors import AuthError
from signing.keystore import Credential, SecretBox
from signing.request import HttpRequest
from tests.wire import send
from tests.wire import sigv4 as signed_v4

REGIONS = {"Action": "DescribeRegions", "Version": "2016-11-15"}


# --- the envelope and the catch-all route -------------------------------------------------

def assert_enveloped(reply, status: int, code: str) -> None:
    assert (reply.status, reply.error_code) == (status, code), reply.body[:300]
    request_id = reply.headers["x-amzn-RequestId"]
    assert request_id.encode() in reply.body


@pytest.mark.parametrize("method, path", [("GET", "/nowhere"), ("POST", "/services/other"),
                                          ("PUT", "/a/b/c"), ("GET", "/healthz/x")])
def test_unknown_paths_are_invalid_action(bridge, method, path):
    assert_enveloped(send(bridge.url, method, path=path, body=b""), 404, "InvalidAction")


@pytest.mark.parametrize("method, path", [("PUT", "/"), ("DELETE", "/services/compute"),
                                          ("PATCH", "/services/compute/"), ("POST", "/healthz")])
def test_known_paths_refuse_other_methods(bridge, method, path):
    reply = send(bridge.url, method, path=path, body=b"")
    assert_enveloped(reply, 405, "InvalidHttpRequest")
    assert f"The HTTP method {method} is not supported".encode() in reply.body


def test_health_check_carries_a_request_id(bridge):
    reply = send(bridge.url, "GET", path="/healthz")
    assert reply.status == 200 and reply.headers["x-amzn-RequestId"]
    assert send(bridge.url, "HEAD", path="/healthz").status == 200


def test_oversized_body_is_enveloped(bridge):
    body = b"Action=DescribeRegions&x=" + b"a" * (bridge.config.max_body_bytes + 1)
    reply = send(bridge.url, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_enveloped(reply, 413, "RequestEntityTooLarge")


def test_unexpected_failure_is_an_internal_error(bridge, monkeypatch):
    async def broken(ctx, request):
        raise RuntimeError("a bug")

    actions = bridge.services.actions
    monkeypatch.setitem(actions, "DescribeRegions", replace(actions["DescribeRegions"], source=broken))
    reply = signed_v4(bridge.url, DEMO_CREDENTIALS, REGIONS)
    assert_enveloped(reply, 500, "InternalError")
    assert b"a bug" not in reply.body


# --- key pair details and tags in one statement -------------------------------------------

def run(coroutine):
    return asyncio.run(coroutine)


def details(ec2_id: str, name: str) -> KeyPairDetails:
    return KeyPairDetails(ec2_id=ec2_id, account="d/a", name=name, key_type="ed25519", fingerprint=f"fp-{name}",
                          cloudstack_fingerprint=f"cs-{name}", public_key=f"ssh-ed25519 {name}",
                          created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc))


def test_details_and_tags_on_a_database_without_tags_yet(tmp_path):
    store = KeyPairStore(SqliteDatabase(tmp_path / "db.sqlite3"))  # before any TagStore
    assert run(store.details_and_tags(["key-1"])) == ({}, {})
    assert run(store.details_and_tags([])) == ({}, {})


def test_details_and_tags_match_the_separate_reads(tmp_path):
    database = SqliteDatabase(tmp_path / "db.sqlite3")
    pairs, tags = KeyPairStore(database), TagStore(database)
    odd_ids = ['key-"quoted"', "key-back\\slash", "key-\u00fcber", "key-'single'", "key-1,2"]
    ids = [f"key-{n:017x}" for n in range(1200)] + odd_ids

    async def fill():
        for n, ec2_id in enumerate(ids):
            if n % 3 == 0:
                await pairs.record(details(ec2_id, f"name{n}"))
            if n % 4 == 0:
                await tags.put(ec2_id, "key", "d/a", {"z": str(n), "a": "", "M": "m"}, 50)
        await tags.put("key-other", "key", "d/a", {"x": "y"}, 50)

    run(fill())
    wanted = ids[::2] + ["key-missing", ids[0], ids[0]] + odd_ids
    found_details, found_tags = run(pairs.details_and_tags(wanted))
    expected_tags = run(tags.tags_of(wanted))
    assert found_tags == expected_tags and "key-other" not in found_tags
    assert all(list(found_tags[ec2_id]) == list(expected_tags[ec2_id]) for ec2_id in expected_tags)  # key order too
    assert found_details == {ec2_id: details(ec2_id, f"name{ids.index(ec2_id)}")
                             for ec2_id in set(wanted) if ec2_id in ids and ids.index(ec2_id) % 3 == 0}
    assert found_details[odd_ids[0]].public_key.startswith("ssh-ed25519")


# --- SigV4: the HMAC from cached keyed hashes ---------------------------------------------

def test_signed_header_names_are_cached_but_errors_are_not():
    assert sigv4._signed_header_names("X-Amz-Date;Host") == ("host", "x-amz-date")
    assert sigv4._signed_header_names("X-Amz-Date;Host") is sigv4._signed_header_names("X-Amz-Date;Host")
    for _ in range(2):
        with pytest.raises(AuthError) as caught:
            sigv4._signed_header_names("x-amz-date")
        assert caught.value.code == "SignatureDoesNotMatch"


def test_canonical_headers_join_repeats_and_collapse_each_value():
    values = {"host": ["h"], "x-a": ["  one  two ", "three"], "x-b": ["\tfour"]}
    assert sigv4.canonical_headers(["host", "x-a", "x-b"], values.__getitem__) == (
        "host:h\nx-a:one two,three\nx-b:four\n")


# --- CloudStack signing -------------------------------------------------------------------

def java_reference(value: str) -> str:
    """java.net.URLEncoder keeps A-Za-z0-9 and .-*_; urllib keeps ~ too, which Java encodes."""
    return quote(value, safe="*").replace("~", "%7E")


def test_java_url_encode_matches_urlencoder():
    rng = random.Random(7)
    alphabet = string.printable + "\u00e9\u20ac\u65e5\U0001f600~*"
    samples = ["", "json", "listSSHKeyPairs", "500", "a-b_c.d*e", "2026-11-22T05:21:42+0000", "x y", "50%"]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16))) for _ in range(3000)]
    for value in samples:
        assert cs_signing.java_url_encode(value) == java_reference(value), value


def test_base64_encoding_shortcut():
    rng = random.Random(8)
    for _ in range(200):
        text = base64.b64encode(rng.randbytes(rng.randint(0, 40))).decode()
        assert cs_signing._encode_base64(text) == java_reference(text)


@pytest.mark.parametrize("now", [None, datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)])
def test_signed_form_is_what_cloudstack_verifies(now):
    params = {"command": "listSSHKeyPairs", "name": "a b+c/~\u00fc", "tags[0].key": "k&=",
              "apikey": "caller's", "expires": "never", "signatureversion": "9", "signature": "forged"}
    body = cs_signing.signed_form(params, "API-key_1", "s3cret/+=", now=now)
    sent = dict(parse_qsl(body, keep_blank_values=True, strict_parsing=True))
    signature = sent.pop("signature")
    assert sent["apikey"] == "API-key_1" and sent["signatureversion"] == "3"
    expires = cs_signing.parse_expires(sent["expires"])
    if now is None:
        assert abs(expires - datetime.now(timezone.utc) - timedelta(minutes=10)) < timedelta(seconds=5)
    else:
        assert expires == now + timedelta(minutes=10)
    assert {k: v for k, v in sent.items() if k not in ("apikey", "expires", "signatureversion")} == {
        "command": "listSSHKeyPairs", "name": "a b+c/~\u00fc", "tags[0].key": "k&="}
    assert cs_signing.verify(sent, "s3cret/+=", signature)
    assert not cs_signing.verify(sent, "other", signature)


# --- the Authenticator's re-check of enrolled keys ----------------------------------------

KEY = ("AKIARECHECK000000001", "recheck-secret")
TTL = timedelta(minutes=5)


def signed_request(secret: str = KEY[1]) -> HttpRequest:
    request = AWSRequest(method="POST", url="http://127.0.0.1:8773/", data=REGIONS,
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(KEY[0], secret), "ec2", "cloudstack").add_auth(request)
    prepared = request.prepare()
    headers = CIMultiDict({"Host": "127.0.0.1:8773", **dict(prepared.headers.items())})
    body = prepared.body if isinstance(prepared.body, bytes) else prepared.body.encode()
    return HttpRequest("POST", "127.0.0.1:8773", "/", "", headers, body, dict(parse_qsl(body.decode())))


class CloudStack:
    """Stands for CloudStackEnroller: the key while the user has it, None once revoked."""

    def __init__(self):
        self.calls = 0
        self.revoked = False

    async def __call__(self, access_key: str) -> Credential | None:
        self.calls += 1
        if self.revoked:
            return None
        return Credential(access_key, KEY[1], access_key, KEY[1], source="cloudstack",
                          created_at=datetime.now(timezone.utc), verified_at=datetime.now(timezone.utc))


def key_store(path: Path) -> SqliteKeyStore:
    return SqliteKeyStore(SqliteDatabase(path / "db.sqlite3"), SecretBox(b"k" * 32))


@pytest.mark.parametrize("verified_ago, rechecked", [(timedelta(minutes=1), False), (timedelta(minutes=6), True),
                                                     (None, True)])
def test_enrolled_keys_are_rechecked_after_their_ttl(tmp_path, verified_ago, rechecked):
    keys, cloudstack = key_store(tmp_path), CloudStack()
    verified = None if verified_ago is None else datetime.now(timezone.utc) - verified_ago
    run(keys.put(Credential(*KEY, *KEY, source="cloudstack", verified_at=verified)))
    authenticator = Authenticator(keys, cloudstack, max_skew=timedelta(minutes=15), enrolled_ttl=TTL)
    assert run(authenticator.authenticate(signed_request())).access_key == KEY[0]
    assert cloudstack.calls == int(rechecked)
    if rechecked:  # the re-check refreshed the row: no other call within the TTL
        assert run(keys.get(KEY[0])).verified_at > datetime.now(timezone.utc) - timedelta(minutes=1)
        run(authenticator.authenticate(signed_request()))
        assert cloudstack.calls == 1


def test_a_revoked_enrolled_key_stops_working_at_its_recheck(tmp_path):
    keys, cloudstack = key_store(tmp_path), CloudStack()
    stale = datetime.now(timezone.utc) - TTL - timedelta(seconds=1)
    run(keys.put(Credential(*KEY, *KEY, source="cloudstack", verified_at=stale)))
    cloudstack.revoked = True
    authenticator = Authenticator(keys, cloudstack, max_skew=timedelta(minutes=15), enrolled_ttl=TTL)
    with pytest.raises(AuthError) as caught:
        run(authenticator.authenticate(signed_request()))
    assert caught.value.code == "AuthFailure"
    assert run(keys.get(KEY[0])) is None


def test_manual_and_disabled_keys_are_never_rechecked(tmp_path):
    keys, cloudstack = key_store(tmp_path), CloudStack()
    authenticator = Authenticator(keys, cloudstack, max_skew=timedelta(minutes=15), enrolled_ttl=TTL)
    run(keys.put(Credential(*KEY, *KEY, source="manual")))
    run(authenticator.authenticate(signed_request()))
    run(keys.put(Credential(*KEY, *KEY, source="cloudstack", enabled=False)))
    with pytest.raises(AuthError):
        run(authenticator.authenticate(signed_request()))
    assert cloudstack.calls == 0


def test_a_key_disabled_by_another_process_fails_at_the_next_request(tmp_path):
    keys = key_store(tmp_path)
    run(keys.put(Credential(*KEY, *KEY, source="manual")))
    authenticator = Authenticator(keys, None, max_skew=timedelta(minutes=15), enrolled_ttl=TTL)
    run(authenticator.authenticate(signed_request()))  # the opened credential is now cached
    other_process = key_store(tmp_path)  # a connection of its own, as another bridge process has
    run(other_process.set_enabled(KEY[0], False))
    with pytest.raises(AuthError):
        run(authenticator.authenticate(signed_request()))
    run(other_process.set_enabled(KEY[0], True))
    run(other_process.set_secret(KEY[0], "rotated"))
    with pytest.raises(AuthError) as caught:
        run(authenticator.authenticate(signed_request()))
    assert caught.value.code == "SignatureDoesNotMatch"
    assert run(authenticator.authenticate(signed_request("rotated"))).access_key == KEY[0]
