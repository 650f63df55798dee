"""Bridge-kept instance state: reservations, ClientTokens, EC2-only attributes, durable work.

CloudStack holds the virtual machines; this store holds what EC2 has and CloudStack has not:

- **reservations**: one ``r-`` id per RunInstances call, with its ClientToken and a hash of the
  call's parameters (AWS: same token + same parameters -> the same reservation; different
  parameters -> ``IdempotentParameterMismatch``). VMs the bridge did not launch get their
  reservation id from the id map (kind ``r`` keyed by the VM), minted once like any id.
- **instances**: per-instance EC2 attributes (launch index, termination/stop protection,
  shutdown behaviour, root DeleteOnTermination), the last state reason and transition reason,
  and, once terminated, a *tombstone*: the instance as last described, because AWS keeps
  terminated instances visible for about an hour while CloudStack forgets an expunged VM.
- **volume_flags**: DeleteOnTermination of data volumes attached at launch or changed with
  ModifyInstanceAttribute (AWS: an attachment property; absent means false).
- **tasks**: durable intents of background work (observing a deploy job, attaching launch
  volumes, cleaning up a failed launch, terminating). A task is written before the work starts
  and deleted when it ends; a live worker holds a short *lease* it keeps renewing, so a task
  whose lease ran out belongs to a process that died and another process may claim it.

Every method is a handful of indexed statements; multi-statement changes run in one
``BEGIN IMMEDIATE`` transaction so that several bridge processes can share the file.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

from ec2bridge.ids import new_id
from ec2bridge.stores.sqlite import SqliteDatabase

MIGRATIONS: list[tuple[int, str]] = [
    (1, """
        CREATE TABLE reservations (
            reservation_id  TEXT PRIMARY KEY,
            owner           TEXT NOT NULL,
            client_token    TEXT,
            params_hash     TEXT NOT NULL,
            created_at      TEXT NOT NULL,
            UNIQUE (owner, client_token)
        );
        CREATE TABLE instances (
            instance_id              TEXT PRIMARY KEY,
            vm_id                    TEXT NOT NULL UNIQUE,
            owner                    TEXT NOT NULL,
            reservation_id           TEXT NOT NULL,
            launch_index             INTEGER NOT NULL DEFAULT 0,
            client_token             TEXT NOT NULL DEFAULT '',
            disable_api_termination  INTEGER NOT NULL DEFAULT 0,
            disable_api_stop         INTEGER NOT NULL DEFAULT 0,
            shutdown_behavior        TEXT NOT NULL DEFAULT 'stop',
            root_delete_on_termination INTEGER NOT NULL DEFAULT 1,
            state_reason_code        TEXT,
            state_reason_message     TEXT,
            transition_reason        TEXT NOT NULL DEFAULT '',
            terminating              INTEGER NOT NULL DEFAULT 0,
            terminated_at            REAL,
            tombstone                TEXT
        );
        CREATE INDEX instances_by_reservation ON instances (reservation_id);
        CREATE INDEX instances_terminated ON instances (owner, terminated_at);
        CREATE TABLE volume_flags (
            volume_id              TEXT PRIMARY KEY,
            instance_id            TEXT NOT NULL,
            delete_on_termination  INTEGER NOT NULL
        );
        CREATE TABLE tasks (
            task_id      TEXT PRIMARY KEY,
            kind         TEXT NOT NULL,
            owner        TEXT NOT NULL,
            payload      TEXT NOT NULL,
            lease_until  REAL NOT NULL,
            created_at   TEXT NOT NULL
        );
        CREATE INDEX tasks_by_owner ON tasks (owner, lease_until)
    """),
]

_CHUNK = 400  # stays under SQLite's bound-parameter limit
_INSTANCE_COLUMNS = ("instance_id", "vm_id", "owner", "reservation_id", "launch_index", "client_token",
                     "disable_api_termination", "disable_api_stop", "shutdown_behavior",
                     "root_delete_on_termination", "state_reason_code", "state_reason_message",
                     "transition_reason", "terminating", "terminated_at", "tombstone")
# Attributes ModifyInstanceAttribute may change, and the SQL type they are stored as.
ATTRIBUTES = {"disable_api_termination": bool, "disable_api_stop": bool, "shutdown_behavior": str,
              "root_delete_on_termination": bool}


@dataclass(frozen=True)
class InstanceRow:
    instance_id: str
    vm_id: str
    owner: str
    reservation_id: str
    launch_index: int = 0
    client_token: str = ""
    disable_api_termination: bool = False
    disable_api_stop: bool = False
    shutdown_behavior: str = "stop"
    root_delete_on_termination: bool = True
    state_reason_code: str | None = None
    state_reason_message: str | None = None
    transition_reason: str = ""
    terminating: bool = False
    terminated_at: float | None = None
    tombstone: str | None = None

    @classmethod
    def from_db(cls, row: tuple) -> "InstanceRow":
        values = dict(zip(_INSTANCE_COLUMNS, row))
        for name in ("disable_api_termination", "disable_api_stop", "root_delete_on_termination", "terminating"):
            values[name] = bool(values[name])
        return cls(**values)


@dataclass(frozen=True)
class Reservation:
    reservation_id: str
    owner: str
    client_token: str | None
    params_hash: str


@dataclass(frozen=True)
class Task:
    task_id: str
    kind: str
    owner: str
    payload: dict


class TokenInUse(Exception):
    """Another call with this ClientToken created its reservation first."""


def _now_text() -> str:
    return datetime.now(timezone.utc).isoformat()


class InstanceStore:
    def __init__(self, database: SqliteDatabase):
        database.migrate("instances", MIGRATIONS)
        self._db = database.connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    # -- reservations ----------------------------------------------------------------------------
    async def reservation_by_token(self, owner: str, client_token: str) -> Reservation | None:
        row = self._db.execute("SELECT reservation_id, owner, client_token, params_hash FROM reservations"
                               " WHERE owner = ? AND client_token = ?", (owner, client_token)).fetchone()
        return Reservation(*row) if row else None

    async def create_reservation(self, owner: str, client_token: str | None, params_hash: str) -> str:
        """A new ``r-`` id; raises :class:`TokenInUse` if the token was taken meanwhile."""
        reservation_id = new_id("r")
        try:
            self._db.execute("INSERT INTO reservations VALUES (?, ?, ?, ?, ?)",
                             (reservation_id, owner, client_token, params_hash, _now_text()))
        except sqlite3.IntegrityError:
            raise TokenInUse(client_token) from None
        return reservation_id

    async def drop_reservation(self, reservation_id: str) -> None:
        """Forget a reservation whose launch failed, so its ClientToken may be used again."""
        with self._transaction() as db:
            db.execute("DELETE FROM instances WHERE reservation_id = ?", (reservation_id,))
            db.execute("DELETE FROM reservations WHERE reservation_id = ?", (reservation_id,))

    # -- instances -------------------------------------------------------------------------------
    async def add_instances(self, rows: Iterable[InstanceRow], volume_flags: Iterable[tuple[str, str, bool]] = ()) -> None:
        with self._transaction() as db:
            db.executemany(f"INSERT INTO instances ({', '.join(_INSTANCE_COLUMNS)}) VALUES "
                           f"({', '.join('?' * len(_INSTANCE_COLUMNS))})",
                           [tuple(getattr(row, c) for c in _INSTANCE_COLUMNS) for row in rows])
            db.executemany("INSERT OR REPLACE INTO volume_flags VALUES (?, ?, ?)",
                           [(v, i, int(flag)) for v, i, flag in volume_flags])

    async def ensure_instance(self, instance_id: str, vm_id: str, owner: str, reservation_id: str) -> None:
        """A row for an instance the bridge did not launch, before its attributes are changed."""
        self._db.execute("INSERT OR IGNORE INTO instances (instance_id, vm_id, owner, reservation_id)"
                         " VALUES (?, ?, ?, ?)", (instance_id, vm_id, owner, reservation_id))

    async def by_vm_ids(self, vm_ids: list[str]) -> dict[str, InstanceRow]:
        rows: dict[str, InstanceRow] = {}
        for start in range(0, len(vm_ids), _CHUNK):
            chunk = vm_ids[start:start + _CHUNK]
            cursor = self._db.execute(f"SELECT {', '.join(_INSTANCE_COLUMNS)} FROM instances WHERE vm_id IN "
                                      f"({', '.join('?' * len(chunk))})", chunk)
            for row in cursor:
                record = InstanceRow.from_db(row)
                rows[record.vm_id] = record
        return rows

    async def get(self, instance_id: str) -> InstanceRow | None:
        row = self._db.execute(f"SELECT {', '.join(_INSTANCE_COLUMNS)} FROM instances WHERE instance_id = ?",
                               (instance_id,)).fetchone()
        return InstanceRow.from_db(row) if row else None

    async def in_reservation(self, reservation_id: str) -> list[InstanceRow]:
        cursor = self._db.execute(f"SELECT {', '.join(_INSTANCE_COLUMNS)} FROM instances WHERE reservation_id = ?"
                                  " ORDER BY launch_index", (reservation_id,))
        return [InstanceRow.from_db(row) for row in cursor]

    async def terminated_since(self, owner: str, since: float) -> list[InstanceRow]:
        cursor = self._db.execute(f"SELECT {', '.join(_INSTANCE_COLUMNS)} FROM instances"
                                  " WHERE owner = ? AND terminated_at >= ?", (owner, since))
        return [InstanceRow.from_db(row) for row in cursor]

    async def set_attribute(self, instance_id: str, name: str, value: Any) -> None:
        kind = ATTRIBUTES[name]  # a KeyError here is a bug in the caller, never user input
        self._db.execute(f"UPDATE instances SET {name} = ? WHERE instance_id = ?",
                         (int(value) if kind is bool else str(value), instance_id))

    async def record_transition(self, instance_ids: list[str], reason: str,
                                state_reason: tuple[str, str] | None) -> None:
        """Why the instance last changed state (StateTransitionReason and StateReason)."""
        code, message = state_reason or (None, None)
        self._db.executemany("UPDATE instances SET transition_reason = ?, state_reason_code = ?,"
                             " state_reason_message = ? WHERE instance_id = ?",
                             [(reason, code, message, i) for i in instance_ids])

    async def record_terminating(self, tombstones: dict[str, dict]) -> None:
        """Terminations just submitted: {instance id: how it will look once terminated}.

        The tombstone is written now, not when the job ends, so that an instance CloudStack
        has already expunged is never missing from DescribeInstances meanwhile."""
        now = time.time()
        self._db.executemany("UPDATE instances SET terminating = 1, terminated_at = ?, tombstone = ?"
                             " WHERE instance_id = ?",
                             [(now, json.dumps(t, default=_json_default), i) for i, t in tombstones.items()])

    async def cancel_termination(self, instance_ids: list[str]) -> None:
        """CloudStack refused the termination: the instance is what CloudStack says again."""
        self._db.executemany("UPDATE instances SET terminating = 0, terminated_at = NULL, tombstone = NULL,"
                             " transition_reason = '', state_reason_code = NULL, state_reason_message = NULL"
                             " WHERE instance_id = ?", [(i,) for i in instance_ids])

    async def record_terminated(self, instance_id: str, tombstone: dict, when: float | None = None,
                                state_reason: tuple[str, str] | None = None) -> None:
        """The instance is gone (terminated, or its launch failed): keep how it last looked."""
        sql = "UPDATE instances SET terminating = 0, terminated_at = ?, tombstone = ?"
        args: list[Any] = [when or time.time(), json.dumps(tombstone, default=_json_default)]
        if state_reason:
            sql += ", state_reason_code = ?, state_reason_message = ?"
            args += list(state_reason)
        self._db.execute(sql + " WHERE instance_id = ?", (*args, instance_id))

    # -- volumes ---------------------------------------------------------------------------------
    async def delete_on_termination(self, volume_ids: list[str]) -> dict[str, bool]:
        """DeleteOnTermination of data volumes that have a recorded value (others: false)."""
        flags: dict[str, bool] = {}
        for start in range(0, len(volume_ids), _CHUNK):
            chunk = volume_ids[start:start + _CHUNK]
            cursor = self._db.execute("SELECT volume_id, delete_on_termination FROM volume_flags WHERE volume_id IN"
                                      f" ({', '.join('?' * len(chunk))})", chunk)
            flags.update((volume_id, bool(flag)) for volume_id, flag in cursor)
        return flags

    async def set_delete_on_termination(self, volume_id: str, instance_id: str, flag: bool) -> None:
        self._db.execute("INSERT OR REPLACE INTO volume_flags VALUES (?, ?, ?)", (volume_id, instance_id, int(flag)))

    # -- durable background work -----------------------------------------------------------------
    async def add_task(self, kind: str, owner: str, payload: dict, lease: float) -> Task:
        task = Task(new_id("task"), kind, owner, payload)
        self._db.execute("INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?)",
                         (task.task_id, kind, owner, json.dumps(payload, default=_json_default), time.time() + lease,
                          _now_text()))
        return task

    async def save_task(self, task: Task, lease: float) -> None:
        """Persist the task's progress and renew its lease."""
        self._db.execute("UPDATE tasks SET payload = ?, lease_until = ? WHERE task_id = ?",
                         (json.dumps(task.payload, default=_json_default), time.time() + lease, task.task_id))

    async def finish_task(self, task: Task) -> None:
        self._db.execute("DELETE FROM tasks WHERE task_id = ?", (task.task_id,))

    async def claim_orphans(self, owner: str, lease: float) -> list[Task]:
        """Tasks of ``owner`` whose worker died (lease ran out), now leased to the caller.

        Called on every instance read, so the usual case (nothing orphaned) is one indexed
        read without a write lock; a claim re-checks the lease inside the transaction, so two
        processes never both take a task."""
        now = time.time()
        if self._db.execute("SELECT 1 FROM tasks WHERE owner = ? AND lease_until < ? LIMIT 1",
                            (owner, now)).fetchone() is None:
            return []
        with self._transaction() as db:
            rows = db.execute("SELECT task_id, kind, owner, payload FROM tasks WHERE owner = ? AND lease_until < ?",
                              (owner, now)).fetchall()
            db.executemany("UPDATE tasks SET lease_until = ? WHERE task_id = ?",
                           [(now + lease, row[0]) for row in rows])
        return [Task(task_id, kind, task_owner, json.loads(payload)) for task_id, kind, task_owner, payload in rows]


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in a tombstone")
