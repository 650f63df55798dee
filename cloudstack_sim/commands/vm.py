"""Virtual machines: deploy, the start/stop/reboot/destroy/expunge state machine, updates, passwords.

``deployVirtualMachine`` validates and allocates synchronously (as ``DeployVMCmd.create()`` does):
the VM appears at once in ``Starting`` (or ``Stopped`` with ``startvm=false``) with its root volume
(from the template), a NIC on the zone's shared network or the given networks, its security groups
(the account's ``default`` one when none is named) and key pairs. The job then moves it to
``Running``; a failed job leaves it in ``Error``, as CloudStack does. A password-enabled template
gets a generated password: returned in clear in the deploy result, and by ``getVMPassword`` encrypted
with the VM's SSH public key (RSA PKCS#1 v1.5, base64), only when the VM has a key pair. A
``volumeid``/``snapshotid`` to deploy from (4.20+) is checked as CloudStack checks it (a live object
of the caller's, KVM templates only), but the VM is still built from ``templateid``.

Two global settings (``SimConfig``) shape what normal users may do with destroyed VMs, as in
CloudStack: ``allow.user.view.destroyed.vm`` (``listVirtualMachines`` hides Destroyed and
Expunging VMs from them unless set) and ``allow.user.expunge.recover.vm`` (``destroyVirtualMachine``
with ``expunge=true``, ``expungeVirtualMachine`` and ``recoverVirtualMachine`` are refused with a
``PermissionDeniedException`` unless set - inside the job for the async commands, whose
``execute`` makes the check). Both are false by default, as CloudStack ships them.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import string
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..context import Call
from ..errors import ApiError, invalid_parameter, permission_denied
from ..jobs import pending_fields, submit_response
from ..render import compact, cs_date, renderer
from ..spec import command
from ..state import SimState, new_uuid
from .common import owner_fields, success, zone_name
from .keypairs import find_keypair
from .network import attach_nic, default_network, network_usable, render_nic, unset_static_nat
from .security_groups import default_group, embedded_group
from .volumes import new_volume, unlink

GB = 1024 ** 3
HOSTNAME = re.compile(r"^[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
MAX_USERDATA_GET = 4096            # base64 characters CloudStack accepts in a GET request
MAX_USERDATA_BYTES = 32768         # vm.userdata.max.length
PASSWORD_ALPHABET = string.ascii_letters + string.digits
HOST = {"id": "c0a8e2b4-5f1e-4d47-9a4b-51a7d5c0ffee", "name": "SimulatedAgent.sim-host-1"}
LIVE_STATES = ("Running", "Stopped", "Starting", "Stopping")
GONE_STATES = ("Destroyed", "Expunging")
SETTING_TEXT = "Or when the allow.user.expunge.recover.vm key is set."
BAD_NAME = ("Invalid name. Vm name can contain ASCII letters 'a' through 'z', the digits '0' through '9', and the "
            "hyphen ('-'), must be between 1 and 63 characters long, and can't start or end with \"-\" and can't "
            "start with digit")


@renderer("vm")
def render_vm(state: SimState, vm: dict) -> dict:
    template = state.get("template", vm["template_id"]) or {}
    offering = state.get("service_offering", vm["service_offering_id"]) or {}
    os_type = state.get("os_type", template.get("ostype_id")) or {}
    user = state.get("user", vm["user_id"]) or {}
    public_ip = state.get("public_ip", vm.get("public_ip_id"))
    groups = [state.get("security_group", gid) for gid in vm["security_group_ids"]]
    running = vm["state"] == "Running"
    return compact({
        "id": vm["id"], "name": vm["name"], "displayname": vm["displayname"], **owner_fields(state, vm["account_id"]),
        "userid": vm["user_id"], "username": user.get("username"), "created": cs_date(vm["created"]),
        "lastupdated": cs_date(vm.get("lastupdated")), "state": vm["state"], "haenable": vm["haenable"],
        "groupid": vm.get("group_id"), "group": vm.get("group"), "zoneid": vm["zone_id"],
        "zonename": zone_name(state, vm["zone_id"]), "hostid": HOST["id"] if running else None,
        "hostname": HOST["name"] if running else None, "hostcontrolstate": "Enabled" if running else None,
        "templateid": vm["template_id"], "templatename": template.get("name"),
        "templatetype": template.get("templatetype"), "templateformat": template.get("format"),
        "templatedisplaytext": template.get("displaytext"), "passwordenabled": bool(template.get("passwordenabled")),
        "serviceofferingid": vm["service_offering_id"], "serviceofferingname": offering.get("name"),
        "cpunumber": vm["cpunumber"], "cpuspeed": vm["cpuspeed"], "memory": vm["memory"],
        "cpuused": "0%" if running else None, "networkkbsread": 0 if running else None,
        "networkkbswrite": 0 if running else None, "diskkbsread": 0 if running else None,
        "diskkbswrite": 0 if running else None, "diskioread": 0 if running else None,
        "diskiowrite": 0 if running else None, "memorykbs": vm["memory"] * 1024 if running else None,
        "memoryintfreekbs": vm["memory"] * 512 if running else None,
        "memorytargetkbs": vm["memory"] * 1024 if running else None, "guestosid": template.get("ostype_id"),
        "rootdeviceid": 0, "rootdevicetype": "ROOT",
        "securitygroup": [embedded_group(state, group) for group in groups if group],
        "nic": [render_nic(state, nic) for nic in vm["nics"]], "hypervisor": "Simulator",
        "publicipid": public_ip["id"] if public_ip else None, "publicip": public_ip["ipaddress"] if public_ip else None,
        "instancename": vm["instancename"], "details": {}, "keypairs": ",".join(vm["keypairs"]) or None,
        "affinitygroup": [], "displayvm": vm["displayvm"], "isdynamicallyscalable": False,
        "deleteprotection": False, "ostypeid": template.get("ostype_id"), "osdisplayname": os_type.get("name"),
        "bootmode": "legacy", "boottype": "Bios", "pooltype": "NetworkFilesystem", "receivedbytes": 0,
        "sentbytes": 0, "userdataid": None, "vmtype": "UserVM", "arch": "x86_64",
        "tags": state.tags_of(vm["id"]), "hasannotations": False, **pending_fields(vm)})


def changed(state: SimState, vm: dict) -> None:
    """Re-render the VM and what embeds its state (its volumes)."""
    vm["lastupdated"] = time.time()
    state.touch(vm)
    for volume_id in vm["volume_ids"]:
        volume = state.get("volume", volume_id)
        if volume:
            state.touch(volume)


def vm_result(state: SimState, vm: dict, **extra) -> dict:
    return {"virtualmachine": {**state.render("vm", vm), **extra}}


# -- deploy ------------------------------------------------------------------------------------
def check_userdata(call: Call) -> str | None:
    data = call.get("userdata")
    if data is None:
        return None
    if call.http_method == "GET" and len(data) > MAX_USERDATA_GET:
        raise invalid_parameter("User data is too long for an http GET request")
    try:
        decoded = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise invalid_parameter("User data is not base64 encoded") from None
    if len(decoded) > MAX_USERDATA_BYTES:
        raise invalid_parameter(f"User data has exceeded configurable max length : {MAX_USERDATA_BYTES}")
    return data


def check_source_disk(call: Call) -> None:
    """A ``volumeid``/``snapshotid`` to deploy from (4.20+) must name a live object of the caller's."""
    for param, kind, label in (("volumeid", "volume", "volume"), ("snapshotid", "snapshot", "snapshot")):
        if call.get(param):
            record = call.state.get(kind, call.get(param))
            if record is None:
                raise invalid_parameter(f"Could not find {label} with id={call.get(param)}")
            call.check_access(kind, record)


