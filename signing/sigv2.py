"""AWS Signature Version 2 for the Query API, verified on the server side.

The signature lives among the request parameters (the query string of a GET, the form body
of a POST; the caller hands over the decoded parameters either way)::

    AWSAccessKeyId, SignatureVersion=2, SignatureMethod=HmacSHA256|HmacSHA1,
    Timestamp or Expires, [SecurityToken], Signature

One function per step of the spec:

1. ``canonical_query``: every parameter except ``Signature``, sorted by name in byte order
   (code point order of ``str`` is UTF-8 byte order), names and values percent-encoded per
   RFC 3986 (only ``A-Za-z0-9-_.~`` kept, so a space is ``%20``), joined as ``name=value``
   with ``&``;
2. ``string_to_sign``: ``METHOD\\nhost\\npath\\ncanonical query``, where host is the Host
   header as received, lowercased (boto 2 sends and signs it without the port, botocore with
   it: whatever arrived is what was signed), and an empty path is ``/``;
3. ``signature``: base64 of the HMAC of the string to sign under the secret key.

Time: ``Timestamp`` must lie within ``max_skew`` (15 minutes) of the server clock either way;
``Expires`` must not have passed; a request naming both is ``InvalidParameterCombination``.

Error codes. EC2 answers a request without ``AWSAccessKeyId`` with ``MissingParameter`` "The
request must contain the parameter AWSAccessKeyId" (HTTP 400, as observed from
ec2.amazonaws.com), so every missing SigV2 parameter is ``MissingParameter`` in that wording.
A value we cannot accept (SignatureVersion 0 or 1, an unknown SignatureMethod, a timestamp
that is not ISO 8601) is ``InvalidParameterValue`` in EC2's "Value (x) for parameter y is
invalid." form.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Mapping

from signing.errors import AuthError
from signing.request import HttpRequest
from signing.sigv4 import (constant_time_equal, request_expired, signature_mismatch, uri_encode,
                           utf8)

PARAMS = ("AWSAccessKeyId", "SignatureVersion", "SignatureMethod", "Signature")
SIGNATURE_PARAM = "Signature"
DIGESTS = {"HmacSHA256": hashlib.sha256, "HmacSHA1": hashlib.sha1}


def missing_parameter(name: str) -> AuthError:
    return AuthError("MissingParameter", f"The request must contain the parameter {name}")


def invalid_value(name: str, value: str, why: str) -> AuthError:
    return AuthError("InvalidParameterValue",
                     f"Value ({value}) for parameter {name} is invalid. {why}")


# --- the three steps --------------------------------------------------------------------

def canonical_query(params: Mapping[str, str]) -> str:
    return "&".join(f"{uri_encode(name)}={uri_encode(value)}"
                    for name, value in sorted(params.items()) if name != SIGNATURE_PARAM)


def string_to_sign(method: str, host: str, path: str, params: Mapping[str, str]) -> str:
    return f"{method}\n{host.lower()}\n{path or '/'}\n{canonical_query(params)}"


def signature(secret_key: str, to_sign: str, signature_method: str) -> str:
    digest = hmac.new(utf8(secret_key), utf8(to_sign), DIGESTS[signature_method]).digest()
    return base64.b64encode(digest).decode("ascii")


# --- what the client sent ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class V2Signature:
    access_key: str
    signature_method: str
    signature: str
    timestamp: datetime | None
    expires: datetime | None
    security_token: str | None = None

    def __repr__(self) -> str:  # keep signatures and tokens out of logs
        return f"V2Signature(access_key={self.access_key!r}, method={self.signature_method!r})"


def has_params(params: Mapping[str, str]) -> bool:
    return any(name in params for name in PARAMS)


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise missing_parameter(name)
    return value


def _check_version(params: Mapping[str, str]) -> None:
    version = _required(params, "SignatureVersion")
    if version in ("0", "1"):
        raise invalid_value("SignatureVersion", version,
                            "Signature versions 0 and 1 are no longer supported: sign with "
                            "SignatureVersion 2 (HmacSHA256 or HmacSHA1) or Signature Version 4.")
    if version != "2":
        raise invalid_value("SignatureVersion", version,
                            "Query parameters carry SignatureVersion 2 only.")


def _check_method(params: Mapping[str, str]) -> str:
    method = _required(params, "SignatureMethod")
    if method not in DIGESTS:
        raise invalid_value("SignatureMethod", method, "Valid values: HmacSHA256 | HmacSHA1.")
    return method


def parse_time(name: str, text: str) -> datetime:
    """ISO 8601 (``2026-11-22T01:02:03Z``, with or without fractions or an offset); a
    timestamp without a zone is UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise invalid_value(name, text, "Expected an ISO 8601 date and time such as "
                            "2026-11-22T01:02:03Z.") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _times(params: Mapping[str, str]) -> tuple[datetime | None, datetime | None]:
    timestamp, expires = params.get("Timestamp"), params.get("Expires")
    if timestamp and expires:
        raise AuthError("InvalidParameterCombination",
                        "The parameter Timestamp cannot be used with the parameter Expires")
    if not (timestamp or expires):
        raise missing_parameter("Timestamp or Expires")
    if timestamp:
        return parse_time("Timestamp", timestamp), None
    return None, parse_time("Expires", expires)


def parse(params: Mapping[str, str]) -> V2Signature:
    """Checked in a fixed order, so that one request always gets the same error: the key,
    the version, the method, the signature, then the time parameters."""
    access_key = _required(params, "AWSAccessKeyId")
    _check_version(params)
    method = _check_method(params)
    provided = _required(params, SIGNATURE_PARAM)
    timestamp, expires = _times(params)
    return V2Signature(access_key=access_key, signature_method=method, signature=provided,
                       timestamp=timestamp, expires=expires,
                       security_token=params.get("SecurityToken"))


# --- verification -----------------------------------------------------------------------

def check_time(sig: V2Signature, now: datetime, max_skew: timedelta) -> None:
    if sig.expires is not None:
        if now > sig.expires:
            raise request_expired()
    elif sig.timestamp is not None and abs(now - sig.timestamp) > max_skew:
        raise request_expired()


def expected_signature(req: HttpRequest, sig: V2Signature, secret_key: str) -> str:
    to_sign = string_to_sign(req.method, req.host, req.path, req.params)
    return signature(secret_key, to_sign, sig.signature_method)


def verify(req: HttpRequest, sig: V2Signature, secret_key: str, *, now: datetime,
           max_skew: timedelta) -> None:
    check_time(sig, now, max_skew)
    # Base64 never holds a space: one here is a '+' that the client left unencoded in the
    # query string and form decoding turned into a space.
    provided = sig.signature.replace(" ", "+")
    if not constant_time_equal(expected_signature(req, sig, secret_key), provided):
        raise signature_mismatch()
