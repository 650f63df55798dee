"""Bridge-kept tags and key pair details: what CloudStack cannot hold for EC2.

- :class:`TagStore` (component ``tags``): the tags of resources CloudStack cannot tag (key
  pairs: CloudStack's ``ResourceObjectType`` has no SSH key pair). A row is one tag of one
  EC2 id, with the owning account (``domainid/account``) so that DescribeTags lists an
  account's tags without scanning others'. Keys compare case-sensitively, as AWS's do.
  AWS allows at most 50 tags per resource; :meth:`TagStore.put` checks that inside the
  transaction that writes, so two bridge processes tagging one resource cannot exceed it.
- :class:`KeyPairStore` (component ``keypairs``): what EC2 shows of a key pair and CloudStack
  does not keep: the fingerprint in AWS's format (CloudStack only has the MD5 of the OpenSSH
  key blob), the key type, the public key and the creation time. A row belongs to one EC2 key
  pair id and records CloudStack's fingerprint too: it only describes the CloudStack key pair
  whose fingerprint still matches, so a key pair replaced behind the bridge's back (same name,
  new key) never shows another key's details.

Both live in this module because the key pair area owns it; each class migrates its own
component and could move to a file of its own without a schema change. DescribeKeyPairs
needs both tables: :meth:`KeyPairStore.details_and_tags` reads them in one statement, since
each statement is a read transaction of its own (WAL locks, two system calls), which costs
more than the few rows a key pair listing finds.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Iterator, Mapping

import orjson

from ec2bridge.stores.sqlite import SqliteDatabase

TAG_MIGRATIONS: list[tuple[int, str]] = [
    (1, """
        CREATE TABLE resource_tags (
            ec2_id   TEXT NOT NULL,
            kind     TEXT NOT NULL,
            account  TEXT NOT NULL,
            key      TEXT NOT NULL,
            value    TEXT NOT NULL,
            PRIMARY KEY (ec2_id, key)
        );
        CREATE INDEX resource_tags_by_account ON resource_tags (account, kind)
    """),
]

KEY_PAIR_MIGRATIONS: list[tuple[int, str]] = [
    (1, """
        CREATE TABLE key_pairs (
            ec2_id                  TEXT PRIMARY KEY,
            account                 TEXT NOT NULL,
            name                    TEXT NOT NULL,
            key_type                TEXT NOT NULL,
            fingerprint             TEXT NOT NULL,
            cloudstack_fingerprint  TEXT NOT NULL,
            public_key              TEXT NOT NULL,
            created_at              TEXT NOT NULL
        )
    """),
]

_CHUNK = 400  # stays under SQLite's bound-parameter limit


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]


def _marks(items: list) -> str:
    return ",".join("?" * len(items))


class TooManyTags(Exception):
    """Writing the tags would leave a resource with more than the allowed number."""


@dataclass(frozen=True)
class StoredTag:
    ec2_id: str
    kind: str
    key: str
    value: str


class TagStore:
    def __init__(self, database: SqliteDatabase):
        database.migrate("tags", TAG_MIGRATIONS)
        self._db = database.connection

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    async def tags(self, ec2_id: str) -> dict[str, str]:
        rows = self._db.execute("SELECT key, value FROM resource_tags WHERE ec2_id = ?", (ec2_id,))
        return dict(rows.fetchall())

    async def tags_of(self, ec2_ids: list[str]) -> dict[str, dict[str, str]]:
        """{ec2 id: {key: value}} for each id that has tags."""
        found: dict[str, dict[str, str]] = {}
        for chunk in _chunks(list(dict.fromkeys(ec2_ids))):
            rows = self._db.execute(
                f"SELECT ec2_id, key, value FROM resource_tags WHERE ec2_id IN ({_marks(chunk)})", chunk)
            for ec2_id, key, value in rows:
                found.setdefault(ec2_id, {})[key] = value
        return found

    async def account_tags(self, account: str, kinds: Iterable[str] | None = None) -> list[StoredTag]:
        """Every tag on the account's resources, optionally of some kinds only."""
        sql, args = "SELECT ec2_id, kind, key, value FROM resource_tags WHERE account = ?", [account]
        if kinds is not None:
            kinds = list(kinds)
            sql += f" AND kind IN ({_marks(kinds)})"
            args += kinds
        return [StoredTag(*row) for row in self._db.execute(sql, args)]

    async def put(self, ec2_id: str, kind: str, account: str, tags: Mapping[str, str], limit: int) -> None:
        """Set the tags (overwriting values of existing keys); :class:`TooManyTags` if the
        resource would end up with more than ``limit`` tags."""
        with self._transaction():
            existing = {key for (key,) in self._db.execute(
                "SELECT key FROM resource_tags WHERE ec2_id = ?", (ec2_id,))}
            if len(existing | set(tags)) > limit:
                raise TooManyTags(ec2_id)
            self._db.executemany("INSERT OR REPLACE INTO resource_tags VALUES (?, ?, ?, ?, ?)",
                                 [(ec2_id, kind, account, key, value) for key, value in tags.items()])

    async def remove(self, ec2_id: str, tags: Mapping[str, str]) -> None:
        """Delete exactly these (key, value) pairs; a value changed meanwhile is kept."""
        self._db.executemany("DELETE FROM resource_tags WHERE ec2_id = ? AND key = ? AND value = ?",
                             [(ec2_id, key, value) for key, value in tags.items()])

    async def forget(self, ec2_id: str) -> None:
        """Every tag of a resource that is gone."""
        self._db.execute("DELETE FROM resource_tags WHERE ec2_id = ?", (ec2_id,))


