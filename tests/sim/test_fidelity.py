"""Fidelity: every command's response matches CloudStack's reference and its recorded responses.

One scenario exercises all 65 reference commands (plus the extras the bridge uses); each response
must use the reference's wrapper and object keys, and each field must exist in the reference's
response class with the right JSON type (recursively). Where recorded/ holds a real response for
a command, the simulator's object must carry the recorded keys (apart from fields that exist only
on some objects, listed with the reason) with the same JSON types.
"""

from __future__ import annotations

import json

import pytest

from .conftest import catalog
from .reference import REFERENCE, api_reference, command, json_type, object_problems

ASYNC_RESULT_CLASS = "AsyncJobResponse"


async def exercise(admin, demo) -> dict[str, list[dict]]:
    """Call every reference command; returns command -> list of (wrapper body) responses."""
    seen: dict[str, list[dict]] = {}

    async def call(api, name, /, **params):
        status, body = await api.raw({"command": name, "response": "json", **params})
        assert status == 200, (name, body)
        seen.setdefault(name, []).append(body)
        inner = body[name.lower() + "response"]
        if "jobid" in inner and name != "queryAsyncJobResult":
            job = await call(api, "queryAsyncJobResult", jobid=inner["jobid"])
            assert job["jobstatus"] == 1, (name, job)
            seen.setdefault(name + "#result", []).append(job)
            return job["jobresult"]
        return inner

    ids = await catalog(demo)
    for name, params in (("listZones", {}), ("listRegions", {}), ("listServiceOfferings", {}),
                         ("listDiskOfferings", {}), ("listNetworkOfferings", {}), ("listVPCOfferings", {}),
                         ("listOsTypes", {}), ("listCapabilities", {}), ("listApis", {"name": "listZones"}),
                         ("listAccounts", {}), ("listUsers", {}), ("listNetworks", {}),
                         ("listTemplates", {"templatefilter": "executable"})):
        await call(demo, name, **params)
    await call(demo, "createSSHKeyPair", name="fid")
    await call(demo, "registerSSHKeyPair", name="fid2", publickey=(await demo_public_key()))
    await call(demo, "listSSHKeyPairs")
    group = (await call(demo, "createSecurityGroup", name="web", description="web tier"))["securitygroup"]
    ingress = await call(demo, "authorizeSecurityGroupIngress", securitygroupid=group["id"], protocol="tcp",
                         startport=22, endport=22, cidrlist="0.0.0.0/0")
    egress = await call(demo, "authorizeSecurityGroupEgress", securitygroupid=group["id"], protocol="udp",
                        startport=53, endport=53, cidrlist="10.0.0.0/8")
    await call(demo, "listSecurityGroups")
    vm = (await call(demo, "deployVirtualMachine", zoneid=ids["zone"], templateid=ids["windows"],
                     serviceofferingid=ids["offering"], keypair="fid", securitygroupids=group["id"]))["virtualmachine"]
    await call(demo, "listVirtualMachines")
    await call(demo, "getVMPassword", id=vm["id"])
    await call(demo, "rebootVirtualMachine", id=vm["id"])
    await call(demo, "stopVirtualMachine", id=vm["id"])
    await call(demo, "updateVirtualMachine", id=vm["id"], displayname="renamed")
    await call(demo, "changeServiceForVirtualMachine", id=vm["id"], serviceofferingid=ids["offering2"])
    await call(demo, "startVirtualMachine", id=vm["id"])
    volume = (await call(demo, "createVolume", name="data", zoneid=ids["zone"],
                         diskofferingid=ids["disk"]))["volume"]
    await call(demo, "attachVolume", id=volume["id"], virtualmachineid=vm["id"])
    await call(demo, "listVolumes")
    snapshot = (await call(demo, "createSnapshot", volumeid=volume["id"]))["snapshot"]
    await call(demo, "listSnapshots")
    await call(demo, "detachVolume", id=volume["id"])
    await call(demo, "createTags", resourcetype="UserVm", resourceids=vm["id"], **{"tags[0].key": "env",
                                                                                   "tags[0].value": "test"})
    await call(demo, "listTags")
    await call(demo, "deleteTags", resourcetype="UserVm", resourceids=vm["id"], **{"tags[0].key": "env"})
    address = (await call(demo, "associateIpAddress", zoneid=ids["zone"]))["ipaddress"]
    await call(demo, "enableStaticNat", ipaddressid=address["id"], virtualmachineid=vm["id"])
    await call(demo, "listPublicIpAddresses")
    await call(demo, "disableStaticNat", ipaddressid=address["id"])
    await call(demo, "disassociateIpAddress", id=address["id"])
    vpc_offering = (await call(demo, "listVPCOfferings"))["vpcoffering"][0]["id"]
    vpc = (await call(demo, "createVPC", name="v1", zoneid=ids["zone"], vpcofferingid=vpc_offering,
                      cidr="10.10.0.0/16"))["vpc"]
    offerings = (await call(demo, "listNetworkOfferings", forvpc="true"))["networkoffering"]
    tier = (await call(demo, "createNetwork", name="tier1", zoneid=ids["zone"], vpcid=vpc["id"],
                       networkofferingid=offerings[0]["id"], gateway="10.10.1.1",
                       netmask="255.255.255.0"))["network"]
    await call(demo, "listVPCs")
    await call(demo, "deleteNetwork", id=tier["id"])
    await call(demo, "deleteVPC", id=vpc["id"])
    await call(demo, "stopVirtualMachine", id=vm["id"])
    root = (await call(demo, "listVolumes", virtualmachineid=vm["id"], type="ROOT"))["volume"][0]
    template = (await call(demo, "createTemplate", name="img", displaytext="img", volumeid=root["id"],
                           ostypeid=(await call(demo, "listOsTypes"))["ostype"][0]["id"]))["template"]
    await call(demo, "updateTemplatePermissions", id=template["id"], accounts="admin", op="add")
    await call(demo, "listTemplatePermissions", id=template["id"])
    await call(demo, "registerTemplate", name="reg", displaytext="reg", format="QCOW2", hypervisor="KVM",
               url="http://example.invalid/img.qcow2", zoneid=ids["zone"], ostypeid=template["ostypeid"])
    await call(demo, "deleteTemplate", id=template["id"], forced="true")
    await call(demo, "deleteSnapshot", id=snapshot["id"])
    await call(demo, "deleteVolume", id=volume["id"])
    await call(demo, "revokeSecurityGroupIngress", id=ingress["securitygroup"]["ingressrule"][0]["ruleid"])
    await call(demo, "revokeSecurityGroupEgress", id=egress["securitygroup"]["egressrule"][0]["ruleid"])
    await call(demo, "destroyVirtualMachine", id=vm["id"])
    await call(admin, "expungeVirtualMachine", id=vm["id"])   # users may not (allow.user.expunge.recover.vm)
    await call(demo, "deleteSecurityGroup", id=group["id"])
    await call(demo, "deleteSSHKeyPair", name="fid")
    await call(demo, "listAsyncJobs")
    user = (await call(demo, "listUsers"))["user"][0]
    await call(demo, "getUserKeys", id=user["id"])
    await call(demo, "registerUserKeys", id=user["id"])
    await call(admin, "listResourceLimits", listall="true")
    return seen


