"""AWS Signature Version 4, verified on the server side, one function per step of the spec.

A client signs a request in four steps, and the server repeats them from what it received:

1. ``canonical_request``: method, ``canonical_uri``, ``canonical_query_string``,
   ``canonical_headers`` (only the headers named in SignedHeaders), the signed header names
   and ``payload_hash`` (SHA-256 of the body), one per line;
2. ``string_to_sign``: the algorithm, the request timestamp, the ``credential_scope``
   (``date/region/service/aws4_request``) and the SHA-256 of the canonical request;
3. ``signing_key``: HMAC chain secret -> date -> region -> service -> ``aws4_request``;
4. ``signature``: hex HMAC-SHA256 of the string to sign under the signing key.

The signature arrives in one of two places, parsed into the same :class:`V4Signature`:
an ``Authorization`` header (``parse_authorization``) or a presigned query string carrying
``X-Amz-Algorithm``, ``X-Amz-Credential``, ``X-Amz-Date``, ``X-Amz-Expires``,
``X-Amz-SignedHeaders`` and ``X-Amz-Signature`` (``parse_presigned_query``). Parsing needs no
secret, so it happens before the key store lookup; ``verify`` then checks the clock and the
signature (constant-time).

The canonical forms follow what botocore's ``SigV4Auth`` signs for non-S3 services, which is
also what AWS's published test suite expects:

- the path is normalised (``.``/``..`` segments and repeated slashes removed) and then
  percent-encoded once more, so the raw, already-encoded path is encoded twice;
- query names and values are decoded (``+`` is a space, as in the form encoding that
  urlencode-based clients such as libcloud put on the wire) and re-encoded with RFC 3986's
  unreserved set ``A-Za-z0-9-_.~`` kept, then sorted by name and value;
- header values are trimmed and inner runs of whitespace collapsed; repeated headers are
  joined with commas in the order received;
- the payload hash is always computed from the body. EC2 has no unsigned payloads (botocore
  signs the body of presigned EC2 requests too, as the empty-body hash), so an
  ``x-amz-content-sha256`` header that disagrees with the body is a mismatch.

Errors carry the codes and messages AWS returns (``IncompleteSignature`` for a malformed
signature, ``SignatureDoesNotMatch`` for a bad scope or signature, ``RequestExpired`` with
"Request has expired." for a stale or future timestamp or an elapsed presigned lifetime).
A scope naming a service other than the ones accepted is ``SignatureDoesNotMatch`` with AWS's
"Credential should be scoped to correct service" message.

Caches (process-local, bounded, pure functions of their arguments): the signing key per
secret and scope (a client signs with one per day, region and service), and the parsed
SignedHeaders list. They only map inputs to outputs: the secret
still comes from the key store on every request, so a revoked or rotated key stops working
at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Callable, Collection, Iterable, Mapping, Sequence
from urllib.parse import parse_qsl, quote, unquote_to_bytes

from signing.errors import AuthError
from signing.request import HttpRequest

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_PRESIGNED_LIFETIME = 7 * 24 * 3600  # AWS caps X-Amz-Expires at one week
PRESIGN_PARAMS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders")

SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
REQUEST_EXPIRED = "Request has expired."

_UNRESERVED = re.compile(r"[A-Za-z0-9\-_.~]*")
_RFC3986_SAFE = "-_.~"


def signature_mismatch(message: str = SIGNATURE_MISMATCH) -> AuthError:
    return AuthError("SignatureDoesNotMatch", message)


def request_expired() -> AuthError:
    return AuthError("RequestExpired", REQUEST_EXPIRED)


def incomplete(message: str) -> AuthError:
    return AuthError("IncompleteSignature", message)


def utf8(text: str) -> bytes:
    """UTF-8 that never raises: a stray surrogate can only yield a mismatch, not a traceback."""
    return text.encode("utf-8", "surrogatepass")


def constant_time_equal(expected: str, provided: str) -> bool:
    return hmac.compare_digest(utf8(expected), utf8(provided))


# --- step 1: the canonical request ------------------------------------------------------

def canonical_uri(raw_path: str) -> str:
    """The raw (still percent-encoded) path, normalised, then percent-encoded again."""
    if raw_path in ("", "/"):
        return "/"
    segments: list[str] = []
    for segment in raw_path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    path = "/" + "/".join(segments)
    if segments and raw_path.endswith("/"):
        path += "/"
    return quote(utf8(path), safe="/~")


def uri_encode(text: str) -> str:
    """AWS's URI encoding: UTF-8, percent-encoded except ``A-Za-z0-9-_.~`` (RFC 3986's
    unreserved set); most EC2 names and values need no encoding, hence the fast path."""
    if _UNRESERVED.fullmatch(text):
        return text
    return quote(utf8(text), safe=_RFC3986_SAFE)


def _reencode(component: str) -> str:
    if _UNRESERVED.fullmatch(component):
        return component
    # Decode to bytes (not str) so that the exact octets the client encoded come back out.
    return quote(unquote_to_bytes(component.replace("+", " ")), safe=_RFC3986_SAFE)


def canonical_query_string(raw_query: str, *, exclude: Collection[str] = ()) -> str:
    """Sorted ``name=value`` pairs in RFC 3986 encoding; ``exclude`` drops names (the
    presigned ``X-Amz-Signature`` cannot sign itself)."""
    if not raw_query:
        return ""
    pairs = []
    for item in raw_query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        name = _reencode(name)
        if name not in exclude:
            pairs.append((name, _reencode(value)))
    pairs.sort()
    return "&".join(f"{name}={value}" for name, value in pairs)


def _collapse(value: str) -> str:
    return " ".join(value.split())


def canonical_headers(signed_headers: Iterable[str], values_of: Callable[[str], list[str]]) -> str:
    """One ``name:value`` line per signed header (each ending in a newline); the values of a
    repeated header are joined with commas."""
    lines = []
    for name in signed_headers:
        values = values_of(name)
        # Most headers come once: one value needs no generator to join.
        value = _collapse(values[0]) if len(values) == 1 else ",".join(map(_collapse, values))
        lines.append(f"{name}:{value}\n")
    return "".join(lines)


def payload_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def canonical_request(method: str, uri: str, query: str, headers: str, signed_headers: str,
                      body_hash: str) -> str:
    return f"{method}\n{uri}\n{query}\n{headers}\n{signed_headers}\n{body_hash}"


# --- steps 2 to 4: string to sign, signing key, signature -------------------------------

def credential_scope(date: str, region: str, service: str) -> str:
    return f"{date}/{region}/{service}/{TERMINATOR}"


def string_to_sign(timestamp: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(utf8(canonical)).hexdigest()
    return f"{ALGORITHM}\n{timestamp}\n{scope}\n{digest}"


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, utf8(message), hashlib.sha256).digest()


@lru_cache(maxsize=1024)
def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """Cached: a client reuses one key per day, region and service, so the hot path skips
    four HMACs. The cache only maps inputs to outputs; the secret still comes from the key
    store on every request, so a revoked key stops working at once."""
    key = _hmac(utf8("AWS4" + secret_key), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, TERMINATOR)


def signature(key: bytes, to_sign: str) -> str:
    return hmac.new(key, utf8(to_sign), hashlib.sha256).hexdigest()


# --- what the client sent ---------------------------------------------------------------

@dataclass(slots=True)
class V4Signature:
    """A parsed SigV4 signature, either from the Authorization header or presigned.
    Read-only by convention; not frozen for the cost of a frozen ``__init__`` (see
    :class:`signing.request.HttpRequest`)."""

    access_key: str
    date: str                         # the scope's YYYYMMDD
    region: str
    service: str
    signed_headers: tuple[str, ...]   # lowercase, sorted
    signature: str
    timestamp: str                    # ISO 8601 basic, as it goes into the string to sign
    moment: datetime
    expires: int | None = None        # presigned lifetime in seconds
    presigned: bool = False
    security_token: str | None = None

    @property
    def scope(self) -> str:
        return credential_scope(self.date, self.region, self.service)

    def __repr__(self) -> str:  # keep signatures and tokens out of logs
        return (f"V4Signature(access_key={self.access_key!r}, scope={self.scope!r}, "
                f"presigned={self.presigned})")


def parse_amz_date(text: str) -> datetime | None:
    """``20150830T123600Z`` -> aware datetime; the shape is checked first because
    ``fromisoformat`` (fast, C) would also take other ISO 8601 spellings."""
    if (len(text) != 16 or text[8] != "T" or text[15] != "Z" or not text.isascii()
            or not (text[:8].isdigit() and text[9:15].isdigit())):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _parse_http_date(text: str) -> datetime | None:
    """The Date header: RFC 1123 as HTTP has it (botocore's form), or ISO 8601 basic."""
    moment = parse_amz_date(text)
    if moment is not None:
        return moment
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _request_time(x_amz_date: str | None, date: str) -> tuple[str, datetime]:
    """The timestamp as it goes into the string to sign, and the moment it names."""
    if x_amz_date:
        moment = parse_amz_date(x_amz_date)
        if moment is None:
            raise _bad_date(x_amz_date)
        return x_amz_date, moment
    moment = _parse_http_date(date)
    if moment is None:
        raise _bad_date(date)
    return moment.astimezone(timezone.utc).strftime(TIMESTAMP_FORMAT), moment


def _bad_date(text: str) -> AuthError:
    return incomplete(f"Date must be in ISO-8601 'basic format'. Got '{text}'. "
                      "See http://en.wikipedia.org/wiki/ISO_8601")


def _split_credential(credential: str) -> list[str]:
    parts = credential.split("/")
    if len(parts) != 5:
        raise incomplete("Credential must have exactly 5 slash-delimited elements, "
                         f"e.g. keyid/date/region/service/term, got '{credential}'")
    return parts


def _check_scope(parts: list[str], timestamp: str, services: Sequence[str]) -> None:
    """AWS reports every scope problem at once, space-separated, as SignatureDoesNotMatch.
    ``services[0]`` is the one named in the message."""
    _, date, region, service, terminator = parts
    problems = []
    if not region:
        problems.append(f"Credential should be scoped to a valid region, not '{region}'.")
    if service not in services:
        problems.append(f"Credential should be scoped to correct service: '{services[0]}'.")
    if terminator != TERMINATOR:
        problems.append("Credential should be scoped with a valid terminator: "
                        f"'{TERMINATOR}', not '{terminator}'.")
    if date != timestamp[:8]:
        problems.append("Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                        f"version of date from HTTP: '{date}' != '{timestamp[:8]}', "
                        f"from '{timestamp}'.")
    if problems:
        raise signature_mismatch(" ".join(problems))


@lru_cache(maxsize=256)
def _signed_header_names(text: str) -> tuple[str, ...]:
    """Cached: a client sends the same SignedHeaders list with every request."""
    names = tuple(sorted(name.strip().lower() for name in text.split(";")))
    if "host" not in names:
        raise signature_mismatch(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    return names


def _authorization_fields(rest: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in rest.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, field = item.partition("=")
        if not sep:
            raise incomplete(f"'{item}' not a valid key=value pair (missing equal-sign) "
                             "in Authorization header.")
        fields[key.strip()] = field.strip()  # the last one wins, as in AWS
    return fields


def parse_authorization(req: HttpRequest, services: Sequence[str]) -> V4Signature:
    """``AWS4-HMAC-SHA256 Credential=AK/date/region/service/aws4_request,
    SignedHeaders=host;x-amz-date, Signature=hex`` plus X-Amz-Date (or Date)."""
    algorithm, _, rest = req.headers.get("Authorization", "").strip().partition(" ")
    if algorithm != ALGORITHM:
        raise incomplete(f"Unsupported AWS 'algorithm': '{algorithm}'.")
    fields = _authorization_fields(rest)
    missing = [f"Authorization header requires '{name}' parameter."
               for name in ("Credential", "Signature", "SignedHeaders") if name not in fields]
    x_amz_date, date = req.headers.get("X-Amz-Date"), req.headers.get("Date")
    if not (x_amz_date or date):
        missing.append("Authorization header requires existence of either "
                       "a 'X-Amz-Date' or a 'Date' header.")
    if missing:
        raise incomplete(" ".join(missing) + f" Authorization={algorithm}")
    parts = _split_credential(fields["Credential"])
    timestamp, moment = _request_time(x_amz_date, date or "")
    _check_scope(parts, timestamp, services)
    return V4Signature(
        access_key=parts[0], date=parts[1], region=parts[2], service=parts[3],
        signed_headers=_signed_header_names(fields["SignedHeaders"]),
        signature=fields["Signature"], timestamp=timestamp, moment=moment,
        security_token=req.headers.get("X-Amz-Security-Token"))


def query_params(raw_query: str) -> dict[str, str]:
    """Decoded query parameters; the first of repeated names wins, as in AWS."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        params.setdefault(name, value)
    return params


def has_presigned_params(query: Mapping[str, str]) -> bool:
    return any(name in query for name in PRESIGN_PARAMS)


def _presigned_lifetime(text: str | None) -> int | None:
    if text is None:
        return None
    if text.strip().startswith("-"):
        raise incomplete("X-Amz-Expires must be non-negative")
    if not (text.isascii() and text.isdigit()):
        raise incomplete("X-Amz-Expires should be a number")
    if int(text) > MAX_PRESIGNED_LIFETIME:
        raise incomplete("X-Amz-Expires must be less than a week (in seconds) that is "
                         f"{MAX_PRESIGNED_LIFETIME}")
    return int(text)


def parse_presigned_query(query: Mapping[str, str], services: Sequence[str]) -> V4Signature:
    """The presigned form: every part of the signature is a query parameter."""
    algorithm = query.get("X-Amz-Algorithm")
    if algorithm is not None and algorithm != ALGORITHM:
        raise incomplete(f"Unsupported AWS 'algorithm': '{algorithm}'.")
    missing = [f"AWS query-string parameters must include '{name}'." for name in (
        "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders",
        "X-Amz-Date") if name not in query]
    if missing:
        raise incomplete(" ".join(missing) + " Re-examine the query-string parameters.")
    timestamp = query["X-Amz-Date"]
    moment = parse_amz_date(timestamp)
    if moment is None:
        raise _bad_date(timestamp)
    parts = _split_credential(query["X-Amz-Credential"])
    _check_scope(parts, timestamp, services)
    return V4Signature(
        access_key=parts[0], date=parts[1], region=parts[2], service=parts[3],
        signed_headers=_signed_header_names(query["X-Amz-SignedHeaders"]),
        signature=query["X-Amz-Signature"], timestamp=timestamp, moment=moment,
        expires=_presigned_lifetime(query.get("X-Amz-Expires")), presigned=True,
        security_token=query.get("X-Amz-Security-Token"))


# --- verification -----------------------------------------------------------------------

def header_values(req: HttpRequest) -> Callable[[str], list[str]]:
    """Every value of a header, in the order received (multidicts keep repeats); ``host``
    is the Host header exactly as received."""
    headers = req.headers
    getall = getattr(headers, "getall", None)

    def values_of(name: str) -> list[str]:
        if name == "host":
            return [req.host]
        if getall is not None:
            return getall(name, [])  # a new list each call
        value = headers.get(name)
        return [] if value is None else [value]

    return values_of


def request_payload_hash(req: HttpRequest) -> str:
    computed = payload_hash(req.body)
    claimed = req.headers.get("X-Amz-Content-SHA256")
    if claimed is not None and not constant_time_equal(computed, claimed.strip()):
        raise signature_mismatch(
            "The provided 'x-amz-content-sha256' header does not match what was computed.")
    return computed


def canonical_request_for(req: HttpRequest, sig: V4Signature) -> str:
    query = canonical_query_string(
        req.query_string, exclude=("X-Amz-Signature",) if sig.presigned else ())
    return canonical_request(
        req.method.upper(), canonical_uri(req.path), query,
        canonical_headers(sig.signed_headers, header_values(req)),
        ";".join(sig.signed_headers), request_payload_hash(req))


def expected_signature(req: HttpRequest, sig: V4Signature, secret_key: str) -> str:
    to_sign = string_to_sign(sig.timestamp, sig.scope, canonical_request_for(req, sig))
    return signature(signing_key(secret_key, sig.date, sig.region, sig.service), to_sign)


def check_time(sig: V4Signature, now: datetime, max_skew: timedelta) -> None:
    """Header form: within ``max_skew`` of ``now`` either way. Presigned with X-Amz-Expires:
    not yet past its lifetime, and not dated further ahead than ``max_skew``."""
    if sig.expires is None:
        if abs(now - sig.moment) > max_skew:
            raise request_expired()
    elif now > sig.moment + timedelta(seconds=sig.expires) or sig.moment - now > max_skew:
        raise request_expired()


def verify(req: HttpRequest, sig: V4Signature, secret_key: str, *, now: datetime,
           max_skew: timedelta) -> None:
    check_time(sig, now, max_skew)
    if not constant_time_equal(expected_signature(req, sig, secret_key), sig.signature):
        raise signature_mismatch()
