"""Volumes and snapshots.

A data volume is ``Allocated`` until first attached (then ``Ready``); a VM's root volume is created
``Ready`` from its template at deploy time. Root volumes cannot be detached; data disks get device
ids from 1 upward, skipping 3 (CloudStack keeps it for the CD-ROM), up to the hypervisor's data
volume limit. Snapshots of a ``Ready`` volume are ``BackingUp`` while the job runs, then
``BackedUp``. Attach/detach state errors fail the async job, as recorded from a real server.
"""

from __future__ import annotations

import time

from ..context import Call
from ..errors import cloud_runtime, invalid_parameter
from ..jobs import pending_fields, submit_response
from ..render import compact, cs_date, renderer
from ..spec import command
from ..state import SimState
from .common import owner_fields, success, zone_name

GB = 1024 ** 3
MAX_DATA_VOLUMES = 6        # hypervisor_capabilities.max_data_volumes_limit of the simulated hypervisor
RESERVED_DEVICE_ID = 3      # the CD-ROM's slot
MIN_CUSTOM_GB, MAX_CUSTOM_GB = 1, 1024


@renderer("volume")
def render_volume(state: SimState, volume: dict) -> dict:
    vm = state.get("vm", volume.get("vm_id"))
    offering = state.get("disk_offering", volume.get("disk_offering_id"))
    template = state.get("template", volume.get("template_id"))
    service = state.get("service_offering", vm["service_offering_id"]) if vm and volume["type"] == "ROOT" else None
    return compact({
        "id": volume["id"], "name": volume["name"], "zoneid": volume["zone_id"],
        "zonename": zone_name(state, volume["zone_id"]), "type": volume["type"],
        "deviceid": volume.get("deviceid") if vm else None, "virtualmachineid": vm["id"] if vm else None,
        "vmname": vm["name"] if vm else None, "vmdisplayname": vm["displayname"] if vm else None,
        "vmstate": vm["state"] if vm else None, "vmtype": "User" if vm else None,
        "templateid": template["id"] if template else None, "templatename": template["name"] if template else None,
        "templatedisplaytext": template["displaytext"] if template else None,
        "provisioningtype": "thin", "size": volume["size"], "created": cs_date(volume["created"]),
        "state": volume["state"], **owner_fields(state, volume["account_id"]), "storagetype": "shared",
        "hypervisor": "Simulator" if volume["state"] != "Allocated" else None,
        "diskofferingid": offering["id"] if offering else None,
        "diskofferingname": offering["name"] if offering else None,
        "diskofferingdisplaytext": offering["displaytext"] if offering else None,
        "storage": "sim-primary-1" if volume["state"] != "Allocated" else None,
        "storageid": volume["zone_id"] if volume["state"] != "Allocated" else None,
        "snapshotid": volume.get("snapshot_id"), "attached": cs_date(volume.get("attached")) if vm else None,
        "destroyed": volume["state"] in ("Destroy", "Expunging"), "serviceofferingid": service["id"] if service else None,
        "serviceofferingname": service["name"] if service else None,
        "serviceofferingdisplaytext": service["displaytext"] if service else None,
        "isextractable": False, "displayvolume": True, "quiescevm": False, "supportsstoragesnapshot": False,
        "deleteprotection": False, "path": volume["id"] if volume["state"] != "Allocated" else None,
        "tags": state.tags_of(volume["id"]), "hasannotations": False, **pending_fields(volume)})


def new_volume(state: SimState, *, name: str, account_id: str, zone_id: str, kind: str, size: int,
               state_name: str, **fields) -> dict:
    return state.add("volume", {"name": name, "account_id": account_id, "zone_id": zone_id, "type": kind,
                                "size": size, "state": state_name, "vm_id": None, "deviceid": None, **fields})


def link(state: SimState, volume: dict, vm: dict, device: int) -> None:
    volume.update(vm_id=vm["id"], deviceid=device, attached=time.time())
    if volume["state"] == "Allocated":
        volume["state"] = "Ready"
    vm["volume_ids"].append(volume["id"])
    state.touch(volume)
    state.touch(vm)


def unlink(state: SimState, volume: dict) -> None:
    vm = state.get("vm", volume.get("vm_id"))
    if vm is not None and volume["id"] in vm["volume_ids"]:
        vm["volume_ids"].remove(volume["id"])
        state.touch(vm)
    volume.update(vm_id=None, deviceid=None, attached=None)
    state.touch(volume)


def next_device_id(state: SimState, vm: dict) -> int:
    used = {state.get("volume", vid)["deviceid"] for vid in vm["volume_ids"] if state.get("volume", vid)}
    device = 1
    while device in used or device == RESERVED_DEVICE_ID:
        device += 1
    return device