def deploy_template(call: Call, zone_id: str) -> dict:
    if not call.get("templateid"):
        raise invalid_parameter("Please specify either a valid template or ISO ID")
    template = call.state.get("template", call.get("templateid"))
    if template is None:   # a removed template's uuid passes the parameter check
        raise invalid_parameter(f"Unable to use template {call.get('templateid')}")
    from .templates import check_launch
    check_launch(call, template)
    if zone_id not in template["zone_ids"]:
        raise invalid_parameter(f"Template {template['id']} is not available in zone {zone_id}")
    if not template["isready"]:
        raise invalid_parameter(f"Template {template['id']} has not been completely downloaded to zone {zone_id}")
    return template


def deploy_keypairs(call: Call, owner: dict) -> list[dict]:
    names = list(call.get("keypairs") or []) + ([call.get("keypair")] if call.get("keypair") else [])
    keypairs = []
    for name in dict.fromkeys(names):
        keypair = find_keypair(call.state, owner["id"], name)
        if keypair is None:
            raise invalid_parameter(f"A key pair with name '{name}' was not found for account {owner['name']} in "
                                    f"specified domain id")
        keypairs.append(keypair)
    return keypairs


def deploy_groups(call: Call, owner: dict, networks: list[dict]) -> list[dict]:
    ids, names = call.get("securitygroupids") or [], call.get("securitygroupnames") or []
    if ids and names:
        raise invalid_parameter("securitygroupids parameter is mutually exclusive with securitygroupnames parameter")
    sg_network = any(network["type"] == "Shared" for network in networks)
    if not sg_network:
        if ids or names:
            raise invalid_parameter("Can't create vm with security groups; security group feature is not enabled "
                                    "on this network")
        return []
    groups = [call.owned("security_group", group_id) for group_id in ids]
    owned = list(call.state.store("security_group").owned_by(owner["id"]))
    for name in names:
        group = next((g for g in owned if g["name"] == name), None)
        if group is None:
            raise invalid_parameter(f"Unable to find group by name {name}")
        groups.append(group)
    if any(group["account_id"] != owner["id"] for group in groups):
        raise ApiError(531, "Security group must belong to the VM's account", 4365)
    return groups or [default_group(call.state, owner)]


