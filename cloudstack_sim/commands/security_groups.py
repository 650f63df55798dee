"""Security groups and their ingress/egress rules.

Each account gets its ``default`` group on first use (CloudStack creates it with the account in a
security-group zone). Authorizing rules runs in an async job, as CloudStack's
``AuthorizeSecurityGroupIngressCmd`` does, and the job validates the request as
``SecurityGroupManagerImpl.authorizeSecurityGroupRule`` does (each refusal an
``InvalidParameterValueException``, so the job fails with 431):

* at least one CIDR or one ``usersecuritygrouplist`` entry; every CIDR valid; each group entry
  names an ``account`` of the group owner's domain and one of that account's groups;
* the protocol is tcp, udp, icmp, all (the default) or a number 0-255, where ``1`` becomes icmp
  type -1 code -1; ``all`` takes no ports; other numbers ignore any ports; ``all`` and numbered
  rules are stored with ports 0/0;
* tcp/udp need both ports, 0-0 means 0-65535, and ports must be ordered and within 0-65535;
* icmp needs a type and a code (-1/-1 is every type; a type other than -1 needs a code).

Rules that already exist are skipped, the job result lists only the rules it added, and a call
that adds none fails with "Failed to authorize security group ingress rule(s)" - the duplicate-rule
error CloudStack gives. ``deleteSecurityGroup`` refuses (536) a group that any rule references or
any VM uses. Each rule carries its own ``tags`` (``ResourceObjectType.SecurityGroupRule``);
revoking the rule deletes them.
"""

from __future__ import annotations

import ipaddress

from ..context import Call
from ..errors import ApiError, CS_SERVER_API, invalid_parameter, resource_in_use
from ..jobs import pending_fields, submit_response
from ..render import compact, renderer
from ..spec import command
from ..state import SimState, new_uuid
from .common import owner_fields, success

DEFAULT_GROUP = "default"
PROTOCOL_NAMES = {"tcp", "udp", "icmp", "all"}   # NetUtils.isValidSecurityGroupProto
MAX_PORT = 65535


def default_group(state: SimState, account: dict) -> dict:
    for group in state.store("security_group").owned_by(account["id"]):
        if group["name"] == DEFAULT_GROUP:
            return group
    group = {"name": DEFAULT_GROUP, "description": "Default Security Group", "account_id": account["id"],
             "ingress": [], "egress": [], "vm_ids": []}
    return state.add("security_group", group)


def render_rule(state: SimState, group: dict, rule: dict) -> dict:
    body = {"ruleid": rule["ruleid"], "protocol": rule["protocol"], "icmptype": rule.get("icmptype"),
            "icmpcode": rule.get("icmpcode"), "startport": rule.get("startport"), "endport": rule.get("endport"),
            "cidr": rule.get("cidr"), "tags": state.tags_of(rule["ruleid"])}
    if rule.get("group"):
        body["securitygroupname"], body["account"] = rule["group"], rule["group_account"]
    return compact(body)


@renderer("security_group")
def render_security_group(state: SimState, group: dict) -> dict:
    return compact({"id": group["id"], "name": group["name"], "description": group["description"],
                    **owner_fields(state, group["account_id"]),
                    "ingressrule": [render_rule(state, group, rule) for rule in group["ingress"]],
                    "egressrule": [render_rule(state, group, rule) for rule in group["egress"]],
                    "tags": state.tags_of(group["id"]), "virtualmachinecount": len(group["vm_ids"]),
                    "virtualmachineids": list(group["vm_ids"]), **pending_fields(group)})


def embedded_group(state: SimState, group: dict) -> dict:
    """The short form a VM response embeds (rules left empty, as UserVmJoinDao does)."""
    return compact({"id": group["id"], "name": group["name"], "description": group["description"],
                    **owner_fields(state, group["account_id"]), "ingressrule": [], "egressrule": [], "tags": []})


@command("createSecurityGroup")
def create_security_group(call: Call):
    owner, name = call.owner_account(), call.get("name")
    default_group(call.state, owner)
    if any(g["name"].lower() == name.lower() for g in call.state.store("security_group").owned_by(owner["id"])):
        raise invalid_parameter(f"Unable to create security group, a group with name {name} already exists.")
    group = call.state.add("security_group", {"name": name, "description": call.get("description"),
                                              "account_id": owner["id"], "ingress": [], "egress": [],
                                              "vm_ids": []})
    return {"securitygroup": call.state.render("security_group", group)}


def find_group(call: Call, group_id: str | None, name: str | None) -> dict:
    if group_id:
        return call.owned("security_group", group_id)
    if not name:
        raise invalid_parameter("At least one of the security group id or name must be specified")
    owner = call.owner_account()
    default_group(call.state, owner)
    for group in call.state.store("security_group").owned_by(owner["id"]):
        if group["name"] == name:
            return group
    raise invalid_parameter(f"Unable to find security group by name {name} for the account id={owner['number']}")