@dataclass(frozen=True)
class KeyPairDetails:
    ec2_id: str
    account: str
    name: str
    key_type: str                 # "rsa" or "ed25519"
    fingerprint: str              # as AWS computes it for this key's origin
    cloudstack_fingerprint: str   # CloudStack's MD5 of the OpenSSH blob, to recognise the key
    public_key: str               # OpenSSH text
    created_at: datetime


class KeyPairStore:
    def __init__(self, database: SqliteDatabase):
        database.migrate("keypairs", KEY_PAIR_MIGRATIONS)
        database.migrate("tags", TAG_MIGRATIONS)  # details_and_tags reads the tags table too
        self._db = database.connection

    async def record(self, details: KeyPairDetails) -> None:
        self._db.execute("INSERT OR REPLACE INTO key_pairs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (details.ec2_id, details.account, details.name, details.key_type, details.fingerprint,
                          details.cloudstack_fingerprint, details.public_key, details.created_at.isoformat()))

    async def details_and_tags(self, ec2_ids: list[str]) -> tuple[dict[str, KeyPairDetails], dict[str, dict[str, str]]]:
        """The details of each id that has some, and ``TagStore.tags_of(ec2_ids)``, read in one
        statement."""
        found: dict[str, KeyPairDetails] = {}
        tags: dict[str, dict[str, str]] = {}
        for row in self._db.execute(_DETAILS_AND_TAGS, (orjson.dumps(ec2_ids).decode(),)):
            if row[0] == _DETAILS_ROW:
                found[row[1]] = KeyPairDetails(*row[1:8], datetime.fromisoformat(row[8]))
            else:
                tags.setdefault(row[1], {})[row[2]] = row[3]
        return found, tags

    async def forget(self, ec2_id: str) -> None:
        self._db.execute("DELETE FROM key_pairs WHERE ec2_id = ?", (ec2_id,))


# Key pair rows tagged _DETAILS_ROW, then tag rows (id, key, value) tagged _TAG_ROW, for the
# ids of a JSON array. json_each walks the array in place, where an "IN (?, ?, ...)" list
# would first be copied into a temporary index (most of the cost of a short query), and
# one parameter holds any number of ids.
_DETAILS_ROW, _TAG_ROW = 0, 1
_DETAILS_AND_TAGS = (
    f"SELECT {_DETAILS_ROW}, k.ec2_id, account, name, key_type, fingerprint, cloudstack_fingerprint, public_key,"
    " created_at FROM json_each(?1) AS wanted JOIN key_pairs AS k ON k.ec2_id = wanted.value"
    f" UNION ALL SELECT {_TAG_ROW}, t.ec2_id, t.key, t.value, NULL, NULL, NULL, NULL, NULL"
    " FROM json_each(?1) AS wanted JOIN resource_tags AS t ON t.ec2_id = wanted.value")
