"""The SQLite backend: one database file, versioned schema, stores on top of it.

SQLite calls are synchronous. Every statement on the request path is a primary-key lookup or
a single-row write that takes microseconds, so it runs on the event loop rather than paying a
thread hop. WAL mode lets readers in other bridge processes proceed during a write, and
``busy_timeout`` makes a writer wait for another process's transaction instead of failing.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

from ec2bridge.ids import IdMap, IdRecord, new_id
from signing.keystore import Credential, KeyExists, KeyInfo, KeyNotFound, KeyStore, SecretBox

def _enable_wal(connection: sqlite3.Connection, attempts: int = 100) -> None:
    """Put the file in WAL mode. Switching a new file needs it alone, and when several
    processes start at once (``serve --workers N``) SQLite may answer "database is locked"
    at once, without waiting out the busy timeout; start-up then simply tries again."""
    for attempt in range(attempts):
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt + 1 == attempts:
                raise
            time.sleep(0.05)


class SqliteDatabase:
    """One SQLite file shared by every store; each store migrates its own tables.

    Migrations are per component (``"keys"``, ``"ids"``, ...): ordered, append-only lists of
    (version, script). A released migration is never edited; a change is a new version.
    """

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.connection.execute("PRAGMA busy_timeout = 5000")
        _enable_wal(self.connection)
        self.connection.execute("PRAGMA synchronous = NORMAL")
        self.connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")

    def migrate(self, component: str, migrations: list[tuple[int, str]]) -> None:
        db = self.connection
        db.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait, then see it done
        try:
            current = self.schema_version(component)
            for version, script in migrations:
                if version > current:
                    for statement in filter(str.strip, script.split(";")):
                        db.execute(statement)
                    db.execute("INSERT OR REPLACE INTO schema_versions VALUES (?, ?)", (component, version))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def schema_version(self, component: str) -> int:
        row = self.connection.execute("SELECT version FROM schema_versions WHERE component = ?",
                                      (component,)).fetchone()
        return row[0] if row else 0

    def change_stamp(self) -> tuple[int, int]:
        """A value that differs after any commit to the database since it was taken.

        ``PRAGMA data_version`` changes when another connection (another bridge process)
        commits; ``total_changes`` counts this connection's own writes. Equal stamps mean
        every read made in between saw the same data (``ec2bridge.answer_memo`` relies on it).
        """
        return self.connection.execute("PRAGMA data_version").fetchone()[0], self.connection.total_changes

    def close(self) -> None:
        self.connection.close()


KEY_MIGRATIONS: list[tuple[int, str]] = [
    (1, """
        CREATE TABLE access_keys (
            access_key            TEXT PRIMARY KEY,
            secret_sealed         TEXT NOT NULL,
            cloudstack_api_key    TEXT NOT NULL,
            cloudstack_secret_sealed TEXT NOT NULL,
            enabled               INTEGER NOT NULL DEFAULT 1,
            source                TEXT NOT NULL,
            created_at            TEXT NOT NULL,
            verified_at           TEXT
        )
    """),
]

ID_MIGRATIONS: list[tuple[int, str]] = [
    (1, """
        CREATE TABLE ids (
            ec2_id      TEXT PRIMARY KEY,
            kind        TEXT NOT NULL,
            backend_id  TEXT NOT NULL,
            account     TEXT NOT NULL,
            created_at  TEXT NOT NULL,
            UNIQUE (kind, backend_id, account)
        )
    """),
]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class SqliteKeyStore(KeyStore):
    """Access keys in SQLite, the row read on every lookup.

    Every ``get`` reads the key's row (a primary-key lookup), so a key disabled, deleted or
    rotated by any process stops working at its next request. What is cached is only the
    work of opening the row: the two AES-GCM decryptions. A cached credential is reused when
    the row read is exactly the row it was opened from, and for at most
    ``OPENED_TTL`` seconds, after which the row is opened again.
    """

    OPENED_TTL = 1.0
    _MAX_OPENED = 4096

    def __init__(self, database: SqliteDatabase, box: SecretBox):
        database.migrate("keys", KEY_MIGRATIONS)
        self._db = database.connection
        self._box = box
        self._opened: dict[str, tuple[tuple, Credential, float]] = {}  # access key -> (row, credential, until)

    async def get(self, access_key: str) -> Credential | None:
        row = self._db.execute(
            "SELECT access_key, secret_sealed, cloudstack_api_key, cloudstack_secret_sealed,"
            " enabled, source, created_at, verified_at FROM access_keys WHERE access_key = ?",
            (access_key,)).fetchone()
        if row is None:
            self._opened.pop(access_key, None)
            return None
        now = time.monotonic()
        opened = self._opened.get(access_key)
        if opened is not None and opened[0] == row and now < opened[2]:
            return opened[1]
        credential = self._credential(row)
        if len(self._opened) >= self._MAX_OPENED:
            self._opened = {key: entry for key, entry in self._opened.items() if now < entry[2]}
        self._opened[access_key] = (row, credential, now + self.OPENED_TTL)
        return credential

    def _credential(self, row: tuple) -> Credential:
        access_key, secret, cs_key, cs_secret, enabled, source, created, verified = row
        return Credential(
            access_key=access_key,
            secret_key=self._box.open(secret, f"ec2:{access_key}"),
            cloudstack_api_key=cs_key,
            cloudstack_secret_key=self._box.open(cs_secret, f"cloudstack:{access_key}"),
            enabled=bool(enabled), source=source,
            created_at=_parse_time(created), verified_at=_parse_time(verified))

    def _row(self, c: Credential) -> tuple:
        return (c.access_key, self._box.seal(c.secret_key, f"ec2:{c.access_key}"),
                c.cloudstack_api_key, self._box.seal(c.cloudstack_secret_key, f"cloudstack:{c.access_key}"),
                int(c.enabled), c.source, (c.created_at.isoformat() if c.created_at else _now()),
                c.verified_at.isoformat() if c.verified_at else None)

    async def add(self, credential: Credential) -> None:
        try:
            self._db.execute("INSERT INTO access_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self._row(credential))
        except sqlite3.IntegrityError:
            raise KeyExists(credential.access_key) from None

    async def put(self, credential: Credential) -> None:
        self._db.execute("INSERT OR REPLACE INTO access_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self._row(credential))

    async def list(self) -> list[KeyInfo]:
        rows = self._db.execute(
            "SELECT access_key, cloudstack_api_key, enabled, source, created_at FROM access_keys ORDER BY created_at")
        return [KeyInfo(ak, cs, bool(on), source, _parse_time(created)) for ak, cs, on, source, created in rows]

    def _update(self, sql: str, args: tuple, access_key: str) -> None:
        if self._db.execute(sql, args).rowcount == 0:
            raise KeyNotFound(access_key)

    async def set_enabled(self, access_key: str, enabled: bool) -> None:
        self._update("UPDATE access_keys SET enabled = ? WHERE access_key = ?", (int(enabled), access_key), access_key)

    async def delete(self, access_key: str) -> None:
        self._update("DELETE FROM access_keys WHERE access_key = ?", (access_key,), access_key)

    async def set_secret(self, access_key: str, secret_key: str) -> None:
        sealed = self._box.seal(secret_key, f"ec2:{access_key}")
        self._update("UPDATE access_keys SET secret_sealed = ? WHERE access_key = ?", (sealed, access_key), access_key)


class SqliteIdMap(IdMap):
    """Id rows in SQLite with a process-local cache (rows never change, so it never goes stale).

    Minting is race-free across processes: ``INSERT OR IGNORE`` against the unique
    (kind, backend id, account) constraint, then a re-read returns whichever id won. The cache
    is one table per kind keyed by the very (backend id, account) pairs callers pass, so a
    describe of thousands of objects finds its ids without building a key per object.
    """

    _CHUNK = 400  # stays under SQLite's bound-parameter limit

    def __init__(self, database: SqliteDatabase):
        database.migrate("ids", ID_MIGRATIONS)
        self._db = database.connection
        self._by_backend: dict[str, dict[tuple[str, str], str]] = {}
        self._by_ec2: dict[str, IdRecord] = {}

    def _remember(self, record: IdRecord) -> None:
        self._by_backend.setdefault(record.kind, {})[(record.backend_id, record.account)] = record.ec2_id
        self._by_ec2[record.ec2_id] = record

    async def ec2_ids(self, kind: str, objects: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        known = self._by_backend.setdefault(kind, {})
        found = {obj: known.get(obj) for obj in objects}
        missing = [obj for obj, ec2_id in found.items() if ec2_id is None]
        if missing:
            self._load(kind, missing)
            unminted = [obj for obj in missing if obj not in known]
            if unminted:
                self._mint(kind, unminted)
            found.update({obj: known[obj] for obj in missing})
        return found  # type: ignore[return-value]

    def _load(self, kind: str, objects: list[tuple[str, str]]) -> None:
        for start in range(0, len(objects), self._CHUNK):
            chunk = objects[start:start + self._CHUNK]
            rows = self._db.execute(
                f"SELECT ec2_id, kind, backend_id, account FROM ids WHERE kind = ? AND backend_id IN "
                f"({','.join('?' * len(chunk))})", (kind, *(backend for backend, _ in chunk)))
            for row in rows:
                self._remember(IdRecord(*row))

    def _mint(self, kind: str, objects: list[tuple[str, str]]) -> None:
        now = _now()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT OR IGNORE INTO ids VALUES (?, ?, ?, ?, ?)",
                                 [(new_id(kind), kind, backend, account, now) for backend, account in objects])
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._load(kind, objects)

    async def lookup(self, ec2_id: str) -> IdRecord | None:
        record = self._by_ec2.get(ec2_id)
        if record is None:
            row = self._db.execute("SELECT ec2_id, kind, backend_id, account FROM ids WHERE ec2_id = ?",
                                   (ec2_id,)).fetchone()
            if row:
                record = IdRecord(*row)
                self._remember(record)
        return record
