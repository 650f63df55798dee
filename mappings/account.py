"""DescribeAccountAttributes: the caller's EC2 account attributes, from its CloudStack account.

- ``supported-platforms``: ``EC2`` when a zone offers EC2-classic style networking (a Basic
  zone, or an Advanced zone with security groups, whose shared guest network takes instances
  launched without a subnet); ``VPC`` when a zone is Advanced (CloudStack VPCs and their tiers).
  The zones are the ones ``listZones`` shows the caller.
- ``default-vpc``: ``none``. CloudStack has no default VPC; an instance launched without a
  subnet goes to the zone's guest network.
- ``max-instances``: the account's CloudStack limit of resource type 0 (``user_vm``), from
  ``listResourceLimits``.
- ``max-elastic-ips`` and ``vpc-max-elastic-ips``: the account's limit of resource type 1
  (``public_ip``); CloudStack counts every public IP of the account against that one limit.
- ``vpc-max-security-groups-per-interface``: ``5``, AWS's default quota. CloudStack sets no
  per-VM limit; 5 keeps AWS-minded tools within a number AWS itself would accept.

CloudStack writes an unlimited resource as ``-1``; AWS's values are counts that clients read as
integers, so unlimited is reported as :data:`UNLIMITED`, the largest value of EC2's Integer
type. The limits are the account's own: a lower limit of its domain is not visible to an
ordinary user.

Without ``AttributeNames`` every attribute is returned, in the order AWS's documentation example
lists them; with it, the named ones in the order asked. A name AWS does not define is
``InvalidParameterValue``, before any CloudStack call.
"""

from __future__ import annotations

from typing import Any

from ec2bridge.errors import invalid_value
from mappings.common import dry_run_checkpoint
from mappings.records import Action
from mappings.zones import visible_zones

UNLIMITED = 2**31 - 1
SECURITY_GROUPS_PER_INTERFACE = 5

ATTRIBUTE_NAMES = ("vpc-max-security-groups-per-interface", "max-instances", "supported-platforms",
                   "default-vpc", "max-elastic-ips", "vpc-max-elastic-ips")

# attribute -> CloudStack Resource.ResourceType ordinal whose account limit answers it
LIMITED = {"max-instances": "0", "max-elastic-ips": "1", "vpc-max-elastic-ips": "1"}


def wanted_attributes(names: list[str] | None) -> list[str]:
    if not names:
        return list(ATTRIBUTE_NAMES)
    for name in names:
        if name not in ATTRIBUTE_NAMES:
            raise invalid_value("attributeName", name, f"expecting one of {', '.join(ATTRIBUTE_NAMES)}")
    return list(dict.fromkeys(names))


def supported_platforms(zones: list[dict]) -> list[str]:
    types = {(zone.get("networktype") or "").lower() for zone in zones}
    classic = "basic" in types or any(zone.get("securitygroupsenabled") for zone in zones)
    return (["EC2"] if classic else []) + (["VPC"] if "advanced" in types else [])


async def account_limits(ctx: Any) -> dict[str, int]:
    """{resource type ordinal: the caller's account limit}, ``-1`` as :data:`UNLIMITED`."""
    account = await ctx.account()
    rows = await ctx.cs_list("listResourceLimits")
    limits = {}
    for row in rows:
        # An admin's listing may name other accounts' rows too: keep the caller's own.
        own = row.get("account", account.name) == account.name
        if own and row.get("domainid", account.domain_id) == account.domain_id:
            maximum = int(row.get("max", -1))
            limits[str(row.get("resourcetype"))] = UNLIMITED if maximum < 0 else maximum
    return limits


async def attribute_values(ctx: Any, names: list[str]) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {"default-vpc": ["none"],
                                    "vpc-max-security-groups-per-interface": [str(SECURITY_GROUPS_PER_INTERFACE)]}
    if "supported-platforms" in names:
        values["supported-platforms"] = supported_platforms(await visible_zones(ctx))
    if any(name in LIMITED for name in names):
        limits = await account_limits(ctx)
        for name, resource_type in LIMITED.items():
            values[name] = [str(limits.get(resource_type, UNLIMITED))]
    return values


async def describe_account_attributes(ctx: Any, request: dict) -> dict:
    names = wanted_attributes(request.get("AttributeNames"))
    dry_run_checkpoint(request)
    values = await attribute_values(ctx, names)
    return {"AccountAttributes": [
        {"AttributeName": name, "AttributeValues": [{"AttributeValue": value} for value in values[name]]}
        for name in names]}


RECORDS = (Action("DescribeAccountAttributes", describe_account_attributes, mutating=False),)
