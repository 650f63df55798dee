"""Zones, regions, offerings, OS types, capabilities and API discovery: the read-only catalog.

Offerings and zones are global (no owner), seeded at start-up (see ``seed.py``). ``listApis``
answers with CloudStack 4.18's own discovery entries for the commands this simulator implements.
"""

from __future__ import annotations

import uuid

from ..context import Call
from ..render import compact, cs_date, renderer
from ..spec import COMMANDS, DISCOVERY, command
from ..state import ENTITY_CHECKS, SimState
from ..xml import VERSION

CUSTOM_DISK_MIN_GB, CUSTOM_DISK_MAX_GB = 1, 1024


@renderer("zone")
def render_zone(state: SimState, zone: dict) -> dict:
    return compact({"id": zone["id"], "name": zone["name"], "description": zone["description"],
                    "dns1": zone["dns1"], "dns2": zone["dns2"], "internaldns1": zone["internal_dns1"],
                    "guestcidraddress": zone["guest_cidr"], "networktype": zone["network_type"],
                    "securitygroupsenabled": zone["sg_enabled"], "allocationstate": zone["allocation_state"],
                    "zonetoken": zone["id"][:8], "dhcpprovider": "VirtualRouter", "localstorageenabled": False,
                    "tags": state.tags_of(zone["id"]), "type": "Core", "hasannotations": False})


@command("listZones")
def list_zones(call: Call):
    rows = call.filtered(list(call.state.store("zone")))
    if call.get("networktype"):
        rows = [zone for zone in rows if zone["network_type"].lower() == call.get("networktype").lower()]
    return call.page(rows, "zone")


@command("listRegions")
def list_regions(call: Call):
    # A single-region installation: CloudStack's built-in region 1, named "Local".
    region = {"id": 1, "name": "Local", "endpoint": "http://localhost:8080/client/",
              "gslbserviceenabled": True, "portableipserviceenabled": False}
    wanted_id, wanted_name = call.get("id"), call.get("name")
    rows = [region] if (wanted_id in (None, 1) and wanted_name in (None, "Local")) else []
    return call.page(rows)


@renderer("service_offering")
def render_service_offering(state: SimState, offering: dict) -> dict:
    return compact({"id": offering["id"], "name": offering["name"], "state": "Active",
                    "displaytext": offering["displaytext"], "cpunumber": offering["cpunumber"],
                    "cpuspeed": offering["cpuspeed"], "memory": offering["memory"],
                    "created": cs_date(offering["created"]), "storagetype": offering["storagetype"],
                    "provisioningtype": offering["provisioningtype"], "offerha": offering["offerha"],
                    "limitcpuuse": offering["limitcpuuse"], "isvolatile": offering["isvolatile"],
                    "issystem": False, "defaultuse": False, "iscustomized": False, "iscustomizediops": False,
                    "cacheMode": "none", "dynamicscalingenabled": True, "diskofferingstrictness": False,
                    "encryptroot": False, "hasannotations": False})


@command("listServiceOfferings")
def list_service_offerings(call: Call):
    rows = call.filtered(list(call.state.store("service_offering")), keyword_fields=("name", "displaytext"))
    if call.get("virtualmachineid"):
        vm = call.owned("vm", call.get("virtualmachineid"))
        rows = [offering for offering in rows if offering["id"] != vm["service_offering_id"]]
    return call.page(rows, "service_offering")


@renderer("disk_offering")
def render_disk_offering(state: SimState, offering: dict) -> dict:
    return compact({"id": offering["id"], "name": offering["name"], "state": "Active",
                    "displaytext": offering["displaytext"], "disksize": offering["disksize"],
                    "created": cs_date(offering["created"]), "iscustomized": offering["iscustomized"],
                    "iscustomizediops": False, "storagetype": offering["storagetype"],
                    "provisioningtype": offering["provisioningtype"], "cacheMode": "none",
                    "displayoffering": True, "disksizestrictness": False, "encrypt": False,
                    "hasannotations": False})


@command("listDiskOfferings")
def list_disk_offerings(call: Call):
    rows = call.filtered(list(call.state.store("disk_offering")), keyword_fields=("name", "displaytext"))
    return call.page(rows, "disk_offering")


@renderer("os_type")
def render_os_type(state: SimState, os_type: dict) -> dict:
    return {"id": os_type["id"], "oscategoryid": category_id(os_type["category"]),
            "oscategoryname": os_type["category"], "name": os_type["name"], "description": os_type["name"],
            "isuserdefined": False, "fordisplay": True}


def category_id(category: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"cloudstack-sim/os-category/{category}"))


ENTITY_CHECKS["GuestOSCategoryResponse"] = lambda state, value: any(
    category_id(os_type["category"]) == value for os_type in state.store("os_type"))


@command("listOsTypes")
def list_os_types(call: Call):
    rows = call.filtered(list(call.state.store("os_type")), keyword_fields=("name",))
    if call.get("description"):
        rows = [row for row in rows if call.get("description").lower() in row["name"].lower()]
    if call.get("oscategoryid"):
        rows = [row for row in rows if category_id(row["category"]) == call.get("oscategoryid")]
    return call.page(rows, "os_type")


