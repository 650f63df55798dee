"""The key store: secrets sealed at rest, every change visible at once, the admin CLI."""

import asyncio
import os
import stat
import subprocess
import sys

import pytest

from ec2bridge.stores.sqlite import SqliteDatabase, SqliteKeyStore
from signing.keystore import (Credential, KeyExists, KeyNotFound, SecretBox, load_master_key)

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzSECRETzz"
CS_SECRET = "cloudstack-secret-zzPLAINTEXTzz"


@pytest.fixture
def store(tmp_path):
    database = SqliteDatabase(tmp_path / "keys.sqlite3")
    yield SqliteKeyStore(database, SecretBox(load_master_key(tmp_path))), tmp_path
    database.close()


async def test_round_trip_and_secrets_never_in_plaintext(store):
    keys, data_dir = store
    await keys.add(Credential("AKIAROUNDTRIP", SECRET, "cs-api", CS_SECRET))
    got = await keys.get("AKIAROUNDTRIP")
    assert (got.secret_key, got.cloudstack_api_key, got.cloudstack_secret_key) == (SECRET, "cs-api", CS_SECRET)
    assert SECRET not in repr(got) and CS_SECRET not in repr(got)
    for path in data_dir.iterdir():
        content = path.read_bytes()
        assert SECRET.encode() not in content and CS_SECRET.encode() not in content, path


async def test_master_key_file_is_private_and_stable(tmp_path):
    first = load_master_key(tmp_path)
    assert stat.S_IMODE(os.stat(tmp_path / "master.key").st_mode) == 0o600
    assert load_master_key(tmp_path) == first
    assert load_master_key(tmp_path, {"EC2BRIDGE_MASTER_KEY": "A" * 43 + "="}) != first


async def test_wrong_master_key_cannot_open(store, tmp_path):
    keys, _ = store
    await keys.add(Credential("AKIAWRONGMASTER", SECRET, "cs", CS_SECRET))
    other = SqliteKeyStore(SqliteDatabase(tmp_path / "keys.sqlite3"), SecretBox(os.urandom(32)))
    with pytest.raises(Exception):
        await other.get("AKIAWRONGMASTER")


async def test_sealed_secret_is_bound_to_its_row(store):
    keys, _ = store
    await keys.add(Credential("AKIAONE", SECRET, "cs", CS_SECRET))
    await keys.add(Credential("AKIATWO", "other-secret", "cs2", "other-cs"))
    db = keys._db
    sealed = db.execute("SELECT secret_sealed FROM access_keys WHERE access_key='AKIAONE'").fetchone()[0]
    db.execute("UPDATE access_keys SET secret_sealed=? WHERE access_key='AKIATWO'", (sealed,))
    with pytest.raises(Exception):
        await keys.get("AKIATWO")


async def test_add_duplicate_disable_enable_rotate_delete(store):
    keys, _ = store
    await keys.add(Credential("AKIALIFE", SECRET, "cs", CS_SECRET))
    with pytest.raises(KeyExists):
        await keys.add(Credential("AKIALIFE", "x", "y", "z"))
    await keys.set_enabled("AKIALIFE", False)
    assert (await keys.get("AKIALIFE")).enabled is False
    await keys.set_enabled("AKIALIFE", True)
    await keys.set_secret("AKIALIFE", "new-secret")
    assert (await keys.get("AKIALIFE")).secret_key == "new-secret"
    assert [k.access_key for k in await keys.list()] == ["AKIALIFE"]
    await keys.delete("AKIALIFE")
    assert await keys.get("AKIALIFE") is None
    for operation in (keys.delete("AKIALIFE"), keys.set_enabled("AKIALIFE", True), keys.set_secret("AKIALIFE", "s")):
        with pytest.raises(KeyNotFound):
            await operation


def test_schema_is_versioned_and_migrations_are_idempotent(tmp_path):
    first = SqliteDatabase(tmp_path / "db.sqlite3")
    SqliteKeyStore(first, SecretBox(os.urandom(32)))
    assert first.schema_version("keys") == 1
    first.migrate("keys", [(1, "CREATE TABLE must_not_run (x)"), (2, "CREATE TABLE added_later (x)")])
    first.close()
    again = SqliteDatabase(tmp_path / "db.sqlite3")
    SqliteKeyStore(again, SecretBox(os.urandom(32)))  # re-running released migrations is a no-op
    assert again.schema_version("keys") == 2
    tables = {row[0] for row in again.connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "added_later" in tables and "must_not_run" not in tables


def _cli(*args, data_dir):
    return subprocess.run([sys.executable, "-m", "ec2bridge", "keys", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=60)


def test_keys_cli_never_prints_secrets(tmp_path):
    added = _cli("add", "--access-key", "AKIACLI", "--secret-key", SECRET, data_dir=tmp_path)
    assert added.returncode == 0, added.stderr
    listed = _cli("list", data_dir=tmp_path)
    assert "AKIACLI" in listed.stdout and SECRET not in listed.stdout + listed.stderr
    assert _cli("disable", "AKIACLI", data_dir=tmp_path).returncode == 0
    assert "disabled" in _cli("list", data_dir=tmp_path).stdout
    rotated = _cli("rotate", "AKIACLI", data_dir=tmp_path)
    assert rotated.returncode == 0 and "shown once" in rotated.stdout
    assert _cli("delete", "AKIACLI", data_dir=tmp_path).returncode == 0
    missing = _cli("delete", "AKIACLI", data_dir=tmp_path)
    assert missing.returncode == 1 and "no access key" in missing.stderr
    generated = _cli("add", data_dir=tmp_path)
    assert generated.returncode == 0 and "secret key (shown once)" in generated.stdout
