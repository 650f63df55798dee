"""CloudStack virtual machines seen as EC2 instances: one listing, one conversion.

``list_instances(ctx, vm_ids=None)`` is the one way every instance action reads instances:
one ``listVirtualMachines`` (paged by the client, each VM kept as the JSON text CloudStack
sent), the caller's volumes, networks and templates, EC2 ids minted in bulk, and the bridge's
own per-instance state read in bulk from :class:`InstanceStore`. No call is made per
instance, so describing 10,000 instances costs a few dozen requests, not thousands.

Three things keep a DescribeInstances loop cheap:

- **Catalog listings** (networks, templates, and the account's volumes for a whole-account
  listing) come from :class:`mappings.zones.CatalogCache`: a few seconds per caller, volumes at
  most ``VOLUMES_MAX_AGE``. A listing that lacks something a listed VM refers to (a new
  network or template, the root volume of a VM launched since) is fetched again at once, so a
  new instance never looks incomplete. What may lag, by at most ``VOLUMES_MAX_AGE``, is a data
  volume attached or detached outside this bridge process (AWS's own DescribeInstances is
  eventually consistent the same way); describing given InstanceIds lists their volumes live.
- **The instance memo** (:mod:`mappings.instance_memo`): a VM whose JSON and other inputs are
  unchanged since a previous call is neither parsed, nor converted, nor rendered again.
- **The answer memo** (:mod:`ec2bridge.answer_memo`): with ``reuse_answer``, the listings just
  read (each VM's JSON hash, the catalog listings' serials) are the basis of the answer, and a
  request repeated on the same basis and store is answered with the document kept from before.
  An answer that needed a listing read again (a new instance's network or root volume) or
  the listing of templates shared with the caller rests on more than its basis and is not
  kept; the next call, which finds the fresher listing in the cache, is.

Decisions, with the AWS and CloudStack behaviour behind them:

- **State**: Starting -> pending, Running -> running, Stopping -> stopping, Stopped -> stopped,
  Destroyed/Expunging -> terminated, Error (a failed deploy) -> terminated with a StateReason.
  While a terminate the bridge submitted is still running the instance is ``shutting-down``,
  as AWS shows it.
- **Terminated instances** stay visible for an hour as on AWS: CloudStack forgets an expunged
  VM (and hides destroyed ones from users unless ``allow.user.view.destroyed.vm``), so the
  store keeps the instance as last described (a tombstone); after the hour it is hidden.
- **Device names**: the root volume is ``/dev/sda1`` (the name AWS uses for most Linux and
  Windows AMIs); a data volume with CloudStack ``deviceid`` N is ``/dev/sd`` + the N-th letter
  after ``a`` (1 -> ``/dev/sdb``), as CloudStack's own awsapi mapped them. CloudStack keeps
  device 3 for the CD-ROM, so ``/dev/sdd`` is never used.
- **Names**: PrivateDnsName is the VM's host name in its network's DNS domain (CloudStack's
  virtual router resolves ``<name>.<networkdomain>``); PublicDnsName is empty because CloudStack
  publishes no public DNS names; PublicIpAddress is the static NAT address, if any.
- **Hypervisor** is ``xen`` (AWS's enum has no other value for a full virtual machine),
  VirtualizationType ``hvm``, RootDeviceType ``ebs`` (CloudStack root disks are volumes).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Awaitable, Callable, Iterable

import orjson

from ec2bridge.ids import owner_id
from ec2bridge.protocol.serialize import Rendered
from ec2bridge.stores.instances import InstanceRow, InstanceStore
from mappings.common import cs_time, fingerprint
from mappings.instance_memo import Facts, InstanceMemo
from mappings.tags import cloudstack_tags, ec2_tag_list
from mappings.sources import owner_key
from mappings.zones import CatalogCache, Listing

ROOT_DEVICE = "/dev/sda1"
TERMINATED_VISIBLE_SECONDS = 3600.0  # AWS: "terminated instances remain visible for about an hour"

STATES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}
_CS_STATES = {"Starting": "pending", "Running": "running", "Stopping": "stopping", "Stopped": "stopped",
              "Destroyed": "terminated", "Expunging": "terminated", "Error": "terminated",
              "Migrating": "running", "Shutdown": "stopped"}
GONE = ("Destroyed", "Expunging")
LAUNCH_FAILED = ("Server.InternalError", "Server.InternalError: Internal error on launch")
USER_SHUTDOWN = ("Client.UserInitiatedShutdown", "Client.UserInitiatedShutdown: User initiated shutdown")
_BOOT_MODES = {"legacy": "legacy-bios", "secure": "uefi", "uefi": "uefi"}
_ARCHITECTURES = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64", "i386": "i386"}


# Members every instance shares, one object each: items are read-only once built (their
# owners only add and remove top-level bookkeeping keys), and thousands of instances are
# kept in memory by the InstanceMemo.
_STATE_OF = {name: {"Code": code, "Name": name} for name, code in STATES.items()}
_NONE: list = []
_MONITORING = {"State": "disabled"}
_METADATA_OPTIONS = {"State": "applied", "HttpTokens": "optional", "HttpPutResponseHopLimit": 1,
                     "HttpEndpoint": "enabled", "HttpProtocolIpv6": "disabled", "InstanceMetadataTags": "disabled"}


def state(name: str) -> dict:
    return {"Code": STATES[name], "Name": name}


def device_name(device_id: int) -> str:
    return ROOT_DEVICE if device_id == 0 else f"/dev/sd{chr(ord('a') + device_id)}"


def device_id(name: str) -> int | None:
    """CloudStack's deviceid for an EC2 device name (``/dev/sdf``, ``/dev/xvdf``, ``sdf``)."""
    if name in (ROOT_DEVICE, "/dev/xvda", "/dev/sda"):
        return 0
    base = name.removeprefix("/dev/")
    for prefix in ("sd", "xvd"):
        letter = base.removeprefix(prefix)
        if base.startswith(prefix) and len(letter) == 1 and "b" <= letter <= "z":
            return ord(letter) - ord("a")
    return None


