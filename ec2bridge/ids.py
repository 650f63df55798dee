"""EC2-style ids for CloudStack objects: the one id map.

An EC2 id (``i-0123456789abcdef0``: a kind prefix and 17 hex digits, as current AWS mints them)
is minted the first time the bridge sees a CloudStack object and stays the same forever. A
row is keyed by (kind, CloudStack id, owning account); CloudStack ids are uuids for most
kinds and names for key pairs, which CloudStack scopes per account. Rows are never changed
or deleted, so every process may cache them without invalidation.

Owner ids (``OwnerId``) are 12-digit numbers derived from the owning CloudStack account
("<domain uuid>/<account name>", as CloudStack objects name their owner), so they need no
storage and agree across processes.
"""

from __future__ import annotations

import abc
import hashlib
import re
import secrets
from dataclasses import dataclass

from ec2bridge.errors import EC2Error


@dataclass(frozen=True)
class Kind:
    prefix: str
    noun: str         # as AWS words the NotFound message
    error_name: str   # Invalid<error_name>.NotFound
    malformed_name: str = ""  # Invalid<malformed_name>.Malformed, when AWS names it differently

    @property
    def malformed_code(self) -> str:
        return f"Invalid{self.malformed_name or self.error_name}.Malformed"


KINDS = {k.prefix: k for k in (
    Kind("i", "instance ID", "InstanceID"),
    Kind("ami", "image id", "AMIID"),
    Kind("vol", "volume", "Volume"),
    Kind("snap", "snapshot", "Snapshot"),
    Kind("sg", "security group", "Group", "GroupId"),  # AWS: InvalidGroup.NotFound, InvalidGroupId.Malformed
    Kind("sgr", "security group rule", "SecurityGroupRuleId"),
    Kind("key", "key pair", "KeyPair"),
    Kind("eipalloc", "allocation ID", "AllocationID"),
    Kind("eipassoc", "association ID", "AssociationID"),
    Kind("vpc", "vpc ID", "VpcID"),
    Kind("subnet", "subnet ID", "SubnetID"),
    Kind("r", "reservation ID", "ReservationID"),
    Kind("eni", "network interface", "NetworkInterfaceID"),
)}

_ID_PATTERN = re.compile(r"^([a-z]+)-([0-9a-f]{8}|[0-9a-f]{17})$")


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(9)[:17]}"


def owner_id(account_key: str) -> str:
    """A stable 12-digit AWS-style account number for a CloudStack account."""
    digest = int.from_bytes(hashlib.sha256(f"ec2bridge-account:{account_key}".encode()).digest()[:8], "big")
    return f"{digest % 10**12:012d}"


def not_found(prefix: str, ids: list[str] | str) -> EC2Error:
    kind = KINDS[prefix]
    names = ", ".join(ids) if isinstance(ids, list) else ids
    return EC2Error(f"Invalid{kind.error_name}.NotFound", f"The {kind.noun} '{names}' does not exist")


def malformed(prefix: str, ec2_id: str) -> EC2Error:
    kind = KINDS[prefix]
    return EC2Error(kind.malformed_code, f'Invalid id: "{ec2_id}" (expecting "{prefix}-...")')


def check_format(prefix: str, ec2_id: str) -> None:
    match = _ID_PATTERN.match(ec2_id)
    if not match or match.group(1) != prefix:
        raise malformed(prefix, ec2_id)


@dataclass(frozen=True)
class IdRecord:
    ec2_id: str
    kind: str
    backend_id: str
    account: str


class IdMap(abc.ABC):
    """Storage interface of the id map; see ``ec2bridge.stores`` for implementations."""

    @abc.abstractmethod
    async def ec2_ids(self, kind: str, objects: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """EC2 ids for (backend id, account) pairs, minting the ones never seen."""

    @abc.abstractmethod
    async def lookup(self, ec2_id: str) -> IdRecord | None: ...

    async def ec2_id(self, kind: str, backend_id: str, account: str) -> str:
        return (await self.ec2_ids(kind, [(backend_id, account)]))[(backend_id, account)]

    async def backend_id(self, kind: str, ec2_id: str) -> IdRecord:
        """The record of an EC2 id of this kind, or the NotFound / Malformed error AWS gives."""
        check_format(kind, ec2_id)
        record = await self.lookup(ec2_id)
        if record is None or record.kind != kind:
            raise not_found(kind, ec2_id)
        return record
