"""Tags given at launch: RunInstances ``TagSpecifications`` for instances and their volumes.

AWS applies launch tags atomically with the launch, so they are validated (by
:func:`mappings.tags.requested_tags`, AWS's rules) before anything is deployed, and written
with one ``createTags`` per resource type for the whole reservation: CloudStack's
``resourceids`` takes a list, where :func:`mappings.tags.apply_tag_specifications` tags one
resource per call. Volume tags go on every volume created at launch, the root volume
included, once the background task has attached them.
"""

from __future__ import annotations

from mappings.tags import cloudstack_tag_value, requested_tags

LAUNCH_TAG_TYPES = ("instance", "volume")  # what RunInstances creates here


def launch_tags(tag_specs: list[dict] | None) -> dict[str, dict[str, str]]:
    """{"instance": {key: value}, "volume": {key: value}} from TagSpecifications."""
    return {kind: requested_tags(tag_specs, kind, LAUNCH_TAG_TYPES) for kind in LAUNCH_TAG_TYPES}


async def tag_resources(ctx, cloudstack_type: str, resource_ids: list[str], tags: dict[str, str]) -> None:
    """One ``createTags`` job for all the resources."""
    if not resource_ids or not tags:
        return
    params = {"resourcetype": cloudstack_type, "resourceids": resource_ids}
    for index, (key, value) in enumerate(tags.items()):
        params[f"tags[{index}].key"] = key
        params[f"tags[{index}].value"] = cloudstack_tag_value(value)
    await ctx.cs_run("createTags", **params)
