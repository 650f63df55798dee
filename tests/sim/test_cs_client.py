"""The third-party ``cs`` client (PyPI) drives the simulator like a real CloudStack.

``cs`` signs with ``signatureVersion=3``/``expires`` and ``apiKey`` spelt in camelCase; it is
synchronous, so each call runs in a worker thread while the simulator serves on the test loop.
"""

from __future__ import annotations

import asyncio

import cs
import pytest


@pytest.fixture
def client(sim):
    key, secret = sim.demo_credentials
    return cs.CloudStack(endpoint=sim.url, key=key, secret=secret, fetch_result=True, poll_interval=0.01,
                         timeout=10)


async def run(fn, **params):
    return await asyncio.to_thread(fn, **params)


async def test_cs_scenario(sim, client):
    sim.state.config.allow_user_expunge_recover_vm = True   # the user expunges its VM at the end
    zone = (await run(client.listZones))["zone"][0]["id"]
    template = next(t for t in (await run(client.listTemplates, templatefilter="executable"))["template"]
                    if t["name"].startswith("Debian"))
    offering = next(o for o in (await run(client.listServiceOfferings))["serviceoffering"] if o["name"] == "t2.micro")
    keypair = (await run(client.createSSHKeyPair, name="ops"))["keypair"]
    assert keypair["privatekey"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    group = (await run(client.createSecurityGroup, name="web"))["securitygroup"]
    rule = await run(client.authorizeSecurityGroupIngress, securitygroupid=group["id"], protocol="tcp",
                     startport=443, endport=443, cidrlist="0.0.0.0/0")
    assert rule["securitygroup"]["ingressrule"][0]["startport"] == 443

    vm = (await run(client.deployVirtualMachine, zoneid=zone, templateid=template["id"],
                    serviceofferingid=offering["id"], keypair="ops", securitygroupids=group["id"],
                    name="web-1"))["virtualmachine"]
    assert vm["state"] == "Running" and vm["keypairs"] == "ops" and vm["securitygroup"][0]["name"] == "web"
    listed = await run(client.listVirtualMachines, id=vm["id"])
    assert listed["count"] == 1 and listed["virtualmachine"][0]["nic"][0]["ipaddress"].startswith("10.100.")

    assert (await run(client.stopVirtualMachine, id=vm["id"]))["virtualmachine"]["state"] == "Stopped"
    assert (await run(client.startVirtualMachine, id=vm["id"]))["virtualmachine"]["state"] == "Running"

    disk = next(d for d in (await run(client.listDiskOfferings))["diskoffering"] if d["name"] == "Custom")
    volume = (await run(client.createVolume, name="data", zoneid=zone, diskofferingid=disk["id"], size=7))["volume"]
    assert volume["state"] == "Allocated" and volume["size"] == 7 * 1024 ** 3
    attached = (await run(client.attachVolume, id=volume["id"], virtualmachineid=vm["id"]))["volume"]
    assert attached["deviceid"] == 1 and attached["state"] == "Ready" and attached["vmname"] == "web-1"
    snapshot = (await run(client.createSnapshot, volumeid=volume["id"]))["snapshot"]
    assert snapshot["state"] == "BackedUp"
    await run(client.createTags, resourcetype="UserVm", resourceids=vm["id"], tags=[{"key": "env", "value": "prod"}])
    tagged = await run(client.listVirtualMachines, tags=[{"key": "env", "value": "prod"}])
    assert [v["id"] for v in tagged["virtualmachine"]] == [vm["id"]]
    assert (await run(client.listTags, resourceid=vm["id"]))["tag"][0]["value"] == "prod"
    await run(client.detachVolume, id=volume["id"])
    await run(client.deleteSnapshot, id=snapshot["id"])
    await run(client.deleteVolume, id=volume["id"])

    destroyed = (await run(client.destroyVirtualMachine, id=vm["id"], expunge=True))["virtualmachine"]
    assert destroyed["state"] == "Expunging"
    assert await run(client.listVirtualMachines, id=vm["id"]) == {}
    await run(client.deleteSecurityGroup, id=group["id"])
    await run(client.deleteSSHKeyPair, name="ops")
    assert await run(client.listSSHKeyPairs) == {}


async def test_cs_errors_surface_with_cloudstack_codes(client):
    with pytest.raises(cs.CloudStackApiException) as raised:
        await run(client.listTemplates)
    assert raised.value.error["errorcode"] == 431
    assert "missing parameter templatefilter" in raised.value.error["errortext"]


async def test_cs_fetch_list_pages_through_results(sim, client):
    sim.state.seed_vms("demo", 7)
    everything = await run(client.listVirtualMachines, fetch_list=True, pagesize=3)
    assert len(everything) == 7 and len({vm["id"] for vm in everything}) == 7


async def test_cs_post_method(sim):
    key, secret = sim.demo_credentials
    client = cs.CloudStack(endpoint=sim.url, key=key, secret=secret, method="post")
    assert (await run(client.listZones))["count"] == 1