async def demo_public_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def problems_of(name: str, body: dict) -> list[str]:
    spec = command(name)
    wrapper = spec["response_wrapper"]
    if list(body) != [wrapper]:
        return [f"{name}: wrapper {list(body)} != {wrapper}"]
    inner = body[wrapper]
    if spec["async"]:
        expected = {"jobid", "id"} if spec["async_create"] else {"jobid"}
        return [] if set(inner) == expected else [f"{name}: async submit keys {sorted(inner)}"]
    return payload_problems(name, spec, inner)


def payload_problems(name: str, spec: dict, inner: dict) -> list[str]:
    key, cls = spec["object_name"], spec["response_class"]
    if name == "queryAsyncJobResult":
        return object_problems(inner, ASYNC_RESULT_CLASS, name)
    if key == "success":
        return object_problems(inner, "SuccessResponse", name)
    if spec["list"]:
        if not inner:
            return []
        if set(inner) != {"count", key} or not isinstance(inner["count"], int):
            return [f"{name}: list keys {sorted(inner)}"]
        return [p for i, item in enumerate(inner[key]) for p in object_problems(item, cls, f"{name}.{key}[{i}]")]
    if set(inner) != {key}:
        return [f"{name}: object keys {sorted(inner)} != [{key}]"]
    return object_problems(inner[key], cls, f"{name}.{key}")


