"""Every uuid parameter of every command, given an unknown uuid or a removed object's uuid by a
normal user, gets one of CloudStack's answers - never an internal error.

CloudStack's ``ParamProcessWorker`` refuses a uuid naming nothing (431 "Invalid parameter ...") but
resolves uuids *including removed* objects, so a deleted object's uuid reaches the service, which
must then refuse it (or, for a list filter, list nothing). The commands are taken from the command
table, so a new command or parameter is covered without editing this test.
"""

from __future__ import annotations

import uuid

import pytest

from cloudstack_sim.errors import INTERNAL_ERROR_TEXT
from cloudstack_sim.spec import COMMANDS

from .conftest import catalog, deploy
from .test_fidelity import demo_public_key

# Response classes whose objects can be removed -> the scenario key of a removed one.
REMOVABLE = {"UserVmResponse": "vm", "VolumeResponse": "volume", "SnapshotResponse": "snapshot",
             "TemplateResponse": "template", "TemplatePermissionsResponse": "template",
             "SecurityGroupResponse": "group", "SSHKeyPairResponse": "keypair", "IPAddressResponse": "address",
             "NetworkResponse": "network", "VpcResponse": "vpc"}


def uuid_params(spec) -> list:
    return [p for p in spec.params if p.entity and (p.type == "UUID" or p.collection == "UUID")]


CASES = [(name, param.name) for name, command in sorted(COMMANDS.items()) for param in uuid_params(command.spec)]


async def build(demo) -> tuple[dict, dict]:
    """Live objects of demo's (by response class, plus a public key) and removed ones (by scenario key)."""
    ids = await catalog(demo)
    vm = await deploy(demo, ids)
    root = (await demo.call("listVolumes", virtualmachineid=vm["id"]))["volume"][0]
    volume = (await demo.result("createVolume", name="d", zoneid=ids["zone"], diskofferingid=ids["disk"]))["volume"]
    snapshot = (await demo.result("createSnapshot", volumeid=root["id"]))["snapshot"]
    os_type = (await demo.call("listOsTypes"))["ostype"][0]["id"]
    template_params = dict(format="QCOW2", hypervisor="KVM", zoneid=ids["zone"], ostypeid=os_type,
                           url="http://example.invalid/t.qcow2")
    template = (await demo.call("registerTemplate", name="t", **template_params))["template"][0]
    group = (await demo.call("createSecurityGroup", name="g"))["securitygroup"]
    rule = (await demo.result("authorizeSecurityGroupIngress", securitygroupid=group["id"], protocol="tcp",
                              startport=22, endport=22, cidrlist="0.0.0.0/0"))["securitygroup"]["ingressrule"][0]
    keypair = (await demo.call("createSSHKeyPair", name="k"))["keypair"]
    address = (await demo.result("associateIpAddress", zoneid=ids["zone"]))["ipaddress"]
    vpc_offering = (await demo.call("listVPCOfferings"))["vpcoffering"][0]["id"]
    vpc = (await demo.result("createVPC", name="v", zoneid=ids["zone"], vpcofferingid=vpc_offering,
                             cidr="10.30.0.0/16"))["vpc"]
    offerings = (await demo.call("listNetworkOfferings"))["networkoffering"]
    isolated = next(o["id"] for o in offerings if o["guestiptype"] == "Isolated" and not o["forvpc"])
    shared_network = (await demo.call("listNetworks"))["network"][0]["id"]
    user = (await demo.call("listUsers"))["user"][0]
    job = await demo.call("stopVirtualMachine", id=vm["id"])
    await demo.result("startVirtualMachine", id=vm["id"])
    live = {"ZoneResponse": ids["zone"], "ServiceOfferingResponse": ids["offering"],
            "DiskOfferingResponse": ids["disk"], "TemplateResponse": template["id"],
            "TemplatePermissionsResponse": template["id"], "GuestOSResponse": os_type,
            "UserVmResponse": vm["id"], "VolumeResponse": volume["id"], "SnapshotResponse": snapshot["id"],
            "SecurityGroupResponse": group["id"], "SecurityGroupRuleResponse": rule["ruleid"],
            "SSHKeyPairResponse": keypair["id"], "IPAddressResponse": address["id"],
            "NetworkResponse": shared_network, "NetworkOfferingResponse": isolated, "VpcResponse": vpc["id"],
            "VpcOfferingResponse": vpc_offering, "AsyncJobResponse": job["jobid"], "UserResponse": user["id"],
            "AccountResponse": user["accountid"], "DomainResponse": user["domainid"],
            "publickey": await demo_public_key()}
    return live, await removed_objects(demo, ids, template_params, isolated, vpc_offering)


