"""Images: EC2 AMIs are CloudStack templates.

**DescribeImages** lists templates with ``listTemplates`` and collapses them: CloudStack answers
one entry per zone a template lives in, EC2 one image per region. The image is ``available``
when it is ready in any zone, else ``pending`` while a download runs and ``failed`` when every
zone reports an error. Its fields:

- ``OwnerId`` is the owning account's 12-digit id (``ec2bridge.ids.owner_id`` of
  "domainid/account", as every area derives it); ``ImageOwnerAlias`` is ``amazon`` for
  *featured* templates. Only root admins can feature a template, so featured templates are the
  cloud operator's curated catalog, which is what Amazon's own AMIs are on AWS.
- ``Platform`` ``windows`` and ``PlatformDetails`` / ``UsageOperation`` (AWS's billing codes for
  Linux/UNIX and Windows) come from the OS type name; ``Architecture`` from CloudStack's ``arch``
  (4.20+), then a 32-bit OS type; ``BootMode`` from the template's ``UEFI`` detail (CloudStack
  boots BIOS otherwise).
- ``Hypervisor`` is ``ovm`` for Oracle VM and ``xen`` for every other hypervisor: AWS's enum has
  nothing else, and AWS itself answers ``xen`` for its KVM-based Nitro AMIs. A XenServer template
  that does not require HVM is ``paravirtual``; everything else is ``hvm``.
- ``RootDeviceName`` is ``/dev/sda1``, as CloudStack's own EC2 bridge (awsapi) and AWS's HVM
  AMIs of the same era answered; the root is ``ebs`` (CloudStack root disks are primary-storage
  volumes, destroyed with the VM) and its size is the template's virtual size in GiB.
- ``ImageLocation`` is the URL the template was registered from, else ``<owner>/<name>``, the
  form AWS gives EBS-backed AMIs.

**Owners / ExecutableBy -> templatefilter.** AWS's default ("images you may launch") is own
templates in every state (``self``), public ones (``executable``: own or public, ready) and
those shared with the caller (``sharedexecutable``); CloudStack's ``all`` is admin-only and
would show admins every private template of the cloud. ``Owners=self`` lists ``self``,
``Owners=amazon`` ``featured``. ``ExecutableBy`` means *explicit* launch permissions:
``self`` (or the caller's own id) is ``sharedexecutable``, ``all`` the public templates, and
another account's id the caller's own templates whose ``listTemplatePermissions`` name that
account. Only the listings a request needs are made, concurrently; one image id or ``tag:``
filter, and one plain ``name``, are pushed down to CloudStack.

Image ids are pushed down as ``ids`` even when there is one: CloudStack honours the
templatefilter for ``ids`` but skips it for ``id``.

**One image by id** is ``listTemplates id=...``: given an ``id``, CloudStack ignores the
templatefilter and answers the template if the caller may launch it (public, own, or shared
with the caller through a launch permission; any template for a root admin), and a 531 for
another account's private template that was not shared. That 531 (and a 431) is
``InvalidAMIID.NotFound``, as AWS hides images the caller cannot use. Whether the caller owns
the image is read from the template's owner fields (``account`` and ``domainid``).

**Attributes and launch permissions.** ``launchPermission`` is ``listTemplatePermissions``:
``ispublic`` is the group ``all``, each permitted account a ``UserId``. CloudStack lists the
owner's own name among the accounts of a private template, which is not a launch permission
on AWS and is left out; and it sends ``domainid`` to root admins only, so the names are read
in the template owner's domain (the template's own ``domainid``): CloudStack shares a template
only with accounts of that domain. Granting to a 12-digit id needs that id's account name,
which cannot be computed back from the one-way owner id, so the bridge lists the accounts of
the owner's domain (with the operator's CloudStack admin key when configured, since a normal
user sees only its own account) and picks the one whose owner id matches. A name already
permitted is found the same way in the template's own permission list, so revoking never
needs the directory. Only the owner reads launch permissions or modifies an image: a visible
image of someone else is ``AuthFailure``, an invisible one ``InvalidAMIID.NotFound``.
"""

