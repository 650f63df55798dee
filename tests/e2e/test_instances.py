"""Instances end to end through boto3: DescribeInstances, DescribeInstanceStatus, the
Start/Stop/Reboot/Terminate lifecycle (with boto3's waiters), attributes, passwords, console,
and termination under each of CloudStack's destroyed-VM settings.

Every test works in CloudStack accounts created for this module in the simulator (their API
keys are EC2 keys through auto-enrollment), so the instances asserted on are only these tests'
and other modules sharing the session's bridge are unaffected. The session's simulator has
CloudStack's default settings; the settings tests run a bridge on a simulator of their own.
``World`` and ``launch`` are shared with the other instance test modules.
"""

from __future__ import annotations

import asyncio
import base64
import re
import threading
import uuid

import botocore.exceptions
import pytest
import uvloop
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding

import cloudstack_sim
from cloudstack_sim import SimConfig
from cloudstack_sim.faults import FaultRule
from cloudstack_sim.seed import USER_TYPE, add_account, add_user
from ec2bridge.config import Config
from mappings import instance_view
from mappings.instance_tasks import Background
from tests.bridge_server import BridgeServer

FAST = {"Delay": 0.1, "MaxAttempts": 100}


def code_of(error: pytest.ExceptionInfo) -> str:
    return error.value.response["Error"]["Code"]


class World:
    """The simulator behind the session's bridge, touched only on the bridge's loop."""

    def __init__(self, bridge):
        self.bridge = bridge
        self.state = bridge.services.simulator.state

    def run(self, function, *args, **kwargs):
        return self.bridge.run(function, *args, **kwargs)

    def client(self, prefix: str = "inst", **limits):
        """A boto3 client for a fresh CloudStack account (with these resource limits)."""
        return self.account(prefix, **limits)[0]

    def account(self, prefix: str = "inst", **limits):
        """(boto3 client, CloudStack account name) of a fresh account."""
        credentials, name = self.credentials(prefix, **limits)
        return self.bridge.client("ec2", credentials=credentials), name

    def credentials(self, prefix: str = "inst", **limits):
        """((API key, secret key), CloudStack account name) of a fresh account."""
        def create():
            root = next(d for d in self.state.store("domain") if d["name"] == "ROOT")
            account = add_account(self.state, f"{prefix}-{uuid.uuid4().hex[:8]}", USER_TYPE, root["id"])
            account["limits"].update(limits)
            user = add_user(self.state, account, account["name"])
            return (user["apikey"], user["secretkey"]), account["name"]
        return self.run(create)

    def fresh_client(self, prefix: str):
        """(boto3 client, CloudStack keys) of a fresh account."""
        credentials, _ = self.credentials(prefix)
        return self.bridge.client("ec2", credentials=credentials), credentials

    def cloudstack(self, credentials, command: str, **params) -> dict:
        """A call made in CloudStack directly, outside the bridge (waits for async jobs)."""
        return self.bridge.call(self.bridge.services.cloudstack.run(credentials, command, params))

    def vm(self, ec2, instance_id: str) -> dict | None:
        record = self.bridge.call(self.bridge.services.ids.lookup(instance_id))
        return self.run(lambda: self.state.get("vm", record.backend_id))

    def backend(self, ec2_id: str) -> str:
        return self.bridge.call(self.bridge.services.ids.lookup(ec2_id)).backend_id

    def fault(self, rule: FaultRule) -> None:
        self.run(self.state.faults.add, rule)

    def clear_faults(self) -> None:
        self.run(self.state.faults.clear)

    def settle(self) -> None:
        """Wait for the bridge's background instance work (deploy outcomes, volumes, removal)."""
        from mappings.instance_tasks import Background
        self.bridge.call(self.bridge.services.store(Background).drain())


def image_id(ec2, name: str = "Ubuntu 22.04 LTS") -> str:
    images = ec2.describe_images(Filters=[{"Name": "name", "Values": [name]}])["Images"]
    return images[0]["ImageId"]


def launch(ec2, count: int = 1, **params) -> list[str]:
    params.setdefault("ImageId", image_id(ec2))
    params.setdefault("InstanceType", "t2.micro")
    reservation = ec2.run_instances(MinCount=params.pop("MinCount", count), MaxCount=params.pop("MaxCount", count),
                                    **params)
    ids = [i["InstanceId"] for i in reservation["Instances"]]
    ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=FAST)
    return ids


