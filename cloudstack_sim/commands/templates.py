"""Templates: list (one entry per zone), register, create from a volume or snapshot, copy, delete, permissions.

``listTemplates`` needs ``templatefilter``: ``featured`` (public and featured), ``community`` (public,
not featured), ``self``/``selfexecutable`` (the caller's own), ``shared``/``sharedexecutable``
(shared with the caller), ``executable`` (anything the caller may deploy) and ``all`` (admins:
everything). A registered or created template is not ready (``isready`` false, ``status``
"0% Downloaded") until the simulated download ends ``job_duration`` seconds later.
"""

from __future__ import annotations

import asyncio

from ..context import Call
from ..errors import cloud_runtime, invalid_parameter, permission_denied
from ..jobs import pending_fields, submit_response
from ..render import compact, cs_date, renderer
from ..spec import command
from ..state import SimState
from .common import owner_fields, success, zone_name

FILTERS = ("featured", "self", "selfexecutable", "shared", "sharedexecutable", "executable", "community", "all")
FORMATS = ("QCOW2", "RAW", "VHD", "VHDX", "OVA", "ISO", "TAR", "VMDK", "BAREMETAL")
GB = 1024 ** 3


@renderer("template")
def render_template(state: SimState, template: dict, zone_id: str) -> dict:
    os_type = state.get("os_type", template["ostype_id"]) or {}
    ready = template["isready"]
    return compact({"id": template["id"], "name": template["name"], "displaytext": template["displaytext"],
                    "ispublic": template["ispublic"], "created": cs_date(template["created"]), "isready": ready,
                    "passwordenabled": template["passwordenabled"], "format": template["format"],
                    "bootable": template["bootable"], "isfeatured": template["isfeatured"],
                    "crossZones": template["crosszones"], "ostypeid": template["ostype_id"],
                    "ostypename": os_type.get("name"), "accountid": template["account_id"],
                    **owner_fields(state, template["account_id"]), "zoneid": zone_id,
                    "zonename": zone_name(state, zone_id),
                    "status": "Download Complete" if ready else "0% Downloaded",
                    "size": template["size"] if ready else None, "physicalsize": template["size"] if ready else None,
                    "templatetype": template["templatetype"], "hypervisor": template["hypervisor"],
                    "isextractable": template["isextractable"], "checksum": template.get("checksum"),
                    "sourcetemplateid": template.get("source_template_id"), "details": {},
                    "downloaddetails": [{"datastore": "sim-secondary-1",
                                         "downloadState": "DOWNLOADED" if ready else "DOWNLOAD_IN_PROGRESS",
                                         "downloadPercent": "100" if ready else "0"}],
                    "sshkeyenabled": template["sshkeyenabled"], "isdynamicallyscalable": False,
                    "directdownload": False, "deployasis": False, "requireshvm": True, "bits": 64,
                    "arch": "x86_64", "url": template.get("url"), "tags": state.tags_of(template["id"]),
                    "hasannotations": False, **pending_fields(template)})


def may_use(call: Call, template: dict) -> bool:
    return (call.is_admin or template["ispublic"] or template["account_id"] == call.account["id"]
            or call.account["name"] in template["permitted_accounts"])


def matches_filter(call: Call, template: dict, name: str) -> bool:
    own = template["account_id"] == call.account["id"]
    shared = call.account["name"] in template["permitted_accounts"]
    if name == "featured":
        return template["ispublic"] and template["isfeatured"]
    if name == "community":
        return template["ispublic"] and not template["isfeatured"]
    if name in ("self", "selfexecutable"):
        return own and (name == "self" or template["isready"])
    if name in ("shared", "sharedexecutable"):
        return shared
    if name == "executable":
        return template["isready"] and (own or shared or template["ispublic"])
    return call.is_admin or own or shared or template["ispublic"]   # "all"


@command("listTemplates")
def list_templates(call: Call):
    name = call.get("templatefilter")
    if name not in FILTERS:
        raise invalid_parameter(f"Please specify a valid template filter: one of {', '.join(FILTERS)}")
    state = call.state
    if call.get("account") and call.is_admin:
        candidates = list(state.store("template").owned_by(call.find_account(call.get("account"),
                                                                             call.get("domainid"))["id"]))
    else:
        candidates = list(state.store("template"))
    rows = call.filtered([t for t in candidates if matches_filter(call, t, name)],
                         keyword_fields=("name", "displaytext"))
    if call.get("hypervisor"):
        rows = [t for t in rows if t["hypervisor"].lower() == call.get("hypervisor").lower()]
    entries = [(t, zone) for t in rows for zone in t["zone_ids"] if call.get("zoneid") in (None, zone)]
    return call.page([t for t, _ in entries], "template", [zone for _, zone in entries])