def deploy_networks(call: Call, zone_id: str) -> list[dict]:
    ids = call.get("networkids") or []
    if not ids:
        return [default_network(call.state, zone_id)]
    networks = [network_usable(call, existing_network(call, network_id)) for network_id in ids]
    for network in networks:
        if network["zone_id"] != zone_id:
            raise invalid_parameter(f"Network {network['id']} doesn't belong to zone {zone_id}")
    return networks


def existing_network(call: Call, network_id: str) -> dict:
    network = call.state.get("network", network_id)
    if network is None:
        raise invalid_parameter(f"Unable to find network by id {network_id}")
    return network


def deploy_name(call: Call, owner: dict, vm_id: str) -> tuple[str, str]:
    name = call.get("name")
    if name is None:
        name = f"VM-{vm_id}"
    elif not HOSTNAME.match(name):
        raise invalid_parameter(BAD_NAME)
    elif any(vm["name"] == name for vm in call.state.store("vm").owned_by(owner["id"])
             if vm["state"] != "Expunging"):
        raise invalid_parameter(f"The vm with hostName {name} already exists in the account {owner['name']}")
    return name, call.get("displayname") or name


def generate_password() -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(12))


def encrypt_password(public_key: str, password: str) -> str | None:
    """RSAHelper.encryptWithSSHPublicKey: PKCS#1 v1.5 with the key pair's RSA key; None for other keys."""
    try:
        key = serialization.load_ssh_public_key(public_key.encode())
    except (ValueError, TypeError):
        return None
    if not isinstance(key, rsa.RSAPublicKey):
        return None
    return base64.b64encode(key.encrypt(password.encode(), padding.PKCS1v15())).decode()


