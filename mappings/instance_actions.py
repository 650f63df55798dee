"""Instance state changes, attributes, passwords and console output.

**Start/Stop/Reboot/Terminate** take many ids: every id is checked first (malformed ->
``InvalidInstanceID.Malformed``, unknown -> one ``InvalidInstanceID.NotFound`` naming them all,
a state the action cannot leave -> ``IncorrectInstanceState``, protection ->
``OperationNotPermitted``), as AWS refuses the whole call; then the CloudStack jobs are
submitted concurrently (at most ``FAN_OUT`` at a time) and the answer carries the state right
after submitting (pending / stopping / shutting-down), as AWS's does. Starting a running
instance, stopping a stopped one and terminating a terminated one are successes that change
nothing, as on AWS. Terminate expunges when CloudStack lets the caller and destroys
otherwise (see :mod:`mappings.instance_tasks`), and deletes the data volumes marked
DeleteOnTermination; its outcome is observed in the background.

**Attributes** CloudStack holds (instance type, user data, security groups) are read and
changed there; the others (termination/stop protection, shutdown behaviour,
DeleteOnTermination) are kept by the bridge in :class:`InstanceStore`.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

from ec2bridge.cloudstack import CloudStackError
from ec2bridge.errors import EC2Error, missing_parameter
from ec2bridge.ids import check_format
from ec2bridge.stores.instances import InstanceStore
from mappings import instance_view
from mappings.common import dry_run_checkpoint
from mappings.instance_launch import MAX_USER_DATA, SHUTDOWN_BEHAVIOURS, find_groups, find_offering
from mappings.instance_types import resolve_offering
from mappings.instance_tasks import destroy, may_expunge, record_task, run_task
from mappings.instance_view import USER_SHUTDOWN, state, user_initiated

FAN_OUT = 16


# -- resolving the instances a call names -------------------------------------------------------
async def caller_owner(ctx) -> str:
    account = await ctx.account()
    return f"{account.domain_id}/{account.name}"


def instances_not_found(ids: list[str]) -> EC2Error:
    if len(ids) == 1:
        return EC2Error("InvalidInstanceID.NotFound", f"The instance ID '{ids[0]}' does not exist")
    return EC2Error("InvalidInstanceID.NotFound", f"The instance IDs '{', '.join(ids)}' do not exist")


async def known_vm_ids(ctx, instance_ids: list[str] | None) -> list[str] | None:
    """CloudStack ids of the EC2 ids the bridge knows (None: no ids asked for)."""
    if not instance_ids:
        return None
    vm_ids = []
    for instance_id in instance_ids:
        check_format("i", instance_id)
        record = await ctx.services.ids.lookup(instance_id)
        if record is not None and record.kind == "i":
            vm_ids.append(record.backend_id)
    return vm_ids


async def targets(ctx, instance_ids: list[str] | None, *, with_volumes: bool = False) -> list[dict]:
    """The named instances as EC2 items, in request order; NotFound names every unknown id."""
    if not instance_ids:
        raise missing_parameter("InstanceId")
    wanted = list(dict.fromkeys(instance_ids))
    vm_ids = await known_vm_ids(ctx, wanted) or []
    items = await instance_view.list_instances(ctx, vm_ids, with_volumes=with_volumes) if vm_ids else []
    gone = await instance_view.recent_tombstones(ctx, await caller_owner(ctx), {i["VmId"] for i in items})
    by_id = {item["InstanceId"]: item for item in items + [g for g in gone if g["VmId"] in vm_ids]}
    missing = [i for i in wanted if i not in by_id]
    if missing:
        raise instances_not_found(missing)
    return [by_id[i] for i in wanted]


def incorrect_state(instance_id: str, verb: str) -> EC2Error:
    return EC2Error("IncorrectInstanceState", f"The instance '{instance_id}' is not in a state from which it can "
                                              f"be {verb}.")


async def submit_all(calls: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    gate = asyncio.Semaphore(FAN_OUT)

    async def one(call):
        async with gate:
            return await call()
    return await asyncio.gather(*(one(call) for call in calls))


async def ensure_rows(ctx, items: list[dict]) -> InstanceStore:
    """Rows for instances the bridge did not launch, so their state and attributes can be kept."""
    store: InstanceStore = ctx.services.store(InstanceStore)
    owner = await caller_owner(ctx)
    for item in items:
        await store.ensure_instance(item["InstanceId"], item["VmId"], owner, item["ReservationId"])
    return store


def change(item: dict, current: str) -> dict:
    return {"InstanceId": item["InstanceId"], "PreviousState": item["State"], "CurrentState": state(current)}


# -- Start / Stop / Reboot / Terminate ----------------------------------------------------------
async def start_instances(ctx, request: dict) -> dict:
    items = await targets(ctx, request.get("InstanceIds"))
    for item in items:
        if item["State"]["Name"] not in ("running", "pending", "stopped"):
            raise incorrect_state(item["InstanceId"], "started")
    dry_run_checkpoint(request)
    todo = [item for item in items if item["State"]["Name"] == "stopped"]
    store = await ensure_rows(ctx, todo)
    await submit_all([lambda vm=item["VmId"]: ctx.services.cloudstack.submit(ctx.creds, "startVirtualMachine",
                                                                             {"id": vm}) for item in todo])
    await store.record_transition([item["InstanceId"] for item in todo], "", None)
    return {"StartingInstances": [change(item, "pending" if item in todo else item["State"]["Name"])
                                  for item in items]}


async def stop_instances(ctx, request: dict) -> dict:
    items = await targets(ctx, request.get("InstanceIds"))
    store: InstanceStore = ctx.services.store(InstanceStore)
    for item in items:
        if item["State"]["Name"] not in ("running", "stopping", "stopped"):
            raise incorrect_state(item["InstanceId"], "stopped")
        row = await store.get(item["InstanceId"])
        if row and row.disable_api_stop:
            raise EC2Error("OperationNotPermitted", f"The instance '{item['InstanceId']}' may not be stopped. "
                                                    "Modify its 'disableApiStop' instance attribute and try again.")
    if request.get("Hibernate"):
        raise EC2Error("UnsupportedHibernationConfiguration", "Hibernation is not available on this cloud")
    dry_run_checkpoint(request)
    todo = [item for item in items if item["State"]["Name"] == "running"]
    await ensure_rows(ctx, todo)
    params = {"forced": True} if request.get("Force") else {}
    await submit_all([lambda vm=item["VmId"]: ctx.services.cloudstack.submit(
        ctx.creds, "stopVirtualMachine", {"id": vm, **params}) for item in todo])
    await store.record_transition([item["InstanceId"] for item in todo], user_initiated(), USER_SHUTDOWN)
    return {"StoppingInstances": [change(item, "stopping" if item in todo else item["State"]["Name"])
                                  for item in items]}


async def reboot_instances(ctx, request: dict) -> dict:
    items = await targets(ctx, request.get("InstanceIds"))
    for item in items:
        if item["State"]["Name"] not in ("running", "terminated"):
            raise incorrect_state(item["InstanceId"], "rebooted")
    dry_run_checkpoint(request)
    # AWS: "Requests to reboot terminated instances are ignored."
    todo = [item for item in items if item["State"]["Name"] == "running"]
    await submit_all([lambda vm=item["VmId"]: ctx.services.cloudstack.submit(ctx.creds, "rebootVirtualMachine",
                                                                             {"id": vm}) for item in todo])
    return {"Return": True}


async def terminate_instances(ctx, request: dict) -> dict:
    items = await targets(ctx, request.get("InstanceIds"))
    store: InstanceStore = ctx.services.store(InstanceStore)
    for item in items:
        row = await store.get(item["InstanceId"])
        if row and row.disable_api_termination and item["State"]["Name"] != "terminated":
            raise EC2Error("OperationNotPermitted", f"The instance '{item['InstanceId']}' may not be terminated. "
                                                    "Modify its 'disableApiTermination' instance attribute and try "
                                                    "again.")
    dry_run_checkpoint(request)
    todo = [item for item in items if item["State"]["Name"] not in ("terminated", "shutting-down")]
    if todo:
        await _terminate(ctx, store, todo)
    return {"TerminatingInstances": [change(item, "shutting-down" if item in todo else item["State"]["Name"])
                                     for item in items]}


async def _terminate(ctx, store: InstanceStore, items: list[dict]) -> None:
    await ensure_rows(ctx, items)
    doomed = await _volumes_deleted_with(ctx, store, [item["VmId"] for item in items])
    ids = [item["InstanceId"] for item in items]
    await store.record_transition(ids, user_initiated(), USER_SHUTDOWN)
    await store.record_terminating({item["InstanceId"]: instance_view.tombstone(item) for item in items})
    try:
        expunge = await may_expunge(ctx)
        jobs = await submit_all([lambda vm=item["VmId"]: destroy(ctx, vm, doomed.get(vm, []), expunge=expunge)
                                 for item in items])
    except Exception:
        await store.cancel_termination(ids)
        raise
    task = await record_task(ctx, "terminate", await caller_owner(ctx), {"instances": [
        {"instance_id": item["InstanceId"], "vm_id": item["VmId"], "job_id": job,
         "tombstone": instance_view.tombstone(item)}
        for item, job in zip(items, jobs)]})
    run_task(ctx, task)


async def _volumes_deleted_with(ctx, store: InstanceStore, vm_ids: list[str]) -> dict[str, list[str]]:
    """Data volumes attached to these VMs whose DeleteOnTermination is true, per VM."""
    params = {"virtualmachineid": vm_ids[0]} if len(vm_ids) == 1 else {}
    wanted = set(vm_ids)
    volumes = [v for v in await ctx.cs_list("listVolumes", type="DATADISK", **params)
               if v.get("virtualmachineid") in wanted]
    flags = await store.delete_on_termination([v["id"] for v in volumes])
    doomed: dict[str, list[str]] = {}
    for volume in volumes:
        if flags.get(volume["id"]):
            doomed.setdefault(volume["virtualmachineid"], []).append(volume["id"])
    return doomed


# -- attributes ------------------------------------------------------------------------------------
async def describe_instance_attribute(ctx, request: dict) -> dict:
    attribute = request.get("Attribute")
    if attribute not in _DESCRIBERS:
        raise EC2Error("InvalidParameterValue", f"Value ({attribute}) for parameter attribute is invalid. "
                                                "Unknown attribute.")
    item = (await targets(ctx, [request.get("InstanceId")], with_volumes=attribute == "blockDeviceMapping"))[0]
    dry_run_checkpoint(request)
    row = await ctx.services.store(InstanceStore).get(item["InstanceId"])
    return {"InstanceId": item["InstanceId"], **await _DESCRIBERS[attribute](ctx, item, row)}


async def _user_data(ctx, item: dict, row) -> dict:
    vms = await ctx.cs_list("listVirtualMachines", id=item["VmId"], userdata=True)
    data = vms[0].get("userdata") if vms else None
    return {"UserData": {"Value": data} if data else {}}


def _value(value: Any) -> dict:
    return {"Value": value}


_DESCRIBERS: dict[str, Callable[[Any, dict, Any], Awaitable[dict]]] = {}


def _describer(name: str, build: Callable[[dict, Any], dict]) -> None:
    async def describe(ctx, item: dict, row) -> dict:
        return build(item, row)
    _DESCRIBERS[name] = describe


for _name, _build in {
    "instanceType": lambda item, row: {"InstanceType": _value(item.get("InstanceType"))},
    "kernel": lambda item, row: {"KernelId": {}},
    "ramdisk": lambda item, row: {"RamdiskId": {}},
    "disableApiTermination": lambda item, row: {"DisableApiTermination": _value(bool(row and row.disable_api_termination))},
    "disableApiStop": lambda item, row: {"DisableApiStop": _value(bool(row and row.disable_api_stop))},
    "instanceInitiatedShutdownBehavior": lambda item, row: {
        "InstanceInitiatedShutdownBehavior": _value(row.shutdown_behavior if row else "stop")},
    "rootDeviceName": lambda item, row: {"RootDeviceName": _value(instance_view.ROOT_DEVICE)},
    "blockDeviceMapping": lambda item, row: {"BlockDeviceMappings": item.get("BlockDeviceMappings", [])},
    "productCodes": lambda item, row: {"ProductCodes": []},
    "sourceDestCheck": lambda item, row: {"SourceDestCheck": _value(True)},
    "groupSet": lambda item, row: {"Groups": item.get("SecurityGroups", [])},
    "ebsOptimized": lambda item, row: {"EbsOptimized": _value(False)},
    "sriovNetSupport": lambda item, row: {"SriovNetSupport": {}},
    "enaSupport": lambda item, row: {"EnaSupport": _value(False)},
    "enclaveOptions": lambda item, row: {"EnclaveOptions": {"Enabled": False}},
}.items():
    _describer(_name, _build)
_DESCRIBERS["userData"] = _user_data

# ModifyInstanceAttribute's structured members and the attribute each one sets.
_MEMBERS = {"InstanceType": "instanceType", "UserData": "userData", "DisableApiTermination": "disableApiTermination",
            "DisableApiStop": "disableApiStop", "InstanceInitiatedShutdownBehavior": "instanceInitiatedShutdownBehavior",
            "Groups": "groupSet", "BlockDeviceMappings": "blockDeviceMapping", "SourceDestCheck": "sourceDestCheck",
            "Kernel": "kernel", "Ramdisk": "ramdisk", "SriovNetSupport": "sriovNetSupport",
            "EbsOptimized": "ebsOptimized", "EnaSupport": "enaSupport", "EnclaveOptions": "enclaveOptions"}
_NOT_ON_CLOUDSTACK = ("sourceDestCheck", "kernel", "ramdisk", "sriovNetSupport", "ebsOptimized", "enaSupport",
                      "enclaveOptions", "productCodes", "rootDeviceName")


def requested_change(request: dict) -> tuple[str, Any]:
    """(attribute, value) from either the structured members or Attribute + Value."""
    given = [(attribute, request[member]) for member, attribute in _MEMBERS.items() if request.get(member) is not None]
    if request.get("Attribute"):
        given.append((request["Attribute"], request.get("Value")))
    if not given:
        raise EC2Error("InvalidParameterCombination", "No attributes specified.")
    if len(given) > 1:
        raise EC2Error("InvalidParameterCombination", "Fields for multiple attribute types specified: "
                                                      + ", ".join(name for name, _ in given))
    attribute, value = given[0]
    if isinstance(value, dict) and "Value" in value:
        value = value["Value"]
    if value is None and attribute not in ("groupSet", "blockDeviceMapping"):
        raise missing_parameter("Value")
    return attribute, value


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    raise EC2Error("InvalidParameterValue", f"Value ({value}) for parameter {name} is invalid. Expected true or false.")


def _must_be_stopped(item: dict) -> None:
    if item["State"]["Name"] != "stopped":
        raise EC2Error("IncorrectInstanceState", f"The instance '{item['InstanceId']}' is not in the 'stopped' state.")


async def modify_instance_attribute(ctx, request: dict) -> dict:
    attribute, value = requested_change(request)
    if attribute in _NOT_ON_CLOUDSTACK:
        raise EC2Error("UnsupportedOperation", f"The attribute {attribute} cannot be changed on this cloud")
    if attribute not in _MODIFIERS:
        raise EC2Error("InvalidParameterValue", f"Value ({attribute}) for parameter attribute is invalid. "
                                                "Unknown attribute.")
    item = (await targets(ctx, [request.get("InstanceId")], with_volumes=attribute == "blockDeviceMapping"))[0]
    if item["State"]["Name"] == "terminated":
        raise incorrect_state(item["InstanceId"], "modified")
    apply = await _MODIFIERS[attribute](ctx, item, value)  # validates, returns the change to make
    dry_run_checkpoint(request)
    await apply()
    return {"Return": True}


async def _modify_type(ctx, item: dict, value: Any):
    _must_be_stopped(item)
    offering = await find_offering(ctx, str(value))

    current = await resolve_offering(ctx, item.get("InstanceType", ""))

    async def apply() -> None:
        if current is None or current["id"] != offering["id"]:  # AWS: the same type is a no-op
            await ctx.cs_run("changeServiceForVirtualMachine", id=item["VmId"], serviceofferingid=offering["id"])
    return apply


async def _modify_user_data(ctx, item: dict, value: Any):
    _must_be_stopped(item)
    raw = value if isinstance(value, bytes) else str(value).encode()
    if len(raw) > MAX_USER_DATA:
        raise EC2Error("InvalidParameterValue", f"User data is limited to {MAX_USER_DATA} bytes")

    async def apply() -> None:
        await ctx.cs_run("updateVirtualMachine", id=item["VmId"], userdata=base64.b64encode(raw).decode())
    return apply


def _stored(name: str, convert: Callable[[Any], Any]):
    async def modify(ctx, item: dict, value: Any):
        converted = convert(value)
        store = await ensure_rows(ctx, [item])

        async def apply() -> None:
            await store.set_attribute(item["InstanceId"], name, converted)
        return apply
    return modify


def _behaviour(value: Any) -> str:
    if value not in SHUTDOWN_BEHAVIOURS:
        raise EC2Error("InvalidParameterValue", f"Value ({value}) for parameter instanceInitiatedShutdownBehavior "
                                                "is invalid. Expected stop or terminate.")
    return value


async def _modify_groups(ctx, item: dict, value: Any):
    if not value:
        raise missing_parameter("GroupId")
    # CloudStack applies security groups to a VM only while it is stopped (updateVirtualMachine).
    _must_be_stopped(item)
    uuids = await find_groups(ctx, None, list(value))

    async def apply() -> None:
        await ctx.cs_run("updateVirtualMachine", id=item["VmId"], securitygroupids=uuids)
    return apply


async def _modify_block_devices(ctx, item: dict, value: Any):
    store = await ensure_rows(ctx, [item])
    volumes = await ctx.cs_list("listVolumes", virtualmachineid=item["VmId"])
    changes = []
    for mapping in value or ():
        device, delete = mapping.get("DeviceName"), (mapping.get("Ebs") or {}).get("DeleteOnTermination")
        if delete is None:
            continue
        number = instance_view.device_id(device or "")
        volume = next((v for v in volumes if int(v.get("deviceid", -1)) == number), None)
        if volume is None:
            raise EC2Error("InvalidParameterValue", f"No volume is attached to {item['InstanceId']} at {device}")
        if number == 0 and not delete:
            raise EC2Error("UnsupportedOperation", "CloudStack deletes an instance's root volume with the instance: "
                                                   "DeleteOnTermination must stay true for the root device")
        changes.append((volume["id"], number, delete))

    async def apply() -> None:
        for volume_id, number, delete in changes:
            if number == 0:
                await store.set_attribute(item["InstanceId"], "root_delete_on_termination", delete)
            else:
                await store.set_delete_on_termination(volume_id, item["InstanceId"], delete)
    return apply


_MODIFIERS = {
    "instanceType": _modify_type, "userData": _modify_user_data, "groupSet": _modify_groups,
    "blockDeviceMapping": _modify_block_devices,
    "disableApiTermination": _stored("disable_api_termination", lambda v: _flag(v, "disableApiTermination")),
    "disableApiStop": _stored("disable_api_stop", lambda v: _flag(v, "disableApiStop")),
    "instanceInitiatedShutdownBehavior": _stored("shutdown_behavior", _behaviour),
}


async def reset_instance_attribute(ctx, request: dict) -> dict:
    attribute = request.get("Attribute")
    await targets(ctx, [request.get("InstanceId")])
    if attribute in ("kernel", "ramdisk"):
        raise EC2Error("UnsupportedOperation", f"Instances on this cloud have no separate {attribute} to reset")
    if attribute != "sourceDestCheck":
        raise EC2Error("InvalidParameterValue", f"The attribute '{attribute}' cannot be reset")
    dry_run_checkpoint(request)
    return {"Return": True}  # sourceDestCheck is always true here: resetting it changes nothing


# -- passwords and console -------------------------------------------------------------------------
async def get_password_data(ctx, request: dict) -> dict:
    instance_id = request.get("InstanceId")
    record = await ctx.services.ids.backend_id("i", instance_id or "")
    dry_run_checkpoint(request)
    try:
        result = await ctx.cs_call("getVMPassword", id=record.backend_id)
        data = (result.get("password") or {}).get("encryptedpassword", "")
    except CloudStackError as error:
        if error.code != 431 or error.param == "id":
            raise
        data = ""  # AWS answers an empty PasswordData until the password is available
    return {"InstanceId": instance_id, "Timestamp": datetime.now(timezone.utc), "PasswordData": data}


async def get_console_output(ctx, request: dict) -> dict:
    item = (await targets(ctx, [request.get("InstanceId")]))[0]
    dry_run_checkpoint(request)
    # CloudStack has no API for a VM's console log; AWS's answer before any output exists.
    return {"InstanceId": item["InstanceId"], "Timestamp": datetime.now(timezone.utc), "Output": ""}


__all__ = ["start_instances", "stop_instances", "reboot_instances", "terminate_instances",
           "describe_instance_attribute", "modify_instance_attribute", "reset_instance_attribute",
           "get_password_data", "get_console_output", "targets", "known_vm_ids", "caller_owner"]
