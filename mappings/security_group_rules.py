"""Security group rules: one model for CloudStack's rules and EC2's permission entries, and
the CloudStack calls that add and revoke them (the actions are in :mod:`mappings.security_groups`).

**One rule, two spellings.** A CloudStack rule and a requested EC2 permission entry are both
read into a :class:`RuleKey` (EC2 protocol, from port, to port, one :class:`Source`), so that
duplicate checks, revocation matching and rendering compare like with like:

| EC2 | CloudStack |
|---|---|
| ``tcp``/``udp`` (or ``6``/``17``), FromPort..ToPort | ``protocol=tcp/udp``, ``startport``/``endport`` |
| ``icmp`` (or ``1``), FromPort = type, ToPort = code, ``-1`` = all | ``protocol=icmp``, ``icmptype``/``icmpcode`` |
| ``-1`` (or ``all``) | ``protocol=all`` (CloudStack stores ports 0/0, read as none) |
| ``icmpv6`` (or ``58``), all types only | ``protocol=58`` (numbered protocols carry no ports) |
| any other number 0-255 | that number |
| ``IpRanges`` / ``Ipv6Ranges`` | one rule per ``cidrlist`` entry (IPv4 and IPv6 alike) |
| ``UserIdGroupPairs`` (GroupId or GroupName) | ``usersecuritygrouplist[i].account/group`` |
| rule ``Description``, rule tags | CloudStack tags on the rule (``resourcetype=SecurityGroupRule``), the |
| | description under :data:`DESCRIPTION_TAG` (AWS's reserved ``aws:`` prefix keeps clients off it) |
| ``sg-...`` / ``sgr-...`` | the group's uuid / the rule's ``ruleid``, through the id map |

DescribeSecurityGroups folds rules with the same (protocol, ports) into one ``IpPermission``,
as AWS shows them. ``IpPermissionsEgress`` lists the group's CloudStack egress rules and is
empty for a new group, as AWS showed EC2-Classic groups (CloudStack lets all egress through
while a group has no egress rule; adding one makes egress an allow-list).

**Atomicity.** Authorize validates everything and checks for duplicates before it changes
anything, then sends one CloudStack call per (protocol, ports) with all its CIDRs and groups.
If any call, or the tagging that follows, fails, every rule this request added is revoked
before the error is returned: a request takes effect whole or not at all. CloudStack skips
rules that already exist and fails a call that adds none with a bare 530, so a rule added
concurrently by someone else is recognised by comparing what CloudStack added with what was
asked, never by reading CloudStack's English.

Limits (CloudStack cannot express them, so they are refused with a clear error rather than
approximated): ICMP "one type, every code" (CloudStack needs a code once a type is given),
ICMPv6 types, TCP/UDP port 0 alone (CloudStack reads 0-0 as every port), prefix lists, and
referencing another account's group (CloudStack wants that account's name, which its 12-digit
owner id does not reveal).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, NamedTuple

from ec2bridge.cloudstack import CloudStackError
from ec2bridge.errors import EC2Error, missing_parameter
from ec2bridge.ids import check_format, not_found, owner_id
from mappings.sources import owner_key
from mappings.tags import BRIDGE_TAG_PREFIX, create_cloudstack_tags, cloudstack_tags, ec2_tag_list, ec2_tag_value

log = logging.getLogger(__name__)

DEFAULT_GROUP = "default"
# Under AWS's reserved "aws:" prefix, so no client can write it and tag listings leave it out.
DESCRIPTION_TAG = BRIDGE_TAG_PREFIX + "description"
MAX_NAME = 255

# CloudStack's 536 RESOURCE_IN_USE and 530 INTERNAL_ERROR (a job that added no rule).
RESOURCE_IN_USE = 536
INTERNAL_ERROR = 530

_PROTOCOL_NAMES = {"tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "icmp": "icmp", "1": "icmp",
                   "icmpv6": "icmpv6", "58": "icmpv6", "-1": "-1", "all": "-1"}
# AWS's documented character set for rule descriptions.
_RULE_DESCRIPTION = re.compile(r"[a-zA-Z0-9. _\-:/()#,@\[\]+=&;{}!$*]{0,255}")
FLAT_MEMBERS = ("IpProtocol", "FromPort", "ToPort", "CidrIp", "SourceSecurityGroupName",
                 "SourceSecurityGroupOwnerId")


@dataclass(frozen=True)
class Direction:
    egress: bool
    rules_key: str        # where CloudStack lists the rules of a group
    authorize: str        # CloudStack commands
    revoke: str


INGRESS = Direction(False, "ingressrule", "authorizeSecurityGroupIngress", "revokeSecurityGroupIngress")
EGRESS = Direction(True, "egressrule", "authorizeSecurityGroupEgress", "revokeSecurityGroupEgress")


# --- errors AWS answers with ---------------------------------------------------------------

def group_not_found(names: list[str] | str) -> EC2Error:
    # AWS uses InvalidGroup.NotFound for unknown ids and names alike.
    text = ", ".join(names) if isinstance(names, list) else names
    return EC2Error("InvalidGroup.NotFound", f"The security group '{text}' does not exist")


def rule_not_found(ids: list[str] | str) -> EC2Error:
    return not_found("sgr", ids)


def port_range_error(why: str) -> EC2Error:
    return EC2Error("InvalidParameterValue", f"Invalid value '{why}' for portRange.")


def malformed_cidr(cidr: Any) -> EC2Error:
    return EC2Error("InvalidParameterValue", f"CIDR block {cidr} is malformed")


# --- the rule model --------------------------------------------------------------------------

class Source(NamedTuple):
    """Where traffic may come from (or go to): a CIDR, or a group named within an account."""

    kind: str      # "ipv4", "ipv6" or "group"
    value: str     # the CIDR, or the group's name
    owner: str = ""  # for groups: the AWS owner id of the group's account


class RuleKey(NamedTuple):
    protocol: str           # as AWS shows it: tcp, udp, icmp, icmpv6, -1 or a number
    from_port: int | None   # None when the protocol has no ports
    to_port: int | None
    source: Source

    @property
    def head(self) -> tuple[str, int | None, int | None]:
        return self.protocol, self.from_port, self.to_port


@dataclass(frozen=True)
class Rule:
    """A CloudStack rule of a group, read into EC2 terms."""

    key: RuleKey
    backend_id: str
    egress: bool
    description: str | None
    tags: tuple[dict, ...]


@dataclass(frozen=True)
class Wanted:
    """One rule a request asks for."""

    key: RuleKey
    description: str | None = None


def _cidr(text: str) -> Source:
    network = ipaddress.ip_network(text.strip(), strict=False)
    return Source("ipv6" if network.version == 6 else "ipv4", str(network))


def _head_from_cloudstack(rule: dict) -> tuple[str, int | None, int | None]:
    protocol = str(rule.get("protocol") or "all").lower()
    if protocol in ("tcp", "udp"):
        return protocol, int(rule.get("startport", 0)), int(rule.get("endport", 0))
    if protocol == "icmp":
        return protocol, int(rule.get("icmptype", -1)), int(rule.get("icmpcode", -1))
    name = _PROTOCOL_NAMES.get(protocol, protocol)
    # CloudStack ignores ports of numbered protocols: "6" is every TCP port, "58" every ICMPv6 type.
    if name in ("tcp", "udp"):
        return name, 0, 65535
    if name == "icmpv6":
        return name, -1, -1
    return name, None, None


def _source_from_cloudstack(rule: dict, group: dict) -> Source:
    if rule.get("cidr"):
        try:
            return _cidr(rule["cidr"])
        except ValueError:
            return Source("ipv4", rule["cidr"])
    # CloudStack resolves the referenced account within the group owner's domain.
    account = f"{group.get('domainid', '')}/{rule.get('account', '')}"
    return Source("group", rule.get("securitygroupname", ""), owner_id(account))


def rule_from_cloudstack(rule: dict, group: dict, egress: bool) -> Rule:
    description = next((ec2_tag_value(t.get("value")) for t in rule.get("tags") or ()
                        if t.get("key") == DESCRIPTION_TAG), None)
    key = RuleKey(*_head_from_cloudstack(rule), _source_from_cloudstack(rule, group))
    return Rule(key, rule["ruleid"], egress, description, tuple(ec2_tag_list(cloudstack_tags(rule))))


# --- the caller's groups ---------------------------------------------------------------------

class Groups:
    """The caller's security groups as CloudStack lists them, with their EC2 ids."""

    def __init__(self, objects: list[dict], group_ids: dict[str, str], rule_ids: dict[str, str]):
        self.objects = objects
        self._group_ids = group_ids   # CloudStack uuid -> sg-...
        self._rule_ids = rule_ids     # CloudStack ruleid -> sgr-...
        self._by_ec2_id = {group_ids[g["id"]]: g for g in objects}
        self._by_reference = {(owner_id(owner_key(g)), g.get("name")): g for g in objects}

    @classmethod
    async def load(cls, ctx: Any) -> "Groups":
        objects = await ctx.cs_list("listSecurityGroups")
        ids = ctx.services.ids
        groups = [(g["id"], owner_key(g)) for g in objects]
        rules = [(r["ruleid"], owner_key(g)) for g in objects
                 for d in (INGRESS, EGRESS) for r in g.get(d.rules_key) or ()]
        group_ids = await ids.ec2_ids("sg", groups) if groups else {}
        rule_ids = await ids.ec2_ids("sgr", rules) if rules else {}
        return cls(objects, {backend: ec2 for (backend, _), ec2 in group_ids.items()},
                   {backend: ec2 for (backend, _), ec2 in rule_ids.items()})

    async def mint_rule_ids(self, ctx: Any, group: dict, rules: list[Rule]) -> None:
        """Give rules added since the listing their sgr- ids."""
        minted = await ctx.services.ids.ec2_ids("sgr", [(r.backend_id, owner_key(group)) for r in rules])
        self._rule_ids.update({backend: ec2 for (backend, _), ec2 in minted.items()})

    def ec2_id(self, group: dict) -> str:
        return self._group_ids[group["id"]]

    def rule_id(self, rule: Rule) -> str:
        return self._rule_ids[rule.backend_id]

    def by_ec2_id(self, ec2_id: str) -> dict | None:
        return self._by_ec2_id.get(ec2_id)

    def by_name(self, name: str) -> dict | None:
        return next((g for g in self.objects if g.get("name") == name), None)

    def target(self, request: dict) -> dict:
        """The group a mutating request names by ``GroupId`` or ``GroupName``."""
        if request.get("GroupId"):
            check_format("sg", request["GroupId"])
            group = self.by_ec2_id(request["GroupId"])
            if group is None:
                raise group_not_found(request["GroupId"])
            return group
        if request.get("GroupName"):
            group = self.by_name(request["GroupName"])
            if group is None:
                raise group_not_found(request["GroupName"])
            return group
        raise EC2Error("MissingParameter", "The request must contain the parameter groupName or groupId")

    def rules(self, group: dict, direction: Direction) -> list[Rule]:
        return [rule_from_cloudstack(r, group, direction.egress) for r in group.get(direction.rules_key) or ()]

    def reference_id(self, source: Source) -> str | None:
        """The sg- id of a referenced group, when it is one of the caller's."""
        group = self._by_reference.get((source.owner, source.value))
        return self.ec2_id(group) if group else None