def mark_ready_later(state: SimState, template: dict) -> None:
    """The simulated download: ready after ``job_duration`` (at once when it is 0)."""
    def finish() -> None:
        if state.get("template", template["id"]) is template:
            template["isready"] = True
            state.touch(template)
    if state.config.job_duration <= 0:
        finish()
    else:
        asyncio.get_running_loop().call_later(state.config.job_duration, finish)


def new_template(call: Call, owner: dict, **fields) -> dict:
    from .accounts import check_limit
    check_limit(call.state, owner, "template")
    template = {"name": call.get("name"), "displaytext": call.get("displaytext") or call.get("name"),
                "ispublic": bool(call.get("ispublic")), "isfeatured": bool(call.get("isfeatured")) and call.is_admin,
                "passwordenabled": bool(call.get("passwordenabled")), "account_id": owner["id"],
                "templatetype": "USER", "isready": False, "bootable": True,
                "isextractable": bool(call.get("isextractable")), "sshkeyenabled": bool(call.get("sshkeyenabled")),
                "permitted_accounts": [], "crosszones": False, **fields}
    return call.state.add("template", template)


@command("registerTemplate")
def register_template(call: Call):
    fmt = call.get("format").upper()
    if fmt not in FORMATS:
        raise invalid_parameter(f"Image format is invalid: {call.get('format')}")
    url = call.get("url")
    if not url.lower().startswith(("http://", "https://")):
        raise invalid_parameter(f"Unsupported scheme for url: {url}")
    zone_ids = call.get("zoneids") or ([call.get("zoneid")] if call.get("zoneid") else [])
    if not zone_ids:
        raise invalid_parameter("Please specify a valid zone Id. Only admins can create templates in all zones.")
    if call.get("ostypeid") is None:
        raise invalid_parameter("Please specify a valid guest OS type")
    template = new_template(call, call.owner_account(), format=fmt, hypervisor=call.get("hypervisor"),
                            ostype_id=call.get("ostypeid"), size=0, zone_ids=list(zone_ids), url=url,
                            checksum=call.get("checksum"))
    template["size"] = 2 * GB  # what the simulated download "finds"
    mark_ready_later(call.state, template)
    return call.page([template], "template", [template["zone_ids"][0]])


@command("createTemplate")
def create_template(call: Call):
    state = call.state
    if bool(call.get("volumeid")) == bool(call.get("snapshotid")):
        raise invalid_parameter("Failed to create private template record, please specify only one of volume ID "
                                "(volumeid) and snapshot ID (snapshotid)")
    if call.get("volumeid"):
        volume = call.owned("volume", call.get("volumeid"))
        vm = state.get("vm", volume.get("vm_id"))
        if vm is not None and vm["state"] != "Stopped":
            raise invalid_parameter(f"VolumeId: {volume['id']} is attached to a VM that is not in Stopped state")
        source_template = state.get("template", volume.get("template_id"))
        size = volume["size"]
    else:
        snapshot = call.owned("snapshot", call.get("snapshotid"))
        if snapshot["state"] != "BackedUp":
            raise invalid_parameter(f"Snapshot {snapshot['id']} is not in BackedUp state")
        volume = state.get("volume", snapshot["volume_id"]) or {}
        source_template = state.get("template", volume.get("template_id"))
        size = snapshot["size"]
    template = new_template(call, call.owner_account(), format="QCOW2", hypervisor="Simulator",
                            ostype_id=call.get("ostypeid"), size=size, zone_ids=[volume.get("zone_id")
                                                                                 or snapshot_zone(call)],
                            source_template_id=source_template["id"] if source_template else None)

    def work() -> dict:
        template["isready"] = True
        state.touch(template)
        return {"template": state.render("template", template, template["zone_ids"][0])}
    job = state.jobs.submit(call, instance_type="Template", instance=template, work=work,
                            rollback=lambda: state.remove("template", template))
    return submit_response(job, template["id"])


