"""Templates: list (one entry per zone), register, create, copy, update, delete, launch permissions.

``listTemplates`` follows ``QueryManagerImpl.searchForTemplatesInternal``:

* ``templatefilter`` picks among the templates of the *permitted accounts* (the caller; an admin's
  ``account``+``domainid``): ``featured`` (public and featured), ``community`` (public, not
  featured), ``self``/``selfexecutable`` (owned), ``shared``/``sharedexecutable`` (a launch
  permission names them), ``executable`` (owned or public - *not* shared ones) and ``all`` (root
  admins only: everything; a normal user's ``all`` is refused). ``id``/``ids`` narrow that set.
* ``id`` bypasses the filter (the "specially handled" template id of ``searchForTemplatesInternal``):
  the template is listed if the caller may launch it (``DomainChecker``: public, own, shared with
  a launch permission, or any for a root admin) and another account's unshared private template
  is a 531. The filter still decides readiness, and ``all`` is still refused to normal users.
  ``ids`` (plural) is an ordinary filter over the templatefilter's set.
* Only ready templates are listed for ``featured``, ``community``, ``selfexecutable`` and
  ``sharedexecutable``, for ``executable`` only when an admin names the account
  (``ListTemplatesCmd.listInReadyState``), and for any filter with ``isready=true`` (4.21).

A registered or created template is not ready (``isready`` false, ``status`` "0% Downloaded") until
the simulated download ends ``job_duration`` seconds later. Templates carry their CPU ``arch``
(``CPU.CPUArch``: i686, x86_64 or aarch64; x86_64 when not given, as 4.20+ defaults it) and
``bits``. ``updateTemplate`` is synchronous and answers CloudStack's short "update" view of the
template (``TemplateJoinDao.newUpdateResponse``).
"""

from __future__ import annotations

import asyncio

from ..context import Call
from ..errors import CS_SERVER_API, ApiError, cloud_runtime, invalid_parameter, permission_denied
from ..jobs import pending_fields, submit_response
from ..render import compact, cs_date, renderer
from ..spec import command
from ..state import SimState
from .common import owner_fields, success, zone_name

FILTERS = ("featured", "self", "selfexecutable", "shared", "sharedexecutable", "executable", "community", "all")
READY_FILTERS = frozenset({"featured", "community", "selfexecutable", "sharedexecutable"})
FORMATS = ("QCOW2", "RAW", "VHD", "VHDX", "OVA", "ISO", "TAR", "VMDK", "BAREMETAL")
# Storage.TemplateType; users may only choose USER and VNF (TemplateManagerImpl.validateTemplateType).
TEMPLATE_TYPES = ("ROUTING", "SYSTEM", "BUILTIN", "PERHOST", "USER", "VNF", "DATADISK", "ISODISK")
USER_TEMPLATE_TYPES = ("USER", "VNF")
ARCHS = ("i686", "x86_64", "aarch64")   # CPU.CPUArch types
DEFAULT_ARCH, DEFAULT_BITS = "x86_64", 64
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
                    "sourcetemplateid": template.get("source_template_id"), "details": template.get("details") or {},
                    "downloaddetails": [{"datastore": "sim-secondary-1",
                                         "downloadState": "DOWNLOADED" if ready else "DOWNLOAD_IN_PROGRESS",
                                         "downloadPercent": "100" if ready else "0"}],
                    "sshkeyenabled": template["sshkeyenabled"],
                    "isdynamicallyscalable": template.get("isdynamicallyscalable", False),
                    "directdownload": False, "deployasis": False, "requireshvm": template.get("requireshvm", True),
                    "bits": template.get("bits", DEFAULT_BITS), "arch": template.get("arch", DEFAULT_ARCH),
                    "url": template.get("url"), "tags": state.tags_of(template["id"]),
                    "hasannotations": False, **pending_fields(template)})


def render_update(state: SimState, template: dict) -> dict:
    """``newUpdateResponse``: the 4.1-era short form ``updateTemplate`` answers, with no zone or state."""
    os_type = state.get("os_type", template["ostype_id"]) or {}
    return compact({"id": template["id"], "name": template["name"], "displaytext": template["displaytext"],
                    "ispublic": template["ispublic"], "created": cs_date(template["created"]),
                    "format": template["format"], "ostypeid": template["ostype_id"], "ostypename": os_type.get("name"),
                    "bootable": template["bootable"], "hypervisor": template["hypervisor"],
                    "isdynamicallyscalable": template.get("isdynamicallyscalable", False),
                    **owner_fields(state, template["account_id"]), "details": template.get("details") or None,
                    "tags": state.tags_of(template["id"]), "templatetype": template["templatetype"]})