from __future__ import annotations

import asyncio
import functools
import math
import re
from itertools import chain
from typing import Any, Iterable, Mapping

from ec2bridge.cloudstack import CloudStackError
from ec2bridge.describe import Paging
from ec2bridge.errors import EC2Error, invalid_value, missing_parameter
from ec2bridge.ids import not_found, owner_id
from mappings.common import cs_time, dry_run_checkpoint, ec2_tags
from mappings.records import Action, Describe, Selector
from mappings.sources import IdTable, owner_key, prepare_ids

ROOT_DEVICE_NAME = "/dev/sda1"
GIB = 1024 ** 3
ACCOUNT_ID = re.compile(r"^\d{12}$")

Template = list[dict]  # one template: its listTemplates entries, one per zone (never empty)


# --- one template as one EC2 image ------------------------------------------------------

@functools.lru_cache(maxsize=65536)
def _owner_id_of(key: str) -> str:
    return owner_id(key)  # a hash: computed once per account, not once per template and use


def template_owner(entry: Mapping[str, Any]) -> str:
    """The OwnerId of a template's account."""
    return _owner_id_of(owner_key(entry))


# CloudStack's status is free text: "Download Complete", "45% Downloaded", "Installing
# Template", or an error string such as "Failed to download template" / "DOWNLOAD_ERROR".
_FAILURE = re.compile(r"error|fail|abandon", re.IGNORECASE)
_STATE_ORDER = ("available", "pending", "failed")


def zone_state(entry: Mapping[str, Any]) -> str:
    if entry.get("isready"):
        return "available"
    download_states = " ".join(str(d.get("downloadState", "")) for d in entry.get("downloaddetails") or ())
    return "failed" if _FAILURE.search(f"{entry.get('status', '')} {download_states}") else "pending"


def image_state(template: Template) -> str:
    """The best state over the template's zones: usable somewhere is usable."""
    return min((zone_state(entry) for entry in template), key=_STATE_ORDER.index)


def state_reason(template: Template) -> dict:
    failed = next(entry for entry in template if zone_state(entry) == "failed")
    # A registered template failed on the URL its owner gave; any other one on the cloud's side.
    code = "Client.InvalidManifest" if failed.get("url") else "Server.InternalError"
    return {"Code": code, "Message": failed.get("status") or "The template is in an error state"}


def is_windows(entry: Mapping[str, Any]) -> bool:
    return "windows" in (entry.get("ostypename") or "").lower()


def architecture(entry: Mapping[str, Any]) -> str:
    arch = (entry.get("arch") or "").lower()
    if arch in ("aarch64", "arm64"):
        return "arm64"
    os_type = (entry.get("ostypename") or "").lower()
    if "aarch64" in os_type or "arm64" in os_type:
        return "arm64"
    # CloudStack's arch is a CPU family (x86_64 covers 32-bit guests); the OS type says 32-bit.
    if entry.get("bits") == 32 or "32-bit" in os_type or "i386" in os_type or "i686" in os_type:
        return "i386"
    return "x86_64"


def hypervisor(entry: Mapping[str, Any]) -> str:
    return "ovm" if (entry.get("hypervisor") or "").lower().startswith("ovm") else "xen"


def virtualization_type(entry: Mapping[str, Any]) -> str:
    # CloudStack defaults requireshvm to true; only Xen runs paravirtual guests.
    paravirtual = entry.get("requireshvm") is False and (entry.get("hypervisor") or "").lower() == "xenserver"
    return "paravirtual" if paravirtual else "hvm"


def boot_mode(entry: Mapping[str, Any]) -> str:
    details = {str(k).upper() for k in (entry.get("details") or {})}
    return "uefi" if "UEFI" in details else "legacy-bios"