# --- EC2 shapes ------------------------------------------------------------------------------

def _with_description(entry: dict, description: str | None) -> dict:
    if description:
        entry["Description"] = description
    return entry


def _pair(source: Source, groups: Groups) -> dict:
    pair = {"UserId": source.owner, "GroupName": source.value}
    group_id = groups.reference_id(source)
    if group_id:
        pair["GroupId"] = group_id
    return pair


def ip_permissions(entries: Iterable[tuple[RuleKey, str | None]], groups: Groups) -> list[dict]:
    """Rules folded into AWS's ``IpPermission`` list: one entry per (protocol, ports)."""
    permissions: dict[tuple, dict] = {}
    for key, description in entries:
        permission = permissions.get(key.head)
        if permission is None:
            permission = permissions[key.head] = {"IpProtocol": key.protocol, "IpRanges": [], "Ipv6Ranges": [],
                                                  "UserIdGroupPairs": [], "PrefixListIds": []}
            if key.from_port is not None:
                permission.update(FromPort=key.from_port, ToPort=key.to_port)
        source = key.source
        if source.kind == "ipv4":
            permission["IpRanges"].append(_with_description({"CidrIp": source.value}, description))
        elif source.kind == "ipv6":
            permission["Ipv6Ranges"].append(_with_description({"CidrIpv6": source.value}, description))
        else:
            permission["UserIdGroupPairs"].append(_with_description(_pair(source, groups), description))
    return list(permissions.values())