def data_volume_count(state: SimState, vm: dict) -> int:
    return sum(1 for vid in vm["volume_ids"] if (state.get("volume", vid) or {}).get("type") == "DATADISK")


def volume_size(call: Call, offering: dict | None) -> int:
    size = call.get("size")
    if offering is not None and not offering["iscustomized"]:
        return offering["disksize"] * GB
    if size is None:
        raise invalid_parameter("This disk offering requires a custom size specified")
    if not MIN_CUSTOM_GB <= size <= MAX_CUSTOM_GB:
        raise invalid_parameter(f"Invalid size for custom volume creation: {size}, max volume size is: "
                                f"{MAX_CUSTOM_GB} GB")
    return size * GB


@command("createVolume")
def create_volume(call: Call):
    state, owner = call.state, call.owner_account()
    offering = state.get("disk_offering", call.get("diskofferingid"))
    snapshot = call.owned("snapshot", call.get("snapshotid")) if call.get("snapshotid") else None
    if offering is None and snapshot is None:
        raise invalid_parameter("Either disk Offering Id or snapshot Id must be passed whilst creating volume")
    size = snapshot["size"] if snapshot else volume_size(call, offering)
    zone_id = call.get("zoneid") or (snapshot and snapshot["zone_id"])
    if not zone_id:
        raise invalid_parameter("Please specify a zone id")
    vm = call.owned("vm", call.get("virtualmachineid")) if call.get("virtualmachineid") else None
    from .accounts import check_limit
    check_limit(state, owner, "volume")
    volume = new_volume(state, name=call.get("name") or f"DATA-{state.next_seq('volume')}", account_id=owner["id"],
                        zone_id=zone_id, kind="DATADISK", size=size, state_name="Allocated",
                        disk_offering_id=offering["id"] if offering else None,
                        snapshot_id=snapshot["id"] if snapshot else None)

    def work() -> dict:
        if vm is not None:
            attach_checks(state, volume, vm)
            link(state, volume, vm, next_device_id(state, vm))
        return {"volume": state.render("volume", volume)}
    job = state.jobs.submit(call, instance_type="Volume", instance=volume, work=work,
                            rollback=lambda: state.remove("volume", volume))
    return submit_response(job, volume["id"])


def attach_checks(state: SimState, volume: dict, vm: dict) -> None:
    if volume["type"] == "ROOT":
        raise invalid_parameter("Please specify a volume with the valid type: DATADISK")
    if volume.get("vm_id"):
        raise invalid_parameter("Please specify a volume that is not attached to any VM.")
    if vm["state"] not in ("Running", "Stopped"):
        raise invalid_parameter("Please specify a VM that is either running or stopped.")
    if volume["zone_id"] != vm["zone_id"]:
        raise invalid_parameter("Please specify a VM that is in the same zone as the volume.")
    if data_volume_count(state, vm) >= MAX_DATA_VOLUMES:
        raise invalid_parameter(f"The specified VM already has the maximum number of data disks "
                                f"({MAX_DATA_VOLUMES}) attached. Please specify another VM.")


@command("attachVolume")
def attach_volume(call: Call):
    state = call.state
    volume, vm = call.owned("volume", call.get("id")), call.owned("vm", call.get("virtualmachineid"))
    device = call.get("deviceid")

    def work() -> dict:
        attach_checks(state, volume, vm)
        used = {(state.get("volume", v) or {}).get("deviceid") for v in vm["volume_ids"]}
        if device is not None and (device in used or device == 0 or device == RESERVED_DEVICE_ID):
            raise invalid_parameter(f"deviceId {device} is used by another volume or reserved; please specify "
                                    "another deviceId")
        link(state, volume, vm, device if device is not None else next_device_id(state, vm))
        return {"volume": state.render("volume", volume)}
    return submit_response(state.jobs.submit(call, instance_type="Volume", instance=volume, work=work))


@command("detachVolume")
def detach_volume(call: Call):
    state = call.state
    if call.get("id"):
        volume = call.owned("volume", call.get("id"))
    elif call.get("virtualmachineid") and call.get("deviceid") is not None:
        vm = call.owned("vm", call.get("virtualmachineid"))
        volume = next((state.get("volume", v) for v in vm["volume_ids"]
                       if state.get("volume", v)["deviceid"] == call.get("deviceid")), None)
        if volume is None:
            raise invalid_parameter("Unable to find volume with the specified deviceId")
    else:
        raise invalid_parameter("Please provide either a volume id, or a tuple(device id, instance id)")

    def work() -> dict:
        if volume["type"] == "ROOT":
            raise invalid_parameter("Please specify a data volume.")
        vm = state.get("vm", volume.get("vm_id"))
        if vm is None:
            raise invalid_parameter("The specified volume is not attached to a VM.")
        if vm["state"] not in ("Running", "Stopped", "Destroyed"):
            raise invalid_parameter("Please specify a VM that is either running or stopped.")
        unlink(state, volume)
        return {"volume": state.render("volume", volume)}
    return submit_response(state.jobs.submit(call, instance_type="Volume", instance=volume, work=work))