def user_initiated(when: float | None = None) -> str:
    """AWS's StateTransitionReason wording: ``User initiated (2026-11-22 01:02:03 GMT)``."""
    return time.strftime("User initiated (%Y-%m-%d %H:%M:%S GMT)", time.gmtime(when))


def instance_type_names(config) -> dict[str, str]:
    """Offering name or uuid -> the EC2 instance type reported for it (its first alias, else
    its own name): the operator's ``[instance_types]`` names offerings either way."""
    names: dict[str, str] = {}
    for alias, offering in config.instance_type_aliases.items():
        names.setdefault(offering, alias)
    return names


@dataclass
class View:
    """Everything the conversion of one batch of VMs needs, gathered in bulk.

    ``ids`` holds a table for every kind ``build_view`` mints, so a conversion reads
    ``ids[kind].get((backend_id, owner))`` without checking that the kind is there.
    """

    ids: dict[str, dict[tuple[str, str], str]]
    rows: dict[str, InstanceRow]
    volumes: dict[str, list[dict]]
    domains: dict[str, str]
    flags: dict[str, bool]
    type_names: dict[str, str]
    template_owner: dict[str, str] = field(default_factory=dict)
    now: float = field(default_factory=time.time)
    owner_ids: dict[str, str] = field(default_factory=dict)  # owner key -> 12-digit id, filled on use
    times: dict[str | None, datetime | None] = field(default_factory=dict)  # CloudStack time text -> datetime
    shared: dict[tuple, dict] = field(default_factory=dict)  # equal members, one object per batch

    def inputs_of(self, vm: Facts) -> int:
        """A fingerprint of what ``to_instance`` reads besides the VM itself, the ids (which
        never change) and the clock (terminated instances, which read it, are not memoised)."""
        volumes = self.volumes.get(vm.vm_id)
        return fingerprint(volumes, self.rows.get(vm.vm_id), [self.flags.get(v["id"]) for v in volumes or ()],
                           [self.domains.get(network) for network in vm.network_ids],
                           self.template_owner.get(vm.template_id))

    def ec2(self, kind: str, backend_id: str | None, owner: str) -> str | None:
        return self.ids.get(kind, {}).get((backend_id, owner)) if backend_id else None

    def time(self, text: str | None) -> datetime | None:
        """``cs_time``, remembered per text: VMs launched together share their timestamps."""
        if text in self.times:
            return self.times[text]
        moment = self.times[text] = cs_time(text)
        return moment

    def placement(self, zone_name: str) -> dict:
        known = self.shared.get(("placement", zone_name))
        if known is None:
            known = self.shared[("placement", zone_name)] = {"AvailabilityZone": zone_name, "GroupName": "",
                                                              "Tenancy": "default"}
        return known

    def cpu_options(self, cores: int) -> dict:
        known = self.shared.get(("cpu", cores))
        if known is None:
            known = self.shared[("cpu", cores)] = {"CoreCount": cores, "ThreadsPerCore": 1}
        return known

    def owner_id(self, owner: str) -> str:
        # A SHA-256 per instance adds up over thousands; a batch has a handful of owners.
        known = self.owner_ids.get(owner)
        if known is None:
            known = self.owner_ids[owner] = owner_id(owner)
        return known


