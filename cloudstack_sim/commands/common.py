"""Small helpers the command areas share: owner fields, tag lists, boolean defaults."""

from __future__ import annotations

from ..state import SimState


def owner_fields(state: SimState, account_id: str | None) -> dict:
    """``account``/``domainid``/``domain``/``domainpath`` as every owned response carries them."""
    account = state.get("account", account_id)
    if account is None:
        return {}
    domain = state.get("domain", account["domain_id"]) or {}
    return {"account": account["name"], "domainid": account["domain_id"], "domain": domain.get("name"),
            "domainpath": domain.get("path")}


def domain_fields(state: SimState, domain_id: str | None) -> dict:
    domain = state.get("domain", domain_id) or {}
    return {"domainid": domain.get("id"), "domain": domain.get("name"), "domainpath": domain.get("path")}


def zone_name(state: SimState, zone_id: str | None) -> str | None:
    zone = state.get("zone", zone_id)
    return zone["name"] if zone else None


def success(displaytext: str | None = None) -> dict:
    body: dict = {"success": True}
    if displaytext:
        body["displaytext"] = displaytext
    return body