async def removed_objects(demo, ids: dict, template_params: dict, isolated: str, vpc_offering: str) -> dict:
    vm = await deploy(demo, ids)
    await demo.result("destroyVirtualMachine", id=vm["id"], expunge="true")
    volume = (await demo.result("createVolume", name="x", zoneid=ids["zone"], diskofferingid=ids["disk"]))["volume"]
    await demo.call("deleteVolume", id=volume["id"])
    root = (await demo.call("listVolumes", type="ROOT"))["volume"][0]
    snapshot = (await demo.result("createSnapshot", volumeid=root["id"]))["snapshot"]
    await demo.result("deleteSnapshot", id=snapshot["id"])
    template = (await demo.call("registerTemplate", name="x", **template_params))["template"][0]
    await demo.result("deleteTemplate", id=template["id"])
    group = (await demo.call("createSecurityGroup", name="x"))["securitygroup"]
    await demo.call("deleteSecurityGroup", id=group["id"])
    keypair = (await demo.call("createSSHKeyPair", name="x"))["keypair"]
    await demo.call("deleteSSHKeyPair", name="x")
    address = (await demo.result("associateIpAddress", zoneid=ids["zone"]))["ipaddress"]
    await demo.result("disassociateIpAddress", id=address["id"])
    network = (await demo.call("createNetwork", name="x", zoneid=ids["zone"], networkofferingid=isolated))["network"]
    await demo.result("deleteNetwork", id=network["id"])
    vpc = (await demo.result("createVPC", name="x", zoneid=ids["zone"], vpcofferingid=vpc_offering,
                             cidr="10.40.0.0/16"))["vpc"]
    await demo.result("deleteVPC", id=vpc["id"])
    return {"vm": vm["id"], "volume": volume["id"], "snapshot": snapshot["id"], "template": template["id"],
            "group": group["id"], "keypair": keypair["id"], "address": address["id"], "network": network["id"],
            "vpc": vpc["id"]}


# Optional parameters some commands need before they look at the one under test, and the ones a
# tested parameter excludes (createTemplate takes a volume or a snapshot).
CONTEXT = {"deployVirtualMachine": {"templateid": "TemplateResponse"},
           "createTemplate": {"volumeid": "VolumeResponse"},
           "createVolume": {"diskofferingid": "DiskOfferingResponse", "zoneid": "ZoneResponse"},
           "detachVolume": {"deviceid": 1}}
EXCLUDES = {("createTemplate", "snapshotid"): "volumeid"}
# Refusals CloudStack words without the offending id.
ID_FREE_TEXTS = {"Unable to find Template/ISO with specified id"}


def baseline(spec, live: dict, tested: str) -> dict:
    """Valid values for the command's required parameters and its context, except ``tested``."""
    strings = {"name": "probe", "format": "QCOW2", "hypervisor": "KVM", "templatefilter": "executable",
               "url": "http://example.invalid/p.qcow2", "resourcetype": "UserVm", "publickey": live["publickey"],
               "userapikey": "unknown-key", "resourceids": live["UserVmResponse"]}
    params = {name: live.get(value, value) for name, value in CONTEXT.get(spec.name, {}).items()}
    params.pop(EXCLUDES.get((spec.name, tested)), None)
    for param in spec.params:
        if not param.required:
            continue
        if param.type == "MAP":
            params.update({f"{param.name}[0].key": "k", f"{param.name}[0].value": "v"})
        elif param.entity:
            params[param.name] = live[param.entity]
        else:
            params[param.name] = strings[param.name]
    params.pop(tested, None)
    return params


@pytest.fixture
async def world(sim, demo):
    sim.state.config.allow_user_expunge_recover_vm = True   # demo expunges the removed VM
    try:
        return await build(demo)
    finally:
        sim.state.config.allow_user_expunge_recover_vm = False


async def outcome(api, command: str, params: dict) -> tuple[int, str | None, dict]:
    """(HTTP status, error text or None, body); an async command's failure is read from its job."""
    status, body = await api.raw({"command": command, "response": "json", **params})
    [(wrapper, inner)] = body.items()
    assert wrapper in (command.lower() + "response", "errorresponse"), body
    if status != 200:
        assert inner["errorcode"] == status and inner["errortext"], body
        return status, inner["errortext"], inner
    if COMMANDS[command].spec.is_async:
        job = await api.call("queryAsyncJobResult", jobid=inner["jobid"])
        if job["jobstatus"] == 2:
            return 200, job["jobresult"]["errortext"], job
    return status, None, inner


async def test_unknown_and_removed_uuids_get_cloudstack_errors(sim, demo, world):
    live, removed = world
    assert all(object_id in sim.state.removed[kind] for kind, object_id in (
        ("vm", removed["vm"]), ("template", removed["template"]), ("network", removed["network"])))
    problems = []
    for command, param_name in CASES:
        spec = COMMANDS[command].spec
        param = next(p for p in spec.params if p.name == param_name)
        base = baseline(spec, live, param_name)
        unknown = str(uuid.uuid4())
        status, text, _ = await outcome(demo, command, {**base, param_name: unknown})
        if status != 431 or f"Invalid parameter {param_name} value={unknown}" not in (text or ""):
            problems.append(f"{command} {param_name}=<unknown>: {status} {text}")
        kind = REMOVABLE.get(param.entity)
        if kind is None:
            continue
        status, text, body = await outcome(demo, command, {**base, param_name: removed[kind]})
        if text == INTERNAL_ERROR_TEXT:
            problems.append(f"{command} {param_name}=<removed {kind}>: internal error")
        elif text and removed[kind] not in text and text not in ID_FREE_TEXTS:
            problems.append(f"{command} {param_name}=<removed {kind}>: refused for another reason: {text}")
        elif text is None and not spec.is_list:
            problems.append(f"{command} {param_name}=<removed {kind}>: accepted ({body})")
        elif text is None and removed[kind] in str(body):
            problems.append(f"{command} {param_name}=<removed {kind}>: listed the removed object")
    assert not problems, "\n".join(problems)