def instances(ec2, **params) -> list[dict]:
    return [i for r in ec2.describe_instances(**params)["Reservations"] for i in r["Instances"]]


@pytest.fixture(autouse=True)
def no_faults(world):
    yield
    world.clear_faults()


@pytest.fixture(scope="module")
def user(world):
    return world.client()


# -- lifecycle -------------------------------------------------------------------------------------
def test_lifecycle_with_waiters_and_describe_fields(user, world):
    user.create_key_pair(KeyName="life")
    image = image_id(user)
    reservation = user.run_instances(ImageId=image, InstanceType="t2.small", MinCount=2, MaxCount=2, KeyName="life",
                                     TagSpecifications=[{"ResourceType": "instance",
                                                         "Tags": [{"Key": "Name", "Value": "web"}]}])
    ids = [i["InstanceId"] for i in reservation["Instances"]]
    assert reservation["ReservationId"].startswith("r-") and len(ids) == 2
    assert {i["State"]["Name"] for i in reservation["Instances"]} <= {"pending", "running"}
    user.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=FAST)

    described = user.describe_instances(InstanceIds=ids)["Reservations"]
    assert [r["ReservationId"] for r in described] == [reservation["ReservationId"]]
    first, second = described[0]["Instances"]
    assert (first["AmiLaunchIndex"], second["AmiLaunchIndex"]) == (0, 1)
    assert first["ImageId"] == image and first["InstanceType"] == "t2.small" and first["KeyName"] == "life"
    assert first["State"] == {"Code": 16, "Name": "running"}
    assert first["Tags"] == [{"Key": "Name", "Value": "web"}]
    assert first["SecurityGroups"][0]["GroupName"] == "default"
    assert first["SecurityGroups"][0]["GroupId"].startswith("sg-")
    assert first["Placement"]["AvailabilityZone"] == "sim-zone-1"
    assert re.fullmatch(r"10\.100\.\d+\.\d+", first["PrivateIpAddress"])
    assert first["PrivateDnsName"].endswith(".cs1sim.internal") and first["PublicDnsName"] == ""
    root = first["BlockDeviceMappings"][0]
    assert root["DeviceName"] == first["RootDeviceName"] == "/dev/sda1"
    assert root["Ebs"]["DeleteOnTermination"] is True and root["Ebs"]["VolumeId"].startswith("vol-")
    assert first["Monitoring"] == {"State": "disabled"} and first["Hypervisor"] == "xen"
    assert first["CpuOptions"] == {"CoreCount": 1, "ThreadsPerCore": 1}
    assert first["ClientToken"] and "Platform" not in first

    stopping = user.stop_instances(InstanceIds=ids)["StoppingInstances"]
    assert {(s["PreviousState"]["Name"], s["CurrentState"]["Name"]) for s in stopping} == {("running", "stopping")}
    user.get_waiter("instance_stopped").wait(InstanceIds=ids, WaiterConfig=FAST)
    stopped = instances(user, InstanceIds=ids)[0]
    assert re.fullmatch(r"User initiated \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT\)", stopped["StateTransitionReason"])
    assert stopped["StateReason"]["Code"] == "Client.UserInitiatedShutdown"

    starting = user.start_instances(InstanceIds=ids)["StartingInstances"]
    assert {(s["PreviousState"]["Name"], s["CurrentState"]["Name"]) for s in starting} == {("stopped", "pending")}
    user.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=FAST)
    assert instances(user, InstanceIds=ids)[0]["StateTransitionReason"] == ""

    terminating = user.terminate_instances(InstanceIds=ids)["TerminatingInstances"]
    assert {s["CurrentState"]["Name"] for s in terminating} == {"shutting-down"}
    user.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig=FAST)
    world.settle()
    gone = instances(user, InstanceIds=ids)
    assert {i["State"]["Name"] for i in gone} == {"terminated"} and all(i["BlockDeviceMappings"] == [] for i in gone)
    # CloudStack's defaults (the embedded simulator's): users may neither expunge nor see destroyed
    # VMs, so the VMs wait for CloudStack's expunge thread, and the bridge shows them for an hour.
    assert {world.vm(user, i)["state"] for i in ids} == {"Destroyed"}