def build_vm(state: SimState, *, owner: dict, user: dict, zone_id: str, template: dict, offering: dict,
             networks: list[dict], groups: list[dict], keypairs: list[dict], name: str | None, vm_id: str,
             displayname: str | None = None, vm_state: str, userdata: str | None = None,
             requested_ip: str | None = None, root_size: int | None = None, group_name: str | None = None) -> dict:
    """Create the VM record with its NICs, root volume and security group memberships."""
    name = name or f"VM-{vm_id}"
    nics = []
    for device, network in enumerate(networks):
        nics.append(attach_nic(state, network, vm_id, requested_ip if device == 0 else None, device == 0, device))
    sequence = state.next_seq("vm")
    vm = {"id": vm_id, "name": name, "displayname": displayname or name, "account_id": owner["id"],
          "user_id": user["id"], "zone_id": zone_id, "template_id": template["id"],
          "service_offering_id": offering["id"], "cpunumber": offering["cpunumber"],
          "cpuspeed": offering["cpuspeed"], "memory": offering["memory"], "state": vm_state, "haenable": False,
          "group": group_name, "group_id": None, "keypairs": [k["name"] for k in keypairs],
          "userdata": userdata, "nics": nics, "security_group_ids": [g["id"] for g in groups],
          "volume_ids": [], "instancename": f"i-{owner['number']}-{sequence}-VM", "displayvm": True,
          "lastupdated": None, "password": None}
    if template["passwordenabled"]:
        vm["password"] = generate_password()
        public_key = keypairs[0]["publickey"] if keypairs else None
        vm["encrypted_password"] = encrypt_password(public_key, vm["password"]) if public_key else None
    state.add("vm", vm)
    for group in groups:
        group["vm_ids"].append(vm_id)
        state.touch(group)
    root = new_volume(state, name=f"ROOT-{sequence}", account_id=owner["id"], zone_id=zone_id, kind="ROOT",
                      size=max(template["size"], root_size or 0), state_name="Ready", template_id=template["id"],
                      vm_id=vm_id, deviceid=0, attached=time.time())
    vm["volume_ids"].append(root["id"])
    return vm


@command("deployVirtualMachine")
def deploy_virtual_machine(call: Call):
    state, owner, zone_id = call.state, call.owner_account(), call.get("zoneid")
    offering = state.get("service_offering", call.get("serviceofferingid"))
    check_source_disk(call)
    template = deploy_template(call, zone_id)
    if (call.get("volumeid") or call.get("snapshotid")) and "KVM" not in (template["hypervisor"],
                                                                          call.get("hypervisor")):
        raise invalid_parameter("Deploying a virtual machine with existing volume/snapshot is supported only from "
                                "KVM hypervisors")
    from .accounts import check_limit
    check_limit(state, owner, "user_vm")
    check_limit(state, owner, "cpu", offering["cpunumber"])
    check_limit(state, owner, "memory", offering["memory"])
    keypairs = deploy_keypairs(call, owner)
    networks = deploy_networks(call, zone_id)
    groups = deploy_groups(call, owner, networks)
    userdata = check_userdata(call)
    vm_id = new_uuid()
    name, displayname = deploy_name(call, owner, vm_id)
    data_offering = state.get("disk_offering", call.get("diskofferingid"))
    data_size = data_disk_size(call, data_offering)
    start = call.get("startvm", True)
    vm = build_vm(state, owner=owner, user=call.user, zone_id=zone_id, template=template, offering=offering,
                  networks=networks, groups=groups, keypairs=keypairs, name=name, displayname=displayname,
                  vm_id=vm_id, vm_state="Starting" if start else "Stopped", userdata=userdata,
                  requested_ip=call.get("ipaddress"), root_size=(call.get("rootdisksize") or 0) * GB,
                  group_name=call.get("group"))
    if data_offering is not None:
        add_data_disk(state, vm, data_offering, data_size)

    def work() -> dict:
        if start:
            vm["state"] = "Running"
        changed(state, vm)
        extra = {"password": vm["password"]} if vm.get("password") else {}
        return vm_result(state, vm, **extra)

    def rollback() -> None:
        vm["state"] = "Error"
        changed(state, vm)
    job = state.jobs.submit(call, instance_type="VirtualMachine", instance=vm, work=work, rollback=rollback)
    return submit_response(job, vm["id"])