def ec2_group(group: dict, groups: Groups) -> dict:
    def permissions(direction: Direction) -> list[dict]:
        return ip_permissions(((r.key, r.description) for r in groups.rules(group, direction)), groups)
    return {"GroupId": groups.ec2_id(group), "GroupName": group.get("name", ""),
            "Description": group.get("description") or "", "OwnerId": owner_id(owner_key(group)),
            "IpPermissions": permissions(INGRESS), "IpPermissionsEgress": permissions(EGRESS),
            "Tags": ec2_tag_list(cloudstack_tags(group))}


def _rule_fields(rule: Rule, groups: Groups) -> dict:
    """The members SecurityGroupRule and RevokedSecurityGroupRule share."""
    key = rule.key
    # Rules without ports show -1/-1 in AWS's per-rule views.
    fields: dict[str, Any] = {"SecurityGroupRuleId": groups.rule_id(rule), "IsEgress": rule.egress,
                              "IpProtocol": key.protocol,
                              "FromPort": -1 if key.from_port is None else key.from_port,
                              "ToPort": -1 if key.to_port is None else key.to_port}
    if key.source.kind == "ipv4":
        fields["CidrIpv4"] = key.source.value
    elif key.source.kind == "ipv6":
        fields["CidrIpv6"] = key.source.value
    return _with_description(fields, rule.description)


