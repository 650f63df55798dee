"""One API call as a handler sees it: caller, typed parameters, ownership checks and list paging.

Visibility follows CloudStack's ``buildACLSearchParameters``: a normal user (account type 0) sees
only its own account's resources; a root admin (type 1) sees its own unless it passes
``listall=true`` (everything), ``account``+``domainid`` (that account) or ``id`` (that object).
Touching another account's object is a ``PermissionDeniedException`` (531). Paging follows
``BaseListCmd``: ``default.page.size`` is 500, ``pagesize=-1`` means unlimited, ``page`` without
``pagesize`` is an error, and ``count`` is the total before paging.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from .errors import ApiError, invalid_parameter, permission_denied
from .spec import CommandSpec
from .state import SimState

ADMIN, USER = 1, 0
DEFAULT_PAGE_SIZE = 500
KIND_LABELS = {"vm": "VM instance", "volume": "Volume", "snapshot": "Snapshot", "template": "Template",
               "security_group": "SecurityGroup", "keypair": "SSHKeyPair", "public_ip": "IPAddress",
               "network": "Network", "vpc": "Vpc", "account": "Account", "user": "User"}


@dataclass
class Listing:
    """A list response: records of ``kind`` rendered through the cache, or ready-made dicts."""
    rows: list
    count: int
    kind: str | None = None
    variants: list | None = None   # per-row render variant (templates: zone id)


@dataclass
class Call:
    state: SimState
    spec: CommandSpec
    user: dict
    account: dict
    values: dict
    raw: dict = field(default_factory=dict)
    http_method: str = "GET"

    @property
    def is_admin(self) -> bool:
        return self.account["type"] == ADMIN

    def get(self, name: str, default=None):
        return self.values.get(name, default)

    # -- ownership -------------------------------------------------------------------------------
    def can_access(self, record: dict) -> bool:
        return self.is_admin or record.get("account_id") in (None, self.account["id"])

    def check_access(self, kind: str, record: dict) -> dict:
        if not self.can_access(record):
            # DomainChecker.checkAccess: "<caller> does not have permission to operate with resource <entity>"
            raise permission_denied(f"Acct[{self.account['id']}-{self.account['name']}] does not have permission "
                                    f"to operate with resource {KIND_LABELS.get(kind, kind)}[{record['id']}]")
        return record

    def owned(self, kind: str, record_id: str | None) -> dict:
        """The record behind an already validated uuid parameter, if the caller may touch it."""
        record = self.state.get(kind, record_id)
        if record is None:
            raise invalid_parameter(f"Unable to find {KIND_LABELS.get(kind, kind)} with id {record_id}")
        return self.check_access(kind, record)

    def owner_account(self) -> dict:
        """The account a new resource belongs to: ``account``+``domainid`` for admins, else the caller."""
        name, domain_id = self.get("account"), self.get("domainid")
        if name and self.is_admin:
            return self.find_account(name, domain_id)
        if name and name != self.account["name"]:
            raise permission_denied(f"Account {self.account['name']} does not have permission to act for "
                                    f"account {name}")
        return self.account

    def find_account(self, name: str, domain_id: str | None) -> dict:
        if not domain_id:
            raise invalid_parameter("Account name and domain id must be specified together")
        for account in self.state.store("account"):
            if account["name"] == name and account["domain_id"] == domain_id:
                return account
        raise invalid_parameter(f"Unable to find account {name} in domain id={domain_id}")

    # -- listing ---------------------------------------------------------------------------------
    def scoped(self, kind: str) -> Iterable[dict]:
        """The records of ``kind`` this list call may return, before filters."""
        store = self.state.store(kind)
        if self.get("account") and self.is_admin:
            return store.owned_by(self.find_account(self.get("account"), self.get("domainid"))["id"])
        if self.get("account") and self.get("account") != self.account["name"]:
            raise permission_denied(f"Account {self.account['name']} does not have permission to list "
                                    f"resources of account {self.get('account')}")
        if self.is_admin and (self.get("listall") or self.get("id") or self.get("ids")):
            return store
        return store.owned_by(self.account["id"])

    def filtered(self, rows: Iterable[dict], *, name_field: str = "name", name_exact: bool = True,
                 keyword_fields: tuple[str, ...] = ("name",)) -> list[dict]:
        """Apply the ``id``/``ids``/``name``/``keyword``/``tags`` filters CloudStack's list APIs share."""
        record_id, ids = self.get("id"), self.get("ids")
        if record_id:
            rows = [row for row in rows if row["id"] == record_id]
        if ids:
            wanted = set(ids)
            rows = [row for row in rows if row["id"] in wanted]
        name = self.get("name") if any(p.name == "name" for p in self.spec.params) else None
        if name:
            rows = [row for row in rows if matches_name(row.get(name_field), name, name_exact)]
        keyword = self.get("keyword")
        if keyword:
            needle = keyword.lower()
            rows = [row for row in rows if any(needle in str(row.get(f) or "").lower() for f in keyword_fields)]
        tags = self.get("tags")
        if tags and any(p.name == "tags" for p in self.spec.params):
            rows = [row for row in rows if has_tags(self.state, row["id"], tags)]
        return rows if isinstance(rows, list) else list(rows)

    def page(self, rows: list, kind: str | None = None, variants: list | None = None) -> Listing:
        start, size = page_window(self)
        end = None if size is None else start + size
        return Listing(rows[start:end], len(rows), kind, variants[start:end] if variants else None)


def matches_name(value: str | None, wanted: str, exact: bool) -> bool:
    if value is None:
        return False
    return value == wanted if exact else wanted.lower() in value.lower()


def has_tags(state: SimState, record_id: str, wanted: list[dict]) -> bool:
    tags = state.tags_by_resource.get(record_id, [])
    present = {(tag["key"], tag["value"]) for tag in tags}
    keys = {tag["key"] for tag in tags}
    for entry in wanted:
        key, value = entry.get("key"), entry.get("value")
        if key is None or (value is None and key not in keys) or (value is not None and (key, value) not in present):
            return False
    return True


def page_window(call: Call) -> tuple[int, int | None]:
    page, size = call.get("page"), call.get("pagesize")
    if size is not None and size != -1 and (size < 1 or size > DEFAULT_PAGE_SIZE):
        if size > DEFAULT_PAGE_SIZE:
            raise invalid_parameter(f"Page size can't exceed max allowed page size value: {DEFAULT_PAGE_SIZE}")
        raise invalid_parameter("Page size should be greater than 0")
    if page is not None and size is None:
        raise invalid_parameter("\"pagesize\" parameter is required when \"page\" is specified")
    if size == -1:
        return 0, None
    size = size or DEFAULT_PAGE_SIZE
    page = page or 1
    if page < 1:
        raise invalid_parameter("Page should be greater than 0")
    return (page - 1) * size, size


Handler = Callable[[Call], object]
__all__ = ["ApiError", "Call", "Listing", "ADMIN", "USER"]
