"""The id map: EC2-shaped ids, stable forever, race-free across processes."""

import asyncio
import re
import subprocess
import sys

import pytest

from ec2bridge.errors import EC2Error
from ec2bridge.ids import owner_id
from ec2bridge.stores.sqlite import SqliteDatabase, SqliteIdMap


@pytest.fixture
def db(tmp_path):
    database = SqliteDatabase(tmp_path / "ids.sqlite3")
    yield database
    database.close()


async def test_minted_ids_look_like_aws_and_are_stable(db):
    ids = SqliteIdMap(db)
    first = await ids.ec2_id("i", "uuid-1", "acct-a")
    assert re.fullmatch(r"i-[0-9a-f]{17}", first)
    assert await ids.ec2_id("i", "uuid-1", "acct-a") == first
    assert await SqliteIdMap(db).ec2_id("i", "uuid-1", "acct-a") == first  # a fresh cache reads the row
    assert await ids.ec2_id("vol", "uuid-1", "acct-a") != first  # kinds are separate
    record = await SqliteIdMap(db).backend_id("i", first)
    assert (record.backend_id, record.account) == ("uuid-1", "acct-a")


async def test_unknown_and_malformed_ids(db):
    ids = SqliteIdMap(db)
    vol = await ids.ec2_id("vol", "u", "a")
    for bad, code in (("i-12345678901234567", "InvalidInstanceID.NotFound"),
                      ("i-xyz", "InvalidInstanceID.Malformed"),
                      ("ami-0123456789abcdef0", "InvalidInstanceID.Malformed"),
                      (vol.replace("vol-", "i-"), "InvalidInstanceID.NotFound")):
        with pytest.raises(EC2Error) as caught:
            await ids.backend_id("i", bad)
        assert caught.value.code == code, bad


def test_owner_ids_are_twelve_digits_and_stable():
    assert re.fullmatch(r"\d{12}", owner_id("acct-uuid"))
    assert owner_id("acct-uuid") == owner_id("acct-uuid") != owner_id("other")


_MINT = """
import asyncio, sys
from pathlib import Path
from ec2bridge.stores.sqlite import SqliteDatabase, SqliteIdMap
ids = SqliteIdMap(SqliteDatabase(Path(sys.argv[1])))
got = asyncio.run(ids.ec2_ids("i", [(f"uuid-{n}", "acct") for n in range(300)]))
print(",".join(got[(f"uuid-{n}", "acct")] for n in range(300)))
"""


def test_concurrent_processes_agree_on_every_id(tmp_path):
    path = tmp_path / "shared.sqlite3"
    SqliteDatabase(path).close()
    procs = [subprocess.Popen([sys.executable, "-c", _MINT, str(path)], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    outputs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(outputs)) == 1 and len(outputs[0].split(",")) == 300
