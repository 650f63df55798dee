"""Tags on every kind of resource: CreateTags, DeleteTags, DescribeTags and TagSpecifications.

**Where tags live.** :data:`TAGGABLE` is the one table of taggable kinds: EC2 id prefix, EC2
``ResourceType`` name, CloudStack ``resourcetype`` and the CloudStack list command that shows
one such object (with its ``tags``). Kinds CloudStack can tag keep their tags in CloudStack
(``createTags``/``deleteTags``/``listTags``), so CloudStack's own UI and API see them and they
go away with the object. Kinds it cannot tag (key pairs) keep them in the bridge's
:class:`ec2bridge.stores.tags.TagStore`.

**AWS's rules, CloudStack's differences.**

- At most 50 tags per resource (``TagLimitExceeded``); keys of 1-128 characters, values of
  0-256; keys starting with ``aws:`` are reserved (``InvalidParameterValue``).
- CreateTags overwrites the value of an existing key. CloudStack refuses a key a resource
  already has ("tag K already on ..."), so a changed key is deleted first and created again;
  if the creation fails the old values are put back.
- CloudStack refuses an empty value ("Value for the key K is either null or empty",
  ``TaggedResourceManagerImpl.createTags``) while AWS allows it. An empty value is stored in
  CloudStack as :data:`EMPTY_VALUE` and read back as ``""`` (:func:`ec2_tag_value`).
- CloudStack's ``deleteTags`` matches keys and values ignoring case and fails when nothing
  matched; AWS's DeleteTags is exact and succeeds anyway. The bridge therefore decides which
  tags go from the resource's current tags and sends ``deleteTags`` only for exactly those.
- Creating and deleting tags is an asynchronous CloudStack job whose failures all arrive as
  error 530, so a missing resource is found out beforehand: the kind's list command, with the
  object's id, answers both "does it exist for this caller" and "what tags has it now".

**Ownership.** An EC2 id resolves through the id map (unknown prefix: ``InvalidID``; unknown
id: the kind's ``NotFound``). A caller may only tag its own account's resources: the id map's
owner must be the caller's account (CloudStack lets a root admin tag any resource, so admins
are left to CloudStack for the kinds it tags), and the object must be visible to the caller.

**DescribeTags** merges CloudStack's ``listTags`` (each tag's ``resourcetype``/``resourceid``
mapped back to EC2 ids through the id map, minted when first seen) with the bridge's tags of
objects that still exist. ``tag:<key>`` selects resources by a tag they carry and returns the
tags of those resources. Paging is keyset paging on (resource id, key).

Other areas tag what they create with :func:`apply_tag_specifications` (after validating the
request with :func:`requested_tags` before creating anything).
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ec2bridge.cloudstack import CloudStackError
from ec2bridge.describe import Paging, apply_filters, check_max_results, compile_filters, paginate
from ec2bridge.errors import EC2Error, dry_run_ok, missing_parameter
from ec2bridge.ids import IdRecord, check_format, not_found
from ec2bridge.stores.tags import TagStore, TooManyTags
from mappings.common import (BRIDGE_TAG_PREFIX, EMPTY_VALUE, RESERVED_PREFIX, cloudstack_tag_value,  # noqa: F401
                             cloudstack_tags, dry_run_checkpoint, ec2_tag_list, ec2_tag_value, is_user_key)
from mappings.records import Action
from mappings.sources import owner_key

log = logging.getLogger(__name__)

MAX_TAGS = 50
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 256

DESCRIBE_PAGING = Paging(5, 1000)
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class TaggableKind:
    prefix: str                    # EC2 id prefix (ec2bridge.ids.KINDS)
    resource_type: str             # EC2 ResourceType name
    cloudstack_type: str | None    # CloudStack ResourceObjectType; None: tags kept by the bridge
    lister: str                    # CloudStack list command showing the object (with its tags)
    list_params: Mapping[str, str] = field(default_factory=dict)
    nested: tuple[str, ...] = ()   # the objects are inside the listed ones, under these keys
    id_field: str = "id"


# ``listall`` lets a root admin's lookup find the objects CloudStack lets it tag; for a user it
# changes nothing. Key pairs are the caller's own only: the bridge enforces their ownership.
_ALL = {"listall": "true"}
TAGGABLE = (
    TaggableKind("i", "instance", "UserVm", "listVirtualMachines", _ALL),
    TaggableKind("ami", "image", "Template", "listTemplates", {**_ALL, "templatefilter": "self"}),
    TaggableKind("vol", "volume", "Volume", "listVolumes", _ALL),
    TaggableKind("snap", "snapshot", "Snapshot", "listSnapshots", _ALL),
    TaggableKind("sg", "security-group", "SecurityGroup", "listSecurityGroups", _ALL),
    # CloudStack has no command listing one rule: rules come inside their groups.
    TaggableKind("sgr", "security-group-rule", "SecurityGroupRule", "listSecurityGroups", _ALL,
                 nested=("ingressrule", "egressrule"), id_field="ruleid"),
    TaggableKind("eipalloc", "elastic-ip", "PublicIpAddress", "listPublicIpAddresses", _ALL),
    TaggableKind("vpc", "vpc", "Vpc", "listVPCs", _ALL),
    TaggableKind("subnet", "subnet", "Network", "listNetworks", _ALL),
    TaggableKind("key", "key-pair", None, "listSSHKeyPairs"),
)
BY_PREFIX = {kind.prefix: kind for kind in TAGGABLE}
BY_RESOURCE_TYPE = {kind.resource_type: kind for kind in TAGGABLE}
BY_CLOUDSTACK_TYPE = {kind.cloudstack_type.lower(): kind for kind in TAGGABLE if kind.cloudstack_type}
STORED_KINDS = tuple(kind for kind in TAGGABLE if kind.cloudstack_type is None)


# --- small conversions -------------------------------------------------------------------

def backend_id_of(obj: Mapping[str, Any]) -> str:
    """The id-map backend id of a CloudStack object: its uuid, or its name for objects that
    CloudStack identifies by name only (SSH key pairs before CloudStack gave them ids)."""
    return obj.get("id") or obj["name"]


def invalid_id(ec2_id: str) -> EC2Error:
    return EC2Error("InvalidID", f"The ID '{ec2_id}' is not valid")


def tag_limit_exceeded() -> EC2Error:
    return EC2Error("TagLimitExceeded", f"The maximum number of tags ({MAX_TAGS}) for a resource has been reached.")


# --- validation --------------------------------------------------------------------------

def check_key(key: str | None, where: str) -> str:
    if key is None:
        raise missing_parameter(f"{where}.Key")
    if not key:
        raise EC2Error("InvalidParameterValue", "Tag keys must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise EC2Error("InvalidParameterValue", f"Tag key exceeds the maximum length of {MAX_KEY_LENGTH} characters")
    if key.lower().startswith(RESERVED_PREFIX):
        raise EC2Error("InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use")
    return key


def check_value(value: str | None) -> str:
    value = value or ""
    if len(value) > MAX_VALUE_LENGTH:
        raise EC2Error("InvalidParameterValue",
                       f"Tag value exceeds the maximum length of {MAX_VALUE_LENGTH} characters")
    return value


def tag_map(tags: list[dict] | None, where: str = "Tag") -> dict[str, str]:
    """Tags to set, validated as AWS does: {key: value}."""
    result: dict[str, str] = {}
    for index, tag in enumerate(tags or (), 1):
        key = check_key(tag.get("Key"), f"{where}.{index}")
        if key in result:
            raise EC2Error("InvalidParameterValue", f"Duplicate tag key '{key}' specified")
        result[key] = check_value(tag.get("Value"))
    if len(result) > MAX_TAGS:
        raise tag_limit_exceeded()
    return result


def requested_tags(tag_specs: list[dict] | None, resource_type: str,
                   allowed: Iterable[str] | None = None) -> dict[str, str]:
    """The tags ``TagSpecifications`` ask for on ``resource_type``, every specification
    validated (types outside ``allowed``, default just ``resource_type``, are refused).
    Call it before creating anything: AWS refuses a bad specification up front."""
    allowed = set(allowed or ()) | {resource_type}
    wanted: dict[str, str] = {}
    seen: set[str] = set()
    for index, spec in enumerate(tag_specs or (), 1):
        spec_type = spec.get("ResourceType")
        if not spec_type:
            raise missing_parameter(f"TagSpecification.{index}.ResourceType")
        if spec_type not in allowed:
            raise EC2Error("InvalidParameterValue",
                           f"'{spec_type}' is not a valid taggable resource type for this operation.")
        if spec_type in seen:
            raise EC2Error("InvalidParameterValue",
                           f"The tag specification for resource type '{spec_type}' is given more than once")
        seen.add(spec_type)
        tags = tag_map(spec.get("Tags"), f"TagSpecification.{index}.Tag")
        if spec_type == resource_type:
            wanted = tags
    return wanted


# --- resolving resources -----------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """A resource about to be tagged: its kind, id map record and current tags."""

    kind: TaggableKind
    record: IdRecord
    current: dict[str, str]  # as stored: CloudStack's or the tag store's values


def kind_of(ec2_id: str) -> TaggableKind:
    kind = BY_PREFIX.get(ec2_id.split("-", 1)[0])
    if kind is None:
        raise invalid_id(ec2_id)
    try:
        check_format(kind.prefix, ec2_id)
    except EC2Error:
        raise invalid_id(ec2_id) from None
    return kind


async def owned_record(ctx: Any, ec2_id: str) -> tuple[TaggableKind, IdRecord]:
    """The kind and id map record of a resource the caller may tag, or the error AWS gives."""
    kind = kind_of(ec2_id)
    record = await ctx.services.ids.lookup(ec2_id)
    if record is None or record.kind != kind.prefix:
        raise not_found(kind.prefix, ec2_id)
    account = await ctx.account()
    bridge_enforced = kind.cloudstack_type is None or not account.is_admin
    if bridge_enforced and record.account != account.key:
        raise not_found(kind.prefix, ec2_id)  # AWS does not reveal other accounts' resources
    return kind, record


async def find_object(ctx: Any, kind: TaggableKind, backend_id: str) -> dict | None:
    """The CloudStack object behind a backend id, as the caller sees it, or None."""
    by_id = bool(_UUID.match(backend_id))
    narrowing = {} if kind.nested else {("id" if by_id else "name"): backend_id}
    try:
        objects = await ctx.cs_list(kind.lister, **kind.list_params, **narrowing)
    except CloudStackError as error:
        if error.code == 431:  # CloudStack: "Invalid parameter id value=... entity does not exist"
            return None
        raise
    if kind.nested:
        objects = [child for obj in objects for key in kind.nested for child in obj.get(key) or ()]
    field_name = kind.id_field if by_id else "name"
    return next((obj for obj in objects if obj.get(field_name) == backend_id), None)


async def target(ctx: Any, ec2_id: str) -> Target:
    kind, record = await owned_record(ctx, ec2_id)
    obj = await find_object(ctx, kind, record.backend_id)
    if obj is None or (kind.cloudstack_type is None and owner_key(obj) != record.account):
        raise not_found(kind.prefix, ec2_id)
    if kind.cloudstack_type is None:
        current = await ctx.services.store(TagStore).tags(ec2_id)
    else:
        current = cloudstack_tags(obj)
    return Target(kind, record, current)


async def targets(ctx: Any, ec2_ids: list[str]) -> list[Target]:
    unique = list(dict.fromkeys(ec2_ids))
    for ec2_id in unique:  # every id's form first, so a typo fails before any backend call
        kind_of(ec2_id)
    return list(await asyncio.gather(*(target(ctx, ec2_id) for ec2_id in unique)))


# --- writing tags ------------------------------------------------------------------------

def _cs_tag_params(tags: Mapping[str, str | None]) -> dict[str, str]:
    params: dict[str, str] = {}
    for index, (key, value) in enumerate(tags.items()):
        params[f"tags[{index}].key"] = key
        if value:
            params[f"tags[{index}].value"] = value
    return params


async def create_cloudstack_tags(ctx: Any, cloudstack_type: str, backend_ids: list[str],
                                 tags: Mapping[str, str]) -> None:
    """One ``createTags`` job putting ``tags`` (EC2 values) on every resource in ``backend_ids``:
    CloudStack's ``resourceids`` takes a list, so a launch of 50 instances is one job."""
    if not backend_ids or not tags:
        return
    values = {key: cloudstack_tag_value(value) for key, value in tags.items()}
    await ctx.cs_run("createTags", resourcetype=cloudstack_type, resourceids=backend_ids,
                     **_cs_tag_params(values))


