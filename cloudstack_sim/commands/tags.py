"""Resource tags: ``createTags``/``deleteTags`` (async) and ``listTags``; ``tags`` on every object.

``resourcetype`` names one of CloudStack's ``ResourceTag.ResourceObjectType`` values, matched
without regard to case. As in ``TaggedResourceManagerImpl``, the type is resolved inside the job, so
a bad one fails the job: an unknown name with "Invalid resource type <name>", a type whose
``resourceTagsSupport`` flag is off (Zone, ServiceOffering, DiskOffering, ...) with "The resource
type <T> doesn't support resource tags", and an id naming no object of a modelled type (or any id of
a type the simulator does not model, such as LoadBalancer) with "Unable to find resource by id <id>
and type <T>", as recorded from a real server. Tagging needs access to the resource's owner: a
security group rule belongs to its group's account, an account to itself, a user to its account,
and unowned objects (VPC offerings) to the system - root admins only. ``listTags`` compares
``resourcetype`` as a plain string, so an unknown type simply lists nothing. Creating or deleting a
tag re-renders the tagged object (for a rule: its security group).
"""

from __future__ import annotations

from typing import NamedTuple

from ..context import Call
from ..errors import cloud_runtime, invalid_parameter, permission_denied
from ..jobs import submit_response
from ..render import compact, renderer
from ..spec import command
from ..state import SimState
from .common import owner_fields, success

# ResourceObjectType -> resourceTagsSupport, in the enum's order (CloudStack 4.19+).
OBJECT_TYPES = {
    "UserVm": True, "Template": True, "VnfTemplate": True, "ISO": True, "Volume": True, "Snapshot": True,
    "Backup": True, "Network": True, "DomainRouter": False, "Nic": False, "LoadBalancer": True,
    "PortForwardingRule": True, "FirewallRule": True, "SecurityGroup": True, "SecurityGroupRule": True,
    "PublicIpAddress": True, "Project": True, "Account": True, "Vpc": True, "NetworkACL": True, "StaticRoute": True,
    "VMSnapshot": True, "RemoteAccessVpn": True, "Zone": False, "ServiceOffering": False, "Storage": False,
    "PrivateGateway": False, "NetworkACLList": False, "VpnGateway": False, "CustomerGateway": False,
    "VpnConnection": False, "User": True, "DiskOffering": False, "AutoScaleVmProfile": False,
    "AutoScaleVmGroup": False, "LBStickinessPolicy": False, "LBHealthCheckPolicy": False, "SnapshotPolicy": True,
    "GuestOs": False, "NetworkOffering": False, "VpcOffering": True, "Domain": False,
}
# The taggable types the simulator models -> record kind (ResourceManagerUtilImpl.s_typeMap: ISO and
# VnfTemplate are VMTemplateVO rows too). "sg_rule" lives inside its security group.
RESOURCE_KINDS = {"UserVm": "vm", "Template": "template", "VnfTemplate": "template", "ISO": "template",
                  "Volume": "volume", "Snapshot": "snapshot", "Network": "network",
                  "SecurityGroup": "security_group", "SecurityGroupRule": "sg_rule",
                  "PublicIpAddress": "public_ip", "Account": "account", "Vpc": "vpc", "User": "user",
                  "VpcOffering": "vpc_offering"}
CANONICAL = {name.lower(): name for name in OBJECT_TYPES}


class Resource(NamedTuple):
    record: dict            # what re-renders when its tags change
    owner_id: str | None    # the owning account (None: the system)


@renderer("tag")
def render_tag(state: SimState, tag: dict) -> dict:
    return compact({"key": tag["key"], "value": tag["value"], "resourcetype": tag["resource_type"],
                    "resourceid": tag["resource_id"], **owner_fields(state, tag["account_id"]),
                    "customer": tag.get("customer")})