def root_size_gib(template: Template) -> int | None:
    sizes = [entry["size"] for entry in template if isinstance(entry.get("size"), int) and entry["size"] > 0]
    return math.ceil(max(sizes) / GIB) if sizes else None


def block_device_mappings(template: Template) -> list[dict]:
    ebs: dict[str, Any] = {"DeleteOnTermination": True, "VolumeType": "standard", "Encrypted": False}
    size = root_size_gib(template)
    if size is not None:
        ebs["VolumeSize"] = size
    return [{"DeviceName": ROOT_DEVICE_NAME, "Ebs": ebs}]


def owner_alias(entry: Mapping[str, Any]) -> str | None:
    return "amazon" if entry.get("isfeatured") and entry.get("ispublic") else None


def creation_date(entry: Mapping[str, Any]) -> str | None:
    created = cs_time(entry.get("created"))
    # The model types CreationDate as a string; AWS writes it with milliseconds.
    return created.strftime("%Y-%m-%dT%H:%M:%S.000Z") if created else None


def image_location(entry: Mapping[str, Any]) -> str:
    return entry.get("url") or f"{owner_alias(entry) or template_owner(entry)}/{entry.get('name', '')}"


def to_image(template: Template, ids: IdTable) -> dict:
    entry = template[0]
    windows = is_windows(entry)
    image = {
        "ImageId": ids.ec2("ami", entry["id"], owner_key(entry)),
        "ImageLocation": image_location(entry),
        "State": image_state(template),
        "OwnerId": template_owner(entry),
        "CreationDate": creation_date(entry),
        "Public": bool(entry.get("ispublic")),
        "Architecture": architecture(entry),
        "ImageType": "machine",
        "Platform": "windows" if windows else None,
        "PlatformDetails": "Windows" if windows else "Linux/UNIX",
        "UsageOperation": "RunInstances:0002" if windows else "RunInstances",
        "ImageOwnerAlias": owner_alias(entry),
        "Name": entry.get("name"),
        "Description": entry.get("displaytext"),
        "RootDeviceType": "ebs",
        "RootDeviceName": ROOT_DEVICE_NAME,
        "BlockDeviceMappings": block_device_mappings(template),
        "VirtualizationType": virtualization_type(entry),
        "Hypervisor": hypervisor(entry),
        "EnaSupport": False,  # CloudStack guests get virtio, vmxnet3 or netfront NICs, never ENA
        "BootMode": boot_mode(entry),
        "Tags": ec2_tags(entry),
    }
    if image["State"] == "failed":
        image["StateReason"] = state_reason(template)
    return {key: value for key, value in image.items() if value is not None}


def collapse(listings: Iterable[list[dict]]) -> dict[str, Template]:
    """Zone entries grouped per template id (in first-seen order), each zone once."""
    templates: dict[str, Template] = {}
    seen: set[tuple[str, Any]] = set()
    for entry in chain.from_iterable(listings):
        key = (entry["id"], entry.get("zoneid"))
        if key not in seen:
            seen.add(key)
            templates.setdefault(entry["id"], []).append(entry)
    return templates


# --- the caller and the accounts behind owner ids ---------------------------------------

def account_owner_id(domain_id: str, name: str) -> str:
    """The OwnerId of the account ``name`` of a domain, derived as ``owner_key`` derives it."""
    return _owner_id_of(f"{domain_id}/{name}")


def caller_owner_id(account: Any) -> str:
    return account_owner_id(account.domain_id, account.name)


def _directory_credentials(ctx: Any) -> tuple[str, str]:
    """Keys that may list the accounts of a domain: the operator's admin key when the bridge
    has one (configured, or the embedded simulator's), else the caller's own."""
    return ctx.services.admin_creds or ctx.creds


async def account_names(ctx: Any, domain_id: str, wanted: set[str]) -> dict[str, str]:
    """{owner id: account name} for the ``wanted`` owner ids among the domain's accounts."""
    accounts = await ctx.services.cloudstack.list_all(_directory_credentials(ctx), "listAccounts",
                                                      {"domainid": domain_id, "listall": True})
    found = {account_owner_id(a.get("domainid", domain_id), a["name"]): a["name"] for a in accounts}
    return {uid: found[uid] for uid in wanted if uid in found}


