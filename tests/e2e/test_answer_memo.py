"""A repeated DescribeInstances is answered from the answer memo only while every input of the
answer is unchanged: the VMs as CloudStack lists them, the catalog listings, the bridge's store
(written by this process or by another), the request and its API version, the clock.

Each test changes one input and checks that the next answer shows the change, so dropping
that input from the memo's basis or key fails it.
"""

from __future__ import annotations

import re
import sqlite3

import pytest

from ec2bridge.answer_memo import AnswerMemo, answer_key
from mappings.zones import CatalogCache
from tests import wire
from tests.e2e.test_instances import launch

VERSION = "2016-11-15"


@pytest.fixture()
def account(world):
    return world.fresh_client("answers")


def describe(world, credentials, action: str = "DescribeInstances", **params) -> wire.Reply:
    reply = wire.sigv4(world.bridge.url, credentials, {"Action": action, "Version": VERSION, **params})
    assert reply.status == 200, reply.body[:500]
    return reply


def request_id(reply: wire.Reply) -> str:
    return re.search(rb"<requestId>([^<]*)</requestId>", reply.body).group(1).decode()


def without_request_id(reply: wire.Reply) -> bytes:
    return reply.body.replace(request_id(reply).encode(), b"")


def hits(world) -> int:
    return world.bridge.services.store(AnswerMemo).hits


def test_a_repeated_describe_is_the_kept_answer_with_its_own_request_id(world, account):
    ec2, credentials = account
    launch(ec2, 2)
    first = describe(world, credentials)
    before = hits(world)
    second = describe(world, credentials)
    assert hits(world) == before + 1
    assert without_request_id(second) == without_request_id(first)
    assert request_id(second) == second.headers["x-amzn-RequestId"] != request_id(first)
    assert ec2.describe_instances()["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"


def test_a_change_in_cloudstack_is_a_miss(world, account):
    ec2, credentials = account
    instance_id = launch(ec2)[0]
    world.settle()  # the launch's background task has written its last
    describe(world, credentials)
    before = hits(world)
    describe(world, credentials)
    assert hits(world) == before + 1  # kept
    world.cloudstack(credentials, "stopVirtualMachine", id=world.backend(instance_id))
    assert b"<name>stopped</name>" in describe(world, credentials).body
    assert hits(world) == before + 1


@pytest.mark.parametrize("connection", ["another process's", "this process's"])
def test_a_write_to_the_store_is_a_miss(world, account, connection):
    """Another bridge process commits through its own connection (SQLite's data_version shows
    it); this process writes through the shared one (its total_changes show it)."""
    ec2, credentials = account
    instance_id = launch(ec2, ClientToken=f"token-{connection[:7]}")[0]
    world.settle()
    assert b"<clientToken>token-" in describe(world, credentials).body
    database = world.bridge.services.database
    write = sqlite3.connect(database.path) if connection.startswith("another") else database.connection
    try:
        write.execute("UPDATE instances SET client_token = 'changed' WHERE instance_id = ?", (instance_id,))
        write.commit()
    finally:
        if write is not database.connection:
            write.close()
    assert b"<clientToken>changed</clientToken>" in describe(world, credentials).body


def test_a_new_catalog_listing_is_a_miss(world, account):
    ec2, credentials = account
    instance_id = launch(ec2)[0]
    world.settle()
    network_id = world.vm(ec2, instance_id)["nics"][0]["network_id"]
    assert b".cs" in describe(world, credentials).body
    network = world.state.get("network", network_id)  # the zone's shared network
    original = network["networkdomain"]

    def rename(domain: str) -> None:  # as updateNetwork would (the simulator lacks it)
        network["networkdomain"] = domain
        world.state.touch(network)
        world.bridge.services._stores[CatalogCache] = CatalogCache()  # the listings' seconds are up

    world.run(rename, "renamed.example")
    try:
        assert b"renamed.example</privateDnsName>" in describe(world, credentials).body
    finally:
        world.run(rename, original)


def test_the_request_and_its_version_are_part_of_the_key(world, account):
    ec2, credentials = account
    running, stopped = launch(ec2, 2)
    ec2.stop_instances(InstanceIds=[stopped])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[stopped], WaiterConfig={"Delay": 0.05})
    everything = describe(world, credentials).body
    only_running = describe(world, credentials, **{"Filter.1.Name": "instance-state-name",
                                                   "Filter.1.Value.1": "running"}).body
    assert stopped.encode() in everything and stopped.encode() not in only_running
    older = wire.sigv4(world.bridge.url, credentials, {"Action": "DescribeInstances", "Version": "2014-10-01"})
    assert b'xmlns="http://ec2.amazonaws.com/doc/2014-10-01/"' in older.body
    assert running.encode() in older.body