def data_disk_size(call: Call, offering: dict | None) -> int | None:
    if offering is None:
        return None
    if not offering["iscustomized"]:
        return offering["disksize"] * GB
    size = call.get("size")
    if size is None:
        raise invalid_parameter("This disk offering requires a custom size specified")
    return size * GB


def add_data_disk(state: SimState, vm: dict, offering: dict, size: int) -> None:
    volume = new_volume(state, name=f"DATA-{state.next_seq('volume')}", account_id=vm["account_id"],
                        zone_id=vm["zone_id"], kind="DATADISK", size=size, state_name="Ready",
                        disk_offering_id=offering["id"], vm_id=vm["id"], deviceid=1, attached=time.time())
    vm["volume_ids"].append(volume["id"])


# -- lifecycle ---------------------------------------------------------------------------------
def lifecycle_job(call: Call, vm: dict, *, transitional: str | None, finish, allowed: tuple[str, ...],
                  verb: str, rollback_state: str | None = None) -> dict:
    """Submit a job that checks the state, passes through ``transitional`` and calls ``finish``."""
    state, before = call.state, vm["state"]
    if transitional and before in allowed:
        vm["state"] = transitional
        changed(state, vm)

    def work() -> dict:
        if before not in allowed:
            raise invalid_parameter(f"Unable to {verb} VM {vm['name']} as it is in {before} state")
        return finish()

    def rollback() -> None:
        if before in allowed:   # a refused transition never left ``before``
            vm["state"] = rollback_state or before
            changed(state, vm)
    return submit_response(state.jobs.submit(call, instance_type="VirtualMachine", instance=vm, work=work,
                                             rollback=rollback))


@command("startVirtualMachine")
def start_virtual_machine(call: Call):
    vm, state = call.owned("vm", call.get("id")), call.state
    if vm["state"] == "Running":   # VirtualMachineManager.advanceStart: already started is a success
        return lifecycle_job(call, vm, transitional=None, allowed=("Running",), verb="start",
                             finish=lambda: vm_result(state, vm))

    def finish() -> dict:
        vm["state"] = "Running"
        changed(state, vm)
        return vm_result(state, vm)
    return lifecycle_job(call, vm, transitional="Starting", allowed=("Stopped",), verb="start", finish=finish,
                         rollback_state="Stopped")


@command("stopVirtualMachine")
def stop_virtual_machine(call: Call):
    vm, state = call.owned("vm", call.get("id")), call.state
    if vm["state"] == "Stopped":
        return lifecycle_job(call, vm, transitional=None, allowed=("Stopped",), verb="stop",
                             finish=lambda: vm_result(state, vm))

    def finish() -> dict:
        vm["state"] = "Stopped"
        changed(state, vm)
        return vm_result(state, vm)
    return lifecycle_job(call, vm, transitional="Stopping", allowed=("Running",), verb="stop", finish=finish,
                         rollback_state="Running")


@command("rebootVirtualMachine")
def reboot_virtual_machine(call: Call):
    vm, state = call.owned("vm", call.get("id")), call.state

    def finish() -> dict:
        changed(state, vm)
        return vm_result(state, vm)
    return lifecycle_job(call, vm, transitional=None, allowed=("Running",), verb="reboot", finish=finish)


def may_expunge_or_recover(call: Call) -> bool:
    return call.is_admin or call.state.config.allow_user_expunge_recover_vm