def test_terminate_when_capabilities_cannot_be_read(world):
    ec2 = world.client("nocaps")
    [instance] = launch(ec2)
    # A role without listCapabilities: the bridge destroys, which every user may do.
    world.fault(FaultRule(command="listCapabilities", error_rate=1.0, error_code=432,
                          error_text="The user is not allowed to request the API command or the API command does "
                                     "not exist"))
    ec2.terminate_instances(InstanceIds=[instance])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance], WaiterConfig=FAST)
    world.settle()
    assert world.vm(ec2, instance)["state"] == "Destroyed"
    assert instances(ec2, InstanceIds=[instance])[0]["State"]["Name"] == "terminated"


def test_noop_transitions_and_incorrect_states(user, world):
    [running] = launch(user)
    start = user.start_instances(InstanceIds=[running])["StartingInstances"][0]
    assert start["PreviousState"] == start["CurrentState"] == {"Code": 16, "Name": "running"}
    user.terminate_instances(InstanceIds=[running])
    user.get_waiter("instance_terminated").wait(InstanceIds=[running], WaiterConfig=FAST)
    world.settle()
    again = user.terminate_instances(InstanceIds=[running])["TerminatingInstances"][0]
    assert again["PreviousState"] == again["CurrentState"] == {"Code": 48, "Name": "terminated"}
    for call in (user.start_instances, user.stop_instances):
        with pytest.raises(botocore.exceptions.ClientError) as error:
            call(InstanceIds=[running])
        assert code_of(error) == "IncorrectInstanceState"


def test_unknown_and_malformed_ids(user):
    missing = ["i-0123456789abcdef0", "i-0fedcba9876543210"]
    for call in (user.start_instances, user.stop_instances, user.terminate_instances, user.reboot_instances):
        with pytest.raises(botocore.exceptions.ClientError) as error:
            call(InstanceIds=missing)
        assert code_of(error) == "InvalidInstanceID.NotFound"
        assert all(i in error.value.response["Error"]["Message"] for i in missing)
    with pytest.raises(botocore.exceptions.ClientError) as error:
        user.describe_instances(InstanceIds=["i-nothex"])
    assert code_of(error) == "InvalidInstanceID.Malformed"
    with pytest.raises(botocore.exceptions.ClientError) as error:
        user.terminate_instances(InstanceIds=["vol-0123456789abcdef0"])
    assert code_of(error) == "InvalidInstanceID.Malformed"


def test_other_accounts_instances_are_not_found(user, world):
    [mine] = launch(user)
    stranger = world.client("stranger")
    with pytest.raises(botocore.exceptions.ClientError) as error:
        stranger.describe_instances(InstanceIds=[mine])
    assert code_of(error) == "InvalidInstanceID.NotFound"
    assert mine not in {i["InstanceId"] for i in instances(stranger)}
    user.terminate_instances(InstanceIds=[mine])


def test_termination_and_stop_protection(user):
    [protected] = launch(user, DisableApiTermination=True, DisableApiStop=True)
    for call in (user.terminate_instances, user.stop_instances):
        with pytest.raises(botocore.exceptions.ClientError) as error:
            call(InstanceIds=[protected])
        assert code_of(error) == "OperationNotPermitted"
    attribute = user.describe_instance_attribute(InstanceId=protected, Attribute="disableApiTermination")
    assert attribute["DisableApiTermination"] == {"Value": True}
    user.modify_instance_attribute(InstanceId=protected, DisableApiTermination={"Value": False})
    user.terminate_instances(InstanceIds=[protected])
    user.get_waiter("instance_terminated").wait(InstanceIds=[protected], WaiterConfig=FAST)


def test_reboot_and_dry_runs(user):
    [instance] = launch(user)
    user.reboot_instances(InstanceIds=[instance])
    for call in (user.reboot_instances, user.stop_instances, user.terminate_instances, user.describe_instances):
        with pytest.raises(botocore.exceptions.ClientError) as error:
            call(InstanceIds=[instance], DryRun=True)
        assert code_of(error) == "DryRunOperation"
    assert instances(user, InstanceIds=[instance])[0]["State"]["Name"] == "running"
    user.stop_instances(InstanceIds=[instance], Force=True)
    user.get_waiter("instance_stopped").wait(InstanceIds=[instance], WaiterConfig=FAST)
    with pytest.raises(botocore.exceptions.ClientError) as error:
        user.reboot_instances(InstanceIds=[instance])
    assert code_of(error) == "IncorrectInstanceState"
    user.terminate_instances(InstanceIds=[instance])


