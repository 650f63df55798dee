"""STS GetCallerIdentity, answered at the EC2 endpoint: who the caller is, in AWS's words.

Ansible's amazon.aws modules ask STS for the account id before managing security groups, and
send the request to the EC2 endpoint they were given (SigV4 scope ``.../sts``, Version
2011-06-15); the protocol layer parses and renders it with STS's own model.

- ``Account``: the caller's 12-digit owner id, the ``OwnerId`` of everything it owns, derived
  the same way (``owner_id`` of the account's :func:`mappings.sources.owner_key`).
- ``Arn``: ``arn:aws:iam::<account>:user/<CloudStack user name>``. The user is the one of the
  caller's account whose API key signed the CloudStack calls (``listUsers`` shows each user's
  API key, never its secret); an account with one user needs no key to tell.
- ``UserId``: the CloudStack user's uuid. On AWS it is the IAM user's unique id (``AIDA...``):
  stable, never reused, and distinct from the access key, which a user may rotate.

When no user can be told apart (an API without ``apikey`` in ``listUsers`` and several users),
the answer is the account's root identity, as AWS answers for root credentials: ``UserId`` the
account id and ``Arn`` ``arn:aws:iam::<account>:root``.
"""

from __future__ import annotations

import hmac
from typing import Any

from ec2bridge.ids import owner_id
from mappings.records import Action
from mappings.sources import owner_key


async def caller_user(ctx: Any, account: Any) -> dict | None:
    users = await ctx.cs_list("listUsers", account=account.name, domainid=account.domain_id)
    api_key = ctx.creds[0].encode()
    for user in users:
        if hmac.compare_digest(str(user.get("apikey") or "").encode(), api_key):
            return user
    return users[0] if len(users) == 1 else None


async def get_caller_identity(ctx: Any, request: dict) -> dict:
    account = await ctx.account()
    number = owner_id(owner_key({"domainid": account.domain_id, "account": account.name}))
    user = await caller_user(ctx, account)
    if user is None:
        return {"UserId": number, "Account": number, "Arn": f"arn:aws:iam::{number}:root"}
    return {"UserId": user["id"], "Account": number, "Arn": f"arn:aws:iam::{number}:user/{user['username']}"}


RECORDS = (Action("GetCallerIdentity", get_caller_identity, mutating=False),)