def refused_in_job(call: Call, vm: dict, text: str) -> dict:
    """A job that fails at once with a ``PermissionDeniedException`` and leaves the VM as it was."""
    def work() -> dict:
        raise permission_denied(text)
    return submit_response(call.state.jobs.submit(call, instance_type="VirtualMachine", instance=vm, work=work))


@command("destroyVirtualMachine")
def destroy_virtual_machine(call: Call):
    vm, state = call.owned("vm", call.get("id")), call.state
    expunge = bool(call.get("expunge"))
    doomed = [call.owned("volume", volume_id) for volume_id in call.get("volumeids") or []]
    if expunge and not may_expunge_or_recover(call):
        return refused_in_job(call, vm, f"Parameter expunge can be passed by Admin only. {SETTING_TEXT}")

    def finish() -> dict:
        release_attachments(state, vm)
        for volume in doomed:
            unlink(state, volume)
            state.remove("volume", volume)
        if expunge:
            vm["state"] = "Expunging"
            result = vm_result(state, vm)
            expunge_now(state, vm)
            return result
        vm["state"] = "Destroyed"
        for volume_id in vm["volume_ids"]:
            volume = state.get("volume", volume_id)
            if volume and volume["type"] == "ROOT":
                volume["state"] = "Destroy"
        changed(state, vm)
        return vm_result(state, vm)
    return lifecycle_job(call, vm, transitional="Stopping" if vm["state"] == "Running" else None,
                         allowed=("Running", "Stopped", "Error", "Starting", "Stopping"), verb="destroy",
                         finish=finish)


def release_attachments(state: SimState, vm: dict) -> None:
    public_ip = state.get("public_ip", vm.get("public_ip_id"))
    if public_ip is not None:
        unset_static_nat(state, public_ip)


def expunge_now(state: SimState, vm: dict) -> None:
    """Remove the VM: root volume deleted, data disks detached, addresses and group memberships freed."""
    for volume_id in list(vm["volume_ids"]):
        volume = state.get("volume", volume_id)
        if volume is None:
            continue
        unlink(state, volume)
        if volume["type"] == "ROOT":
            state.remove("volume", volume)
    for nic in vm["nics"]:
        state.release_ip(nic["network_id"], nic["ipaddress"])
    for group_id in vm["security_group_ids"]:
        group = state.get("security_group", group_id)
        if group and vm["id"] in group["vm_ids"]:
            group["vm_ids"].remove(vm["id"])
            state.touch(group)
    state.remove("vm", vm)


@command("expungeVirtualMachine")
def expunge_virtual_machine(call: Call):
    vm, state = call.owned("vm", call.get("id")), call.state
    if vm["state"] != "Destroyed":
        raise invalid_parameter("Please destroy vm with specified vmId before expunge")
    if not may_expunge_or_recover(call):
        return refused_in_job(call, vm, f"Expunging a vm can only be done by an Admin. {SETTING_TEXT}")

    def work() -> dict:
        expunge_now(state, vm)
        return success()
    return submit_response(state.jobs.submit(call, instance_type="VirtualMachine", instance=vm, work=work))


@command("recoverVirtualMachine")
def recover_virtual_machine(call: Call):
    vm, state = call.owned("vm", call.get("id")), call.state
    if not may_expunge_or_recover(call):
        raise permission_denied(f"Recovering a vm can only be done by an Admin. {SETTING_TEXT}")
    if vm["state"] != "Destroyed":
        raise invalid_parameter(f"Unable to recover VM {vm['name']} as it is not in Destroyed state")
    vm["state"] = "Stopped"
    for volume_id in vm["volume_ids"]:
        volume = state.get("volume", volume_id)
        if volume and volume["state"] == "Destroy":
            volume["state"] = "Ready"
    changed(state, vm)
    return vm_result(state, vm)