def services_of(names: list[str], provider: str = "VirtualRouter") -> list[dict]:
    return [{"name": name, "provider": [{"name": "SecurityGroupProvider" if name == "SecurityGroup" else provider}]}
            for name in names]


@renderer("network_offering")
def render_network_offering(state: SimState, offering: dict) -> dict:
    return compact({"id": offering["id"], "name": offering["name"], "displaytext": offering["displaytext"],
                    "created": cs_date(offering["created"]), "traffictype": offering["traffictype"],
                    "isdefault": offering["isdefault"], "specifyvlan": offering["specifyvlan"],
                    "conservemode": offering["conservemode"], "specifyipranges": offering["specifyipranges"],
                    "availability": offering["availability"], "state": offering["state"],
                    "guestiptype": offering["guestiptype"], "service": services_of(offering["services"]),
                    "forvpc": offering["forvpc"], "fornsx": False, "ispersistent": False,
                    "egressdefaultpolicy": offering["egressdefaultpolicy"], "supportsstrechedl2subnet": False,
                    "supportspublicaccess": False, "supportsinternallb": False, "internetprotocol": "IPv4",
                    "specifyasnumber": False, "hasannotations": False, "networkrate": 200,
                    "maxconnections": 4096 if "Lb" in offering["services"] else None})


@command("listNetworkOfferings")
def list_network_offerings(call: Call):
    rows = call.filtered(list(call.state.store("network_offering")), keyword_fields=("name", "displaytext"))
    for param, field in (("guestiptype", "guestiptype"), ("state", "state"), ("traffictype", "traffictype")):
        if call.get(param):
            rows = [row for row in rows if str(row[field]).lower() == call.get(param).lower()]
    if "forvpc" in call.values:
        rows = [row for row in rows if row["forvpc"] == call.get("forvpc")]
    if "isdefault" in call.values:
        rows = [row for row in rows if row["isdefault"] == call.get("isdefault")]
    return call.page(rows, "network_offering")


@renderer("vpc_offering")
def render_vpc_offering(state: SimState, offering: dict) -> dict:
    return {"id": offering["id"], "name": offering["name"], "displaytext": offering["displaytext"],
            "created": cs_date(offering["created"]), "isdefault": offering["isdefault"], "state": offering["state"],
            "service": services_of(offering["services"]), "distributedvpcrouter": False,
            "supportsregionLevelvpc": False, "fornsx": False, "internetprotocol": "IPv4",
            "specifyasnumber": False}


@command("listVPCOfferings")
def list_vpc_offerings(call: Call):
    rows = call.filtered(list(call.state.store("vpc_offering")), keyword_fields=("name", "displaytext"))
    if call.get("state"):
        rows = [row for row in rows if row["state"].lower() == call.get("state").lower()]
    return call.page(rows, "vpc_offering")


@command("listCapabilities")
def list_capabilities(call: Call):
    """``ManagementServerImpl.listCapabilities``: the destroyed-VM settings as they apply to the
    caller (``setting | isCallerAdmin``)."""
    zone_sg = any(zone["sg_enabled"] for zone in call.state.store("zone"))
    config = call.state.config
    return {"capability": {
        "securitygroupsenabled": zone_sg, "dynamicrolesenabled": True, "cloudstackversion": VERSION,
        "userpublictemplateenabled": True, "supportELB": "false", "projectinviterequired": False,
        "allowusercreateprojects": True, "customdiskofferingminsize": CUSTOM_DISK_MIN_GB,
        "customdiskofferingmaxsize": CUSTOM_DISK_MAX_GB, "regionsecondaryenabled": False,
        "kvmsnapshotenabled": False, "apilimitinterval": 1, "apilimitmax": 0,
        "allowuserviewdestroyedvm": config.allow_user_view_destroyed_vm or call.is_admin,
        "allowuserexpungerecovervm": config.allow_user_expunge_recover_vm or call.is_admin,
        "allowuserexpungerecovervolume": True, "allowuserviewalldomainaccounts": False,
        "allowuserforcestopvm": True, "kubernetesserviceenabled": False,
        "kubernetesclusterexperimentalfeaturesenabled": False, "defaultuipagesize": 20,
        "instancesstatsretentiontime": 0, "instancesstatsuseronly": False,
        "instancesdisksstatsretentionenabled": False, "instancesdisksstatsretentiontime": 0,
        "dynamicscalingenabled": True, "additionalconfigenabled": False, "instanceleaseenabled": False}}


@command("listApis")
def list_apis(call: Call):
    names = sorted(name for name in COMMANDS if name in DISCOVERY)
    if call.get("name"):
        names = [name for name in names if name == call.get("name")]
        if not names:
            from ..errors import invalid_parameter
            raise invalid_parameter("Api Discovery plugin was unable to find an api by that name or process "
                                    "any apis")
    return call.page([DISCOVERY[name] for name in names])