# --- which listings a request needs --------------------------------------------------------

SELF, FEATURED, EXECUTABLE, SHARED = "self", "featured", "executable", "sharedexecutable"
EVERYTHING_VISIBLE = frozenset({SELF, EXECUTABLE, SHARED})
_OWNER_LISTINGS = {"self": {SELF}, "amazon": {FEATURED}, "all": EVERYTHING_VISIBLE,
                   "aws-marketplace": set(), "aws-backup-vault": set()}  # no such owners here


def _invalid_user(value: str) -> EC2Error:
    return EC2Error("InvalidUserID.Malformed", f'Invalid user id: "{value}"')


def check_scopes(owners: list[str], executable_by: list[str]) -> None:
    for value in owners:
        if value not in _OWNER_LISTINGS and not ACCOUNT_ID.match(value):
            raise _invalid_user(value)
    for value in executable_by:
        if value not in ("self", "all") and not ACCOUNT_ID.match(value):
            raise _invalid_user(value)


def listings_for(owners: list[str], executable_by: list[str], caller: str) -> set[str]:
    """The templatefilters whose union holds every image the request can return."""
    if not owners and not executable_by:
        return set(EVERYTHING_VISIBLE)
    needed: set[str] = set()
    for value in owners:
        if value in _OWNER_LISTINGS:
            needed |= _OWNER_LISTINGS[value]
        else:  # an account id: the caller's own, or another's public or shared templates
            needed |= {SELF} if value == caller else {EXECUTABLE, SHARED}
    for value in executable_by:
        if value == "all":
            needed.add(EXECUTABLE)
        else:
            needed.add(SHARED if value in ("self", caller) else SELF)
    return needed


class Scope:
    """Owners AND ExecutableBy (values OR'd within each), as AWS combines them."""

    def __init__(self, owners: list[str], executable_by: list[str], caller: str,
                 shared: set[str], permitted: Mapping[str, set[str]]):
        self.owners, self.executable_by, self.caller = owners, executable_by, caller
        self.shared, self.permitted = shared, permitted  # shared with the caller; template -> owner ids

    def owner_matches(self, entry: Mapping[str, Any]) -> bool:
        owner = template_owner(entry)
        return not self.owners or any(
            value == "all" or (value == "self" and owner == self.caller) or value == owner
            or (value == "amazon" and owner_alias(entry) == "amazon") for value in self.owners)

    def launchable_by(self, entry: Mapping[str, Any], value: str) -> bool:
        if value == "all":
            return bool(entry.get("ispublic"))
        if value in ("self", self.caller):
            return entry["id"] in self.shared
        return value in self.permitted.get(entry["id"], ())

    def admits(self, entry: Mapping[str, Any]) -> bool:
        return self.owner_matches(entry) and (
            not self.executable_by or any(self.launchable_by(entry, v) for v in self.executable_by))


# --- launch permissions ------------------------------------------------------------------

def permitted_names(permission: Mapping[str, Any], entry: Mapping[str, Any]) -> list[str]:
    """The accounts holding a launch permission: CloudStack's list without the owner it adds."""
    return [name for name in permission.get("account") or () if name != entry.get("account")]


def launch_user_ids(permission: Mapping[str, Any], entry: Mapping[str, Any]) -> list[str]:
    """Owner ids of the permitted accounts, all of the template owner's domain."""
    domain_id = entry.get("domainid", "")
    return [account_owner_id(domain_id, name) for name in permitted_names(permission, entry)]


def launch_permissions(permission: Mapping[str, Any], entry: Mapping[str, Any]) -> list[dict]:
    groups = [{"Group": "all"}] if permission.get("ispublic") else []
    return groups + [{"UserId": uid} for uid in sorted(launch_user_ids(permission, entry))]


