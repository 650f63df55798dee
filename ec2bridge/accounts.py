"""Who the caller is in CloudStack: auto-enrollment of users' own keys, and account lookup.

- ``CloudStackEnroller``: with the operator's CloudStack admin keys, an unknown EC2 access key
  that is some CloudStack user's API key is resolved with ``getUser`` (``userapikey``) and
  ``getUserKeys``; the user's own CloudStack keys then work as EC2 keys unchanged.
- ``AccountDirectory``: the CloudStack account behind a credential (id, name, domain, the
  derived 12-digit owner id), cached briefly per CloudStack API key: accounts do not move.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

from ec2bridge.cloudstack import CloudStackClient, CloudStackError, Credentials
from ec2bridge.ids import owner_id
from signing.keystore import Credential


class CloudStackEnroller:
    def __init__(self, client: CloudStackClient, admin: Credentials):
        self._client = client
        self._admin = admin

    async def __call__(self, access_key: str) -> Credential | None:
        try:
            user = (await self._client.call(self._admin, "getUser", {"userapikey": access_key})).get("user")
        except CloudStackError as error:
            if error.code in (431, 530):  # CloudStack: no user with that API key
                return None
            raise
        if not user or user.get("state", "enabled").lower() != "enabled":
            return None
        keys = (await self._client.call(self._admin, "getUserKeys", {"id": user["id"]})).get("userkeys") or {}
        if keys.get("apikey") != access_key or not keys.get("secretkey"):
            return None
        return Credential(access_key=access_key, secret_key=keys["secretkey"],
                          cloudstack_api_key=access_key, cloudstack_secret_key=keys["secretkey"],
                          source="cloudstack", created_at=datetime.now(timezone.utc),
                          verified_at=datetime.now(timezone.utc))


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    domain_id: str
    is_admin: bool

    @property
    def key(self) -> str:
        """How the id map and owner ids name an account: CloudStack objects carry the
        owning account as ``domainid`` + ``account`` (name), not as the account uuid."""
        return f"{self.domain_id}/{self.name}"

    @property
    def owner_id(self) -> str:
        return owner_id(self.key)


class AccountDirectory:
    def __init__(self, client: CloudStackClient, ttl: float = 300.0):
        self._client = client
        self._ttl = ttl
        self._cache: dict[str, tuple[float, Account]] = {}

    async def of(self, creds: Credentials) -> Account:
        cached = self._cache.get(creds[0])
        if cached and cached[0] > time.monotonic():
            return cached[1]
        account = await self._lookup(creds)
        self._cache[creds[0]] = (time.monotonic() + self._ttl, account)
        return account

    async def _lookup(self, creds: Credentials) -> Account:
        accounts = await self._client.list_all(creds, "listAccounts")
        if len(accounts) != 1:  # an admin sees every account: find its own through its key
            user = (await self._client.call(creds, "getUser", {"userapikey": creds[0]}))["user"]
            accounts = [a for a in accounts if a["id"] == user["accountid"]]
        account = accounts[0]
        # accounttype / roletype: 1 / Admin is the root admin in CloudStack.
        is_admin = int(account.get("accounttype", 0)) == 1 or account.get("roletype") == "Admin"
        return Account(account["id"], account["name"], account.get("domainid", ""), is_admin)
