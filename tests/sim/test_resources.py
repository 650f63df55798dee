"""Resource state machines and CloudStack's rules for VMs, volumes, groups, templates and IPs."""

from __future__ import annotations

import asyncio
import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding

import cloudstack_sim
from cloudstack_sim import SimConfig

from .conftest import Api, catalog, deploy


async def test_password_is_encrypted_with_the_key_pair(demo):
    ids = await catalog(demo)
    keypair = (await demo.call("createSSHKeyPair", name="win"))["keypair"]
    vm = await demo.result("deployVirtualMachine", zoneid=ids["zone"], templateid=ids["windows"],
                           serviceofferingid=ids["offering"], keypair="win")
    password = vm["virtualmachine"]["password"]
    blob = (await demo.call("getVMPassword", id=vm["virtualmachine"]["id"]))["password"]["encryptedpassword"]
    private = serialization.load_pem_private_key(keypair["privatekey"].encode(), password=None)
    assert private.decrypt(base64.b64decode(blob), padding.PKCS1v15()).decode() == password
    listed = (await demo.call("listVirtualMachines", id=vm["virtualmachine"]["id"]))["virtualmachine"][0]
    assert "password" not in listed
    plain = await deploy(demo, ids)
    status, _, body = await demo.error("getVMPassword", id=plain["id"])
    assert status == 431 and body["errortext"].startswith("No password for VM with specified id found.")


async def test_fingerprint_is_md5_of_the_public_key(demo):
    from cryptography.hazmat.primitives.asymmetric import rsa
    import hashlib
    public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    keypair = (await demo.call("registerSSHKeyPair", name="mine", publickey=public + " me@host"))["keypair"]
    digest = hashlib.md5(base64.b64decode(public.split()[1])).hexdigest()
    assert keypair["fingerprint"] == ":".join(digest[i:i + 2] for i in range(0, 32, 2))
    _, _, body = await demo.error("registerSSHKeyPair", name="mine", publickey=public)
    assert body["errortext"] == "A key pair with name 'mine' already exists."
    _, _, body = await demo.error("registerSSHKeyPair", name="junk", publickey="ssh-rsa AAAAnot-a-key")
    assert body["errortext"] == "Public key is invalid"


async def test_security_group_rules_and_duplicates(demo):
    group = (await demo.call("createSecurityGroup", name="db"))["securitygroup"]
    _, _, body = await demo.error("createSecurityGroup", name="db")
    assert body["errortext"] == "Unable to create security group, a group with name db already exists."
    rule = dict(securitygroupid=group["id"], protocol="tcp", startport=5432, endport=5432, cidrlist="10.0.0.0/8")
    assert (await demo.job("authorizeSecurityGroupIngress", **rule))["jobstatus"] == 1
    duplicate = await demo.job("authorizeSecurityGroupIngress", **rule)
    assert duplicate["jobstatus"] == 2
    assert duplicate["jobresult"] == {"errorcode": 530, "errortext": "Failed to authorize security group ingress rule(s)"}
    bad = await demo.job("authorizeSecurityGroupIngress", securitygroupid=group["id"], protocol="tcp",
                         startport=10, endport=5, cidrlist="10.0.0.0/8")
    assert bad["jobresult"] == {"errorcode": 431, "errortext": "Invalid port range 10:5"}
    listed = (await demo.call("listSecurityGroups", securitygroupname="db"))["securitygroup"][0]
    assert len(listed["ingressrule"]) == 1
    await demo.result("revokeSecurityGroupIngress", id=listed["ingressrule"][0]["ruleid"])
    default = (await demo.call("listSecurityGroups", securitygroupname="default"))["securitygroup"][0]
    _, _, body = await demo.error("deleteSecurityGroup", id=default["id"])
    assert body["errortext"] == "The network group default is reserved"
    ids = await catalog(demo)
    await deploy(demo, ids, securitygroupids=group["id"])
    assert (await demo.error("deleteSecurityGroup", id=group["id"]))[0] == 536


