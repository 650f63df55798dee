"""Domains, accounts, users, API keys and resource limits.

A root admin (account type 1) manages everything; a normal user (type 0) sees its own account and
user only. ``getUserKeys``/``registerUserKeys`` work on the caller's own user unless the caller is
an admin. Resource limits use CloudStack's ``Resource.ResourceType`` ordinals and names, ``-1``
meaning unlimited; the account response writes unlimited as ``"Unlimited"``.
"""

from __future__ import annotations

from ..context import Call
from ..errors import invalid_parameter, permission_denied
from ..render import compact, cs_date
from ..seed import RESOURCE_TYPES
from ..spec import command
from ..state import SimState, new_key
from .common import domain_fields

ROLE_TYPES = {1: "Admin", 0: "User"}
RESOURCE_INDEX = {name: index for index, (name, _) in enumerate(RESOURCE_TYPES)}


def usage(state: SimState, account_id: str) -> dict[str, int]:
    """What an account consumes, per resource type, as CloudStack's resource_count table tracks it."""
    vms = [vm for vm in state.store("vm").owned_by(account_id) if vm["state"] not in ("Destroyed", "Expunging")]
    volumes = list(state.store("volume").owned_by(account_id))
    return {"user_vm": len(vms), "public_ip": len(list(state.store("public_ip").owned_by(account_id))),
            "volume": len(volumes), "snapshot": len(list(state.store("snapshot").owned_by(account_id))),
            "template": len(list(state.store("template").owned_by(account_id))), "project": 0,
            "network": len(list(state.store("network").owned_by(account_id))),
            "vpc": len(list(state.store("vpc").owned_by(account_id))),
            "cpu": sum(vm["cpunumber"] for vm in vms), "memory": sum(vm["memory"] for vm in vms),
            "primary_storage": sum(volume["size"] for volume in volumes) // (1024 ** 3),
            "secondary_storage": 0}


def limit_text(maximum: int) -> str:
    return "Unlimited" if maximum < 0 else str(maximum)


def available_text(maximum: int, used: int) -> str:
    return "Unlimited" if maximum < 0 else str(max(maximum - used, 0))


def check_limit(state: SimState, account: dict, resource: str, requested: int = 1) -> None:
    """ResourceLimitManagerImpl.checkResourceLimit: 535 when the account would exceed its limit."""
    maximum = account["limits"].get(resource, -1)
    current = usage(state, account["id"])[resource]
    if 0 <= maximum < current + requested:
        from ..errors import resource_allocation
        raise resource_allocation(f"Maximum amount of resources of Type = '{resource}' for Account Name = "
                                  f"{account['name']} is exceeded: Account Resource Limit = {maximum}, Current "
                                  f"Account Resource Amount = {current}, Requested Resource Amount = {requested}.")


def render_account(state: SimState, account: dict) -> dict:
    used = usage(state, account["id"])
    vms = list(state.store("vm").owned_by(account["id"]))
    body = {"id": account["id"], "name": account["name"], "accounttype": account["type"],
            "roletype": ROLE_TYPES[account["type"]], "rolename": "Root Admin" if account["type"] == 1 else "User",
            "roleid": role_id(account["type"]), **domain_fields(state, account["domain_id"]),
            "receivedbytes": 0, "sentbytes": 0, "state": account["state"], "created": cs_date(account["created"]),
            "vmstopped": sum(1 for vm in vms if vm["state"] == "Stopped"),
            "vmrunning": sum(1 for vm in vms if vm["state"] == "Running"), "isdefault": account["name"] == "admin",
            "iscleanuprequired": False, "groups": [],
            "user": [render_user(state, user) for user in state.store("user").owned_by(account["id"])]}
    for resource, prefix in (("user_vm", "vm"), ("public_ip", "ip"), ("volume", "volume"),
                             ("snapshot", "snapshot"), ("template", "template"), ("project", "project"),
                             ("network", "network"), ("vpc", "vpc"), ("cpu", "cpu"), ("memory", "memory"),
                             ("primary_storage", "primarystorage"), ("secondary_storage", "secondarystorage")):
        maximum = account["limits"].get(resource, -1)
        body[f"{prefix}limit"] = limit_text(maximum)
        body[f"{prefix}total"] = float(used[resource]) if resource == "secondary_storage" else used[resource]
        body[f"{prefix}available"] = available_text(maximum, used[resource])
    return compact(body)


def role_id(account_type: int) -> str:
    import uuid
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"cloudstack-sim/role/{account_type}"))


def render_user(state: SimState, user: dict, with_keys: bool = False) -> dict:
    account = state.get("account", user["account_id"])
    body = {"id": user["id"], "username": user["username"], "firstname": user["firstname"],
            "lastname": user["lastname"], "email": user["email"], "created": cs_date(user["created"]),
            "state": user["state"], "account": account["name"], "accounttype": account["type"],
            "usersource": "native", "roleid": role_id(account["type"]), "roletype": ROLE_TYPES[account["type"]],
            "rolename": "Root Admin" if account["type"] == 1 else "User",
            **{k: v for k, v in domain_fields(state, account["domain_id"]).items() if k != "domainpath"},
            "timezone": user.get("timezone"), "accountid": account["id"], "iscallerchilddomain": False,
            "isdefault": user["username"] == "admin", "is2faenabled": False, "is2famandated": False,
            "apikey": user.get("apikey")}   # listUsers shows the api key (never the secret)
    if with_keys:
        body["secretkey"] = user.get("secretkey")
    return compact(body)


