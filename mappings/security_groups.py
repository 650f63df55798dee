"""Security groups: EC2 security groups and their rules on CloudStack security groups.

CloudStack security groups are EC2-Classic groups in all but name: they belong to an account, are
named uniquely within it, hold ingress and egress rules of (protocol, ports, one CIDR or one
account's group), and CloudStack creates each account's ``default`` group itself. CloudStack's
VPCs filter traffic with network ACLs, never with security groups, so no group here is in a VPC:
``VpcId`` is never shown, ``GroupName`` addresses groups everywhere AWS allows it for
EC2-Classic and default-VPC groups, and a ``VpcId`` on CreateSecurityGroup is refused.

**Revoke** follows AWS's documented behaviour for EC2-Classic and default-VPC groups: entries
that match no rule are returned in ``UnknownIpPermissions`` and the call succeeds, revoking the
ones that matched. Rule ids (``SecurityGroupRuleIds``) must all exist, or nothing is revoked.

**Delete** answers ``DependencyViolation`` for a group that instances use or another group's
rule allows, before calling CloudStack (which refuses both with 536), so DryRun answers as the
call would. CloudStack also counts a group's rules that allow the group itself; AWS does not,
so those rules are revoked just before the group is deleted.

The rule model, the reading of requested permissions and the CloudStack calls that add and
revoke rules are in :mod:`mappings.security_group_rules`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ec2bridge.cloudstack import CloudStackError
from ec2bridge.describe import Paging
from ec2bridge.errors import EC2Error, invalid_value, missing_parameter
from ec2bridge.ids import check_format, not_found, owner_id
from mappings.common import dry_run_checkpoint
from mappings.records import Action, Describe, Selector
from mappings.security_group_rules import (add_rules, DEFAULT_GROUP, Direction, duplicate_error, ec2_group,
                                          ec2_rule, EGRESS, FLAT_MEMBERS, group_not_found, Groups, INGRESS,
                                          ip_permissions, MAX_NAME, RESOURCE_IN_USE, revoke_rules,
                                          revoked_rule, Rule, rule_not_found, Source, Wanted, wanted_rules)
from mappings.sources import owner_key
from mappings.tags import apply_tag_specifications, requested_tags

log = logging.getLogger(__name__)


# --- actions ---------------------------------------------------------------------------------

def check_group_text(member: str, value: str) -> None:
    """EC2-Classic rules (the model of these groups): up to 255 ASCII characters."""
    if not value:
        raise missing_parameter(member)
    if len(value) > MAX_NAME:
        raise invalid_value(member, value, f"the length exceeds the maximum of {MAX_NAME} characters")
    if not all(" " <= ch <= "~" for ch in value):
        raise invalid_value(member, value, "only printable ASCII characters are allowed")


async def check_vpc(ctx: Any, vpc_id: str) -> None:
    """CloudStack has no security groups in VPCs (its VPC tiers use network ACLs)."""
    record = await ctx.services.ids.backend_id("vpc", vpc_id)
    if record.account != (await ctx.account()).key:
        raise not_found("vpc", vpc_id)
    raise EC2Error("UnsupportedOperation", "Security groups in a VPC are not supported: CloudStack filters VPC "
                                           "traffic with network ACLs. Create the group without VpcId.")


async def create_security_group(ctx: Any, request: dict) -> dict:
    name, description = request.get("GroupName") or "", request.get("Description") or ""
    check_group_text("GroupName", name)
    check_group_text("GroupDescription", description)
    if name.lower().startswith("sg-"):
        raise invalid_value("GroupName", name, "group names may not be in the format sg-*")
    if name == DEFAULT_GROUP:
        raise EC2Error("InvalidGroup.Reserved", "The security group name 'default' is reserved")
    if request.get("VpcId"):
        await check_vpc(ctx, request["VpcId"])
    requested_tags(request.get("TagSpecifications"), "security-group")  # refuse bad tags before creating
    groups = await Groups.load(ctx)
    # CloudStack compares names without regard to case (MySQL collation).
    if any((g.get("name") or "").lower() == name.lower() for g in groups.objects):
        raise EC2Error("InvalidGroup.Duplicate", f"The security group '{name}' already exists")
    dry_run_checkpoint(request)
    try:
        group = (await ctx.cs_call("createSecurityGroup", name=name, description=description))["securitygroup"]
    except CloudStackError as error:
        if error.code == 431:  # every parameter was checked above: only a concurrent twin remains
            raise EC2Error("InvalidGroup.Duplicate", f"The security group '{name}' already exists") from error
        raise
    group_id = await ctx.services.ids.ec2_id("sg", group["id"], owner_key(group))
    try:
        tags = await apply_tag_specifications(ctx, "security-group", group_id, request.get("TagSpecifications"))
    except BaseException:
        await asyncio.shield(_delete_quietly(ctx, group))
        raise
    output: dict[str, Any] = {"GroupId": group_id}
    if tags:
        output["Tags"] = tags
    return output


async def _delete_quietly(ctx: Any, group: dict) -> None:
    try:
        await ctx.cs_call("deleteSecurityGroup", id=group["id"])
    except Exception as error:  # the original failure is what the client needs to see
        log.error("could not remove security group %s after a failed create: %s", group["id"], error)


def dependency_violation(group_id: str) -> EC2Error:
    return EC2Error("DependencyViolation", f"resource {group_id} has a dependent object")


def references_to(group: dict, groups: Groups, *, own: bool) -> list[tuple[Direction, Rule]]:
    """Rules that allow ``group``: in the group itself (``own``) or in the caller's other groups."""
    source = Source("group", group.get("name", ""), owner_id(owner_key(group)))
    return [(direction, rule) for holder in groups.objects if (holder["id"] == group["id"]) == own
            for direction in (INGRESS, EGRESS) for rule in groups.rules(holder, direction)
            if rule.key.source == source]