async def template_permission(ctx: Any, template_id: str) -> dict:
    return (await ctx.cs_call("listTemplatePermissions", id=template_id)).get("templatepermission") or {}


# --- DescribeImages ----------------------------------------------------------------------

async def _pushed(ctx: Any, request: dict) -> dict[str, Any] | None:
    """CloudStack parameters narrowing the listing; None when the ids name no known image."""
    params: dict[str, Any] = {}
    image_ids = request.get("ImageIds") or []
    if image_ids:
        records = [await ctx.services.ids.lookup(image_id) for image_id in image_ids]
        uuids = sorted({r.backend_id for r in records if r is not None and r.kind == "ami"})
        if not uuids:
            return None  # the engine answers NotFound / Malformed for every id
        params["ids"] = ",".join(uuids)  # never "id": it would bypass the templatefilter
    for flt in request.get("Filters") or ():
        name, values = flt.get("Name", ""), flt.get("Values") or []
        if len(values) != 1 or any(c in values[0] for c in "*?\\"):
            continue
        if name.startswith("tag:") and "tags[0].key" not in params:
            params.update({"tags[0].key": name[4:], "tags[0].value": values[0]})
        elif name == "name":
            params["name"] = values[0]
    return params


async def list_templates(ctx: Any, templatefilters: Iterable[str],
                         params: Mapping[str, Any]) -> tuple[dict[str, Template], dict[str, list[dict]]]:
    """The templates of all the listings, collapsed, and each listing's raw entries."""
    filters = sorted(templatefilters)
    listings = await asyncio.gather(*(ctx.cs_list("listTemplates", templatefilter=f, **params) for f in filters))
    return collapse(listings), dict(zip(filters, listings))


async def permitted_owner_ids(ctx: Any, templates: list[Template]) -> dict[str, set[str]]:
    """{template id: owner ids with explicit launch permission}, asked concurrently."""
    answers = await asyncio.gather(*(template_permission(ctx, t[0]["id"]) for t in templates))
    return {t[0]["id"]: set(launch_user_ids(permission, t[0])) for t, permission in zip(templates, answers)}


async def visible_images(ctx: Any, request: dict) -> list[dict]:
    owners, executable_by = request.get("Owners") or [], request.get("ExecutableUsers") or []
    check_scopes(owners, executable_by)
    caller = caller_owner_id(await ctx.account())
    params = await _pushed(ctx, request)
    needed = listings_for(owners, executable_by, caller)
    if params is None or not needed:
        return []
    templates, by_filter = await list_templates(ctx, needed, params)
    shared = {entry["id"] for entry in by_filter.get(SHARED, ())}
    others = {v for v in executable_by if v not in ("self", "all", caller)}
    own = [template for template in templates.values() if template_owner(template[0]) == caller]
    permitted = await permitted_owner_ids(ctx, own) if others else {}
    scope = Scope(owners, executable_by, caller, shared, permitted)
    chosen = [template for template in templates.values() if scope.admits(template[0])]
    ids = await prepare_ids(ctx, [template[0] for template in chosen], {"ami": "id"})
    return [to_image(template, ids) for template in chosen]


def _images_not_found(ids: list[str]) -> EC2Error:
    return not_found("ami", ids)


