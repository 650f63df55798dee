"""Catalog actions: what the cloud offers, answered from configuration or CloudStack's catalog."""

from __future__ import annotations

from urllib.parse import urlsplit

from ec2bridge.errors import EC2Error
from mappings.records import Describe, Selector


async def configured_regions(ctx, request: dict) -> list[dict]:
    # AWS reports the endpoint as a host name (ec2.us-east-1.amazonaws.com), which boto 2
    # connects to directly; our regions answer with host[:port] of their endpoint URL.
    return [{"RegionName": region.name,
             "Endpoint": urlsplit(region.endpoint or ctx.config.endpoint_url).netloc,
             "OptInStatus": "opt-in-not-required"}
            for region in ctx.config.regions]


def _invalid_regions(names: list[str]) -> EC2Error:
    return EC2Error("InvalidParameterValue", f"Invalid region(s): {', '.join(names)}")


DESCRIBE_REGIONS = Describe(
    name="DescribeRegions",
    result_key="Regions",
    source=configured_regions,
    sort_key="RegionName",
    filters={"region-name": "RegionName", "endpoint": "Endpoint", "opt-in-status": "OptInStatus"},
    selectors=(Selector("RegionNames", "RegionName", _invalid_regions),),
    taggable=False,
)

RECORDS = (DESCRIBE_REGIONS,)