async def revoke_self_references(ctx: Any, group: dict, groups: Groups) -> None:
    """CloudStack refuses (536) to delete a group any rule allows, its own rules included; AWS
    deletes a group that allows itself, so those rules go first."""
    for direction in (INGRESS, EGRESS):
        rules = [rule for d, rule in references_to(group, groups, own=True) if d is direction]
        if rules:
            await revoke_rules(ctx, direction, rules)


async def delete_security_group(ctx: Any, request: dict) -> dict:
    groups = await Groups.load(ctx)
    group = groups.target(request)
    group_id = groups.ec2_id(group)
    if (group.get("name") or "").lower() == DEFAULT_GROUP:
        raise EC2Error("CannotDelete",
                       f'the specified group: "{group_id}" name: "default" cannot be deleted by a user')
    # CloudStack refuses (536) a group that VMs use or other groups' rules allow; asking first
    # lets DryRun answer as the real call would.
    if int(group.get("virtualmachinecount") or 0) > 0 or references_to(group, groups, own=False):
        raise dependency_violation(group_id)
    dry_run_checkpoint(request)
    await revoke_self_references(ctx, group, groups)
    try:
        await ctx.cs_call("deleteSecurityGroup", id=group["id"])
    except CloudStackError as error:
        if error.code == RESOURCE_IN_USE:
            raise dependency_violation(group_id) from error
        raise
    return {"Return": True, "GroupId": group_id}


async def authorize(ctx: Any, request: dict, direction: Direction) -> dict:
    groups = await Groups.load(ctx)
    group = groups.target(request)
    wanted = wanted_rules(request, groups, group)
    tags = requested_tags(request.get("TagSpecifications"), "security-group-rule")
    existing = {rule.key for rule in groups.rules(group, direction)}
    for rule in wanted:
        if rule.key in existing:
            raise duplicate_error(rule.key)
    dry_run_checkpoint(request)
    added = await add_rules(ctx, group, direction, wanted, tags)
    await groups.mint_rule_ids(ctx, group, added)
    return {"Return": True, "SecurityGroupRules": [ec2_rule(rule, group, groups) for rule in added]}


def _rules_by_id(request: dict, groups: Groups, rules: list[Rule]) -> list[Rule]:
    if request.get("IpPermissions") or any(request.get(name) is not None for name in FLAT_MEMBERS):
        raise EC2Error("InvalidParameterCombination",
                       "The parameter SecurityGroupRuleIds cannot be used with IpPermissions")
    by_id = {groups.rule_id(rule): rule for rule in rules}
    wanted = list(dict.fromkeys(request["SecurityGroupRuleIds"]))
    for rule_id in wanted:
        check_format("sgr", rule_id)
    missing = [rule_id for rule_id in wanted if rule_id not in by_id]
    if missing:
        raise rule_not_found(missing)
    return [by_id[rule_id] for rule_id in wanted]