# -- DescribeInstances: filters, paging, visibility ------------------------------------------------
def test_filters(world):
    ec2 = world.client("filters")
    web = launch(ec2, 2, TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "role", "Value": "web"}]}])
    [db] = launch(ec2, InstanceType="t2.small")
    ec2.stop_instances(InstanceIds=[db])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[db], WaiterConfig=FAST)
    everything = instances(ec2)

    def ids(*filters) -> set[str]:
        return {i["InstanceId"] for i in instances(ec2, Filters=[{"Name": n, "Values": v} for n, v in filters])}
    assert ids(("tag:role", ["web"])) == set(web)
    assert ids(("tag-key", ["role"]), ("instance-state-name", ["running"])) == set(web)
    assert ids(("instance-state-name", ["stopped"])) == ids(("instance-state-code", ["80"])) == {db}
    assert ids(("instance-type", ["t2.small"])) == {db}
    assert ids(("instance-id", [web[0]])) == {web[0]}
    reservation = ec2.describe_instances(InstanceIds=[web[1]])["Reservations"][0]["ReservationId"]
    assert ids(("reservation-id", [reservation])) == set(web)
    assert ids(("availability-zone", ["sim-zone-*"])) == set(web) | {db}
    address = next(i for i in everything if i["InstanceId"] == db)["PrivateIpAddress"]
    assert ids(("private-ip-address", [address])) == {db}
    assert ids(("block-device-mapping.device-name", ["/dev/sda1"]), ("launch-index", ["1"])) == {web[1]}
    assert ids(("owner-id", ["000000000000"])) == set()
    assert ids(("architecture", ["x86_64"]), ("root-device-type", ["ebs"]), ("hypervisor", ["xen"])) == set(web) | {db}
    with pytest.raises(botocore.exceptions.ClientError) as error:
        ec2.describe_instances(Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    assert code_of(error) == "InvalidParameterValue"


def test_paging(world):
    ec2 = world.client("paging")
    launched = set(launch(ec2, 7))
    pages = list(ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 5}))
    assert len(pages) == 2
    seen = [i["InstanceId"] for page in pages for r in page["Reservations"] for i in r["Instances"]]
    assert sorted(seen) == sorted(launched)
    with pytest.raises(botocore.exceptions.ClientError) as error:
        ec2.describe_instances(MaxResults=4)
    assert code_of(error) == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as error:
        ec2.describe_instances(MaxResults=5, InstanceIds=sorted(launched)[:1])
    assert code_of(error) == "InvalidParameterCombination"


def test_terminated_instances_disappear_after_an_hour(world, monkeypatch):
    ec2 = world.client("hour")
    [instance] = launch(ec2)
    ec2.terminate_instances(InstanceIds=[instance])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance], WaiterConfig=FAST)
    world.settle()
    assert [i["State"]["Name"] for i in instances(ec2)] == ["terminated"]
    monkeypatch.setattr(instance_view, "TERMINATED_VISIBLE_SECONDS", -1.0)
    assert instances(ec2) == []


def test_instances_not_launched_by_the_bridge(world):
    ec2, account = world.account("foreign")
    world.run(world.state.seed_vms, account, 3)
    first = ec2.describe_instances()["Reservations"]
    assert len(first) == 3 and all(len(r["Instances"]) == 1 for r in first)
    assert ec2.describe_instances()["Reservations"] == first  # reservation ids minted once
    ids = [r["Instances"][0]["InstanceId"] for r in first]
    user_initiated = ec2.terminate_instances(InstanceIds=ids)["TerminatingInstances"]
    assert {s["CurrentState"]["Name"] for s in user_initiated} == {"shutting-down"}
    ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig=FAST)