# -- launch permission (DomainChecker) ----------------------------------------------------------
def may_launch(call: Call, template: dict) -> bool:
    """Public templates, root admins, the owner, and accounts holding a launch permission."""
    return (template["ispublic"] or call.is_admin or template["account_id"] == call.account["id"]
            or call.account["name"] in template["permitted_accounts"])


def check_launch(call: Call, template: dict) -> dict:
    if not may_launch(call, template):
        raise permission_denied(f"Account {call.account['name']} does not have permission to launch instances from "
                                f"template {template['name']}")
    return template


def check_operate(call: Call, template: dict) -> dict:
    """``AccessType.OperateEntry``: a public template is its owner's to change; for a private one
    ``DomainChecker`` also lets through accounts holding a launch permission."""
    if template["ispublic"] and not call.is_admin and template["account_id"] != call.account["id"]:
        raise permission_denied("Domain Admin and regular users can modify only their own Public templates")
    return check_launch(call, template)


# -- listTemplates --------------------------------------------------------------------------------
@command("listTemplates")
def list_templates(call: Call):
    name = call.get("templatefilter")
    if name not in FILTERS:
        raise invalid_parameter(f"Please specify a valid template filter: one of {', '.join(FILTERS)}")
    if name == "all" and not call.is_admin:
        raise invalid_parameter("Filter all can be specified by admin only")
    candidates = template_by_id(call, name) if call.get("id") else templates_by_filter(call, name)
    rows = call.filtered(candidates, keyword_fields=("name", "displaytext"))
    if only_ready(call, name):
        rows = [t for t in rows if t["isready"]]
    if call.get("hypervisor"):
        rows = [t for t in rows if t["hypervisor"].lower() == call.get("hypervisor").lower()]
    if call.get("arch"):
        rows = [t for t in rows if t.get("arch", DEFAULT_ARCH) == call.get("arch")]
    rows.sort(key=lambda t: t.get("sortkey", 0))   # sortKey first, then creation (stable sort)
    entries = [(t, zone) for t in rows for zone in t["zone_ids"] if call.get("zoneid") in (None, zone)]
    return call.page([t for t, _ in entries], "template", [zone for _, zone in entries])


def template_by_id(call: Call, name: str) -> list[dict]:
    """The template ``id`` names, whatever the filter, if the caller may launch it; a removed one's
    uuid is valid (``findByIdIncludingRemoved``) but lists nothing."""
    permitted_accounts(call, name)   # buildACLSearchParameters still checks ``account``
    template = call.state.get("template", call.get("id"))
    return [check_launch(call, template)] if template is not None else []


def templates_by_filter(call: Call, name: str) -> list[dict]:
    accounts = permitted_accounts(call, name)
    owners = None if accounts is None else {account["id"] for account in accounts}
    names = {account["name"] for account in accounts or ()}
    return [t for t in call.state.store("template") if in_filter(t, name, owners, names)]


def permitted_accounts(call: Call, name: str) -> list[dict] | None:
    """``AccountManager.buildACLSearchParameters`` for templates; None means every account's."""
    wanted = call.get("account")
    if wanted and call.is_admin:
        return [call.find_account(wanted, call.get("domainid"))]
    if wanted and wanted != call.account["name"]:
        raise permission_denied(f"Account {call.account['name']} does not have permission to list resources of "
                                f"account {wanted}")
    return None if name == "all" else [call.account]


def in_filter(template: dict, name: str, owners: set | None, names: set) -> bool:
    if name in ("featured", "community"):
        return template["ispublic"] and template["isfeatured"] == (name == "featured")
    owned = owners is None or template["account_id"] in owners
    if name in ("self", "selfexecutable"):
        return owned
    if name in ("shared", "sharedexecutable"):
        return bool(names.intersection(template["permitted_accounts"]))
    if name == "executable":
        return template["ispublic"] or owned
    return True   # "all" (root admins): no restriction at all


def only_ready(call: Call, name: str) -> bool:
    account_specific = call.is_admin and bool(call.get("account")) and bool(call.get("domainid"))
    return name in READY_FILTERS or (name == "executable" and account_specific) or bool(call.get("isready"))


# -- register / create ----------------------------------------------------------------------------
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