async def revoke(ctx: Any, request: dict, direction: Direction) -> dict:
    groups = await Groups.load(ctx)
    group = groups.target(request)
    rules = groups.rules(group, direction)
    unknown: list[Wanted] = []
    if request.get("SecurityGroupRuleIds"):
        doomed = _rules_by_id(request, groups, rules)
    else:
        by_key = {rule.key: rule for rule in rules}
        wanted = wanted_rules(request, groups, group, foreign_ok=True)
        doomed = [by_key[w.key] for w in wanted if w.key in by_key]
        unknown = [w for w in wanted if w.key not in by_key]
    dry_run_checkpoint(request)
    await revoke_rules(ctx, direction, doomed)
    output: dict[str, Any] = {"Return": True}
    if unknown:
        output["UnknownIpPermissions"] = ip_permissions(((w.key, None) for w in unknown), groups)
    if doomed:
        output["RevokedSecurityGroupRules"] = [revoked_rule(rule, group, groups) for rule in doomed]
    return output


async def authorize_ingress(ctx: Any, request: dict) -> dict:
    return await authorize(ctx, request, INGRESS)


async def authorize_egress(ctx: Any, request: dict) -> dict:
    return await authorize(ctx, request, EGRESS)


async def revoke_ingress(ctx: Any, request: dict) -> dict:
    return await revoke(ctx, request, INGRESS)


async def revoke_egress(ctx: Any, request: dict) -> dict:
    return await revoke(ctx, request, EGRESS)


# --- Describe sources ----------------------------------------------------------------------------

async def security_groups(ctx: Any, request: dict) -> list[dict]:
    groups = await Groups.load(ctx)
    return [ec2_group(group, groups) for group in groups.objects]


async def security_group_rules(ctx: Any, request: dict) -> list[dict]:
    groups = await Groups.load(ctx)
    return [ec2_rule(rule, group, groups) for group in groups.objects
            for direction in (INGRESS, EGRESS) for rule in groups.rules(group, direction)]


def _permission_filters(prefix: str, member: str) -> dict[str, str]:
    return {f"{prefix}ip-permission.cidr": f"{member}.IpRanges.CidrIp",
            f"{prefix}ip-permission.from-port": f"{member}.FromPort",
            f"{prefix}ip-permission.group-id": f"{member}.UserIdGroupPairs.GroupId",
            f"{prefix}ip-permission.group-name": f"{member}.UserIdGroupPairs.GroupName",
            f"{prefix}ip-permission.ipv6-cidr": f"{member}.Ipv6Ranges.CidrIpv6",
            f"{prefix}ip-permission.prefix-list-id": f"{member}.PrefixListIds.PrefixListId",
            f"{prefix}ip-permission.protocol": f"{member}.IpProtocol",
            f"{prefix}ip-permission.to-port": f"{member}.ToPort",
            f"{prefix}ip-permission.user-id": f"{member}.UserIdGroupPairs.UserId"}


DESCRIBE_SECURITY_GROUPS = Describe(
    name="DescribeSecurityGroups",
    result_key="SecurityGroups",
    source=security_groups,
    sort_key="GroupId",
    filters={"description": "Description", "group-id": "GroupId", "group-name": "GroupName",
             "owner-id": "OwnerId", "vpc-id": "VpcId",
             **_permission_filters("", "IpPermissions"), **_permission_filters("egress.", "IpPermissionsEgress")},
    selectors=(Selector("GroupIds", "GroupId", group_not_found, "sg"),
               Selector("GroupNames", "GroupName", group_not_found)),
    paging=Paging(5, 1000),
)

DESCRIBE_SECURITY_GROUP_RULES = Describe(
    name="DescribeSecurityGroupRules",
    result_key="SecurityGroupRules",
    source=security_group_rules,
    sort_key="SecurityGroupRuleId",
    filters={"group-id": "GroupId", "security-group-rule-id": "SecurityGroupRuleId"},
    selectors=(Selector("SecurityGroupRuleIds", "SecurityGroupRuleId", rule_not_found, "sgr"),),
    paging=Paging(5, 1000),
)

RECORDS = (
    Action("CreateSecurityGroup", create_security_group),
    Action("DeleteSecurityGroup", delete_security_group),
    Action("AuthorizeSecurityGroupIngress", authorize_ingress),
    Action("AuthorizeSecurityGroupEgress", authorize_egress),
    Action("RevokeSecurityGroupIngress", revoke_ingress),
    Action("RevokeSecurityGroupEgress", revoke_egress),
    DESCRIBE_SECURITY_GROUPS,
    DESCRIBE_SECURITY_GROUP_RULES,
)