@command("deleteSecurityGroup")
def delete_security_group(call: Call):
    group = find_group(call, call.get("id"), call.get("name"))
    if group["name"].lower() == DEFAULT_GROUP:
        raise invalid_parameter("The network group default is reserved")
    if allowing_rules(call.state, group):
        raise resource_in_use("Cannot delete group when there are security rules that allow this group")
    if group["vm_ids"]:
        raise resource_in_use("Cannot delete group when it's in use by virtual machines")
    for rule in group["ingress"] + group["egress"]:
        forget_rule(call.state, rule["ruleid"])
    call.state.remove("security_group", group)
    return success()


def allowing_rules(state: SimState, group: dict) -> list[dict]:
    """``listByAllowedSecurityGroupId``: the rules of any group (this one's too) that allow ``group``."""
    return [rule for other in state.store("security_group") for rule in other["ingress"] + other["egress"]
            if rule.get("group_id") == group["id"]]


def parse_rules(call: Call, group: dict) -> list[dict]:
    """The rules a request asks for, validated in ``authorizeSecurityGroupRule``'s order."""
    cidrs, references = call.get("cidrlist") or [], call.get("usersecuritygrouplist") or []
    if not cidrs and not references:
        raise invalid_parameter("At least one cidr or at least one security group needs to be specified")
    for cidr in cidrs:
        validate_cidr(cidr)
    rule = protocol_and_ports(call)
    sources = [resolve_reference(call, group, rule, entry) for entry in references]
    return sources + [{**rule, "cidr": cidr} for cidr in cidrs]


def protocol_and_ports(call: Call) -> dict:
    protocol = (call.get("protocol") or "all").strip().lower()
    icmp_type, icmp_code = call.get("icmptype"), call.get("icmpcode")
    if protocol.isdigit():   # StringUtils.isNumeric: no sign, so "-1" is an unknown name below
        if int(protocol) == 1:   # ICMP by number is every ICMP type and code
            protocol, icmp_type, icmp_code = "icmp", -1, -1
        elif int(protocol) > 255:
            raise invalid_parameter(f"Invalid protocol number: {int(protocol)}")
    elif protocol not in PROTOCOL_NAMES:
        raise invalid_parameter(f"Invalid protocol {protocol}")
    if protocol == "icmp":
        return {"protocol": protocol, **icmp_type_and_code(icmp_type, icmp_code)}
    start, end = call.get("startport"), call.get("endport")
    if protocol == "all" and (start is not None or end is not None):
        raise invalid_parameter("Cannot specify startPort or endPort without specifying protocol")
    if protocol in ("tcp", "udp"):
        return {"protocol": protocol, **port_range(start, end)}
    # "all", and numbered protocols, whose ports CloudStack ignores (ProtocolAclRule)
    return {"protocol": protocol, "startport": 0, "endport": 0}


def icmp_type_and_code(icmp_type: int | None, icmp_code: int | None) -> dict:
    if icmp_type is None or icmp_code is None:
        raise invalid_parameter(f"Invalid ICMP type/code specified, icmpType = {java(icmp_type)}, "
                                f"icmpCode = {java(icmp_code)}")
    if icmp_type == -1 and icmp_code != -1:
        raise invalid_parameter("Invalid icmp code")
    if icmp_type != -1 and icmp_code == -1:
        raise invalid_parameter("Invalid icmp code: need non-negative icmp code ")
    if not (-1 <= icmp_type <= 255 and -1 <= icmp_code <= 255):
        raise invalid_parameter("Invalid icmp type/code ")
    return {"icmptype": icmp_type, "icmpcode": icmp_code}


def port_range(start: int | None, end: int | None) -> dict:
    if start is None or end is None:
        raise invalid_parameter(f"Invalid port range specified, startPort = {java(start)}, endPort = {java(end)}")
    if start == 0 and end == 0:   # 0-0 is every port
        end = MAX_PORT
    if start > end:
        raise invalid_parameter(f"Invalid port range {start}:{end}")
    if start > MAX_PORT or end > MAX_PORT or start < -1 or end < -1:
        raise invalid_parameter(f"Invalid port numbers {start}:{end}")
    if start < 0 or end < 0:
        raise invalid_parameter(f"Invalid port range {start}:{end}")
    return {"startport": start, "endport": end}


def java(value) -> str:
    """How Java's string concatenation prints an Integer that may be null."""
    return "null" if value is None else str(value)