def resource_type(call: Call) -> str:
    """``ResourceObjectType.getResourceObjectType``: the canonical name, or CloudStack's refusal."""
    name = CANONICAL.get((call.get("resourcetype") or "").lower())
    if name is None:
        raise invalid_parameter(f"Invalid resource type {call.get('resourcetype')}")
    return name


def taggable_type(call: Call) -> str:
    name = resource_type(call)
    if not OBJECT_TYPES[name]:
        raise invalid_parameter(f"The resource type {name} doesn't support resource tags")
    return name


def find_resource(call: Call, type_name: str, resource_id: str) -> Resource:
    resource = lookup(call.state, RESOURCE_KINDS.get(type_name), resource_id)
    if resource is None:
        raise cloud_runtime(f"Unable to find resource by id {resource_id} and type {type_name}")
    if not (call.is_admin or resource.owner_id == call.account["id"]):
        # DomainChecker's verdict on the owner account, for createTags and deleteTags alike.
        raise permission_denied("Caller does not have permission to operate with provided resource.")
    return resource


def lookup(state: SimState, kind: str | None, resource_id: str) -> Resource | None:
    if kind == "sg_rule":
        group = state.get("security_group", state.rule_index.get(resource_id))
        return Resource(group, group["account_id"]) if group else None
    record = state.get(kind, resource_id) if kind else None
    if record is None:
        return None
    return Resource(record, record["id"] if kind == "account" else record.get("account_id"))


def tags_on(state: SimState, resource_id: str, type_name: str) -> list[dict]:
    return [tag for tag in state.tags_by_resource.get(resource_id, []) if tag["resource_type"] == type_name]


@command("createTags")
def create_tags(call: Call):
    state = call.state
    pairs = [(entry.get("key"), entry.get("value")) for entry in call.get("tags")]
    if any(not key or value is None for key, value in pairs):
        raise invalid_parameter("Both key and value must be specified for each tag")

    def work() -> dict:
        type_name = taggable_type(call)
        targets = [(rid, find_resource(call, type_name, rid)) for rid in call.get("resourceids")]
        for rid, _ in targets:
            existing = {tag["key"] for tag in tags_on(state, rid, type_name)}   # unique per resource, type, key
            for key, _ in pairs:
                if key in existing:
                    raise cloud_runtime(f"tag {key} already on {type_name} with id {rid}")
        for rid, resource in targets:
            for key, value in pairs:
                state.add("tag", {"key": key, "value": value, "resource_type": type_name, "resource_id": rid,
                                  "customer": call.get("customer"),
                                  "account_id": resource.owner_id or call.account["id"]})
            state.touch(resource.record)
        return success()
    return submit_response(state.jobs.submit(call, instance_type=None, instance=None, work=work))


@command("deleteTags")
def delete_tags(call: Call):
    state = call.state
    wanted = [(entry.get("key"), entry.get("value")) for entry in call.get("tags") or []]

    def work() -> dict:
        type_name = resource_type(call)
        for rid in call.get("resourceids"):
            resource = find_resource(call, type_name, rid)
            doomed = [tag for tag in tags_on(state, rid, type_name) if not wanted or any(
                tag["key"] == key and (value is None or tag["value"] == value) for key, value in wanted)]
            for tag in doomed:
                state.tags_by_resource[rid].remove(tag)
                state.store("tag").remove(tag["id"])
            state.touch(resource.record)
        return success()
    return submit_response(state.jobs.submit(call, instance_type=None, instance=None, work=work))


@command("listTags")
def list_tags(call: Call):
    rows = call.filtered(list(call.scoped("tag")), name_field="key", keyword_fields=("key", "value"))
    if call.get("resourcetype"):
        wanted = call.get("resourcetype").lower()
        rows = [row for row in rows if row["resource_type"].lower() == wanted]
    for param, field in (("resourceid", "resource_id"), ("key", "key"), ("value", "value"),
                         ("customer", "customer")):
        if call.get(param):
            rows = [row for row in rows if row.get(field) == call.get(param)]
    return call.page(rows, "tag")