# -- DescribeInstanceStatus ------------------------------------------------------------------------
def test_describe_instance_status(world):
    ec2 = world.client("status")
    running, stopped = launch(ec2, 2)
    ec2.stop_instances(InstanceIds=[stopped])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[stopped], WaiterConfig=FAST)
    default = ec2.describe_instance_status()["InstanceStatuses"]
    assert [s["InstanceId"] for s in default] == [running]
    assert default[0]["InstanceStatus"]["Status"] == default[0]["SystemStatus"]["Status"] == "ok"
    everything = {s["InstanceId"]: s for s in ec2.describe_instance_status(IncludeAllInstances=True)["InstanceStatuses"]}
    assert set(everything) == {running, stopped}
    assert everything[stopped]["InstanceStatus"]["Status"] == "not-applicable"
    assert ec2.describe_instance_status(InstanceIds=[stopped])["InstanceStatuses"] == []
    chosen = ec2.describe_instance_status(IncludeAllInstances=True, Filters=[
        {"Name": "instance-status.status", "Values": ["not-applicable"]}])["InstanceStatuses"]
    assert [s["InstanceId"] for s in chosen] == [stopped]
    ec2.get_waiter("instance_status_ok").wait(InstanceIds=[running], WaiterConfig=FAST)
    with pytest.raises(botocore.exceptions.ClientError) as error:
        ec2.describe_instance_status(InstanceIds=["i-0123456789abcdef0"])
    assert code_of(error) == "InvalidInstanceID.NotFound"


# -- attributes ------------------------------------------------------------------------------------
def test_describe_and_modify_attributes(user):
    [instance] = launch(user, InstanceInitiatedShutdownBehavior="terminate")

    def attribute(name: str) -> dict:
        answer = user.describe_instance_attribute(InstanceId=instance, Attribute=name)
        assert answer["InstanceId"] == instance
        return answer
    assert attribute("instanceType")["InstanceType"] == {"Value": "t2.micro"}
    assert attribute("instanceInitiatedShutdownBehavior")["InstanceInitiatedShutdownBehavior"] == {"Value": "terminate"}
    assert attribute("rootDeviceName")["RootDeviceName"] == {"Value": "/dev/sda1"}
    assert attribute("blockDeviceMapping")["BlockDeviceMappings"][0]["DeviceName"] == "/dev/sda1"
    assert attribute("groupSet")["Groups"][0]["GroupName"] == "default"
    assert attribute("sourceDestCheck")["SourceDestCheck"] == {"Value": True}
    assert attribute("disableApiTermination")["DisableApiTermination"] == {"Value": False}

    with pytest.raises(botocore.exceptions.ClientError) as error:
        user.modify_instance_attribute(InstanceId=instance, InstanceType={"Value": "t2.small"})
    assert code_of(error) == "IncorrectInstanceState"
    for bad, code in (({"SourceDestCheck": {"Value": False}}, "UnsupportedOperation"),
                      ({"InstanceInitiatedShutdownBehavior": {"Value": "explode"}}, "InvalidParameterValue"),
                      ({"DisableApiTermination": {"Value": True}, "DisableApiStop": {"Value": True}},
                       "InvalidParameterCombination")):
        with pytest.raises(botocore.exceptions.ClientError) as error:
            user.modify_instance_attribute(InstanceId=instance, **bad)
        assert code_of(error) == code
    user.modify_instance_attribute(InstanceId=instance, Attribute="instanceInitiatedShutdownBehavior", Value="stop")
    assert attribute("instanceInitiatedShutdownBehavior")["InstanceInitiatedShutdownBehavior"] == {"Value": "stop"}

    user.stop_instances(InstanceIds=[instance])
    user.get_waiter("instance_stopped").wait(InstanceIds=[instance], WaiterConfig=FAST)
    with pytest.raises(botocore.exceptions.ClientError) as error:
        user.modify_instance_attribute(InstanceId=instance, InstanceType={"Value": "x9.huge"})
    assert code_of(error) == "InvalidParameterValue"
    user.modify_instance_attribute(InstanceId=instance, InstanceType={"Value": "t2.small"})
    assert attribute("instanceType")["InstanceType"] == {"Value": "t2.small"}
    user.modify_instance_attribute(InstanceId=instance, UserData={"Value": b"#!/bin/sh\necho hi\n"})
    user.reset_instance_attribute(InstanceId=instance, Attribute="sourceDestCheck")
    with pytest.raises(botocore.exceptions.ClientError) as error:
        user.reset_instance_attribute(InstanceId=instance, Attribute="kernel")
    assert code_of(error) == "UnsupportedOperation"
    user.terminate_instances(InstanceIds=[instance])