def ec2_rule(rule: Rule, group: dict, groups: Groups) -> dict:
    fields = {**_rule_fields(rule, groups), "GroupId": groups.ec2_id(group),
              "GroupOwnerId": owner_id(owner_key(group)), "Tags": list(rule.tags)}
    if rule.key.source.kind == "group":
        reference = {"UserId": rule.key.source.owner}
        group_id = groups.reference_id(rule.key.source)
        if group_id:
            reference["GroupId"] = group_id
        fields["ReferencedGroupInfo"] = reference
    return fields


def revoked_rule(rule: Rule, group: dict, groups: Groups) -> dict:
    fields = {**_rule_fields(rule, groups), "GroupId": groups.ec2_id(group)}
    group_id = groups.reference_id(rule.key.source) if rule.key.source.kind == "group" else None
    if group_id:
        fields["ReferencedGroupId"] = group_id
    return fields


# --- reading requested permissions -----------------------------------------------------------

def ec2_protocol(value: Any) -> str:
    if value is None or str(value).strip() == "":
        raise missing_parameter("IpProtocol")
    text = str(value).strip().lower()
    if text in _PROTOCOL_NAMES:
        return _PROTOCOL_NAMES[text]
    if text.isdigit() and int(text) <= 255:
        return str(int(text))
    raise EC2Error("InvalidParameterValue", f"Invalid value '{value}' for IP protocol. Unknown protocol.")


def _tcp_udp_ports(from_port: int | None, to_port: int | None) -> tuple[int, int]:
    if from_port is None or to_port is None:
        raise port_range_error("Must specify both from and to ports with TCP/UDP.")
    for port in (from_port, to_port):
        if not 0 <= port <= 65535:
            raise EC2Error("InvalidPermission.Malformed", f"TCP/UDP port ({port}) out of range")
    if from_port > to_port:
        raise port_range_error(f"Invalid TCP/UDP port range {from_port}-{to_port}: "
                               "the from port exceeds the to port.")
    if from_port == to_port == 0:
        raise port_range_error("Port 0 alone is not supported: CloudStack reads the range 0-0 as every port.")
    return from_port, to_port