async def list_instances(ctx, vm_ids: list[str] | None = None, *, with_volumes: bool = True,
                         reuse_answer: bool = False) -> list[dict]:
    """EC2 Instance dicts (plus ``ReservationId``/``OwnerId``/``VmId``) of the caller's VMs.

    ``reuse_answer``: once the listings are read, offer them to ``ctx.reuse_answer`` as the
    basis of the answer (which raises ``KnownAnswer`` when the answer is known already).
    """
    if vm_ids is None:
        return await ctx.services.store(LargeListings).run(ctx.creds[0], _list(ctx, None, with_volumes, reuse_answer))
    return await _list(ctx, vm_ids, with_volumes, reuse_answer) if vm_ids else []


class LargeListings:
    """At most ``SLOTS`` whole-account listings of a large fleet at once in one process.

    Listing and converting 10,000 instances holds some 60 MB while it runs. On one core,
    concurrent large listings add no throughput, only memory: eight at once took a process to
    660 MB, which the allocator then kept. A caller whose previous listing in this process had
    ``LARGE`` VMs or more waits for a slot, and so does one whose fleet size the process does
    not know yet (eight first listings of 10,000 VMs arriving at once at a fresh worker took it
    to 865 MB); a caller known to be small never waits. Built through
    ``ctx.services.store(LargeListings)``; the sizes are process-local hints.
    """

    SLOTS = 1
    LARGE = 2000
    MAX_CALLERS = 4096

    def __init__(self, database: Any = None):
        self._slots = asyncio.Semaphore(self.SLOTS)
        self._sizes: dict[str, int] = {}

    async def run(self, caller: str, listing: Awaitable[list[dict]]) -> list[dict]:
        if self._sizes.get(caller, self.LARGE) < self.LARGE:
            items = await listing
        else:
            async with self._slots:
                items = await listing
        if len(self._sizes) >= self.MAX_CALLERS and caller not in self._sizes:
            self._sizes.clear()
        self._sizes[caller] = len(items)
        return items


async def _list(ctx, vm_ids: list[str] | None, with_volumes: bool, reuse_answer: bool = False) -> list[dict]:
    params: dict[str, Any] = {}
    if vm_ids is not None:
        params = {"id": vm_ids[0]} if len(vm_ids) == 1 else {"ids": vm_ids}
    listed, volumes, networks, templates = await asyncio.gather(
        ctx.services.cloudstack.list_raw(ctx.creds, "listVirtualMachines", params),
        _volumes(ctx, vm_ids) if with_volumes else _same([]),
        _catalog(ctx, "listNetworks"), _catalog(ctx, "listTemplates", templatefilter="executable"))
    if reuse_answer:  # before anything is built from them, or read from the store
        ctx.reuse_answer((tuple(map(hash, listed)), tuple(map(listing_stamp, (volumes, networks, templates)))))
    # Items built with volumes are memoised; the few actions that list without them are not.
    memo = ctx.services.store(InstanceMemo) if with_volumes else None
    vms = [_listed_vm(vm_json, memo) for vm_json in listed]
    del listed
    facts = [vm.facts for vm in vms]
    template_ids = {f.template_id for f in facts if f.template_id}
    read = (networks, templates, volumes)
    networks, templates, volumes = await asyncio.gather(
        _covering(ctx, networks, {n for f in facts for n in f.network_ids}, "listNetworks"),
        _covering(ctx, templates, template_ids, "listTemplates", templatefilter="executable"),
        _covering(ctx, volumes, {f.vm_id for f in facts if f.state not in _NO_ROOT}, "listVolumes", key=_root_of,
                  max_age=VOLUMES_MAX_AGE, fields=VOLUME_FIELDS) if with_volumes and vm_ids is None
        else _same(volumes))
    if not template_ids <= {t["id"] for t in templates}:
        # A template shared with the caller is neither its own nor public: its owner, which
        # the AMI id is minted under, comes from the shared listing (one call, only when needed).
        templates = templates + await _catalog(ctx, "listTemplates", templatefilter="sharedexecutable")
    if any(now is not before for now, before in zip((networks, templates, volumes), read)):
        ctx.answer_varies()  # built on listings read after the basis was taken: not kept
    view = await gather_inputs(ctx, facts, volumes, networks, templates)
    return await convert_all(ctx, vms, view, memo)


