"""Tags given at launch: RunInstances ``TagSpecifications`` for instances and their volumes.

AWS applies launch tags atomically with the launch, so they are validated (by
:func:`mappings.tags.requested_tags`, AWS's rules) before anything is deployed, and written
with one ``createTags`` per resource type for the whole reservation
(:func:`mappings.tags.create_cloudstack_tags`). Volume tags go on every volume created at
launch, the root volume included, once the background task has attached them.
"""

from __future__ import annotations

from mappings.tags import requested_tags

LAUNCH_TAG_TYPES = ("instance", "volume")  # what RunInstances creates here


def launch_tags(tag_specs: list[dict] | None) -> dict[str, dict[str, str]]:
    """{"instance": {key: value}, "volume": {key: value}} from TagSpecifications."""
    return {kind: requested_tags(tag_specs, kind, LAUNCH_TAG_TYPES) for kind in LAUNCH_TAG_TYPES}
