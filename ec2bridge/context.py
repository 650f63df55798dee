"""What an action sees of the world: the caller, the configuration and the shared services.

Actions call CloudStack through the context, which signs with the caller's own CloudStack
keys: CloudStack itself then keeps one account from seeing another's resources.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable

from ec2bridge.answer_memo import AnswerMemo, KnownAnswer, answer_key
from ec2bridge.config import Config
from signing.keystore import Credential


@dataclass(slots=True)  # read-only by convention; see signing.request.HttpRequest on frozen
class RequestContext:
    request_id: str
    action: str
    credential: Credential
    config: Config
    services: Any  # ec2bridge.app.Services; typed loosely to keep mappings free of app imports
    request: dict | None = None  # the parsed request, for the answer memo's key
    version: str = ""            # the API version the answer is rendered in
    keep_answer_as: tuple | None = None  # (key, basis), set by reuse_answer for the answer being built

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

    def reuse_answer(self, basis: Hashable) -> None:
        """Raise :class:`KnownAnswer` if this request was answered before on the same basis;
        otherwise the answer about to be built will be kept on it (``ec2bridge.answer_memo``).

        ``basis``: everything the answer is built from outside the store, read before the
        call; the store's change stamp is added here, so it must come before the store reads
        the answer depends on.
        """
        stamp = self.services.database.change_stamp()
        if stamp is None or self.request is None:
            return
        key, basis = answer_key(self.action, self.credential.access_key, self.version, self.request), (basis, stamp)
        known = self.services.store(AnswerMemo).known(key, basis)
        if known is not None:
            raise KnownAnswer(known)
        self.keep_answer_as = (key, basis)

    def answer_varies(self) -> None:
        """The answer being built depends on more than its basis (the clock): do not keep it."""
        self.keep_answer_as = None