IMAGE_FILTERS = {
    "architecture": "Architecture",
    "block-device-mapping.delete-on-termination": "BlockDeviceMappings.Ebs.DeleteOnTermination",
    "block-device-mapping.device-name": "BlockDeviceMappings.DeviceName",
    "block-device-mapping.snapshot-id": "BlockDeviceMappings.Ebs.SnapshotId",
    "block-device-mapping.volume-size": "BlockDeviceMappings.Ebs.VolumeSize",
    "block-device-mapping.volume-type": "BlockDeviceMappings.Ebs.VolumeType",
    "block-device-mapping.encrypted": "BlockDeviceMappings.Ebs.Encrypted",
    "boot-mode": "BootMode",
    "creation-date": "CreationDate",
    "description": "Description",
    "ena-support": "EnaSupport",
    "hypervisor": "Hypervisor",
    "image-id": "ImageId",
    "image-type": "ImageType",
    "is-public": "Public",
    "kernel-id": "KernelId",
    "manifest-location": "ImageLocation",
    "name": "Name",
    "owner-alias": "ImageOwnerAlias",
    "owner-id": "OwnerId",
    "platform": "Platform",
    "platform-details": "PlatformDetails",
    "product-code": "ProductCodes.ProductCodeId",
    "product-code.type": "ProductCodes.ProductCodeType",
    "ramdisk-id": "RamdiskId",
    "root-device-name": "RootDeviceName",
    "root-device-type": "RootDeviceType",
    "state": "State",
    "state-reason-code": "StateReason.Code",
    "state-reason-message": "StateReason.Message",
    "usage-operation": "UsageOperation",
    "virtualization-type": "VirtualizationType",
}

DESCRIBE_IMAGES = Describe(
    name="DescribeImages",
    result_key="Images",
    source=visible_images,
    sort_key="ImageId",
    filters=IMAGE_FILTERS,
    selectors=(Selector("ImageIds", "ImageId", _images_not_found, kind="ami"),),
    paging=Paging(5, 1000),
)


# --- one image by id ------------------------------------------------------------------------

def not_authorized(image_id: str) -> EC2Error:
    # AWS answers a visible image of another account with HTTP 400, not 401.
    return EC2Error("AuthFailure", f"Not authorized for image:{image_id}", status=400)


async def template_by_id(ctx: Any, image_id: str) -> Template:
    """The template behind an image id, if the caller may launch it (see the module docstring)."""
    record = await ctx.services.ids.backend_id("ami", image_id)
    try:
        # The filter only decides readiness here: "executable" lists a normal user's templates in
        # every state.
        entries = await ctx.cs_list("listTemplates", templatefilter=EXECUTABLE, id=record.backend_id)
    except CloudStackError as error:
        if error.code in (431, 531):
            raise not_found("ami", image_id) from None
        raise
    template = collapse([entries]).get(record.backend_id)
    if template is None:  # removed: CloudStack still accepts its id and lists nothing
        raise not_found("ami", image_id)
    return template


def owned_by(entry: Mapping[str, Any], account: Any) -> bool:
    return entry.get("account") == account.name and entry.get("domainid") == account.domain_id


async def find_template(ctx: Any, image_id: str) -> tuple[Template, bool]:
    """The template behind an image id the caller can see, and whether the caller owns it."""
    template, account = await asyncio.gather(template_by_id(ctx, image_id), ctx.account())
    return template, owned_by(template[0], account)


# --- DescribeImageAttribute -------------------------------------------------------------------

def _empty(template: Template) -> dict:
    return {}  # how AWS answers an attribute the image does not have (kernel of an HVM image)


# Attributes answered from the template alone: attribute name -> (output member, value).
_PLAIN_ATTRIBUTES = {
    "description": ("Description", lambda t: {"Value": t[0].get("displaytext", "")}),
    # AWS now deprecates this one (AuthFailure, "describe the image instead"); older clients
    # (boto 2, euca2ools) still ask, and the answer is the same mapping DescribeImages gives.
    "blockDeviceMapping": ("BlockDeviceMappings", block_device_mappings),
    "bootMode": ("BootMode", lambda t: {"Value": boot_mode(t[0])}),
    "kernel": ("KernelId", _empty),
    "ramdisk": ("RamdiskId", _empty),
    "productCodes": ("ProductCodes", lambda t: []),
    "sriovNetSupport": ("SriovNetSupport", _empty),
    "tpmSupport": ("TpmSupport", _empty),
    "uefiData": ("UefiData", _empty),
    "lastLaunchedTime": ("LastLaunchedTime", _empty),
    "imdsSupport": ("ImdsSupport", _empty),
    "deregistrationProtection": ("DeregistrationProtection", lambda t: {"Value": "disabled"}),
}