def resolve_reference(call: Call, group: dict, rule: dict, entry: dict) -> dict:
    """A ``usersecuritygrouplist`` entry: a group of an account in the group owner's domain."""
    name, account_name = entry.get("group"), entry.get("account")
    if name is None or account_name is None:
        raise invalid_parameter("Invalid user group specified, fields 'group' and 'account' cannot be null, please "
                                "specify groups in the form:  userGroupList[0].group=XXX&userGroupList[0].account=YYY")
    state = call.state
    domain_id = state.get("account", group["account_id"])["domain_id"]
    account = next((a for a in state.store("account") if a["name"] == account_name and a["domain_id"] == domain_id),
                   None)
    ports = f"{rule.get('startport', rule.get('icmptype'))}:{rule.get('endport', rule.get('icmpcode'))}"
    if account is None:
        raise invalid_parameter(f"Nonexistent account: {account_name} when trying to authorize security group rule  "
                                f"for {group['id']}:{rule['protocol']}:{ports}")
    allowed = next((g for g in state.store("security_group").owned_by(account["id"]) if g["name"] == name), None)
    if allowed is None:
        raise invalid_parameter(f"Nonexistent group {name} for account {account_name}/{domain_id} is given, unable "
                                "to authorize security group rule.")
    return {**rule, "group": allowed["name"], "group_account": account["name"], "group_id": allowed["id"]}


def validate_cidr(text: str) -> str:
    """``NetUtils.isValidIp4Cidr || isValidIp6Cidr``: an address and a prefix length."""
    try:
        if "/" not in text:
            raise ValueError(text)
        ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise invalid_parameter(f"Invalid cidr {text}") from None
    return text


def same_rule(a: dict, b: dict) -> bool:
    """``findByProtoPortsAndCidr`` / ``findByProtoPortsAndAllowedGroupId``."""
    fields = ("protocol", "startport", "endport", "icmptype", "icmpcode", "cidr", "group", "group_account")
    return all(a.get(field) == b.get(field) for field in fields)


def authorize(call: Call, direction: str):
    state = call.state
    group = find_group(call, call.get("securitygroupid"), call.get("securitygroupname"))
    label = "ingress" if direction == "ingress" else "egress"

    def work() -> dict:
        added = []
        for candidate in parse_rules(call, group):
            if any(same_rule(candidate, existing) for existing in group[direction] + added):
                continue
            added.append({"ruleid": new_uuid(), **candidate})
        if not added:
            raise ApiError(530, f"Failed to authorize security group {label} rule(s)", CS_SERVER_API)
        group[direction].extend(added)
        for rule in added:
            state.rule_index[rule["ruleid"]] = group["id"]
        state.touch(group)
        body = embedded_group(state, group)
        body[f"{label}rule"] = [render_rule(state, group, rule) for rule in added]
        return {"securitygroup": body}
    return submit_response(state.jobs.submit(call, instance_type="SecurityGroup", instance=group, work=work))


@command("authorizeSecurityGroupIngress")
def authorize_ingress(call: Call):
    return authorize(call, "ingress")


@command("authorizeSecurityGroupEgress")
def authorize_egress(call: Call):
    return authorize(call, "egress")


def revoke(call: Call, direction: str):
    state, rule_id = call.state, call.get("id")
    group = call.owned("security_group", state.rule_index[rule_id])
    if not any(rule["ruleid"] == rule_id for rule in group[direction]):
        raise invalid_parameter(f"Unable to find {direction} rule with id {rule_id}")

    def work() -> dict:
        group[direction] = [rule for rule in group[direction] if rule["ruleid"] != rule_id]
        forget_rule(state, rule_id)
        state.touch(group)
        return success()
    return submit_response(state.jobs.submit(call, instance_type="SecurityGroup", instance=group, work=work))


def forget_rule(state: SimState, rule_id: str) -> None:
    """A revoked rule's id stops resolving, and its tags go with it."""
    state.rule_index.pop(rule_id, None)
    state.drop_tags(rule_id)


@command("revokeSecurityGroupIngress")
def revoke_ingress(call: Call):
    return revoke(call, "ingress")


@command("revokeSecurityGroupEgress")
def revoke_egress(call: Call):
    return revoke(call, "egress")


@command("listSecurityGroups")
def list_security_groups(call: Call):
    default_group(call.state, call.owner_account() if call.get("account") else call.account)
    rows = call.filtered(list(call.scoped("security_group")), keyword_fields=("name", "description"))
    if call.get("securitygroupname"):
        rows = [row for row in rows if row["name"] == call.get("securitygroupname")]
    if call.get("virtualmachineid"):
        vm = call.owned("vm", call.get("virtualmachineid"))
        rows = [row for row in rows if row["id"] in vm["security_group_ids"]]
    return call.page(rows, "security_group")