def job_result_problems(name: str, job: dict) -> list[str]:
    spec = command(name)
    problems = object_problems(job, ASYNC_RESULT_CLASS, name + "#job")
    result = job["jobresult"]
    if spec["object_name"] == "success":
        problems += object_problems(result, "SuccessResponse", name + "#result")
    else:
        if list(result) != [spec["object_name"]]:
            return problems + [f"{name}: job result keys {sorted(result)}"]
        problems += object_problems(result[spec["object_name"]], spec["response_class"], name + "#result")
    cmd_class = job["cmd"].rsplit(".", 1)[-1]
    if cmd_class != spec["java_class"]:
        problems.append(f"{name}: job cmd {job['cmd']} is not {spec['java_class']}")
    return problems


@pytest.fixture
async def responses(admin, demo):
    return await exercise(admin, demo)


async def test_every_reference_command_is_exercised(responses):
    names = {c["name"] for c in api_reference()["commands"]}
    # copyTemplate needs a second zone; test_resources covers its single-zone refusal.
    missing = names - {name for name in responses if "#" not in name} - {"copyTemplate"}
    assert not missing


async def test_responses_match_the_reference(responses):
    problems = []
    for name, bodies in responses.items():
        if name.endswith("#result"):
            problems += [p for job in bodies for p in job_result_problems(name[:-7], job["queryasyncjobresultresponse"]
                                                                            if "queryasyncjobresultresponse" in job else job)]
        elif name in {c["name"] for c in api_reference()["commands"]}:
            problems += [p for body in bodies for p in problems_of(name, body)]
    assert not problems, "\n".join(problems[:40])


# -- recorded responses --------------------------------------------------------------------------
# Fields a recorded object has only in some situations the scenario does not reproduce, with why.
CONDITIONAL = {
    "password": "only in the deploy result of a password-enabled template",
    "jobid": "only while a job works on the object", "jobstatus": "only while a job works on the object",
    "isoid": "ISO attached", "isoname": "ISO attached", "isodisplaytext": "ISO attached",
    "projectid": "project resources", "project": "project resources",
    "virtualmachineid": "attached volumes / static NAT IPs", "vmname": "attached volumes",
    "vmdisplayname": "attached volumes", "vmstate": "attached volumes", "deviceid": "attached volumes",
    "attached": "attached volumes", "publicip": "static NAT", "publicipid": "static NAT",
    "hostid": "running VMs", "hostname": "running VMs", "cpuused": "running VMs",
    "networkkbsread": "running VMs", "networkkbswrite": "running VMs", "diskkbsread": "running VMs",
    "diskkbswrite": "running VMs", "diskioread": "running VMs", "diskiowrite": "running VMs",
    "userdata": "only from getVirtualMachineUserData", "group": "VM groups", "groupid": "VM groups",
    "keypair": "pre-4.17 single key pair field", "vgpu": "GPU hosts", "ipaddress": "pre-4.x top-level VM ip",
    "isolationuri": "VLAN isolated NICs", "broadcasturi": "VLAN networks", "securitygroupname": "group rules",
    "account": "group rules / owner", "storage": "volumes on primary storage", "storageid": "volumes on primary",
    "path": "volumes on primary storage", "hypervisor": "volumes on primary storage",
    "serviceofferingid": "root volumes", "serviceofferingname": "root volumes",
    "serviceofferingdisplaytext": "root volumes", "templateid": "root volumes", "templatename": "root volumes",
    "templatedisplaytext": "root volumes", "diskofferingid": "data volumes", "diskofferingname": "data volumes",
    "diskofferingdisplaytext": "data volumes", "vmtype": "attached volumes", "snapshotid": "volumes from snapshots",
    "domain": "owner fields", "domainid": "owner fields",
    "removed": "deleted objects", "checksum": "registered with a checksum", "sourcetemplateid": "derived templates",
    "hostcontrolstate": "running VMs", "vlan": "VLAN networks", "gateway": "networks with a gateway",
    "netmask": "networks with a netmask", "cidr": "networks with a cidr", "networkcidr": "reserved ranges",
    "reserveddiprange": "reserved ranges", "vpcid": "VPC resources", "vpcname": "VPC resources",
    "aclid": "VPC tiers", "aclname": "VPC tiers", "associatednetworkid": "IPs on a network",
    "associatednetworkname": "IPs on a network", "networkid": "IPs on a network", "purpose": "IPs with rules",
    "vmipaddress": "static NAT", "virtualmachinename": "static NAT", "virtualmachinedisplayname": "static NAT",
    "virtualmachinetype": "static NAT", "startport": "tcp/udp rules", "endport": "tcp/udp rules",
    "icmptype": "icmp rules", "icmpcode": "icmp rules", "cidrlist": "rules", "ostypeid": "snapshot of a root volume",
    "osdisplayname": "snapshot of a root volume", "physicalsize": "ready objects", "size": "ready objects",
    "status": "objects being processed", "dns1": "zones with DNS", "dns2": "zones with DNS",
    "internaldns1": "zones with DNS", "internaldns2": "zones with DNS", "description": "zones with a description",
    "guestcidraddress": "advanced zones", "customer": "tags created with a customer",
    "privatekey": "createSSHKeyPair only", "related": "networks", "physicalnetworkid": "admin view",
    "userdataid": "VMs with user data objects", "details": "objects with details", "readonlydetails": "admin view",
    "domainpath": "newer servers", "accountdetails": "accounts with details",
    "timezone": "users with a timezone", "tags": "offerings with storage/host tags (a string field)",
    "networkrate": "offerings with a network rate", "instancename": "admin view", "zonetoken": "admin view",
}