def test_block_device_delete_on_termination_is_kept(user, world):
    [instance] = launch(user, BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 2}}])
    world.settle()  # the extra volume is attached by the launch's background task

    def flags() -> dict:
        answer = user.describe_instance_attribute(InstanceId=instance, Attribute="blockDeviceMapping")
        return {m["DeviceName"]: m["Ebs"]["DeleteOnTermination"] for m in answer["BlockDeviceMappings"]}
    assert flags() == {"/dev/sda1": True, "/dev/sdf": True}
    user.modify_instance_attribute(InstanceId=instance, BlockDeviceMappings=[
        {"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": False}}])
    assert flags() == {"/dev/sda1": True, "/dev/sdf": False}
    with pytest.raises(botocore.exceptions.ClientError) as error:
        user.modify_instance_attribute(InstanceId=instance, BlockDeviceMappings=[
            {"DeviceName": "/dev/sda1", "Ebs": {"DeleteOnTermination": False}}])
    assert code_of(error) == "UnsupportedOperation"
    user.terminate_instances(InstanceIds=[instance])


def test_user_data_reads_back(user):
    [instance, plain] = [launch(user, UserData="#cloud-config\n")[0], launch(user)[0]]
    answer = user.describe_instance_attribute(InstanceId=instance, Attribute="userData")
    assert base64.b64decode(answer["UserData"]["Value"]) == b"#cloud-config\n"
    assert user.describe_instance_attribute(InstanceId=plain, Attribute="userData")["UserData"] == {}
    user.stop_instances(InstanceIds=[instance])
    user.get_waiter("instance_stopped").wait(InstanceIds=[instance], WaiterConfig=FAST)
    user.modify_instance_attribute(InstanceId=instance, UserData={"Value": b"#!/bin/sh\necho changed\n"})
    answer = user.describe_instance_attribute(InstanceId=instance, Attribute="userData")
    assert base64.b64decode(answer["UserData"]["Value"]) == b"#!/bin/sh\necho changed\n"
    user.terminate_instances(InstanceIds=[instance, plain])


def test_security_groups_change_on_a_stopped_instance(user):
    web = user.create_security_group(GroupName=f"g-{uuid.uuid4().hex[:6]}", Description="t")["GroupId"]
    db = user.create_security_group(GroupName=f"g-{uuid.uuid4().hex[:6]}", Description="t")["GroupId"]
    [instance] = launch(user)
    with pytest.raises(botocore.exceptions.ClientError) as error:   # CloudStack: "must be stopped"
        user.modify_instance_attribute(InstanceId=instance, Groups=[web])
    assert code_of(error) == "IncorrectInstanceState"
    user.stop_instances(InstanceIds=[instance])
    user.get_waiter("instance_stopped").wait(InstanceIds=[instance], WaiterConfig=FAST)
    user.modify_instance_attribute(InstanceId=instance, Groups=[web, db])
    assert [g["GroupId"] for g in instances(user, InstanceIds=[instance])[0]["SecurityGroups"]] == [web, db]
    attribute = user.describe_instance_attribute(InstanceId=instance, Attribute="groupSet")["Groups"]
    assert [g["GroupId"] for g in attribute] == [web, db]
    with pytest.raises(botocore.exceptions.ClientError) as error:
        user.modify_instance_attribute(InstanceId=instance, Groups=["sg-0123456789abcdef0"])
    assert code_of(error) == "InvalidGroup.NotFound"
    user.terminate_instances(InstanceIds=[instance])


# -- passwords and console -------------------------------------------------------------------------
def test_password_data_and_console_output(world):
    ec2 = world.client("windows")
    key = ec2.create_key_pair(KeyName="admin")
    [windows] = launch(ec2, ImageId=image_id(ec2, "Windows Server 2022"), KeyName="admin")
    [linux] = launch(ec2)
    described = instances(ec2, InstanceIds=[windows])[0]
    assert described["Platform"] == "windows" and described["PlatformDetails"] == "Windows"
    data = ec2.get_password_data(InstanceId=windows)["PasswordData"]
    private = serialization.load_pem_private_key(key["KeyMaterial"].encode(), None)
    password = private.decrypt(base64.b64decode(data), padding.PKCS1v15()).decode()
    assert len(password) >= 8
    ec2.get_waiter("password_data_available").wait(InstanceId=windows, WaiterConfig=FAST)
    assert ec2.get_password_data(InstanceId=linux)["PasswordData"] == ""
    console = ec2.get_console_output(InstanceId=linux)
    assert console["InstanceId"] == linux and console.get("Output", "") == "" and console["Timestamp"]
    with pytest.raises(botocore.exceptions.ClientError) as error:
        ec2.get_password_data(InstanceId="i-0123456789abcdef0")
    assert code_of(error) == "InvalidInstanceID.NotFound"
    ec2.terminate_instances(InstanceIds=[windows, linux])