@command("listAccounts")
def list_accounts(call: Call):
    accounts = list(call.state.store("account")) if call.is_admin else [call.account]
    if call.get("accounttype") is not None:
        accounts = [a for a in accounts if a["type"] == call.get("accounttype")]
    if call.get("state"):
        accounts = [a for a in accounts if a["state"].lower() == call.get("state").lower()]
    if call.get("domainid"):
        accounts = [a for a in accounts if a["domain_id"] == call.get("domainid")]
    rows = call.filtered(accounts)
    listing = call.page(rows)
    listing.rows = [render_account(call.state, account) for account in listing.rows]
    return listing


@command("listUsers")
def list_users(call: Call):
    users = list(call.state.store("user")) if call.is_admin else list(
        call.state.store("user").owned_by(call.account["id"]))
    if call.get("account"):
        users = [u for u in users if call.state.get("account", u["account_id"])["name"] == call.get("account")]
    if call.get("username"):
        users = [u for u in users if u["username"] == call.get("username")]
    if call.get("state"):
        users = [u for u in users if u["state"].lower() == call.get("state").lower()]
    if call.get("accounttype") is not None:
        users = [u for u in users if call.state.get("account", u["account_id"])["type"] == call.get("accounttype")]
    rows = call.filtered(users, name_field="username", keyword_fields=("username", "firstname", "lastname"))
    listing = call.page(rows)
    listing.rows = [render_user(call.state, user) for user in listing.rows]
    return listing


@command("getUser")
def get_user(call: Call):
    if not call.is_admin:
        raise permission_denied("Only root admin can look up users by api key")
    user_id = call.state.keys_by_apikey.get(call.get("userapikey").lower())
    user = call.state.get("user", user_id)
    if user is None:
        return {}   # CloudStack answers an empty getuserresponse for an unknown key
    return {"user": render_user(call.state, user, with_keys=False) | {"apikey": user["apikey"]}}


def own_or_admin(call: Call, user_id: str) -> dict:
    user = call.state.get("user", user_id)
    if not call.is_admin and user["account_id"] != call.account["id"]:
        raise permission_denied("Only root admin can access other accounts' user keys")
    if not call.is_admin and user["id"] != call.user["id"]:
        raise permission_denied("A user can only access its own keys")
    return user


@command("getUserKeys")
def get_user_keys(call: Call):
    user = own_or_admin(call, call.get("id"))
    return {"userkeys": compact({"apikey": user.get("apikey"), "secretkey": user.get("secretkey"),
                                 "apikeyaccess": True})}


@command("registerUserKeys")
def register_user_keys(call: Call):
    user = own_or_admin(call, call.get("id"))
    state = call.state
    state.keys_by_apikey.pop((user.get("apikey") or "").lower(), None)
    user["apikey"], user["secretkey"] = new_key(), new_key()
    state.index("user", user)
    state.touch(user)
    return {"userkeys": {"apikey": user["apikey"], "secretkey": user["secretkey"]}}


@command("listResourceLimits")
def list_resource_limits(call: Call):
    if call.get("account") and call.is_admin:
        accounts = [call.find_account(call.get("account"), call.get("domainid"))]
    elif call.is_admin and call.get("listall"):
        accounts = list(call.state.store("account"))
    else:
        accounts = [call.account]
    wanted_type, wanted_name = call.get("resourcetype"), call.get("resourcetypename")
    if wanted_type is not None and not 0 <= wanted_type < len(RESOURCE_TYPES):
        raise invalid_parameter("Please specify a valid resource type.")
    if wanted_name is not None and wanted_name not in RESOURCE_INDEX:
        raise invalid_parameter("Please specify a valid resource type name.")
    rows = []
    for account in accounts:
        for index, (name, _) in enumerate(RESOURCE_TYPES):
            if (wanted_type is not None and wanted_type != index) or (wanted_name and wanted_name != name):
                continue
            rows.append({"account": account["name"], **{k: v for k, v in domain_fields(
                call.state, account["domain_id"]).items() if k != "domainpath"},
                "resourcetype": str(index), "resourcetypename": name, "max": account["limits"].get(name, -1)})
    return call.page(rows)


@command("listDomains")
def list_domains(call: Call):
    domains = list(call.state.store("domain")) if call.is_admin else [
        call.state.get("domain", call.account["domain_id"])]
    rows = call.filtered(domains)
    if call.get("level") is not None:
        rows = [domain for domain in rows if domain["level"] == call.get("level")]
    listing = call.page(rows)
    listing.rows = [compact({"id": d["id"], "name": d["name"], "level": d["level"], "path": d["path"],
                             "parentdomainid": d.get("parent_id"), "haschild": False, "state": "Active",
                             "created": cs_date(d["created"]), "hasannotations": False}) for d in listing.rows]
    return listing
