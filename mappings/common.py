"""Small conversions every area uses: tags, CloudStack dates, DryRun."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

from ec2bridge.errors import dry_run_ok


def ec2_tags(obj: Mapping[str, Any]) -> list[dict]:
    """CloudStack ``tags`` as EC2 ``Tags``; AWS returns an empty tagSet rather than none."""
    return [{"Key": t["key"], "Value": t.get("value", "")} for t in obj.get("tags") or ()]


def cs_time(text: str | None) -> datetime | None:
    """CloudStack's ``2021-10-04T09:24:38+0000`` as an aware datetime."""
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").astimezone(timezone.utc)
    except ValueError:
        return None


def dry_run_checkpoint(request: Mapping[str, Any]) -> None:
    """Call once validation is done and before changing anything: AWS answers
    ``DryRunOperation`` exactly when the request would otherwise have succeeded."""
    if request.get("DryRun"):
        raise dry_run_ok()