@dataclass(slots=True)
class ListedVm:
    """One VM of a listing: its JSON text, and what is known of it so far."""

    json: bytes
    key: int                 # hash of the JSON: the memo's key
    facts: Facts
    vm: dict | None = None   # the parsed JSON, once needed (at once when the memo lacks it)

    def parsed(self) -> dict:
        if self.vm is None:
            self.vm = orjson.loads(self.json)
        return self.vm


def _listed_vm(vm_json: bytes, memo: InstanceMemo | None) -> ListedVm:
    key = hash(vm_json)
    facts = memo.facts(key) if memo is not None else None
    if facts is not None:
        return ListedVm(vm_json, key, facts)
    vm = orjson.loads(vm_json)
    return ListedVm(vm_json, key, Facts.of(vm), vm)


# -- what the conversion reads besides the VMs (catalog listings: see the module docstring) ------
VOLUMES_MAX_AGE = 2.0


async def _catalog(ctx, command: str, **params: Any) -> list[dict]:
    return await ctx.services.store(CatalogCache).listing(ctx, command, **params)


# What the conversion reads of a volume; a cached listing keeps no more.
VOLUME_FIELDS = ("id", "type", "virtualmachineid", "deviceid", "attached", "created", "domainid", "account")


async def _volumes(ctx, vm_ids: list[str] | None) -> list[dict]:
    if vm_ids is None:
        return await ctx.services.store(CatalogCache).listing(ctx, "listVolumes", max_age=VOLUMES_MAX_AGE,
                                                               fields=VOLUME_FIELDS)
    volumes = await ctx.cs_list("listVolumes", **({"virtualmachineid": vm_ids[0]} if len(vm_ids) == 1 else {}))
    return [{name: volume[name] for name in VOLUME_FIELDS if name in volume} for volume in volumes]


async def _covering(ctx, listing: list[dict], wanted: set[str], command: str, *,
                    key: Callable[[dict], str | None] = lambda obj: obj.get("id"), **options: Any) -> list[dict]:
    """``listing`` if it has every wanted object (by ``key``), else the listing fetched now
    (``options``: those of ``CatalogCache.listing`` that gave ``listing``)."""
    if wanted and not wanted <= set(map(key, listing)):
        return await ctx.services.store(CatalogCache).listing(ctx, command, fresh=True, **options)
    return listing


def listing_stamp(listing: list[dict]) -> tuple[str, int]:
    """What tells this listing's content apart: a cached listing's serial, else a fingerprint."""
    return ("serial", listing.serial) if listing.__class__ is Listing else ("content", fingerprint(listing))


async def _same(value: Any) -> Any:
    return value


_NO_ROOT = ("Error", "Destroyed", "Expunging")  # the VMs that may have no root volume listed


def _root_of(volume: dict) -> str | None:
    return volume.get("virtualmachineid") if volume.get("type") == "ROOT" else None


