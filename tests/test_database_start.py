"""Several processes opening one new database at the same moment (``serve --workers N``)
all start: the switch to WAL mode is retried when SQLite answers "database is locked"."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

from ec2bridge.stores.sqlite import SqliteDatabase, _enable_wal


def _open(path: str, barrier, results) -> None:
    barrier.wait()
    database = SqliteDatabase(Path(path))
    results.put(database.connection.execute("PRAGMA journal_mode").fetchone()[0])


def test_processes_opening_a_new_database_together_all_get_wal(tmp_path):
    context = multiprocessing.get_context("fork")
    for round_number in range(5):
        path = tmp_path / f"db{round_number}" / "bridge.sqlite3"
        barrier, results = context.Barrier(6), context.Queue()
        workers = [context.Process(target=_open, args=(str(path), barrier, results)) for _ in range(6)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        assert [worker.exitcode for worker in workers] == [0] * 6
        assert [results.get(timeout=5) for _ in workers] == ["wal"] * 6


def test_a_lock_that_persists_is_still_an_error(tmp_path, monkeypatch):
    class Locked:
        def execute(self, statement):
            raise sqlite3.OperationalError("database is locked")
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    try:
        _enable_wal(Locked(), attempts=3)
    except sqlite3.OperationalError as error:
        assert "locked" in str(error)
    else:
        raise AssertionError("a lock that never clears must surface")