async def _cs_create(ctx: Any, kind: TaggableKind, backend_ids: list[str], tags: Mapping[str, str]) -> None:
    await create_cloudstack_tags(ctx, kind.cloudstack_type, backend_ids, tags)


async def _cs_delete(ctx: Any, kind: TaggableKind, backend_id: str, stored: Mapping[str, str]) -> None:
    """Delete exactly these tags (values as CloudStack holds them)."""
    await ctx.cs_run("deleteTags", resourcetype=kind.cloudstack_type, resourceids=[backend_id],
                     **_cs_tag_params(stored))


def _changes(current: Mapping[str, str], wanted: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(tags to replace, with their stored values; tags to create) for CreateTags' overwrite."""
    replaced = {key: current[key] for key, value in wanted.items()
                if key in current and ec2_tag_value(current[key]) != value}
    created = {key: value for key, value in wanted.items() if key not in current or key in replaced}
    return replaced, created


async def _replace_in_cloudstack(ctx: Any, tgt: Target, replaced: dict[str, str], created: dict[str, str]) -> None:
    await _cs_delete(ctx, tgt.kind, tgt.record.backend_id, replaced)
    try:
        await _cs_create(ctx, tgt.kind, [tgt.record.backend_id], created)
    except Exception:
        try:  # put the old values back; the original failure is what the client hears about
            await _cs_create(ctx, tgt.kind, [tgt.record.backend_id], replaced)
        except Exception:
            log.exception("could not put back the tags %s of %s", sorted(replaced), tgt.record.ec2_id)
        raise


async def _write_cloudstack(ctx: Any, tgts: list[Target], wanted: Mapping[str, str]) -> None:
    """Resources gaining the same new keys share one ``createTags`` per kind; those whose
    existing values change are replaced one by one."""
    work = []
    batches: dict[tuple[str, tuple[str, ...]], list[Target]] = {}
    for tgt in tgts:
        replaced, created = _changes(tgt.current, wanted)
        if replaced:
            work.append(_replace_in_cloudstack(ctx, tgt, replaced, created))
        elif created:
            batches.setdefault((tgt.kind.prefix, tuple(created)), []).append(tgt)
    for (_, keys), group in batches.items():
        work.append(_cs_create(ctx, group[0].kind, [tgt.record.backend_id for tgt in group],
                               {key: wanted[key] for key in keys}))
    await asyncio.gather(*work)


def check_tag_limit(tgts: list[Target], wanted: Mapping[str, str]) -> None:
    for tgt in tgts:
        if len(set(tgt.current) | set(wanted)) > MAX_TAGS:
            raise tag_limit_exceeded()


async def write_tags(ctx: Any, tgts: list[Target], wanted: Mapping[str, str]) -> None:
    """Set ``wanted`` on every target, overwriting existing values (AWS's CreateTags)."""
    store = ctx.services.store(TagStore)
    try:
        for tgt in tgts:
            if tgt.kind.cloudstack_type is None:
                await store.put(tgt.record.ec2_id, tgt.kind.prefix, tgt.record.account, wanted, MAX_TAGS)
    except TooManyTags:  # another request tagged the resource since its tags were read
        raise tag_limit_exceeded() from None
    await _write_cloudstack(ctx, [tgt for tgt in tgts if tgt.kind.cloudstack_type], wanted)


def doomed_tags(current: Mapping[str, str], tags: list[dict] | None) -> dict[str, str]:
    """The tags DeleteTags removes, with their stored values. AWS: no ``Tags`` -> all of them;
    a key without ``Value`` -> whatever its value; with ``Value`` (even empty) -> only if equal."""
    if not tags:
        return dict(current)
    doomed = {}
    for tag in tags:
        key = tag["Key"]
        if key in current and (tag.get("Value") is None or ec2_tag_value(current[key]) == tag["Value"]):
            doomed[key] = current[key]
    return doomed


async def remove_tags(ctx: Any, tgt: Target, doomed: Mapping[str, str]) -> None:
    if not doomed:
        return  # CloudStack's deleteTags fails when nothing matches; AWS succeeds
    if tgt.kind.cloudstack_type is None:
        await ctx.services.store(TagStore).remove(tgt.record.ec2_id, doomed)
    else:
        await _cs_delete(ctx, tgt.kind, tgt.record.backend_id, doomed)


async def apply_tag_specifications(ctx: Any, resource_type: str, ec2_id: str,
                                   tag_specs: list[dict] | None) -> list[dict]:
    """Tag a resource the caller has just created with what its ``TagSpecifications`` ask for
    on ``resource_type``; returns the EC2 ``Tags`` list. The resource is new, so there is
    nothing to overwrite and no existence check: one ``createTags`` (or store write)."""
    wanted = requested_tags(tag_specs, resource_type, (spec.get("ResourceType") for spec in tag_specs or ()))
    if not wanted:
        return []
    kind = BY_RESOURCE_TYPE[resource_type]
    record = await ctx.services.ids.lookup(ec2_id)
    if record is None:
        raise not_found(kind.prefix, ec2_id)
    if kind.cloudstack_type is None:
        await ctx.services.store(TagStore).put(ec2_id, kind.prefix, record.account, wanted, MAX_TAGS)
    else:
        await _cs_create(ctx, kind, [record.backend_id], wanted)
    return ec2_tag_list(wanted)


# --- the actions -------------------------------------------------------------------------

async def create_tags(ctx: Any, request: dict) -> dict:
    wanted = tag_map(request["Tags"])
    tgts = await targets(ctx, request["Resources"])
    check_tag_limit(tgts, wanted)
    dry_run_checkpoint(request)
    await write_tags(ctx, tgts, wanted)
    return {"Return": True}


def _deletion_tags(tags: list[dict] | None) -> list[dict] | None:
    for index, tag in enumerate(tags or (), 1):
        check_key(tag.get("Key"), f"Tag.{index}")
    return tags


async def delete_tags(ctx: Any, request: dict) -> dict:
    tags = _deletion_tags(request.get("Tags"))
    tgts = await targets(ctx, request["Resources"])
    dry_run_checkpoint(request)
    await asyncio.gather(*(remove_tags(ctx, tgt, doomed_tags(tgt.current, tags)) for tgt in tgts))
    return {"Return": True}


FILTERS = {"key": "Key", "value": "Value", "resource-id": "ResourceId", "resource-type": "ResourceType"}


def _plain(values: list[str]) -> bool:
    return not any(c in value for value in values for c in "*?\\")


def _filter_values(filters: list[dict], name: str) -> list[str] | None:
    """The values of the one plain (wildcard-free) filter ``name``, for push-down."""
    for flt in filters:
        if flt.get("Name") == name and _plain(flt.get("Values") or []):
            return list(flt.get("Values") or [])
    return None


@dataclass
class _Scope:
    """What a DescribeTags request narrows the listing to, before filters are applied."""

    kinds: set[str]                              # prefixes of the kinds to list
    cloudstack_params: dict[str, str] = field(default_factory=dict)
    ec2_id: str | None = None                    # one resource only


async def _scope(ctx: Any, filters: list[dict], by_resource_tag: bool) -> _Scope | None:
    """None when the push-downs prove there is nothing to list."""
    scope = _Scope(kinds=set(BY_PREFIX))
    types = _filter_values(filters, "resource-type")
    if types is not None:
        scope.kinds &= {BY_RESOURCE_TYPE[t].prefix for t in types if t in BY_RESOURCE_TYPE}
    ids = _filter_values(filters, "resource-id")
    if ids is not None and len(ids) == 1:
        record = await ctx.services.ids.lookup(ids[0])
        if record is None or record.kind not in scope.kinds:
            return None
        scope.kinds, scope.ec2_id = {record.kind}, ids[0]
        if BY_PREFIX[record.kind].cloudstack_type:
            scope.cloudstack_params["resourceid"] = record.backend_id
    cloudstack_kinds = [BY_PREFIX[p].cloudstack_type for p in scope.kinds if BY_PREFIX[p].cloudstack_type]
    if len(cloudstack_kinds) == 1:
        scope.cloudstack_params["resourcetype"] = cloudstack_kinds[0]
    keys = _filter_values(filters, "key")
    if keys is not None and len(keys) == 1 and not by_resource_tag:
        scope.cloudstack_params["key"] = keys[0]
    return scope if scope.kinds else None


async def _cloudstack_items(ctx: Any, scope: _Scope) -> list[dict]:
    if not any(BY_PREFIX[p].cloudstack_type for p in scope.kinds):
        return []
    rows = await ctx.cs_list("listTags", **scope.cloudstack_params)
    wanted: dict[str, list[tuple[str, str]]] = {}
    kept = []
    for row in rows:
        kind = BY_CLOUDSTACK_TYPE.get((row.get("resourcetype") or "").lower())
        if kind is None or kind.prefix not in scope.kinds:
            continue  # tags on kinds EC2 has no name for (zones, offerings, ISOs...)
        if row["key"].lower().startswith(BRIDGE_TAG_PREFIX):
            continue
        kept.append((kind, row))
        wanted.setdefault(kind.prefix, []).append((row["resourceid"], owner_key(row)))
    ids = {prefix: await ctx.services.ids.ec2_ids(prefix, list(set(pairs))) for prefix, pairs in wanted.items()}
    return [{"ResourceId": ids[kind.prefix][(row["resourceid"], owner_key(row))],
             "ResourceType": kind.resource_type, "Key": row["key"], "Value": ec2_tag_value(row.get("value"))}
            for kind, row in kept]


async def live_ids(ctx: Any, kind: TaggableKind) -> set[str]:
    """EC2 ids of the caller's objects of a bridge-tagged kind that exist in CloudStack now."""
    objects = await ctx.cs_list(kind.lister, **kind.list_params)
    pairs = list({(backend_id_of(obj), owner_key(obj)) for obj in objects})
    return set((await ctx.services.ids.ec2_ids(kind.prefix, pairs)).values()) if pairs else set()


async def _stored_items(ctx: Any, scope: _Scope) -> list[dict]:
    kinds = [kind for kind in STORED_KINDS if kind.prefix in scope.kinds]
    if not kinds:
        return []
    rows = await ctx.services.store(TagStore).account_tags((await ctx.account()).key,
                                                           [kind.prefix for kind in kinds])
    if scope.ec2_id:
        rows = [row for row in rows if row.ec2_id == scope.ec2_id]
    if not rows:
        return []
    # Tags of an object deleted behind the bridge's back stay in the store; they are not shown.
    alive: set[str] = set()
    for prefix in {row.kind for row in rows}:
        alive |= await live_ids(ctx, BY_PREFIX[prefix])
    return [{"ResourceId": row.ec2_id, "ResourceType": BY_PREFIX[row.kind].resource_type,
             "Key": row.key, "Value": row.value} for row in rows if row.ec2_id in alive]


def _by_resource_tags(items: list[dict], predicates: list) -> list[dict]:
    """``tag:<key>`` filters select resources; every tag of a selected resource is kept."""
    if not predicates:
        return items
    tags_by_resource: dict[str, list[dict]] = {}
    for item in items:
        tags_by_resource.setdefault(item["ResourceId"], []).append({"Key": item["Key"], "Value": item["Value"]})
    chosen = {rid for rid, tags in tags_by_resource.items() if all(p({"Tags": tags}) for p in predicates)}
    return [item for item in items if item["ResourceId"] in chosen]


async def describe_tags(ctx: Any, request: dict) -> dict:
    max_results = check_max_results(request.get("MaxResults"), DESCRIBE_PAGING, "DescribeTags")
    tokens = ctx.services.page_tokens
    after = tokens.read("DescribeTags", request["NextToken"]) if request.get("NextToken") else None
    filters = request.get("Filters") or []
    tag_filters = [f for f in filters if (f.get("Name") or "").startswith("tag:")]
    other_filters = [f for f in filters if not (f.get("Name") or "").startswith("tag:")]
    predicates = compile_filters(other_filters, FILTERS, taggable=False)
    tag_predicates = compile_filters(tag_filters, {}, taggable=True)
    if request.get("DryRun"):
        raise dry_run_ok()
    scope = await _scope(ctx, filters, bool(tag_filters))
    items: list[dict] = []
    if scope is not None:
        cloudstack, stored = await asyncio.gather(_cloudstack_items(ctx, scope), _stored_items(ctx, scope))
        items = _by_resource_tags(cloudstack + stored, tag_predicates)
    items = apply_filters(items, predicates)
    page, token = paginate(items, lambda item: (item["ResourceId"], item["Key"]), max_results, after, tokens,
                           "DescribeTags")
    return {"Tags": page, **({"NextToken": token} if token else {})}


RECORDS = (
    Action("CreateTags", create_tags),
    Action("DeleteTags", delete_tags),
    Action("DescribeTags", describe_tags, mutating=False),
)