async def gather_inputs(ctx, vms: list[Facts], volumes: list[dict], networks: list[dict],
                        templates: list[dict]) -> View:
    """Everything but the EC2 ids that converting ``vms`` reads, gathered in bulk."""
    store: InstanceStore = ctx.services.store(InstanceStore)
    by_vm: dict[str, list[dict]] = {}
    data_volumes = []
    for volume in volumes:
        vm_id = volume.get("virtualmachineid")
        if vm_id:
            by_vm.setdefault(vm_id, []).append(volume)
            if volume.get("type") != "ROOT":
                data_volumes.append(volume["id"])
    # An image's id belongs to the template's owner (public templates look the same to every
    # account), so it is minted under the template's owner, as DescribeImages mints it.
    return View(ids={}, rows=await store.by_vm_ids([vm.vm_id for vm in vms]), volumes=by_vm,
                flags=await store.delete_on_termination(data_volumes),
                domains={n["id"]: n.get("networkdomain") or "" for n in networks},
                template_owner={t["id"]: owner_key(t) for t in templates},
                type_names=instance_type_names(ctx.config))


async def mint_ids(ctx, vms: Iterable[dict], view: View) -> None:
    """The EC2 ids of everything ``vms`` refer to, minted in bulk into ``view.ids``."""
    wanted: dict[str, set[tuple[str, str]]] = {kind: set() for kind in ("ami", "i", "r", "sg", "vol", "vpc", "subnet")}
    images, instances, groups, vpcs, subnets, volumes = (
        wanted[kind].add for kind in ("ami", "i", "sg", "vpc", "subnet", "vol"))
    template_owner = view.template_owner
    for vm in vms:  # one pass, the owner worked out once per VM
        owner, template = owner_key(vm), vm.get("templateid")
        instances((vm["id"], owner))
        if template:
            images((template, template_owner.get(template, "")))
        for group in vm.get("securitygroup") or ():
            groups((group["id"], owner))
        for nic in vm.get("nic") or ():
            if nic.get("vpcid"):
                vpcs((nic["vpcid"], owner))
                subnets((nic["networkid"], owner))
        for volume in view.volumes.get(vm["id"], ()):
            volumes((volume["id"], owner_key(volume)))
    wanted["r"] = {pair for pair in wanted["i"] if pair[0] not in view.rows}
    idmap = ctx.services.ids
    for kind, pairs in wanted.items():
        view.ids.setdefault(kind, {}).update(await idmap.ec2_ids(kind, list(pairs)) if pairs else {})


async def convert_all(ctx, vms: list[ListedVm], view: View, memo: InstanceMemo | None) -> list[dict]:
    """``to_instance`` of every VM, or a copy of its item from ``memo`` when nothing it is built
    from changed.

    VMs are parsed, given EC2 ids and converted a batch at a time, each dropped once
    converted, so that a large listing needs the memory of its VMs' text and its items, and of
    one batch of parsed VMs.
    """
    items: list[dict | None] = [None] * len(vms)
    pending: list[tuple[int, int]] = []
    for index, listed in enumerate(vms):
        others = view.inputs_of(listed.facts) if memo is not None else 0
        kept = memo.item(listed.key, others) if memo is not None else None
        if kept is None:
            pending.append((index, others))
        else:
            items[index], vms[index] = kept, None
    service = ctx.services.models.ec2
    # In batches: a first listing of a large fleet then holds a batch of parsed VMs at a time.
    for start in range(0, len(pending), CONVERT_BATCH):
        batch = pending[start:start + CONVERT_BATCH]
        await mint_ids(ctx, (vms[index].parsed() for index, _ in batch), view)
        for index, others in batch:
            listed, vms[index] = vms[index], None
            item = to_instance(listed.parsed(), view)
            if item is not None and memo is not None:
                item = memo.put(listed.key, listed.facts, others, item, PRIVATE_KEYS, service)
            items[index] = item
    return [item for item in items if item is not None]


CONVERT_BATCH = 500


