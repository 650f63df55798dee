"""Small conversions every area uses: tags, CloudStack dates, DryRun, fingerprints."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

import orjson

from ec2bridge.errors import dry_run_ok


RESERVED_PREFIX = "aws:"
# Keys the bridge itself keeps on CloudStack objects (security group rule descriptions...):
# reserved for AWS, so no client can write them, and never shown as tags.
BRIDGE_TAG_PREFIX = "aws:ec2bridge:"
# What an empty EC2 tag value is stored as in CloudStack, which refuses empty values.
EMPTY_VALUE = "ec2bridge:empty"


def ec2_tag_value(value: str | None) -> str:
    return "" if value is None or value == EMPTY_VALUE else value


def cloudstack_tag_value(value: str) -> str:
    return value or EMPTY_VALUE


def ec2_tag_list(tags: Mapping[str, str]) -> list[dict]:
    """{key: value} (CloudStack or stored values) as an EC2 ``Tags`` list."""
    return [{"Key": key, "Value": ec2_tag_value(value)} for key, value in tags.items()]


def is_user_key(key: str) -> bool:
    """Keys clients manage: ``aws:`` keys are AWS's (here: the bridge's), outside the 50-tag
    limit, never deleted by DeleteTags without ``Tags``."""
    return not key.lower().startswith(RESERVED_PREFIX)


def cloudstack_tags(obj: Mapping[str, Any]) -> dict[str, str]:
    """The user ``tags`` of a CloudStack object as {key: value as CloudStack holds it}."""
    return {tag["key"]: tag.get("value", "") for tag in obj.get("tags") or () if is_user_key(tag["key"])}


def ec2_tags(obj: Mapping[str, Any]) -> list[dict]:
    """A CloudStack object's user tags as EC2 ``Tags``; AWS returns an empty tagSet rather than none."""
    return ec2_tag_list(cloudstack_tags(obj))


def cs_time(text: str | None) -> datetime | None:
    """CloudStack's ``2021-10-04T09:24:38+0000`` as an aware datetime."""
    if not text:
        return None
    try:
        # fromisoformat reads CloudStack's "+0000" zone (Python 3.11) and is ~50x faster than
        # strptime, which matters when a describe converts thousands of objects.
        return datetime.fromisoformat(text).astimezone(timezone.utc)
    except ValueError:
        return None


def dry_run_checkpoint(request: Mapping[str, Any]) -> None:
    """Call once validation is done and before changing anything: AWS answers
    ``DryRunOperation`` exactly when the request would otherwise have succeeded."""
    if request.get("DryRun"):
        raise dry_run_ok()


def fingerprint(*inputs: Any) -> int:
    """Inputs of a conversion, written as JSON (orjson writes dataclasses as objects) and
    hashed with Python's own hash: SipHash with a random key per process, so two different
    inputs collide once in 2**64 and cannot be made to. A cryptographic digest would cost
    three times as much; keeping the bytes, a few KB an instance."""
    return hash(orjson.dumps(inputs))