def _unknown_attribute(name: str) -> EC2Error:
    return invalid_value("attribute", name, "unknown or unsupported image attribute")


async def describe_image_attribute(ctx: Any, request: dict) -> dict:
    image_id, attribute = request["ImageId"], request["Attribute"]
    if attribute != "launchPermission" and attribute not in _PLAIN_ATTRIBUTES:
        raise _unknown_attribute(attribute)
    template, owned = await find_template(ctx, image_id)
    if attribute == "launchPermission" and not owned:
        raise not_authorized(image_id)  # who may launch an image is its owner's business
    dry_run_checkpoint(request)
    if attribute == "launchPermission":
        permission = await template_permission(ctx, template[0]["id"])
        return {"ImageId": image_id, "LaunchPermissions": launch_permissions(permission, template[0])}
    member, value = _PLAIN_ATTRIBUTES[attribute]
    return {"ImageId": image_id, member: value(template)}


# --- ModifyImageAttribute / ResetImageAttribute --------------------------------------------------

def _invalid_item(value: str, kind: str) -> EC2Error:
    return EC2Error("InvalidAMIAttributeItemValue", f'Invalid attribute item value "{value}" for {kind} item type.')


def _unsupported(what: str) -> EC2Error:
    return EC2Error("UnsupportedOperation", f"{what} is not supported by this cloud.")


def _permission_items(permissions: list[dict]) -> tuple[bool, set[str]]:
    """(group "all" named, user ids) of LaunchPermission items, each checked as AWS does."""
    public, users = False, set()
    for item in permissions:
        if item.get("OrganizationArn") or item.get("OrganizationalUnitArn"):
            raise _unsupported("Sharing with organizations or organizational units")
        if "Group" in item:
            if item["Group"] != "all":
                raise _invalid_item(item["Group"], "group")
            public = True
        if "UserId" in item:
            if not ACCOUNT_ID.match(item["UserId"] or ""):
                raise _invalid_item(item["UserId"], "userId")
            users.add(item["UserId"])
    return public, users


def launch_permission_changes(request: dict) -> tuple[list[dict], list[dict]]:
    """(added, removed) LaunchPermission items, from the structure or the flat parameters."""
    structure = request.get("LaunchPermission") or {}
    added, removed = list(structure.get("Add") or []), list(structure.get("Remove") or [])
    flat = ([{"UserId": u} for u in request.get("UserIds") or []]
            + [{"Group": g} for g in request.get("UserGroups") or []])
    if request.get("OrganizationArns") or request.get("OrganizationalUnitArns"):
        raise _unsupported("Sharing with organizations or organizational units")
    if flat:
        operation = request.get("OperationType")
        if operation is None:
            raise missing_parameter("OperationType")
        if operation not in ("add", "remove"):
            raise invalid_value("OperationType", operation)
        (added if operation == "add" else removed).extend(flat)
    if not added and not removed:
        raise EC2Error("InvalidParameterCombination", "No launch permission to add or remove was specified.")
    return added, removed


def requested_attribute(request: dict) -> str:
    """Which one attribute the request modifies (AWS: one at a time)."""
    named = request.get("Attribute")
    given = [name for name, present in (
        ("launchPermission", request.get("LaunchPermission") or request.get("UserIds") or request.get("UserGroups")
         or request.get("OrganizationArns") or request.get("OrganizationalUnitArns")),
        ("description", request.get("Description") is not None),
        ("imdsSupport", request.get("ImdsSupport") is not None)) if present]
    if request.get("ProductCodes"):
        raise _unsupported("Setting product codes")
    if len(given) > 1 or (named and given and given != [named]):
        raise EC2Error("InvalidParameterCombination", "You can modify only one attribute at a time.")
    attribute = named or (given[0] if given else None)
    if attribute is None:
        raise missing_parameter("Attribute")
    if attribute == "imdsSupport":
        raise _unsupported("IMDS support on images")
    if attribute not in ("launchPermission", "description"):
        raise _unknown_attribute(attribute)
    return attribute