def test_a_dry_run_is_never_answered_from_the_memo(world, account):
    ec2, credentials = account
    launch(ec2)
    describe(world, credentials)
    for _ in range(2):
        reply = wire.sigv4(world.bridge.url, credentials, {"Action": "DescribeInstances", "Version": VERSION,
                                                          "DryRun": "true"})
        assert reply.error_code == "DryRunOperation"


def test_an_answer_with_a_terminated_instance_is_not_kept(world, account):
    """It leaves the answer an hour after it ended, with no other input changed."""
    ec2, credentials = account
    kept, ended = launch(ec2, 2)
    ec2.terminate_instances(InstanceIds=[ended])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[ended], WaiterConfig={"Delay": 0.05})
    world.settle()
    describe(world, credentials)
    before = hits(world)
    assert ended.encode() in describe(world, credentials).body
    assert hits(world) == before


def test_instance_status_is_kept_under_its_own_action(world, account):
    ec2, credentials = account
    instance_id = launch(ec2)[0]
    statuses = describe(world, credentials, "DescribeInstanceStatus")
    before = hits(world)
    again = describe(world, credentials, "DescribeInstanceStatus")
    assert hits(world) == before + 1
    assert without_request_id(again) == without_request_id(statuses)
    assert b"<DescribeInstanceStatusResponse" in again.body and instance_id.encode() in again.body
    assert b"<DescribeInstancesResponse" in describe(world, credentials).body


def test_an_answer_that_read_a_listing_again_is_not_kept(world, account):
    """A new instance's root volume is missing from the cached volume listing, which is read
    again: that answer rests on more than its basis. The next one, on the fresher listing now
    cached, is kept."""
    ec2, credentials = account
    launch(ec2)
    world.settle()
    memo = world.bridge.services.store(AnswerMemo)
    whole_account = answer_key("DescribeInstances", credentials[0], VERSION, {})
    world.bridge.services._stores[CatalogCache] = CatalogCache(clock=lambda: 0.0)  # listings never age
    try:
        describe(world, credentials)
        assert whole_account in memo
        second = launch(ec2)[0]
        world.settle()
        body = describe(world, credentials).body
        assert second.encode() in body and body.count(b"<deviceName>/dev/sda1</deviceName>") == 2
        assert whole_account not in memo  # the previous answer is stale, and this one is not kept
        describe(world, credentials)
        assert whole_account in memo
        before = hits(world)
        assert describe(world, credentials).body.count(b"<deviceName>/dev/sda1</deviceName>") == 2
        assert hits(world) == before + 1
    finally:
        world.bridge.services._stores[CatalogCache] = CatalogCache()


def test_key_pairs_are_kept_until_cloudstack_or_the_store_changes(world, account):
    ec2, credentials = account
    ec2.create_key_pair(KeyName="kept")
    pair_id = ec2.create_key_pair(KeyName="gone")["KeyPairId"]
    first = describe(world, credentials, "DescribeKeyPairs")
    before = hits(world)
    assert without_request_id(describe(world, credentials, "DescribeKeyPairs")) == without_request_id(first)
    assert hits(world) == before + 1
    ec2.create_tags(Resources=[pair_id], Tags=[{"Key": "team", "Value": "blue"}])  # kept by the bridge's store
    assert b"<value>blue</value>" in describe(world, credentials, "DescribeKeyPairs").body
    world.cloudstack(credentials, "deleteSSHKeyPair", name="gone")
    assert [pair["KeyName"] for pair in ec2.describe_key_pairs()["KeyPairs"]] == ["kept"]