def _icmp_type_code(icmp_type: int | None, code: int | None) -> tuple[int, int]:
    if icmp_type is None or code is None:
        raise port_range_error("Must specify both from and to ports with ICMP.")
    for name, value in (("type", icmp_type), ("code", code)):
        if not -1 <= value <= 255:
            raise EC2Error("InvalidPermission.Malformed", f"ICMP {name} ({value}) out of range")
    if icmp_type == -1 and code != -1:
        raise port_range_error("The ICMP code must be -1 when the ICMP type is -1 (all types).")
    if icmp_type != -1 and code == -1:
        raise port_range_error(f"ICMP type {icmp_type} with all codes (-1) is not supported: "
                               "CloudStack needs a specific code once a type is given.")
    return icmp_type, code


def permission_head(permission: dict) -> tuple[str, int | None, int | None]:
    protocol = ec2_protocol(permission.get("IpProtocol"))
    from_port, to_port = permission.get("FromPort"), permission.get("ToPort")
    if protocol in ("tcp", "udp"):
        return (protocol, *_tcp_udp_ports(from_port, to_port))
    if protocol == "icmp":
        return (protocol, *_icmp_type_code(from_port, to_port))
    if protocol == "icmpv6":
        if (from_port, to_port) not in ((None, None), (-1, -1)):
            raise port_range_error("Only all ICMPv6 types (-1) are supported: CloudStack rules of "
                                   "numbered protocols carry no type or code.")
        return protocol, -1, -1
    # AWS: for -1 and other protocol numbers, traffic on all ports is allowed whatever ports are given.
    return protocol, None, None


def _cidr_source(text: Any, version: int) -> Source:
    if not isinstance(text, str) or "/" not in text:
        raise malformed_cidr(text)
    try:
        source = _cidr(text)
    except ValueError:
        raise malformed_cidr(text) from None
    if source.kind != ("ipv6" if version == 6 else "ipv4"):
        raise malformed_cidr(text)
    return source


def _description(entry: dict) -> str | None:
    description = entry.get("Description")
    if description is None or description == "":
        return None
    if not _RULE_DESCRIPTION.fullmatch(description):
        raise EC2Error("InvalidParameterValue",
                       "Invalid rule description. Valid descriptions are strings less than 256 characters "
                       "from the following set:  a-zA-Z0-9. _-:/()#,@[]+=&;{}!$*")
    return description


def _pair_source(pair: dict, groups: Groups, own: str, foreign_ok: bool) -> Source:
    user_id = (pair.get("UserId") or "").strip()
    if pair.get("VpcPeeringConnectionId"):
        raise EC2Error("InvalidParameterValue", "VPC peering connections are not supported by this endpoint")
    if user_id and user_id != own:
        if foreign_ok and pair.get("GroupName") and not pair.get("GroupId"):
            return Source("group", pair["GroupName"], user_id)
        raise EC2Error("InvalidGroup.NotFound",
                       f"The security group '{pair.get('GroupId') or pair.get('GroupName')}' of account {user_id} "
                       "cannot be referenced: only groups of your own account can be")
    if pair.get("GroupId"):
        check_format("sg", pair["GroupId"])
        group = groups.by_ec2_id(pair["GroupId"])
        reference = pair["GroupId"]
    elif pair.get("GroupName"):
        group = groups.by_name(pair["GroupName"])
        reference = pair["GroupName"]
    else:
        raise EC2Error("MissingParameter", "The request must contain the parameter groupId or groupName")
    if group is None:
        raise group_not_found(reference)
    return Source("group", group["name"], own)


def _sources(permission: dict, groups: Groups, own: str, foreign_ok: bool) -> list[tuple[Source, str | None]]:
    prefix_lists = permission.get("PrefixListIds")
    if prefix_lists:  # CloudStack has no prefix lists, so none exists
        raise EC2Error("InvalidPrefixListID.NotFound",
                       f"The prefix list '{prefix_lists[0].get('PrefixListId')}' does not exist")
    sources = [(_cidr_source(r.get("CidrIp"), 4), _description(r)) for r in permission.get("IpRanges") or ()]
    sources += [(_cidr_source(r.get("CidrIpv6"), 6), _description(r)) for r in permission.get("Ipv6Ranges") or ()]
    sources += [(_pair_source(p, groups, own, foreign_ok), _description(p))
                for p in permission.get("UserIdGroupPairs") or ()]
    if not sources:
        raise EC2Error("MissingParameter", "The request must contain the parameter cidrIp, ipRanges, ipv6Ranges "
                                           "or a source security group (sourceSecurityGroupName or groups)")
    return sources


