"""CloudStack's request signature, shared by the bridge's client and the simulator's verifier.

CloudStack (``ApiServer.verifyRequest``) signs a request like this:

1. every parameter except ``signature``;
2. sorted by name, case-sensitively, on the original names;
3. joined as ``name=value`` with the value encoded by Java's ``URLEncoder`` (only
   ``A-Za-z0-9.-*_`` kept, so ``~`` is encoded too) and ``+`` turned into ``%20``;
4. the whole string lowercased;
5. HMAC-SHA1 with the user's secret key, base64-encoded.

``signatureversion=3`` adds an ``expires`` timestamp that must lie in the future.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta, timezone
from typing import Mapping
from urllib.parse import quote

SIGNATURE_PARAM = "signature"


def java_url_encode(value: str) -> str:
    """Encode like ``java.net.URLEncoder.encode(value, "UTF-8")`` with ``+`` as ``%20``."""
    return quote(value, safe="*").replace("~", "%7E")


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


def parse_expires(text: str) -> datetime | None:
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
        try:
            return datetime.strptime(text.replace("Z", "+0000"), fmt)
        except ValueError:
            continue
    return None


def signed_params(params: Mapping[str, str], api_key: str, secret_key: str,
                  *, ttl: timedelta = timedelta(minutes=10), now: datetime | None = None) -> dict[str, str]:
    """``params`` plus ``apikey``, ``signatureversion=3``, ``expires`` and ``signature``."""
    moment = now or datetime.now(timezone.utc)
    signed = {**params, "apikey": api_key, "signatureversion": "3",
              "expires": format_expires(moment + ttl)}
    signed[SIGNATURE_PARAM] = sign(signed, secret_key)
    return signed