def parse_arch(call: Call, default: str | None = DEFAULT_ARCH) -> str | None:
    """``CPU.CPUArch.fromType``: blank means the default; an unknown type is an IllegalArgumentException,
    which ApiServer answers as a parameter error."""
    raw = call.get("arch")
    if raw is None or not raw.strip():
        return default
    if raw not in ARCHS:
        raise ApiError(431, f"Unsupported arch type: {raw}", CS_SERVER_API)
    return raw


def new_template(call: Call, owner: dict, **fields) -> dict:
    from .accounts import check_limit
    check_limit(call.state, owner, "template")
    template = {"name": call.get("name"), "displaytext": call.get("displaytext") or call.get("name"),
                "ispublic": bool(call.get("ispublic")), "isfeatured": bool(call.get("isfeatured")) and call.is_admin,
                "passwordenabled": bool(call.get("passwordenabled")), "account_id": owner["id"],
                "templatetype": "USER", "isready": False, "bootable": True,
                "isextractable": bool(call.get("isextractable")), "sshkeyenabled": bool(call.get("sshkeyenabled")),
                "permitted_accounts": [], "crosszones": False, "arch": parse_arch(call),
                "bits": call.get("bits") or DEFAULT_BITS, "requireshvm": call.get("requireshvm", True),
                "isdynamicallyscalable": bool(call.get("isdynamicallyscalable")), **fields}
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
    if call.get("virtualmachineid"):   # the baremetal source VM must exist
        call.owned("vm", call.get("virtualmachineid"))
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


# -- update ----------------------------------------------------------------------------------------
@command("updateTemplate")
def update_template(call: Call):
    """``TemplateManagerImpl.updateTemplateOrIso``; ``bootable`` is ISO-only (UpdateTemplateCmd ignores it)."""
    arch = parse_arch(call, default=None)
    template = call.state.get("template", call.get("id"))
    if template is None:
        raise invalid_parameter("Unable to find Template/ISO with specified id")
    check_operate(call, template)
    if "isrouting" in call.values and not call.is_admin:
        raise permission_denied("Parameter isrouting can only be specified by a Root Admin, permission denied")
    template_type = checked_template_type(call, template)
    changes = requested_changes(call)
    if arch is not None:
        changes["arch"] = arch
    if template_type is not None:
        changes["templatetype"] = template_type
    template.update(changes)
    refresh_users(call.state, template)
    return {"template": render_update(call.state, template)}


def requested_changes(call: Call) -> dict:
    changes = {field: call.get(param) for param, field in (
        ("name", "name"), ("displaytext", "displaytext"), ("sortkey", "sortkey"), ("ostypeid", "ostype_id"),
        ("passwordenabled", "passwordenabled"), ("sshkeyenabled", "sshkeyenabled"), ("requireshvm", "requireshvm"),
        ("isdynamicallyscalable", "isdynamicallyscalable")) if param in call.values}
    if call.get("format") is not None:
        fmt = call.get("format").upper()
        if fmt not in FORMATS:
            raise invalid_parameter(f"Image format: {call.get('format')} is incorrect. Supported formats are "
                                    f"[{', '.join(FORMATS)}]")
        changes["format"] = fmt
    if "isrouting" in call.values:
        changes["templatetype"] = "ROUTING" if call.get("isrouting") else "USER"
    if call.get("cleanupdetails"):
        changes["details"] = {}
    elif call.get("details"):
        # BaseUpdateTemplateOrIsoCmd.getDetails: only the first details[i] group counts.
        changes["details"] = dict(call.get("details")[0])
    return changes


def checked_template_type(call: Call, template: dict) -> str | None:
    """``TemplateManagerImpl.validateTemplateType`` for ``updateTemplate``."""
    raw = call.get("templatetype")
    if raw is None:
        return None
    wanted = raw.upper()
    if wanted not in TEMPLATE_TYPES:
        raise invalid_parameter(f"Please specify a valid templatetype: {','.join(TEMPLATE_TYPES)}")
    if "isrouting" in call.values and (wanted == "ROUTING") != call.get("isrouting"):
        raise invalid_parameter("Please specify a valid templatetype (consistent with isrouting parameter).")
    if wanted in ("SYSTEM", "BUILTIN") and not template["crosszones"]:
        raise invalid_parameter("System and Builtin templates must be cross zone.")
    if not call.is_admin and wanted not in USER_TEMPLATE_TYPES:
        raise invalid_parameter(f"Users can not update Template to template type {wanted}.")
    return wanted