@command("updateVirtualMachine")
def update_virtual_machine(call: Call):
    vm, state = call.owned("vm", call.get("id")), call.state
    groups = requested_groups(call, vm)
    if groups is not None and in_security_group_network(state, vm):
        replace_groups(call, vm, groups)
    if call.get("name") and call.get("name") != vm["name"]:
        if vm["state"] != "Stopped":
            raise invalid_parameter("Vm name can't be changed unless the vm is stopped")
        if not HOSTNAME.match(call.get("name")):
            raise invalid_parameter(BAD_NAME)
        vm["name"] = call.get("name")
    if call.get("userdata") is not None:
        vm["userdata"] = check_userdata(call)
    for param, field in (("displayname", "displayname"), ("group", "group"), ("haenable", "haenable"),
                         ("displayvm", "displayvm")):
        if param in call.values:
            vm[field] = call.get(param)
    changed(state, vm)
    return vm_result(state, vm)


def requested_groups(call: Call, vm: dict) -> list[dict] | None:
    """``getSecurityGroupIdList``: the ids (each the caller's to use) or the names (the VM owner's
    groups), never both; None when neither is given."""
    ids, names = call.get("securitygroupids"), call.get("securitygroupnames")
    if ids is not None and names is not None:
        raise invalid_parameter("securitygroupids parameter is mutually exclusive with securitygroupnames parameter")
    if ids is not None:
        return [call.owned("security_group", group_id) for group_id in ids]
    if names is None:
        return None
    owned = {g["name"]: g for g in call.state.store("security_group").owned_by(vm["account_id"])}
    missing = [name for name in names if name not in owned]
    if missing:
        raise invalid_parameter(f"Unable to find group by name {missing[0]}")
    return [owned[name] for name in names]


def in_security_group_network(state: SimState, vm: dict) -> bool:
    """``checkSecurityGroupSupportForNetwork``: groups apply only to VMs on a security-group network
    (the zone's shared guest network); elsewhere ``updateVirtualMachine`` ignores them."""
    return any((state.get("network", nic["network_id"]) or {}).get("type") == "Shared" for nic in vm["nics"])


def replace_groups(call: Call, vm: dict, groups: list[dict]) -> None:
    """``updateSecurityGroup``: only a stopped VM changes groups (removed from all, added to these)."""
    if vm["state"] != "Stopped":
        raise invalid_parameter(f"VM {vm['id']} must be stopped prior to update security groups")
    state = call.state
    for group_id in vm["security_group_ids"]:
        group = state.get("security_group", group_id)
        if group and vm["id"] in group["vm_ids"]:
            group["vm_ids"].remove(vm["id"])
            state.touch(group)
    vm["security_group_ids"] = list(dict.fromkeys(group["id"] for group in groups))
    for group in groups:
        if vm["id"] not in group["vm_ids"]:
            group["vm_ids"].append(vm["id"])
            state.touch(group)


@command("changeServiceForVirtualMachine")
def change_service_for_virtual_machine(call: Call):
    vm, state = call.owned("vm", call.get("id")), call.state
    offering = state.get("service_offering", call.get("serviceofferingid"))
    if vm["state"] != "Stopped":
        raise invalid_parameter(f"Unable to upgrade virtual machine {vm['name']} in state {vm['state']}; make sure "
                                "the virtual machine is stopped")
    if offering["id"] == vm["service_offering_id"]:
        raise invalid_parameter(f"Not upgrading vm {vm['name']} since it already has the requested service "
                                f"offering ({offering['name']})")
    owner = state.get("account", vm["account_id"])
    from .accounts import check_limit
    check_limit(state, owner, "cpu", max(offering["cpunumber"] - vm["cpunumber"], 0))
    check_limit(state, owner, "memory", max(offering["memory"] - vm["memory"], 0))
    vm.update(service_offering_id=offering["id"], cpunumber=offering["cpunumber"], cpuspeed=offering["cpuspeed"],
              memory=offering["memory"])
    changed(state, vm)
    return vm_result(state, vm)