def _flat_permissions(request: dict) -> list[dict]:
    """The single permission of the flat parameters boto 2 and euca2ools send."""
    protocol, cidr = request.get("IpProtocol"), request.get("CidrIp")
    source_name = request.get("SourceSecurityGroupName")
    if cidr and source_name:
        raise EC2Error("InvalidParameterCombination",
                       "The parameter CidrIp cannot be used with the parameter SourceSecurityGroupName")
    if request.get("SourceSecurityGroupOwnerId") and not source_name:
        raise missing_parameter("SourceSecurityGroupName")
    pair = {"GroupName": source_name, "UserId": request.get("SourceSecurityGroupOwnerId")} if source_name else None
    if pair and protocol is None and request.get("FromPort") is None and request.get("ToPort") is None:
        # AWS: a source group alone "creates rules that grant full ICMP, UDP, and TCP access".
        return [{"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "UserIdGroupPairs": [pair]},
                {"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535, "UserIdGroupPairs": [pair]},
                {"IpProtocol": "udp", "FromPort": 0, "ToPort": 65535, "UserIdGroupPairs": [pair]}]
    permission = {"IpProtocol": protocol, "FromPort": request.get("FromPort"), "ToPort": request.get("ToPort")}
    if cidr:
        permission["IpRanges"] = [{"CidrIp": cidr}]
    if pair:
        permission["UserIdGroupPairs"] = [pair]
    return [permission]


def requested_permissions(request: dict) -> list[dict]:
    flat = [name for name in FLAT_MEMBERS if request.get(name) is not None]
    if request.get("IpPermissions"):
        if flat:
            raise EC2Error("InvalidParameterCombination",
                           f"The parameter IpPermissions cannot be used with the parameter {flat[0]}")
        return request["IpPermissions"]
    if flat:
        return _flat_permissions(request)
    raise missing_parameter("IpPermissions")


def wanted_rules(request: dict, groups: Groups, group: dict, *, foreign_ok: bool = False) -> list[Wanted]:
    own = owner_id(owner_key(group))
    wanted = [Wanted(RuleKey(*permission_head(permission), source), description)
              for permission in requested_permissions(request)
              for source, description in _sources(permission, groups, own, foreign_ok)]
    if len({w.key for w in wanted}) != len(wanted):
        raise EC2Error("InvalidParameterValue", "The same permission must not appear multiple times")
    return wanted


# --- tags --------------------------------------------------------------------------------------

async def tag_rules(ctx: Any, rule_ids: list[str], tags: dict[str, str]) -> None:
    await create_cloudstack_tags(ctx, "SecurityGroupRule", rule_ids, tags)


# --- CloudStack calls ----------------------------------------------------------------------------

def cloudstack_protocol(head: tuple[str, int | None, int | None]) -> dict[str, Any]:
    protocol, first, last = head
    if protocol in ("tcp", "udp"):
        return {"protocol": protocol, "startport": first, "endport": last}
    if protocol == "icmp":
        return {"protocol": "icmp", "icmptype": first, "icmpcode": last}
    if protocol == "-1":
        return {"protocol": "all"}
    return {"protocol": "58" if protocol == "icmpv6" else protocol}


def _authorize_params(group: dict, batch: list[Wanted]) -> dict[str, Any]:
    params: dict[str, Any] = {"securitygroupid": group["id"], **cloudstack_protocol(batch[0].key.head)}
    cidrs = [w.key.source.value for w in batch if w.key.source.kind != "group"]
    if cidrs:
        params["cidrlist"] = cidrs
    references = [w.key.source for w in batch if w.key.source.kind == "group"]
    for index, source in enumerate(references):
        # Only the caller's own groups are referenced (see _pair_source): the account is the group's.
        params[f"usersecuritygrouplist[{index}].account"] = group["account"]
        params[f"usersecuritygrouplist[{index}].group"] = source.value
    return params


def duplicate_error(key: RuleKey) -> EC2Error:
    source = key.source
    peer = source.value if source.kind != "group" else f"{source.owner}/{source.value}"
    ports = (f"from port: {key.from_port}, to port: {key.to_port}, " if key.from_port is not None else "")
    protocol = key.protocol.upper() if key.protocol != "-1" else "ALL"
    return EC2Error("InvalidPermission.Duplicate",
                    f'the specified rule "peer: {peer}, {protocol}, {ports}ALLOW" already exists')


async def _rules_now(ctx: Any, group: dict, direction: Direction) -> set[RuleKey]:
    listed = await ctx.cs_list("listSecurityGroups", id=group["id"])
    return {rule_from_cloudstack(r, group, direction.egress).key
            for g in listed for r in g.get(direction.rules_key) or ()}


async def _authorize_batch(ctx: Any, group: dict, direction: Direction, batch: list[Wanted],
                           added: list[Rule]) -> None:
    """One CloudStack call for rules sharing (protocol, ports); what it adds goes to ``added``."""
    try:
        result = await ctx.cs_run(direction.authorize, **_authorize_params(group, batch))
    except CloudStackError as error:
        # A job that adds nothing fails with a bare 530: a concurrent request got there first.
        if error.code == INTERNAL_ERROR and {w.key for w in batch} <= await _rules_now(ctx, group, direction):
            raise duplicate_error(batch[0].key) from error
        raise
    descriptions = {w.key: w.description for w in batch}
    for cs_rule in (result.get("securitygroup") or {}).get(direction.rules_key) or ():
        rule = rule_from_cloudstack(cs_rule, group, direction.egress)
        added.append(Rule(rule.key, rule.backend_id, rule.egress, descriptions.get(rule.key), rule.tags))
    present = {r.key for r in added}
    missing = [w.key for w in batch if w.key not in present]
    if missing:  # CloudStack skips rules that exist: someone added these since we looked
        raise duplicate_error(missing[0])


async def _gather_all(*calls) -> None:
    """Run calls concurrently and wait for every one before raising the first failure, so that
    nothing is still changing the group while a failed request undoes its work."""
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


async def _tag_rules(ctx: Any, rules: list[Rule], tags: dict[str, str]) -> None:
    by_description: dict[str, list[str]] = defaultdict(list)
    for rule in rules:
        if rule.description:
            by_description[rule.description].append(rule.backend_id)
    await _gather_all(*(tag_rules(ctx, ids, {DESCRIPTION_TAG: text}) for text, ids in by_description.items()),
                      tag_rules(ctx, [r.backend_id for r in rules], tags))


async def _revoke_quietly(ctx: Any, direction: Direction, rules: list[Rule]) -> None:
    """Undo a failed request's rules; a failure here is logged, the original error still reported."""
    outcomes = await asyncio.gather(*(ctx.cs_run(direction.revoke, id=r.backend_id) for r in rules),
                                    return_exceptions=True)
    for rule, outcome in zip(rules, outcomes):
        if isinstance(outcome, BaseException):
            log.error("could not undo security group rule %s after a failed request: %s", rule.backend_id, outcome)


async def add_rules(ctx: Any, group: dict, direction: Direction, wanted: list[Wanted],
                    tags: dict[str, str]) -> list[Rule]:
    """Add the rules, all or none: on any failure the ones already added are revoked."""
    batches: dict[tuple, list[Wanted]] = defaultdict(list)
    for rule in wanted:
        batches[rule.key.head].append(rule)
    added: list[Rule] = []
    try:
        await _gather_all(*(_authorize_batch(ctx, group, direction, batch, added) for batch in batches.values()))
        await _tag_rules(ctx, added, tags)
    except BaseException:
        await asyncio.shield(_revoke_quietly(ctx, direction, added))
        raise
    return [Rule(r.key, r.backend_id, r.egress, r.description, tuple(ec2_tag_list(tags))) for r in added]


async def revoke_rules(ctx: Any, direction: Direction, rules: list[Rule]) -> None:
    async def revoke_one(rule: Rule) -> None:
        try:
            await ctx.cs_run(direction.revoke, id=rule.backend_id)
        except CloudStackError as error:
            if error.code != 431:  # 431: the rule is already gone, which is what was asked
                raise
    await _gather_all(*(revoke_one(rule) for rule in rules))
