"""Who is calling: signature verification against the key store, with auto-enrollment.

The order follows AWS: find the signature scheme and the access key, look the key up (a
CloudStack user's own API key is enrolled on first use when the bridge has CloudStack admin
credentials), refuse disabled keys, then verify the signature with the key's secret.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable

from signing import verifier
from signing.errors import AuthError
from signing.keystore import Credential, KeyStore
from signing.request import HttpRequest

log = logging.getLogger(__name__)

# Looks an access key up in CloudStack; returns the key's credential, or None if CloudStack
# has no user with that API key. Provided by ec2bridge.enrollment when admin keys are set.
Enroll = Callable[[str], Awaitable[Credential | None]]


def unknown_key() -> AuthError:
    return AuthError("AuthFailure", "AWS was not able to validate the provided access credentials")


class Authenticator:
    def __init__(self, keys: KeyStore, enroll: Enroll | None, *, max_skew: timedelta, enrolled_ttl: timedelta):
        self._keys = keys
        self._enroll = enroll
        self._max_skew = max_skew
        self._enrolled_ttl = enrolled_ttl

    async def authenticate(self, request: HttpRequest) -> Credential:
        claim = verifier.parse_auth(request)
        if claim.security_token:
            # The bridge issues no temporary credentials, so no session token can be valid.
            raise AuthError("AuthFailure", "The security token included in the request is invalid")
        now = datetime.now(timezone.utc)  # the request's arrival, for its clock and the key's age
        credential = await self._credential(claim.access_key, now)
        if credential is None or not credential.enabled:
            raise unknown_key()
        verifier.verify(request, claim, credential.secret_key, now=now, max_skew=self._max_skew)
        return credential

    async def _credential(self, access_key: str, now: datetime) -> Credential | None:
        credential = await self._keys.get(access_key)
        if self._enroll is None or (credential and not self._needs_check(credential, now)):
            return credential
        fresh = await self._enroll(access_key)
        if fresh is None:
            if credential is not None:  # the CloudStack user or its keys are gone
                await self._keys.delete(access_key)
                log.info("dropped enrolled key %s: no longer known to CloudStack", access_key)
            return None
        if credential is not None and not credential.enabled:
            return credential  # an operator disabled it: CloudStack must not re-enable it
        await self._keys.put(fresh)
        if credential is None:
            log.info("enrolled CloudStack API key %s as an EC2 access key", access_key)
        return fresh

    def _needs_check(self, credential: Credential, now: datetime) -> bool:
        # Keys registered with `ec2bridge keys add` are the operator's word; enrolled keys
        # are copies of CloudStack's and are re-checked so that revoked keys stop working.
        if credential.source != "cloudstack" or not credential.enabled:
            return False
        verified = credential.verified_at
        return verified is None or now - verified > self._enrolled_ttl