async def test_volume_rules(demo):
    ids = await catalog(demo)
    vm = await deploy(demo, ids)
    root = (await demo.call("listVolumes", virtualmachineid=vm["id"]))["volume"][0]
    assert root["type"] == "ROOT" and root["deviceid"] == 0
    detach_root = await demo.job("detachVolume", id=root["id"])
    assert detach_root["jobstatus"] == 2
    devices = []
    for index in range(6):
        volume = (await demo.result("createVolume", name=f"d{index}", zoneid=ids["zone"],
                                    diskofferingid=ids["disk"]))["volume"]
        devices.append((await demo.result("attachVolume", id=volume["id"], virtualmachineid=vm["id"]))["volume"]["deviceid"])
    assert devices == [1, 2, 4, 5, 6, 7]    # 3 is the CD-ROM's
    extra = (await demo.result("createVolume", name="x", zoneid=ids["zone"], diskofferingid=ids["disk"]))["volume"]
    over = await demo.job("attachVolume", id=extra["id"], virtualmachineid=vm["id"])
    assert "maximum number of data disks" in over["jobresult"]["errortext"]
    attached = (await demo.call("listVolumes", name="d0"))["volume"][0]
    again = await demo.job("attachVolume", id=attached["id"], virtualmachineid=vm["id"])
    assert again["jobresult"]["errortext"] == "Please specify a volume that is not attached to any VM."
    _, _, body = await demo.error("deleteVolume", id=attached["id"])
    assert body["errortext"] == "Please specify a volume that is not attached to any VM."
    not_attached = await demo.job("detachVolume", id=extra["id"])
    assert not_attached["jobresult"]["errortext"] == "The specified volume is not attached to a VM."
    _, _, body = await demo.error("createSnapshot", volumeid=extra["id"])
    assert body["errortext"].endswith("is not in Ready state but Allocated. Cannot take snapshot.")


async def test_vm_state_rules(demo, admin):
    ids = await catalog(demo)
    vm = await deploy(demo, ids, name="box")
    _, _, body = await demo.error("changeServiceForVirtualMachine", id=vm["id"], serviceofferingid=ids["offering2"])
    assert "make sure the virtual machine is stopped" in body["errortext"]
    _, _, body = await demo.error("deployVirtualMachine", zoneid=ids["zone"], templateid=ids["linux"],
                                  serviceofferingid=ids["offering"], name="box")
    assert "already exists" in body["errortext"]
    _, _, body = await demo.error("deployVirtualMachine", zoneid=ids["zone"], templateid=ids["linux"],
                                  serviceofferingid=ids["offering"], name="1bad_name")
    assert body["errortext"].startswith("Invalid name.")
    assert (await demo.error("expungeVirtualMachine", id=vm["id"]))[1] == "expungevirtualmachineresponse"
    destroyed = (await demo.result("destroyVirtualMachine", id=vm["id"]))["virtualmachine"]
    assert destroyed["state"] == "Destroyed"
    assert (await demo.job("startVirtualMachine", id=vm["id"]))["jobstatus"] == 2
    recovered = (await admin.call("recoverVirtualMachine", id=vm["id"]))["virtualmachine"]
    assert recovered["state"] == "Stopped"
    await demo.result("destroyVirtualMachine", id=vm["id"])
    await admin.result("expungeVirtualMachine", id=vm["id"])
    assert await admin.call("listVirtualMachines", id=vm["id"]) == {}


