"""What an action sees of the world: the caller, the configuration and the shared services.

Actions call CloudStack through the context, which signs with the caller's own CloudStack
keys: CloudStack itself then keeps one account from seeing another's resources.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ec2bridge.config import Config
from signing.keystore import Credential


@dataclass(slots=True)  # read-only by convention; see signing.request.HttpRequest on frozen
class RequestContext:
    request_id: str
    action: str
    credential: Credential
    config: Config
    services: Any  # ec2bridge.app.Services; typed loosely to keep mappings free of app imports

    @property
    def creds(self) -> tuple[str, str]:
        return (self.credential.cloudstack_api_key, self.credential.cloudstack_secret_key)

    async def account(self):
        """The caller's CloudStack account (``ec2bridge.accounts.Account``)."""
        return await self.services.accounts.of(self.creds)

    async def cs_list(self, command: str, **params: Any) -> list[dict]:
        return await self.services.cloudstack.list_all(self.creds, command, params)

    async def cs_call(self, command: str, **params: Any) -> dict:
        return await self.services.cloudstack.call(self.creds, command, params)

    async def cs_run(self, command: str, **params: Any) -> dict:
        """Call a command and wait for its job if it is asynchronous."""
        return await self.services.cloudstack.run(self.creds, command, params)
