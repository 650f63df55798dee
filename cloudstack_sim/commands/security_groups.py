"""Security groups and their ingress/egress rules.

Each account gets its ``default`` group on first use (CloudStack creates it with the account in a
security-group zone). Authorizing rules runs in an async job, as CloudStack's
``AuthorizeSecurityGroupIngressCmd`` does: rules that already exist are skipped, the job result
lists only the rules it added, and a call that adds none fails with "Failed to authorize security
group ingress rule(s)" - the duplicate-rule error CloudStack gives. Each rule carries its own
``tags`` (``ResourceObjectType.SecurityGroupRule``); revoking the rule deletes them.
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
PROTOCOL_NAMES = {"tcp", "udp", "icmp", "all"}


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
    if group["name"] == DEFAULT_GROUP:
        raise invalid_parameter("The network group default is reserved")
    if group["vm_ids"]:
        raise resource_in_use("Cannot delete group when it's in use by virtual machines")
    for rule in group["ingress"] + group["egress"]:
        forget_rule(call.state, rule["ruleid"])
    call.state.remove("security_group", group)
    return success()


def parse_rules(call: Call) -> list[dict]:
    protocol = (call.get("protocol") or "all").lower()
    if protocol not in PROTOCOL_NAMES and not (protocol.isdigit() and 0 <= int(protocol) <= 255):
        raise invalid_parameter(f"Invalid protocol {protocol}")
    rule: dict = {"protocol": protocol}
    if protocol in ("tcp", "udp"):
        start, end = call.get("startport"), call.get("endport")
        if start is None or end is None:
            raise invalid_parameter(f"Invalid port range {start}:{end}")
        if not (0 <= start <= 65535 and 0 <= end <= 65535 and start <= end):
            raise invalid_parameter(f"Invalid port range {start}:{end}")
        rule.update(startport=start, endport=end)
    elif protocol == "icmp":
        icmp_type = call.get("icmptype", -1)
        icmp_code = call.get("icmpcode", -1)
        if not (-1 <= icmp_type <= 255 and -1 <= icmp_code <= 255):
            raise invalid_parameter(f"Invalid icmp type/code {icmp_type}/{icmp_code}")
        rule.update(icmptype=icmp_type, icmpcode=icmp_code)
    sources = [{**rule, "cidr": str(validate_cidr(cidr))} for cidr in call.get("cidrlist") or []]
    for entry in call.get("usersecuritygrouplist") or []:
        sources.append({**rule, "group": entry.get("group"), "group_account": entry.get("account")})
    if not sources:
        sources = [{**rule, "cidr": "0.0.0.0/0"}]
    return sources


def validate_cidr(text: str):
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise invalid_parameter(f"Invalid cidr {text}") from None


def same_rule(a: dict, b: dict) -> bool:
    fields = ("protocol", "startport", "endport", "icmptype", "icmpcode", "cidr", "group", "group_account")
    return all(a.get(field) == b.get(field) for field in fields)


def authorize(call: Call, direction: str):
    state = call.state
    group = find_group(call, call.get("securitygroupid"), call.get("securitygroupname"))
    label = "ingress" if direction == "ingress" else "egress"

    def work() -> dict:
        added = []
        for candidate in parse_rules(call):
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