def to_instance(vm: dict, view: View) -> dict | None:
    """One VM as an EC2 Instance; None for one terminated more than an hour ago.

    Thousands of these run per DescribeInstances, so the VM's fields are read once, the id
    tables are indexed directly and members that may be absent are added only when present
    (the renderer leaves out nothing else).
    """
    get, ids = vm.get, view.ids
    vm_id = vm["id"]
    owner = f"{get('domainid', '')}/{get('account', '')}"  # mappings.sources.owner_key, inlined
    row = view.rows.get(vm_id)
    name, reason = _state(vm, row)
    if name == "terminated" and _expired(vm, row, view.now):
        return None
    nic = _default_nic(vm)
    windows = "windows" in f"{get('osdisplayname', '')} {get('templatename', '')}".lower()
    template = get("templateid")
    type_names, offering_name = view.type_names, get("serviceofferingname")
    item: dict[str, Any] = {
        "State": _STATE_OF[name],
        "PrivateDnsName": _private_dns(vm, nic, view),
        "PublicDnsName": "",
        "StateTransitionReason": row.transition_reason if row else "",
        "AmiLaunchIndex": row.launch_index if row else 0,
        "ProductCodes": _NONE,
        "Placement": view.placement(get("zonename", "")),
        "Monitoring": _MONITORING,
        "Architecture": _ARCHITECTURES.get(get("arch") or "x86_64", "x86_64"),
        "RootDeviceType": "ebs",
        "RootDeviceName": ROOT_DEVICE,
        "BlockDeviceMappings": _block_devices(vm, row, view) if name != "terminated" else [],
        "VirtualizationType": "hvm",
        "ClientToken": row.client_token if row else "",
        "Tags": ec2_tag_list(cloudstack_tags(vm)) if get("tags") else [],
        "SecurityGroups": [{"GroupId": ids["sg"].get((g["id"], owner)) if g["id"] else None,
                            "GroupName": g.get("name", "")} for g in get("securitygroup") or ()],
        "SourceDestCheck": True,
        "Hypervisor": "xen",
        "EbsOptimized": False,
        "EnaSupport": False,
        "CpuOptions": view.cpu_options(int(get("cpunumber") or 1)),
        "MetadataOptions": _METADATA_OPTIONS,
        "BootMode": _BOOT_MODES.get((get("bootmode") or "legacy").lower(), "legacy-bios"),
        "PlatformDetails": "Windows" if windows else "Linux/UNIX",
        "UsageOperation": "RunInstances:0002" if windows else "RunInstances",
        "OwnerId": view.owner_id(owner),
        "VmId": vm_id,
    }
    optional = (
        ("InstanceId", ids["i"].get((vm_id, owner))),
        ("ImageId", ids["ami"].get((template, view.template_owner.get(template, ""))) if template else None),
        ("KeyName", _key_name(vm)),
        ("InstanceType", type_names.get(get("serviceofferingid", ""))
         or type_names.get(get("serviceofferingname", ""), offering_name)),
        ("LaunchTime", view.time(get("created"))),
        ("PrivateIpAddress", nic.get("ipaddress") if nic else None),
        ("ReservationId", row.reservation_id if row else ids["r"].get((vm_id, owner))),
    )
    for key, value in optional:
        if value is not None:
            item[key] = value
    if name != "terminated" and get("publicip") is not None:
        item["PublicIpAddress"] = get("publicip")
    if reason:
        item["StateReason"] = {"Code": reason[0], "Message": reason[1]}
    if windows:
        item["Platform"] = "windows"
    if nic and nic.get("vpcid"):
        _put(item, "VpcId", view.ec2("vpc", nic["vpcid"], owner))
        _put(item, "SubnetId", view.ec2("subnet", nic["networkid"], owner))
    return with_sort_key(item)


def with_sort_key(item: dict) -> dict:
    """The order DescribeInstances lists instances in: by reservation, then launch index."""
    item["SortKey"] = f"{item.get('ReservationId')}/{item.get('AmiLaunchIndex', 0):06d}/{item.get('InstanceId')}"
    return item


def _put(item: dict, key: str, value: Any) -> None:
    if value is not None:
        item[key] = value


def _state(vm: dict, row: InstanceRow | None) -> tuple[str, tuple[str, str] | None]:
    cs_state = vm.get("state", "")
    name = _CS_STATES.get(cs_state, "pending")
    if row is None and cs_state != "Error":  # most VMs: nothing recorded by the bridge
        return name, None
    recorded = (row.state_reason_code, row.state_reason_message) if row and row.state_reason_code else None
    if row and row.terminating and cs_state not in GONE and cs_state != "Error":
        return "shutting-down", recorded or USER_SHUTDOWN
    if cs_state == "Error":
        return "terminated", recorded or LAUNCH_FAILED
    if name in ("stopped", "stopping", "terminated"):
        return name, recorded
    return name, None