# -- CloudStack's destroyed-VM settings ------------------------------------------------------------
class SimulatorThread:
    """A simulator with chosen settings on a loopback port, served from a thread of its own."""

    def __init__(self, config: SimConfig):
        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="simulator")
        self._thread.start()
        self.running = self.call(cloudstack_sim.start(config))

    def call(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def run(self, function, *args):
        """Run ``function`` on the simulator's loop (its state is touched only there)."""
        async def on_loop():
            return function(*args)
        return self.call(on_loop())

    def vms(self) -> list[dict]:
        return self.run(lambda: list(self.running.state.store("vm")))

    def stop(self) -> None:
        self.call(self.running.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


SETTINGS = [(False, False), (True, False), (False, True), (True, True)]


@pytest.fixture(scope="module", params=SETTINGS, ids=lambda p: f"view={p[0]},expunge={p[1]}")
def configured(request, tmp_path_factory):
    """(bridge, simulator, view setting, expunge setting): a bridge on a simulator with those settings."""
    view, expunge = request.param
    simulator = SimulatorThread(SimConfig(port=0, job_duration=0.05, allow_user_view_destroyed_vm=view,
                                          allow_user_expunge_recover_vm=expunge))
    admin_key, admin_secret = simulator.running.admin_credentials
    bridge = BridgeServer(Config(host="127.0.0.1", port=0, data_dir=tmp_path_factory.mktemp("settings"),
                                 cloudstack_url=simulator.running.url, cloudstack_admin_api_key=admin_key,
                                 cloudstack_admin_secret_key=admin_secret)).start()
    yield bridge, simulator, view, expunge
    bridge.stop()
    simulator.stop()


def test_terminated_instances_as_on_aws_under_every_setting(configured, monkeypatch):
    bridge, simulator, view, expunge = configured
    ec2 = bridge.client(credentials=simulator.running.demo_credentials)   # enrolled on first use
    [instance] = launch(ec2)
    ec2.terminate_instances(InstanceIds=[instance])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance], WaiterConfig=FAST)
    bridge.call(bridge.services.store(Background).drain())
    # The bridge expunges exactly when CloudStack lets the user; otherwise the VM is destroyed
    # (never left running, nor in Error from a refused expunge).
    assert [vm["state"] for vm in simulator.vms()] == ([] if expunge else ["Destroyed"])
    [gone] = instances(ec2, InstanceIds=[instance])
    assert gone["State"]["Name"] == "terminated" and gone["StateReason"]["Code"] == "Client.UserInitiatedShutdown"
    assert [i["InstanceId"] for i in instances(ec2)] == [instance]
    monkeypatch.setattr(instance_view, "TERMINATED_VISIBLE_SECONDS", -1.0)   # an hour later
    assert instances(ec2) == []


def test_a_failed_launch_leaves_nothing_running_under_every_setting(configured):
    bridge, simulator, view, expunge = configured
    ec2 = bridge.client(credentials=simulator.running.demo_credentials)
    before = {vm["id"] for vm in simulator.vms()}
    faults = simulator.running.state.faults
    simulator.run(faults.add, FaultRule(command="deployVirtualMachine", job_failure_rate=1.0, job_error_code=533,
                                        error_text="Unable to create a deployment for VM"))
    try:
        [instance] = launch_pending(ec2)
        bridge.call(bridge.services.store(Background).drain())
        ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance], WaiterConfig=FAST)
        [failed] = instances(ec2, InstanceIds=[instance])
        assert failed["StateReason"]["Code"] == "Server.InsufficientInstanceCapacity"
        left = [vm["state"] for vm in simulator.vms() if vm["id"] not in before]
        assert left == ([] if expunge else ["Destroyed"])
    finally:
        simulator.run(faults.clear)


def launch_pending(ec2) -> list[str]:
    """RunInstances without waiting for the instances to run."""
    reservation = ec2.run_instances(ImageId=image_id(ec2), InstanceType="t2.micro", MinCount=1, MaxCount=1)
    return [i["InstanceId"] for i in reservation["Instances"]]
