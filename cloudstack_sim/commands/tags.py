"""Resource tags: ``createTags``/``deleteTags`` (async) and ``listTags``; ``tags`` on every object.

``resourcetype`` takes CloudStack's ``ResourceObjectType`` names (case-insensitive); an unknown
resource id fails the job with "Unable to find resource by id <id> and type <type>", as recorded
from a real server. Creating or deleting a tag re-renders the tagged object.
"""

from __future__ import annotations

from ..context import Call
from ..errors import cloud_runtime, invalid_parameter
from ..jobs import submit_response
from ..render import compact, renderer
from ..spec import command
from ..state import SimState
from .common import owner_fields, success

RESOURCE_KINDS = {"UserVm": "vm", "Template": "template", "Volume": "volume", "Snapshot": "snapshot",
                  "SecurityGroup": "security_group", "Network": "network", "Vpc": "vpc",
                  "PublicIpAddress": "public_ip", "Zone": "zone", "ServiceOffering": "service_offering",
                  "DiskOffering": "disk_offering"}
CANONICAL = {name.lower(): name for name in RESOURCE_KINDS}


@renderer("tag")
def render_tag(state: SimState, tag: dict) -> dict:
    return compact({"key": tag["key"], "value": tag["value"], "resourcetype": tag["resource_type"],
                    "resourceid": tag["resource_id"], **owner_fields(state, tag["account_id"]),
                    "customer": tag.get("customer")})


def resource_type(call: Call) -> str:
    name = CANONICAL.get((call.get("resourcetype") or "").lower())
    if name is None:
        raise invalid_parameter(f"Invalid resource type {call.get('resourcetype')}")
    return name


def find_resource(call: Call, type_name: str, resource_id: str) -> dict:
    record = call.state.get(RESOURCE_KINDS[type_name], resource_id)
    if record is None:
        raise cloud_runtime(f"Unable to find resource by id {resource_id} and type {type_name}")
    return call.check_access(RESOURCE_KINDS[type_name], record)


@command("createTags")
def create_tags(call: Call):
    type_name, state = resource_type(call), call.state
    pairs = [(entry.get("key"), entry.get("value")) for entry in call.get("tags")]
    if any(not key or value is None for key, value in pairs):
        raise invalid_parameter("Both key and value must be specified for each tag")

    def work() -> dict:
        resources = [find_resource(call, type_name, rid) for rid in call.get("resourceids")]
        for resource in resources:
            existing = {tag["key"] for tag in state.tags_by_resource.get(resource["id"], [])}
            for key, _ in pairs:
                if key in existing:
                    raise cloud_runtime(f"tag {key} already on {type_name} with id {resource['id']}")
        for resource in resources:
            for key, value in pairs:
                state.add("tag", {"key": key, "value": value, "resource_type": type_name,
                                  "resource_id": resource["id"], "customer": call.get("customer"),
                                  "account_id": resource.get("account_id") or call.account["id"]})
            state.touch(resource)
        return success()
    return submit_response(state.jobs.submit(call, instance_type=None, instance=None, work=work))


@command("deleteTags")
def delete_tags(call: Call):
    type_name, state = resource_type(call), call.state
    wanted = [(entry.get("key"), entry.get("value")) for entry in call.get("tags") or []]

    def work() -> dict:
        resources = [find_resource(call, type_name, rid) for rid in call.get("resourceids")]
        for resource in resources:
            tags = state.tags_by_resource.get(resource["id"], [])
            doomed = [tag for tag in tags if not wanted or any(
                tag["key"] == key and (value is None or tag["value"] == value) for key, value in wanted)]
            for tag in doomed:
                tags.remove(tag)
                state.store("tag").remove(tag["id"])
            state.touch(resource)
        return success()
    return submit_response(state.jobs.submit(call, instance_type=None, instance=None, work=work))


@command("listTags")
def list_tags(call: Call):
    rows = call.filtered(list(call.scoped("tag")), name_field="key", keyword_fields=("key", "value"))
    if call.get("resourcetype"):
        type_name = resource_type(call)
        rows = [row for row in rows if row["resource_type"] == type_name]
    for param, field in (("resourceid", "resource_id"), ("key", "key"), ("value", "value"),
                         ("customer", "customer")):
        if call.get(param):
            rows = [row for row in rows if row.get(field) == call.get(param)]
    return call.page(rows, "tag")
