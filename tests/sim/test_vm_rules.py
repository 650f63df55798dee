"""VMs under CloudStack's rules the bridge depends on: the destroyed-VM settings
(``allow.user.view.destroyed.vm``, ``allow.user.expunge.recover.vm``), ``listVirtualMachines
userdata=true`` and ``updateVirtualMachine securitygroupids``."""

from __future__ import annotations

import base64

import pytest

from .conftest import catalog, deploy

SETTING = "Or when the allow.user.expunge.recover.vm key is set."


async def capabilities(api) -> dict:
    return (await api.call("listCapabilities"))["capability"]


async def listed_ids(api, **params) -> list[str]:
    return [vm["id"] for vm in (await api.call("listVirtualMachines", **params)).get("virtualmachine", [])]


async def test_by_default_users_neither_see_nor_expunge_destroyed_vms(demo, admin):
    ids = await catalog(demo)
    vm = await deploy(demo, ids)
    assert (await capabilities(demo))["allowuserviewdestroyedvm"] is False
    assert (await capabilities(demo))["allowuserexpungerecovervm"] is False
    assert (await capabilities(admin))["allowuserexpungerecovervm"] is True   # admins always may

    refused = await demo.job("destroyVirtualMachine", id=vm["id"], expunge="true")
    assert (refused["jobstatus"], refused["jobresultcode"]) == (2, 530)
    assert refused["jobresult"]["errortext"] == f"Parameter expunge can be passed by Admin only. {SETTING}"
    assert await listed_ids(demo, id=vm["id"]) == [vm["id"]]   # the refusal left the VM as it was

    destroyed = (await demo.result("destroyVirtualMachine", id=vm["id"]))["virtualmachine"]
    assert destroyed["state"] == "Destroyed"
    for params in ({}, {"id": vm["id"]}, {"state": "Destroyed"}):
        assert await listed_ids(demo, **params) == []
    assert await listed_ids(admin, listall="true", state="Destroyed") == [vm["id"]]

    status, _, body = await demo.error("recoverVirtualMachine", id=vm["id"])
    assert (status, body["cserrorcode"], body["errortext"]) == (
        531, 4365, f"Recovering a vm can only be done by an Admin. {SETTING}")
    expunge = await demo.job("expungeVirtualMachine", id=vm["id"])
    assert expunge["jobresult"] == {"errorcode": 530,
                                    "errortext": f"Expunging a vm can only be done by an Admin. {SETTING}"}
    await admin.result("expungeVirtualMachine", id=vm["id"])
    assert await listed_ids(admin, listall="true") == []


async def test_with_both_settings_users_see_recover_and_expunge(sim, demo):
    sim.state.config.allow_user_view_destroyed_vm = True
    sim.state.config.allow_user_expunge_recover_vm = True
    assert (await capabilities(demo))["allowuserviewdestroyedvm"] is True
    assert (await capabilities(demo))["allowuserexpungerecovervm"] is True
    ids = await catalog(demo)
    kept, gone = await deploy(demo, ids), await deploy(demo, ids)
    await demo.result("destroyVirtualMachine", id=kept["id"])
    assert await listed_ids(demo, state="Destroyed") == [kept["id"]]
    assert (await demo.call("recoverVirtualMachine", id=kept["id"]))["virtualmachine"]["state"] == "Stopped"
    expunged = (await demo.result("destroyVirtualMachine", id=gone["id"], expunge="true"))["virtualmachine"]
    assert expunged["state"] == "Expunging"
    assert await listed_ids(demo) == [kept["id"]]


async def test_userdata_is_listed_only_when_asked(demo):
    ids = await catalog(demo)
    script = base64.b64encode(b"#cloud-config\nruncmd: [true]\n").decode()
    with_data, without = await deploy(demo, ids, userdata=script), await deploy(demo, ids)
    plain = (await demo.call("listVirtualMachines", id=with_data["id"]))["virtualmachine"][0]
    assert "userdata" not in plain
    listed = {vm["id"]: vm for vm in (await demo.call("listVirtualMachines", userdata="true"))["virtualmachine"]}
    assert listed[with_data["id"]]["userdata"] == script
    assert "userdata" not in listed[without["id"]]   # gson leaves out a VM's absent user data
    assert {k: v for k, v in listed[with_data["id"]].items() if k != "userdata"} == plain


async def test_security_groups_change_only_on_a_stopped_vm(demo):
    ids = await catalog(demo)
    web = (await demo.call("createSecurityGroup", name="web"))["securitygroup"]
    db = (await demo.call("createSecurityGroup", name="db"))["securitygroup"]
    vm = await deploy(demo, ids)
    status, _, body = await demo.error("updateVirtualMachine", id=vm["id"], securitygroupids=web["id"])
    assert (status, body["errortext"]) == (431, f"VM {vm['id']} must be stopped prior to update security groups")
    await demo.result("stopVirtualMachine", id=vm["id"])
    updated = (await demo.call("updateVirtualMachine", id=vm["id"],
                               securitygroupids=f"{web['id']},{db['id']}"))["virtualmachine"]
    assert [g["name"] for g in updated["securitygroup"]] == ["web", "db"]
    groups = {g["name"]: g for g in (await demo.call("listSecurityGroups"))["securitygroup"]}
    assert groups["web"]["virtualmachineids"] == [vm["id"]] and groups["default"]["virtualmachinecount"] == 0
    by_name = (await demo.call("updateVirtualMachine", id=vm["id"], securitygroupnames="db"))["virtualmachine"]
    assert [g["name"] for g in by_name["securitygroup"]] == ["db"]


@pytest.mark.parametrize("params, text", [
    ({"securitygroupnames": "nope"}, "Unable to find group by name nope"),
    ({"securitygroupnames": "default", "securitygroupids": "GROUP"},
     "securitygroupids parameter is mutually exclusive with securitygroupnames parameter"),
])
async def test_security_group_update_refusals(demo, params, text):
    ids = await catalog(demo)
    vm = await deploy(demo, ids, startvm="false")
    group = (await demo.call("listSecurityGroups"))["securitygroup"][0]["id"]
    params = {k: v.replace("GROUP", group) for k, v in params.items()}
    status, _, body = await demo.error("updateVirtualMachine", id=vm["id"], **params)
    assert (status, body["errortext"]) == (431, text)


async def test_security_groups_are_ignored_off_security_group_networks(demo):
    ids = await catalog(demo)
    offering = next(o for o in (await demo.call("listNetworkOfferings"))["networkoffering"]
                    if o["guestiptype"] == "Isolated" and not o["forvpc"])
    network = (await demo.call("createNetwork", name="iso", zoneid=ids["zone"],
                               networkofferingid=offering["id"]))["network"]
    web = (await demo.call("createSecurityGroup", name="web"))["securitygroup"]
    vm = await deploy(demo, ids, networkids=network["id"], startvm="false")
    updated = (await demo.call("updateVirtualMachine", id=vm["id"], securitygroupids=web["id"]))["virtualmachine"]
    assert updated.get("securitygroup", []) == []   # checkSecurityGroupSupportForNetwork said no