def snapshot_zone(call: Call) -> str:
    return next(iter(call.state.store("zone")))["id"]


@command("deleteTemplate")
def delete_template(call: Call):
    state, template = call.state, call.owned("template", call.get("id"))
    if template["templatetype"] in ("BUILTIN", "SYSTEM") and not call.is_admin:
        raise permission_denied(f"Unable to delete template {template['name']}: only root admin can delete "
                                "builtin templates")
    in_use = [vm["name"] for vm in state.store("vm") if vm["template_id"] == template["id"]
              and vm["state"] not in ("Expunging",)]
    if in_use and not call.get("forced"):
        raise invalid_parameter(f"Unable to delete template with id: {template['id']} because VM instances: "
                                f"[{', '.join(in_use)}] are using it.")

    def work() -> dict:
        zone_id = call.get("zoneid")
        if zone_id and len(template["zone_ids"]) > 1:
            template["zone_ids"].remove(zone_id)
            state.touch(template, variants=(zone_id,))
        else:
            state.remove("template", template)
        return success()
    return submit_response(state.jobs.submit(call, instance_type="Template", instance=template, work=work))


@command("copyTemplate")
def copy_template(call: Call):
    state, template = call.state, call.owned("template", call.get("id"))
    if not may_use(call, template):
        raise permission_denied(f"Account {call.account['name']} can't access template {template['id']}")
    destinations = call.get("destzoneids") or ([call.get("destzoneid")] if call.get("destzoneid") else [])
    if not destinations:
        raise invalid_parameter("Please specify valid destination zone to copy the template.")
    source = call.get("sourcezoneid") or template["zone_ids"][0]
    if source not in template["zone_ids"]:
        raise invalid_parameter(f"Template {template['id']} is not present in source zone {source}")
    if source in destinations:
        raise invalid_parameter("Please specify different source and destination zones.")

    def work() -> dict:
        for zone_id in destinations:
            if zone_id in template["zone_ids"]:
                raise cloud_runtime(f"Template {template['name']} already exists in zone {zone_id}")
            template["zone_ids"].append(zone_id)
        state.touch(template)
        return {"template": state.render("template", template, destinations[-1])}
    return submit_response(state.jobs.submit(call, instance_type="Template", instance=template, work=work))


def owned_template(call: Call) -> dict:
    template = call.owned("template", call.get("id"))
    if not call.is_admin and template["account_id"] != call.account["id"]:
        raise permission_denied(f"Account {call.account['name']} does not own template {template['id']}")
    return template


@command("updateTemplatePermissions")
def update_template_permissions(call: Call):
    template, state = owned_template(call), call.state
    accounts, operation = call.get("accounts") or [], (call.get("op") or "").lower()
    if accounts and operation not in ("add", "remove", "reset"):
        raise invalid_parameter("Invalid operation on accounts, the operation must be either 'add' or 'remove' "
                                "in order to modify launch permissions.  Given operation is: '%s'" % call.get("op"))
    names = {account["name"] for account in state.store("account")}
    unknown = [name for name in accounts if name not in names]
    if unknown:
        raise invalid_parameter(f"Unable to find account {unknown[0]} in domain id=1")
    if operation == "add":
        template["permitted_accounts"] = sorted(set(template["permitted_accounts"]) | set(accounts))
    elif operation == "remove":
        template["permitted_accounts"] = [n for n in template["permitted_accounts"] if n not in accounts]
    elif operation == "reset":
        template["permitted_accounts"] = []
    for flag in ("ispublic", "isextractable"):
        if flag in call.values:
            template[flag] = call.get(flag)
    if "isfeatured" in call.values:
        if not call.is_admin and call.get("isfeatured"):
            raise permission_denied("Only admins can mark templates as featured")
        template["isfeatured"] = call.get("isfeatured")
    state.touch(template)
    return success()


@command("listTemplatePermissions")
def list_template_permissions(call: Call):
    template = call.owned("template", call.get("id")) if call.is_admin else call.state.get("template", call.get("id"))
    if not may_use(call, template):
        raise permission_denied(f"Account {call.account['name']} can't access template {template['id']}")
    owner = call.state.get("account", template["account_id"])
    return {"templatepermission": compact({"id": template["id"], "ispublic": template["ispublic"],
                                           "domainid": owner["domain_id"],
                                           "account": list(template["permitted_accounts"])})}
