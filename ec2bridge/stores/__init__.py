"""Durable state of the bridge, behind interfaces that more than one backend can implement.

- ``signing.keystore.KeyStore``: access keys and the CloudStack credentials they act as.
- (more stores join here: the id map, reservations, idempotency tokens, ...)

``open_database(url)`` picks the backend from a URL. SQLite (``sqlite:///path``) is the
default: one file under the data dir, WAL mode so several bridge processes can share it.
PostgreSQL will implement the same interfaces for many bridges on many hosts.
"""

from __future__ import annotations

from pathlib import Path

from ec2bridge.stores.sqlite import SqliteDatabase


def default_database_url(data_dir: Path) -> str:
    return f"sqlite:///{Path(data_dir).resolve() / 'ec2bridge.sqlite3'}"


def open_database(url: str) -> SqliteDatabase:
    if url.startswith("sqlite:///"):
        return SqliteDatabase(Path(url[len("sqlite:///"):]))
    raise ValueError(f"unsupported database URL {url!r} (only sqlite:/// is available)")