@command("getVMPassword")
def get_vm_password(call: Call):
    vm = call.owned("vm", call.get("id"))
    encrypted = vm.get("encrypted_password")
    if not encrypted:
        raise invalid_parameter("No password for VM with specified id found. If VM is created from password "
                                "enabled template and SSH keypair is assigned to VM then only password can be "
                                "retrieved.")
    return {"password": {"encryptedpassword": encrypted}}


@command("listVirtualMachines")
def list_virtual_machines(call: Call):
    """``searchForUserVMs``; ``userdata=true`` (4.18+) adds each VM's base64 ``userdata``."""
    rows = call.filtered(list(call.scoped("vm")), name_exact=False, keyword_fields=("name", "displayname"))
    if not call.is_admin and not call.state.config.allow_user_view_destroyed_vm:
        rows = [vm for vm in rows if vm["state"] not in GONE_STATES]
    wanted_state = (call.get("state") or "").lower()
    if wanted_state == "present":
        rows = [vm for vm in rows if vm["state"] not in ("Destroyed", "Expunging")]
    elif wanted_state == "expunged":
        rows = []
    elif wanted_state:
        rows = [vm for vm in rows if vm["state"].lower() == wanted_state]
    for param, field in (("zoneid", "zone_id"), ("templateid", "template_id"),
                         ("serviceofferingid", "service_offering_id"), ("groupid", "group_id")):
        if call.get(param):
            rows = [vm for vm in rows if vm.get(field) == call.get(param)]
    if call.get("networkid"):
        rows = [vm for vm in rows if any(nic["network_id"] == call.get("networkid") for nic in vm["nics"])]
    if call.get("vpcid"):
        tiers = {n["id"] for n in call.state.store("network") if n.get("vpc_id") == call.get("vpcid")}
        rows = [vm for vm in rows if any(nic["network_id"] in tiers for nic in vm["nics"])]
    if call.get("keypair"):
        rows = [vm for vm in rows if call.get("keypair") in vm["keypairs"]]
    if call.get("securitygroupid"):
        rows = [vm for vm in rows if call.get("securitygroupid") in vm["security_group_ids"]]
    if call.get("displayname"):
        rows = [vm for vm in rows if vm["displayname"] == call.get("displayname")]
    listing = call.page(rows, "vm")
    if call.get("userdata"):   # rare: rendered past the cache rather than caching a second form
        listing.rows = [with_userdata(call.state, vm) for vm in listing.rows]
        listing.kind = None
    return listing


def with_userdata(state: SimState, vm: dict) -> dict:
    rendered = state.render("vm", vm)
    return {**rendered, "userdata": vm["userdata"]} if vm.get("userdata") is not None else rendered


# -- bulk seeding for benchmarks and tests ----------------------------------------------------
def seed_vms(state: SimState, account_name: str, count: int, *, template_name: str | None = None,
             offering_name: str = "t2.micro") -> list[dict]:
    """Create ``count`` Running VMs for ``account_name`` directly (no jobs), with volumes and NICs."""
    account = next(a for a in state.store("account") if a["name"] == account_name)
    user = next(iter(state.store("user").owned_by(account["id"])))
    zone = next(iter(state.store("zone")))
    templates = [t for t in state.store("template") if not t["passwordenabled"]]
    template = next((t for t in templates if t["name"] == template_name), templates[0])
    offering = next(o for o in state.store("service_offering") if o["name"] == offering_name)
    network = default_network(state, zone["id"])
    group = default_group(state, account)
    created = []
    for _ in range(count):
        vm_id = new_uuid()
        created.append(build_vm(state, owner=account, user=user, zone_id=zone["id"], template=template,
                                offering=offering, networks=[network], groups=[group], keypairs=[], name=None,
                                vm_id=vm_id, vm_state="Running"))
    return created
