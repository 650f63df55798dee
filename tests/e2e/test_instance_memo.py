"""DescribeInstances answers from the instance memo only while nothing an instance is built
from changed, and the catalog listings it caches never hide a new instance's parts.

Changes are made straight in CloudStack (signed calls to the simulator with the account's own
keys), as another tool or the CloudStack UI would make them, so the bridge learns of them only
through its next listing.
"""

from __future__ import annotations

import pytest

from mappings.instance_memo import Facts, InstanceMemo
from mappings.zones import CatalogCache
from tests import wire
from tests.e2e.test_instances import instances, launch


@pytest.fixture()
def account(world):
    return world.fresh_client("memo")


def raw_describe(world, credentials, **params) -> bytes:
    reply = wire.sigv4(world.bridge.url, credentials, {"Action": "DescribeInstances", "Version": "2016-11-15",
                                                      **params})
    assert reply.status == 200, reply.body[:500]
    return reply.body


def without_request_id(body: bytes) -> bytes:
    start, end = body.index(b"<requestId>"), body.index(b"</requestId>")
    return body[:start] + body[end:]


def memo(world) -> InstanceMemo:
    return world.bridge.services.store(InstanceMemo)


def test_a_steady_fleet_is_answered_from_the_memo_with_the_same_document(world, account):
    ec2, credentials = account
    ids = launch(ec2, 3, TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "a&b", "Value": "<x>"}]}])
    first = raw_describe(world, credentials)
    kept = len(memo(world))
    second = raw_describe(world, credentials)
    assert len(memo(world)) == kept
    assert without_request_id(first) == without_request_id(second)
    # The kept XML is what rendering the items afresh writes, escaping included.
    world.bridge.services._stores[InstanceMemo] = InstanceMemo()
    try:
        fresh = raw_describe(world, credentials)
    finally:
        world.bridge.services._stores[InstanceMemo] = InstanceMemo()
    assert without_request_id(fresh) == without_request_id(second)
    assert b"<key>a&amp;b</key><value>&lt;x&gt;</value>" in second
    assert sorted(i["InstanceId"] for i in instances(ec2)) == sorted(ids)


def test_changes_made_in_cloudstack_show_at_the_next_call(world, account):
    ec2, credentials = account
    instance_id = launch(ec2)[0]
    vm_id = world.backend(instance_id)
    assert instances(ec2)[0]["Tags"] == []
    world.cloudstack(credentials, "createTags", resourcetype="UserVm", **{"resourceids": vm_id,
               "tags[0].key": "team", "tags[0].value": "blue"})
    assert instances(ec2)[0]["Tags"] == [{"Key": "team", "Value": "blue"}]
    world.cloudstack(credentials, "stopVirtualMachine", id=vm_id)
    assert instances(ec2)[0]["State"]["Name"] == "stopped"
    # The bridge's own record is an input too: a stop reason it keeps appears at once.
    ec2.start_instances(InstanceIds=[instance_id])
    ec2.get_waiter("instance_running").wait(InstanceIds=[instance_id], WaiterConfig={"Delay": 0.1})
    ec2.stop_instances(InstanceIds=[instance_id])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[instance_id], WaiterConfig={"Delay": 0.1})
    assert instances(ec2)[0]["StateTransitionReason"].startswith("User initiated (")


def test_filters_and_selection_work_on_memoised_items(world, account):
    ec2, _ = account
    ids = launch(ec2, 2)
    instances(ec2)  # every item now comes from the memo
    ec2.create_tags(Resources=[ids[0]], Tags=[{"Key": "role", "Value": "db"}])
    chosen = instances(ec2, Filters=[{"Name": "tag:role", "Values": ["db"]}])
    assert [i["InstanceId"] for i in chosen] == [ids[0]]
    assert [i["InstanceId"] for i in instances(ec2, InstanceIds=[ids[1]])] == [ids[1]]
    ec2.terminate_instances(InstanceIds=[ids[1]])
    states = {i["InstanceId"]: i["State"]["Name"] for i in instances(ec2)}
    assert states[ids[0]] == "running" and states[ids[1]] in ("shutting-down", "terminated")


