"""CloudStack's request signature, shared by the bridge's client and the simulator's verifier.

CloudStack (``ApiServer.verifyRequest``) signs a request like this:

1. every parameter except ``signature``;
2. sorted by name, case-sensitively, on the original names;
3. joined as ``name=value`` with the value encoded by Java's ``URLEncoder`` (only
   ``A-Za-z0-9.-*_`` kept, so ``~`` is encoded too) and ``+`` turned into ``%20``;
4. the whole string lowercased;
5. HMAC-SHA1 with the user's secret key, base64-encoded.

``signatureversion=3`` adds an ``expires`` timestamp that must lie in the future. The
client's ``expires`` is formatted and encoded once per second (a cache of the last few
seconds' texts), not once per call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Mapping
from urllib.parse import quote

SIGNATURE_PARAM = "signature"
_KEPT_AS_IS = re.compile(r"[A-Za-z0-9.*_-]*")  # what URLEncoder leaves alone (space aside)
# Every ASCII character URLEncoder encodes, with its escape: most values that need encoding
# at all are ASCII (times, base64 signatures), and str.translate does them in one C loop.
_ASCII_ESCAPES = {code: f"%{code:02X}" for code in range(128) if not _KEPT_AS_IS.fullmatch(chr(code))}


def java_url_encode(value: str) -> str:
    """Encode like ``java.net.URLEncoder.encode(value, "UTF-8")`` with ``+`` as ``%20``."""
    if value.isascii():
        # Most values (ids, names, numbers) need no encoding; isalnum answers for most of
        # those at a fraction of the regular expression's cost.
        if value.isalnum() or _KEPT_AS_IS.fullmatch(value):
            return value
        return value.translate(_ASCII_ESCAPES)
    return quote(value, safe="*").replace("~", "%7E")


def _encode_base64(text: str) -> str:
    """``java_url_encode`` of base64 text, whose alphabet only has ``+``, ``/`` and ``=`` to escape."""
    return text.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")


# Parameter names are the client's own few (``command``, ``tags[0].key``...): encoded once each.
_encoded_name = lru_cache(maxsize=1024)(java_url_encode)


def string_to_sign(params: Mapping[str, str]) -> str:
    pairs = sorted((name, value) for name, value in params.items() if name != SIGNATURE_PARAM)
    return "&".join(f"{name}={java_url_encode(value)}" for name, value in pairs).lower()


def sign(params: Mapping[str, str], secret_key: str) -> str:
    digest = hmac.new(secret_key.encode(), string_to_sign(params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify(params: Mapping[str, str], secret_key: str, signature: str) -> bool:
    """Constant-time check of ``signature`` against the one ``params`` should carry."""
    return hmac.compare_digest(sign(params, secret_key).encode(), signature.encode())


def format_expires(moment: datetime) -> str:
    """CloudStack's ``expires`` format: ISO 8601 with a numeric zone, ``2026-11-22T01:02:03+0000``."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")


@lru_cache(maxsize=4)
def _expires_at(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(second))


@lru_cache(maxsize=4)
def _encoded_expires_at(second: int) -> str:
    return java_url_encode(_expires_at(second))


def _encoded_expires_in(seconds: int) -> str:
    """``java_url_encode(format_expires(now + seconds))``, made once per second rather than per call."""
    return _encoded_expires_at(int(time.time()) + seconds)


def parse_expires(text: str) -> datetime | None:
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
        try:
            return datetime.strptime(text.replace("Z", "+0000"), fmt)
        except ValueError:
            continue
    return None


def signed_form(params: Mapping[str, str], api_key: str, secret_key: str,
                *, ttl: timedelta = timedelta(minutes=10), now: datetime | None = None) -> str:
    """``signed_params`` as a form-encoded body, encoded once for both the signature and the body.

    The sorted pairs the signature covers, with their values encoded as CloudStack encodes
    them, make a valid form body as they stand (a form decoder reads ``%20`` as a space and
    every other escape alike); only names are encoded again, for the body (``tags[0].key``).
    """
    if now:
        expires = java_url_encode(format_expires(now + ttl))
    else:
        expires = _encoded_expires_in(int(ttl.total_seconds()))
    pairs = [(name, java_url_encode(value)) for name, value in params.items() if name not in _ADDED_PARAMS]
    pairs += (("apikey", java_url_encode(api_key)), ("signatureversion", "3"), ("expires", expires))
    pairs.sort()
    to_sign = "&".join(f"{name}={value}" for name, value in pairs).lower()
    digest = hmac.new(secret_key.encode(), to_sign.encode(), hashlib.sha1).digest()
    body = "&".join(f"{_encoded_name(name)}={value}" for name, value in pairs)
    return f"{body}&{SIGNATURE_PARAM}={_encode_base64(base64.b64encode(digest).decode())}"


# What signing adds to a request's parameters (replacing any the caller passed), and the signature.
_ADDED_PARAMS = frozenset({"apikey", "signatureversion", "expires", SIGNATURE_PARAM})


def signed_params(params: Mapping[str, str], api_key: str, secret_key: str,
                  *, ttl: timedelta = timedelta(minutes=10), now: datetime | None = None) -> dict[str, str]:
    """``params`` plus ``apikey``, ``signatureversion=3``, ``expires`` and ``signature``."""
    moment = now or datetime.now(timezone.utc)
    signed = {**params, "apikey": api_key, "signatureversion": "3",
              "expires": format_expires(moment + ttl)}
    signed[SIGNATURE_PARAM] = sign(signed, secret_key)
    return signed