def recorded_objects() -> list[tuple[str, str, dict]]:
    index = json.loads((REFERENCE / "recorded" / "INDEX.json").read_text())
    targets = {c["name"]: c for c in api_reference()["commands"]}
    found = []
    for entry in index["entries"]:
        name = entry.get("command")
        if name not in targets or entry["kind"] not in ("list", "object"):
            continue
        body = json.loads((REFERENCE / "recorded" / entry["source"] / entry["file"]).read_text())
        if entry["source"] == "cloudstack-go":
            body = body.get(name, {})
        inner = body.get(entry["wrapper"], {})
        key = targets[name]["object_name"]
        items = inner.get(key)
        if isinstance(items, dict):
            items = [items]
        for item in items or []:
            found.append((name, f"{entry['source']}/{entry['file']}", item))
    return found


def ours(responses: dict, name: str) -> list[dict]:
    spec = command(name)
    key, objects = spec["object_name"], []
    for body in responses.get(name, []) + responses.get(name + "#result", []):
        inner = body.get(spec["response_wrapper"]) or body.get("queryasyncjobresultresponse", {}).get("jobresult", {})
        value = inner.get(key) if isinstance(inner, dict) else None
        objects += value if isinstance(value, list) else [value] if isinstance(value, dict) else []
    return objects


async def test_objects_have_the_recorded_keys_and_types(responses):
    problems = []
    for name, source, recorded in recorded_objects():
        mine = ours(responses, name)
        if not mine:
            continue
        merged: dict = {}
        for obj in mine:
            for field, value in obj.items():
                merged.setdefault(field, value)
        ref_fields = {f["name"]: f["type"] for f in api_reference()["response_objects"][
            command(name)["response_class"]]["fields"]}
        for field, value in recorded.items():
            if field not in ref_fields or field in CONDITIONAL:
                continue
            if field not in merged:
                problems.append(f"{source}: {name} lacks {field}")
            elif recorded_is_modern(value, ref_fields[field]) and json_type(value) != json_type(merged[field]):
                problems.append(f"{source}: {name}.{field} is {json_type(merged[field])}, recorded "
                                f"{json_type(value)}")
    assert not problems, "\n".join(sorted(set(problems))[:60])


def recorded_is_modern(value, ref_type: str) -> bool:
    """Pre-4.0 fixtures (libcloud) carry numeric ids where today's servers send uuid strings."""
    return not (ref_type == "string" and isinstance(value, int))