async def test_static_nat(demo):
    ids = await catalog(demo)
    vm = await deploy(demo, ids)
    address = (await demo.result("associateIpAddress", zoneid=ids["zone"]))["ipaddress"]
    assert address["state"] == "Allocated" and not address["isstaticnat"]
    await demo.call("enableStaticNat", ipaddressid=address["id"], virtualmachineid=vm["id"])
    listed = (await demo.call("listPublicIpAddresses", id=address["id"]))["publicipaddress"][0]
    assert listed["isstaticnat"] and listed["virtualmachineid"] == vm["id"]
    assert (await demo.call("listVirtualMachines", id=vm["id"]))["virtualmachine"][0]["publicip"] == address["ipaddress"]
    await demo.result("disableStaticNat", ipaddressid=address["id"])
    assert (await demo.error("disableStaticNat", ipaddressid=address["id"]))[0] == 431
    await demo.result("disassociateIpAddress", id=address["id"])
    assert await demo.call("listPublicIpAddresses") == {}


async def test_templates(demo, admin):
    ids = await catalog(demo)
    vm = await deploy(demo, ids)
    await demo.result("stopVirtualMachine", id=vm["id"])
    root = (await demo.call("listVolumes", virtualmachineid=vm["id"]))["volume"][0]
    ostype = (await demo.call("listOsTypes"))["ostype"][0]["id"]
    template = (await demo.result("createTemplate", name="golden", volumeid=root["id"], ostypeid=ostype))["template"]
    assert template["isready"] and template["templatetype"] == "USER" and template["account"] == "demo"
    mine = (await demo.call("listTemplates", templatefilter="self"))["template"]
    assert [t["id"] for t in mine] == [template["id"]]
    assert await admin.call("listTemplates", templatefilter="shared") == {}
    await demo.call("updateTemplatePermissions", id=template["id"], accounts="admin", op="add")
    assert (await admin.call("listTemplates", templatefilter="shared"))["template"][0]["id"] == template["id"]
    perms = (await demo.call("listTemplatePermissions", id=template["id"]))["templatepermission"]
    assert perms["account"] == ["admin", "demo"]   # the permitted account, then the private template's owner
    _, _, body = await demo.error("copyTemplate", id=template["id"], destzoneids=ids["zone"])
    assert body["errortext"] == "Please specify different source and destination zones."
    await deploy(demo, {**ids, "linux": template["id"]})
    _, _, body = await demo.error("deleteTemplate", id=template["id"])
    assert "are using it" in body["errortext"]
    assert (await demo.job("deleteTemplate", id=template["id"], forced="true"))["jobstatus"] == 1
    _, _, body = await demo.error("listTemplates", templatefilter="nonsense")
    assert body["errortext"].startswith("Please specify a valid template filter")


async def test_pending_jobs_show_transitional_states(session):
    running = await cloudstack_sim.start(SimConfig(port=0, job_duration=0.2))
    try:
        api = Api(session, running.url, running.demo_credentials)
        ids = await catalog(api)
        submitted = await api.call("deployVirtualMachine", zoneid=ids["zone"], templateid=ids["linux"],
                                   serviceofferingid=ids["offering"])
        vm = (await api.call("listVirtualMachines", id=submitted["id"]))["virtualmachine"][0]
        assert vm["state"] == "Starting" and vm["jobid"] == submitted["jobid"] and vm["jobstatus"] == 0
        pending = await api.call("queryAsyncJobResult", jobid=submitted["jobid"])
        assert pending["jobstatus"] == 0 and "jobresult" not in pending
        await asyncio.sleep(0.35)
        done = await api.call("queryAsyncJobResult", jobid=submitted["jobid"])
        assert done["jobstatus"] == 1 and done["jobresult"]["virtualmachine"]["state"] == "Running"
        assert done["cmd"] == "org.apache.cloudstack.api.command.user.vm.DeployVMCmd"
        registered = (await api.call("registerTemplate", name="r", format="QCOW2", hypervisor="KVM",
                                     url="http://example.invalid/r.qcow2", zoneid=ids["zone"],
                                     ostypeid=(await api.call("listOsTypes"))["ostype"][0]["id"]))["template"][0]
        assert registered["isready"] is False and registered["status"] == "0% Downloaded"
    finally:
        await running.stop()