def test_a_new_instance_shows_its_root_volume_although_volumes_are_cached(world, account):
    ec2, _ = account
    launch(ec2)
    assert all(i["BlockDeviceMappings"] for i in instances(ec2))  # the volume listing is now cached
    second = launch(ec2)[0]
    listed = {i["InstanceId"]: i for i in instances(ec2)}
    assert [m["DeviceName"] for m in listed[second]["BlockDeviceMappings"]] == ["/dev/sda1"]
    assert listed[second]["BlockDeviceMappings"][0]["Ebs"]["VolumeId"].startswith("vol-")


def test_a_volume_attached_in_cloudstack_shows_once_the_listing_is_older_than_its_limit(world, account):
    ec2, credentials = account
    instance_id = launch(ec2)[0]
    instances(ec2)  # caches the account's volume listing
    offering = next(o for o in world.cloudstack(credentials, "listDiskOfferings")["diskoffering"]
                    if not o.get("iscustomized"))
    zone = world.vm(ec2, instance_id)["zone_id"]
    volume = world.cloudstack(credentials, "createVolume", name="data", diskofferingid=offering["id"],
                        zoneid=zone)["volume"]
    world.cloudstack(credentials, "attachVolume", id=volume["id"], virtualmachineid=world.backend(instance_id))
    # Narrowed to the instance, the volumes are listed live.
    narrowed = instances(ec2, InstanceIds=[instance_id])[0]
    assert [m["DeviceName"] for m in narrowed["BlockDeviceMappings"]] == ["/dev/sda1", "/dev/sdb"]
    cache = world.bridge.services.store(CatalogCache)
    real_clock = cache._clock
    cache._clock = lambda: real_clock() + 2.5  # the cached listing is now older than VOLUMES_MAX_AGE
    try:
        listed = instances(ec2)[0]
    finally:
        cache._clock = real_clock
    assert [m["DeviceName"] for m in listed["BlockDeviceMappings"]] == ["/dev/sda1", "/dev/sdb"]


# -- the memo itself -------------------------------------------------------------------------------
def test_memo_is_bounded_and_keeps_the_most_recently_used(bridge):
    service = bridge.services.models.ec2
    memo = InstanceMemo(max_entries=4)
    item = {"InstanceId": "i-0123456789abcdef0", "State": {"Code": 16, "Name": "running"}, "VmId": "x"}
    for key in range(4):
        memo.put(key, Facts(f"vm{key}", "Running", None, ()), 7, item, ("VmId",), service)
    assert memo.facts(0) is not None          # 0 is now the most recently used
    memo.put(4, Facts("vm4", "Running", None, ()), 7, item, ("VmId",), service)
    assert len(memo) == 4 and memo.facts(1) is None and memo.facts(0) is not None
    kept = memo.item(4, 7)
    assert kept["VmId"] == "x" and b"<instanceId>i-0123456789abcdef0</instanceId>" in kept.xml
    assert b"VmId" not in kept.xml and b"vmId" not in kept.xml
    assert memo.item(4, 8) is None            # other inputs changed
    with pytest.raises(TypeError):
        kept["State"] = {"Code": 80, "Name": "stopped"}


def test_terminated_items_are_not_kept(bridge):
    memo = InstanceMemo()
    item = {"InstanceId": "i-0123456789abcdef0", "State": {"Code": 48, "Name": "terminated"}}
    assert memo.put(1, Facts("vm", "Destroyed", None, ()), 7, item, (), bridge.services.models.ec2) is item
    assert len(memo) == 0 and memo.item(1, 7) is None


def test_a_large_answer_is_streamed_with_the_same_document(world, account, monkeypatch):
    from ec2bridge import app

    ec2, credentials = account
    launch(ec2, 3)
    whole = raw_describe(world, credentials)
    monkeypatch.setattr(app, "STREAM_BYTES", 1000)
    monkeypatch.setattr(app, "STREAM_CHUNK_BYTES", 700)
    reply = wire.sigv4(world.bridge.url, credentials, {"Action": "DescribeInstances", "Version": "2016-11-15"})
    assert reply.status == 200 and len(whole) > 3 * 700
    assert without_request_id(reply.body) == without_request_id(whole)
    assert int(reply.headers["Content-Length"]) == len(reply.body) and "Transfer-Encoding" not in reply.headers
    assert reply.headers["x-amzn-RequestId"].encode() in reply.body
    assert reply.headers["Content-Type"] == "text/xml; charset=UTF-8"
    ids = set(launch(ec2, 4))
    reservations = ec2.describe_instances()["Reservations"]       # boto3 reads a streamed answer
    assert ids <= {i["InstanceId"] for r in reservations for i in r["Instances"]}
