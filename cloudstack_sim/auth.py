"""Request authentication as ``ApiServer.verifyRequest`` does it, through ``signing.cloudstack``.

The ``apikey``, ``signature``, ``signatureversion`` and ``expires`` parameters are recognised
whatever their case (clients send ``apiKey``/``signatureVersion``); the api key itself is matched
case-insensitively. ``signatureversion=3`` requires an ``expires`` in the future (and, when
``enforce.post.requests.and.timestamps`` is on, at most 15 minutes ahead). Every failure is the
same 401, so a caller learns nothing about which check failed.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Mapping

from signing import cloudstack as cs_signing

from .errors import unauthorized
from .state import SimState

MAX_EXPIRES_AHEAD = timedelta(minutes=15)


def find_param(params: Mapping[str, str], name: str) -> str | None:
    for key, value in params.items():
        if key.lower() == name:
            return value
    return None


def authenticate(state: SimState, params: Mapping[str, str], *, require_command: bool = True) -> tuple[dict, dict]:
    """The (user, account) that signed ``params`` (original names and values), or a 401."""
    api_key, signature = find_param(params, "apikey"), find_param(params, "signature")
    # verifyRequest: "missing command, ignoring request" -> 401
    if not api_key or not signature or (require_command and not find_param(params, "command")):
        raise unauthorized()
    check_expiry(state, params)
    user = state.get("user", state.keys_by_apikey.get(api_key.lower()))
    if user is None or not user.get("secretkey"):
        raise unauthorized()
    unsigned = {name: value for name, value in params.items() if name.lower() != "signature"}
    if not cs_signing.verify(unsigned, user["secretkey"], signature):
        raise unauthorized()
    account = state.get("account", user["account_id"])
    if user["state"] != "enabled" or account is None or account["state"] != "enabled":
        raise unauthorized()
    return user, account


def check_expiry(state: SimState, params: Mapping[str, str]) -> None:
    version = find_param(params, "signatureversion")
    if version != "3":
        if state.config.enforce_timestamps:
            raise unauthorized()
        return
    text = find_param(params, "expires")
    expires = cs_signing.parse_expires(text) if text else None
    if expires is None:
        raise unauthorized()
    now = datetime.now(timezone.utc)
    if expires < now or (state.config.enforce_timestamps and expires > now + MAX_EXPIRES_AHEAD):
        raise unauthorized()