@command("deleteVolume")
def delete_volume(call: Call):
    volume = call.owned("volume", call.get("id"))
    if volume.get("vm_id"):
        raise invalid_parameter("Please specify a volume that is not attached to any VM.")
    call.state.remove("volume", volume)
    return success()


@command("listVolumes")
def list_volumes(call: Call):
    rows = call.filtered(list(call.scoped("volume")), keyword_fields=("name",))
    for param, field in (("virtualmachineid", "vm_id"), ("zoneid", "zone_id"), ("diskofferingid", "disk_offering_id"),
                         ("state", "state")):
        if call.get(param):
            rows = [row for row in rows if str(row.get(field)).lower() == str(call.get(param)).lower()]
    if call.get("type"):
        rows = [row for row in rows if row["type"].lower() == call.get("type").lower()]
    return call.page(rows, "volume")


# -- snapshots ---------------------------------------------------------------------------------
@renderer("snapshot")
def render_snapshot(state: SimState, snapshot: dict) -> dict:
    volume = state.get("volume", snapshot["volume_id"])
    return compact({"id": snapshot["id"], **owner_fields(state, snapshot["account_id"]),
                    "snapshottype": "MANUAL", "volumeid": snapshot["volume_id"],
                    "volumename": snapshot["volume_name"], "volumetype": snapshot["volume_type"],
                    "volumestate": volume["state"] if volume else None, "created": cs_date(snapshot["created"]),
                    "name": snapshot["name"], "intervaltype": "MANUAL", "locationtype": "PRIMARY",
                    "state": snapshot["state"], "physicalsize": snapshot["size"], "virtualsize": snapshot["size"],
                    "zoneid": snapshot["zone_id"], "zonename": zone_name(state, snapshot["zone_id"]),
                    "revertable": False, "tags": state.tags_of(snapshot["id"]), "hasannotations": False,
                    **pending_fields(snapshot)})


@command("createSnapshot")
def create_snapshot(call: Call):
    state, volume = call.state, call.owned("volume", call.get("volumeid"))
    if volume["state"] != "Ready":
        raise invalid_parameter(f"VolumeId: {volume['id']} is not in Ready state but {volume['state']}. "
                                "Cannot take snapshot.")
    owner = state.get("account", volume["account_id"])
    from .accounts import check_limit
    check_limit(state, owner, "snapshot")
    vm = state.get("vm", volume.get("vm_id"))
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    name = call.get("name") or f"{vm['instancename'] if vm else 'detached'}_{volume['name']}_{stamp}"
    snapshot = state.add("snapshot", {"name": name, "account_id": volume["account_id"], "volume_id": volume["id"],
                                      "volume_name": volume["name"], "volume_type": volume["type"],
                                      "zone_id": volume["zone_id"], "size": volume["size"], "state": "BackingUp"})

    def work() -> dict:
        snapshot["state"] = "BackedUp"
        state.touch(snapshot)
        return {"snapshot": state.render("snapshot", snapshot)}

    def rollback() -> None:
        snapshot["state"] = "Error"
        state.touch(snapshot)
    job = state.jobs.submit(call, instance_type="Snapshot", instance=snapshot, work=work, rollback=rollback)
    return submit_response(job, snapshot["id"])


@command("listSnapshots")
def list_snapshots(call: Call):
    rows = call.filtered(list(call.scoped("snapshot")), keyword_fields=("name",))
    for param, field in (("volumeid", "volume_id"), ("zoneid", "zone_id")):
        if call.get(param):
            rows = [row for row in rows if row.get(field) == call.get(param)]
    if call.get("snapshottype") and call.get("snapshottype").upper() != "MANUAL":
        rows = []
    return call.page(rows, "snapshot")


@command("deleteSnapshot")
def delete_snapshot(call: Call):
    state, snapshot = call.state, call.owned("snapshot", call.get("id"))
    if snapshot["state"] == "BackingUp":
        raise invalid_parameter(f"Can't delete snapshot {snapshot['id']} with state BackingUp")

    def work() -> dict:
        if state.get("snapshot", snapshot["id"]) is None:
            raise cloud_runtime(f"Failed to delete snapshot {snapshot['id']}")
        state.remove("snapshot", snapshot)
        return success()
    return submit_response(state.jobs.submit(call, instance_type="Snapshot", instance=snapshot, work=work))