def refresh_users(state: SimState, template: dict) -> None:
    """Re-render the template and what shows its name or OS type (VMs and their volumes)."""
    state.touch(template)
    for kind in ("vm", "volume"):
        for record in state.store(kind):
            if record.get("template_id") == template["id"]:
                state.touch(record)


# -- delete / copy ---------------------------------------------------------------------------------
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
    check_launch(call, template)
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


# -- launch permissions -----------------------------------------------------------------------------
def owned_template(call: Call) -> dict:
    template = call.owned("template", call.get("id"))
    if not call.is_admin and template["account_id"] != call.account["id"]:
        raise permission_denied(f"Account {call.account['name']} does not own template {template['id']}")
    return template


@command("updateTemplatePermissions")
def update_template_permissions(call: Call):
    """``TemplateManagerImpl.updateTemplateOrIsoPermissions``: accounts are names in the owner's
    domain; the caller's own name is skipped (an owner may always launch); ``reset`` also makes
    the template private and not featured."""
    template, state = owned_template(call), call.state
    accounts, operation = call.get("accounts"), (call.get("op") or "").lower()
    if accounts is not None and operation not in ("add", "remove", "reset"):
        raise invalid_parameter("Invalid operation on accounts, the operation must be either 'add' or 'remove' "
                                "in order to modify launch permissions.  Given operation is: '%s'" % call.get("op"))
    if "isextractable" in call.values and not call.is_admin:
        raise invalid_parameter("Only ROOT admins are allowed to modify isExtractable attribute.")
    if operation in ("add", "remove") and accounts is None:
        raise invalid_parameter(f"Operation {operation} requires accounts or projectIds to be passed in")
    named = accounts_in_owner_domain(call, template, accounts or [], strict=operation == "add")
    if "isfeatured" in call.values and not call.is_admin and call.get("isfeatured"):
        raise permission_denied("Only admins can mark templates as featured")
    for flag in ("ispublic", "isextractable", "isfeatured"):
        if flag in call.values:
            template[flag] = call.get(flag)
    change_permissions(call, template, operation, named)
    state.touch(template)
    return success()


def change_permissions(call: Call, template: dict, operation: str, named: list[dict]) -> None:
    permitted = template["permitted_accounts"]
    if operation == "add":
        additions = [a["name"] for a in named if a["id"] != call.account["id"] and a["name"] not in permitted]
        template["permitted_accounts"] = permitted + additions
    elif operation == "remove":
        template["permitted_accounts"] = [n for n in permitted if n not in {a["name"] for a in named}]
    elif operation == "reset":
        template.update(permitted_accounts=[], ispublic=False, isfeatured=False)


def accounts_in_owner_domain(call: Call, template: dict, names: list[str], *, strict: bool) -> list[dict]:
    """The named accounts of the template owner's domain; an unknown name refuses an ``add``."""
    owner = call.state.get("account", template["account_id"])
    domain = call.state.get("domain", owner["domain_id"]) or {}
    found = {a["name"]: a for a in call.state.store("account") if a["domain_id"] == owner["domain_id"]}
    missing = [name for name in names if name not in found]
    if strict and missing:
        raise invalid_parameter(f"Unable to grant a launch permission to account {missing[0]} in domain "
                                f"id={domain.get('id')}, account not found.  No permissions updated, please "
                                "verify the account names and retry.")
    return [found[name] for name in names if name in found]


@command("listTemplatePermissions")
def list_template_permissions(call: Call):
    """``TemplateManagerImpl.listTemplatePermissions``: a removed template is not found; a private one
    needs launch access and lists its owner's name after the permitted accounts ("also add the
    owner if not public"). ``createTemplatePermissionsResponse`` gives the owner's ``domainid``
    only in the root admin's (``Full``) view."""
    template = call.state.get("template", call.get("id"))
    if template is None:
        raise invalid_parameter(f"unable to find template with id {call.get('id')}")
    if not template["ispublic"]:
        check_launch(call, template)
    owner = call.state.get("account", template["account_id"])
    names = list(template["permitted_accounts"]) + ([] if template["ispublic"] else [owner["name"]])
    # gson drops the account list when it is empty (a public template nobody was granted).
    return {"templatepermission": compact({"id": template["id"], "ispublic": template["ispublic"],
                                           "domainid": owner["domain_id"] if call.is_admin else None,
                                           "account": names or None})}