def _expired(vm: dict, row: InstanceRow | None, now: float) -> bool:
    if row and row.terminated_at:
        ended = row.terminated_at
    else:
        stamp = cs_time(vm.get("lastupdated")) or cs_time(vm.get("created"))
        ended = stamp.timestamp() if stamp else now
    return now - ended > TERMINATED_VISIBLE_SECONDS


def _key_name(vm: dict) -> str | None:
    # CloudStack 4.17+ lists every key pair of a VM in ``keypairs``; EC2 has one KeyName.
    names = vm.get("keypairs") or vm.get("keypair")
    return (names.split(",", 1)[0].strip() or None) if names else None


def _default_nic(vm: dict) -> dict | None:
    nics = vm.get("nic")
    if not nics:
        return None
    for nic in nics:
        if nic.get("isdefault"):
            return nic
    return nics[0]


def _private_dns(vm: dict, nic: dict | None, view: View) -> str:
    domain = view.domains.get(nic.get("networkid", "")) if nic else ""
    return f"{vm.get('name', '')}.{domain}" if domain else ""


def _block_devices(vm: dict, row: InstanceRow | None, view: View) -> list[dict]:
    volumes = view.volumes.get(vm["id"])
    if not volumes:
        return []
    if len(volumes) > 1:
        volumes = sorted(volumes, key=_device_number)
    devices, volumes_ids = [], view.ids["vol"]
    for volume in volumes:
        root = volume.get("type") == "ROOT"
        delete = (row.root_delete_on_termination if row else True) if root else view.flags.get(volume["id"], False)
        ebs = {"DeleteOnTermination": delete, "Status": "attached"}
        _put(ebs, "AttachTime", view.time(volume.get("attached") or volume.get("created")))
        owner = f"{volume.get('domainid', '')}/{volume.get('account', '')}"  # owner_key, inlined
        _put(ebs, "VolumeId", volumes_ids.get((volume["id"], owner)))
        devices.append({"DeviceName": ROOT_DEVICE if root else device_name(int(volume.get("deviceid") or 1)),
                        "Ebs": ebs})
    return devices


def _device_number(volume: dict) -> int:
    return int(volume.get("deviceid") or 0)


# -- tombstones: instances CloudStack no longer lists ------------------------------------------
def tombstone(item: dict) -> dict:
    """How a terminated instance keeps looking (AWS drops its volumes and public address)."""
    gone = {**item, "State": state("terminated"), "BlockDeviceMappings": []}
    gone.pop("PublicIpAddress", None)
    gone.pop("SortKey", None)
    return gone


async def recent_tombstones(ctx, owner: str, listed: Iterable[str]) -> list[dict]:
    """Instances terminated in the last hour that CloudStack no longer lists."""
    store: InstanceStore = ctx.services.store(InstanceStore)
    seen = set(listed)
    rows = await store.terminated_since(owner, time.time() - TERMINATED_VISIBLE_SECONDS)
    return [_from_tombstone(row) for row in rows if row.tombstone and row.vm_id not in seen]


def _from_tombstone(row: InstanceRow) -> dict:
    item = json.loads(row.tombstone or "{}")
    item["LaunchTime"] = datetime.fromisoformat(item["LaunchTime"]) if item.get("LaunchTime") else None
    item["State"] = state("terminated")
    item["StateTransitionReason"] = row.transition_reason
    if row.state_reason_code:
        item["StateReason"] = {"Code": row.state_reason_code, "Message": row.state_reason_message or ""}
    return with_sort_key({key: value for key, value in item.items() if value is not None})


PRIVATE_KEYS = ("ReservationId", "OwnerId", "VmId", "SortKey")


def public(item: dict) -> dict:
    """The item without the bridge's bookkeeping keys, ready to render."""
    return strip_private(dict(item))  # a copy and four deletions: cheaper than a rebuilt dict


def strip_private(item: dict) -> dict:
    """``public`` in place, for items nobody else holds (a large page then needs no copies).
    A ``Rendered`` item stays as it is: its XML has no private keys, and others share it."""
    if item.__class__ is Rendered:
        return item
    for key in PRIVATE_KEYS:
        item.pop(key, None)
    return item