async def owned_template(ctx: Any, image_id: str) -> Template:
    template, owned = await find_template(ctx, image_id)
    if not owned:
        raise not_authorized(image_id)
    return template


async def resolve_accounts(ctx: Any, template: Template, added: set[str], removed: set[str],
                           permitted: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Account names for the added and removed owner ids (see the module docstring)."""
    domain_id = template[0].get("domainid", "")
    current = {account_owner_id(domain_id, name): name for name in permitted_names(permitted, template[0])}
    unknown = added - set(current)
    names = {**(await account_names(ctx, domain_id, unknown) if unknown else {}), **current}
    missing = sorted(unknown - set(names))
    if missing:
        raise _invalid_item(missing[0], "userId")
    # Revoking an id that holds no permission is a no-op on AWS too.
    return sorted(names[uid] for uid in added), sorted(current[uid] for uid in removed if uid in current)


async def update_permissions(ctx: Any, template_id: str, operation: str, accounts: list[str],
                             public: bool | None) -> None:
    params: dict[str, Any] = {"id": template_id}
    if accounts:
        params.update(op=operation, accounts=accounts)
    if public is not None:
        params["ispublic"] = public
    if len(params) > 1:
        await ctx.cs_call("updateTemplatePermissions", **params)


async def modify_launch_permission(ctx: Any, request: dict, template: Template) -> None:
    added, removed = launch_permission_changes(request)
    add_public, add_users = _permission_items(added)
    remove_public, remove_users = _permission_items(removed)
    caller = caller_owner_id(await ctx.account())
    add_users.discard(caller)  # the owner always may launch its own image
    template_id = template[0]["id"]
    permitted = await template_permission(ctx, template_id) if add_users or remove_users else {}
    add_names, remove_names = await resolve_accounts(ctx, template, add_users, remove_users, permitted)
    dry_run_checkpoint(request)
    await update_permissions(ctx, template_id, "add", add_names, True if add_public else None)
    await update_permissions(ctx, template_id, "remove", remove_names, False if remove_public else None)


async def modify_description(ctx: Any, request: dict, template: Template) -> None:
    value = (request.get("Description") or {}).get("Value", request.get("Value"))
    if value is None:
        raise missing_parameter("Value")
    dry_run_checkpoint(request)
    try:
        await ctx.cs_call("updateTemplate", id=template[0]["id"], displaytext=value)
    except CloudStackError as error:
        if error.code == 432:  # a CloudStack (or simulator) without updateTemplate
            raise _unsupported("Changing an image description") from error
        raise


async def modify_image_attribute(ctx: Any, request: dict) -> dict:
    attribute = requested_attribute(request)
    template = await owned_template(ctx, request["ImageId"])
    if attribute == "launchPermission":
        await modify_launch_permission(ctx, request, template)
    else:
        await modify_description(ctx, request, template)
    return {"Return": True}


async def reset_image_attribute(ctx: Any, request: dict) -> dict:
    if request["Attribute"] != "launchPermission":
        raise _unknown_attribute(request["Attribute"])
    template = await owned_template(ctx, request["ImageId"])
    dry_run_checkpoint(request)
    # AWS's reset: no explicit launch permissions and not public.
    await ctx.cs_call("updateTemplatePermissions", id=template[0]["id"], op="reset", ispublic=False)
    return {"Return": True}


_IMAGE_ERRORS = {"id": ("ami", "ImageId")}

RECORDS = (
    DESCRIBE_IMAGES,
    Action("DescribeImageAttribute", describe_image_attribute, mutating=False, errors=_IMAGE_ERRORS),
    Action("ModifyImageAttribute", modify_image_attribute, errors=_IMAGE_ERRORS),
    Action("ResetImageAttribute", reset_image_attribute, errors=_IMAGE_ERRORS),
)
