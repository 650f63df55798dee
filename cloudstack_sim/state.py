"""The simulated management server's memory: records by kind, indexed by uuid and by account.

Every resource is a plain JSON-able dict (a *record*) with an ``id`` (uuid) and, when an account
owns it, an ``account_id``. ``Store`` keeps one kind's records in creation order with a per-account
index, so "the caller's VMs" never scans other accounts. Rendered response objects are cached per
record (dict and JSON text) until ``touch`` drops them. The whole state is saved as JSON (records
only; caches and indexes are rebuilt on load).
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .config import SimConfig
from .faults import Faults
from .render import RENDERERS

KINDS = ("domain", "account", "user", "zone", "os_type", "service_offering", "disk_offering",
         "network_offering", "vpc_offering", "template", "network", "vpc", "vm", "volume", "snapshot",
         "security_group", "keypair", "public_ip", "tag", "job")

# Response classes named by @Parameter(entityType=...) -> the record kind they refer to.
ENTITY_KINDS = {
    "DomainResponse": "domain", "AccountResponse": "account", "UserResponse": "user",
    "ZoneResponse": "zone", "GuestOSResponse": "os_type", "ServiceOfferingResponse": "service_offering",
    "DiskOfferingResponse": "disk_offering", "NetworkOfferingResponse": "network_offering",
    "VpcOfferingResponse": "vpc_offering", "TemplateResponse": "template", "NetworkResponse": "network",
    "VpcResponse": "vpc", "UserVmResponse": "vm", "VolumeResponse": "volume", "SnapshotResponse": "snapshot",
    "SecurityGroupResponse": "security_group", "SSHKeyPairResponse": "keypair", "IPAddressResponse": "public_ip",
    "AsyncJobResponse": "job", "SecurityGroupRuleResponse": "sg_rule", "TemplatePermissionsResponse": "template",
}
# Entities without a store of their own (e.g. OS categories) register a check here.
ENTITY_CHECKS: dict[str, "Callable[[SimState, str], bool]"] = {}
SCHEMA_VERSION = 1


class Store:
    """One kind's records: by uuid (insertion ordered) and by owning account."""

    def __init__(self) -> None:
        self.rows: dict[str, dict] = {}
        self.by_account: dict[str, dict[str, dict]] = {}

    def add(self, record: dict) -> dict:
        self.rows[record["id"]] = record
        owner = record.get("account_id")
        if owner:
            self.by_account.setdefault(owner, {})[record["id"]] = record
        return record

    def remove(self, record_id: str) -> dict | None:
        record = self.rows.pop(record_id, None)
        if record and record.get("account_id"):
            self.by_account.get(record["account_id"], {}).pop(record_id, None)
        return record

    def get(self, record_id: str) -> dict | None:
        return self.rows.get(record_id)

    def owned_by(self, account_id: str) -> Iterable[dict]:
        return self.by_account.get(account_id, {}).values()

    def __iter__(self) -> Iterator[dict]:
        return iter(self.rows.values())

    def __len__(self) -> int:
        return len(self.rows)


def new_uuid() -> str:
    return str(uuid.uuid4())


def new_key() -> str:
    """CloudStack's 86-character URL-safe base64 api/secret keys."""
    return secrets.token_urlsafe(64)[:86]


class SimState:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.stores: dict[str, Store] = {kind: Store() for kind in KINDS}
        self.sequences: Counter = Counter()           # internal numeric ids (instance names, ...)
        self.allocated_ips: dict[str, set[str]] = {}  # pool id -> addresses in use
        self._ip_cursor: dict[str, int] = {}
        self.call_counts: Counter = Counter()
        self.faults = Faults(config.faults, config.fault_seed)
        self.keys_by_apikey: dict[str, str] = {}      # lowercased api key -> user id
        self.rule_index: dict[str, str] = {}          # security group rule id -> group id
        self.tags_by_resource: dict[str, list[dict]] = {}
        # uuids of removed records: ParamProcessWorker resolves uuids "including removed", so a
        # deleted object's id is still a valid parameter value (lists then come back empty).
        self.removed: dict[str, set[str]] = {kind: set() for kind in KINDS}
        self._cache: dict[tuple, tuple[dict, str | None]] = {}
        self.dirty = False
        self.jobs = None      # set by jobs.JobQueue
        self.shutdown = None  # asyncio.Event set when the server stops (ends stalled requests)

    # -- records -------------------------------------------------------------------------------
    def store(self, kind: str) -> Store:
        return self.stores[kind]

    def get(self, kind: str, record_id: str | None) -> dict | None:
        return self.stores[kind].get(record_id) if record_id else None

    def add(self, kind: str, record: dict) -> dict:
        record.setdefault("id", new_uuid())
        record.setdefault("created", time.time())
        self.stores[kind].add(record)
        self.index(kind, record)
        self.changed()
        return record

    def remove(self, kind: str, record: dict) -> None:
        self.stores[kind].remove(record["id"])
        if kind != "tag":
            self.removed[kind].add(record["id"])
        self.touch(record)
        if kind == "user":
            self.keys_by_apikey.pop((record.get("apikey") or "").lower(), None)
        self.drop_tags(record["id"])
        self.changed()

    def drop_tags(self, resource_id: str) -> None:
        """Forget the tags of a removed resource (CloudStack deletes them with the object)."""
        for tag in self.tags_by_resource.pop(resource_id, []):
            self.stores["tag"].remove(tag["id"])

    def index(self, kind: str, record: dict) -> None:
        if kind == "user" and record.get("apikey"):
            self.keys_by_apikey[record["apikey"].lower()] = record["id"]
        elif kind == "security_group":
            for rule in record["ingress"] + record["egress"]:
                self.rule_index[rule["ruleid"]] = record["id"]
        elif kind == "tag":
            self.tags_by_resource.setdefault(record["resource_id"], []).append(record)

    def exists(self, entity: str | None, record_id: str) -> bool:
        kind = ENTITY_KINDS.get(entity or "")
        if kind is None:
            check = ENTITY_CHECKS.get(entity or "")
            return bool(check and check(self, record_id))
        if kind == "sg_rule":
            return record_id in self.rule_index
        return record_id in self.stores[kind].rows or record_id in self.removed.get(kind, ())

    def next_seq(self, kind: str) -> int:
        self.sequences[kind] += 1
        return self.sequences[kind]

    def changed(self) -> None:
        self.dirty = True

    # -- rendering cache -----------------------------------------------------------------------
    def render(self, kind: str, record: dict, variant: str | None = None) -> dict:
        key = (record["id"], variant)
        cached = self._cache.get(key)
        if cached is None:
            cached = (RENDERERS[kind](self, record, variant) if variant else RENDERERS[kind](self, record), None)
            self._cache[key] = cached
        return cached[0]

    def render_json(self, kind: str, record: dict, variant: str | None = None) -> str:
        key = (record["id"], variant)
        rendered = self.render(kind, record, variant)
        text = self._cache[key][1]
        if text is None:
            text = json.dumps(rendered, separators=(",", ":"), ensure_ascii=False)
            self._cache[key] = (rendered, text)
        return text

    def touch(self, record: dict, variants: Iterable[str | None] = (None,)) -> None:
        """Forget the rendered form of ``record`` after it changed."""
        for variant in variants:
            self._cache.pop((record["id"], variant), None)
        for variant in record.get("zone_ids", ()):   # per-zone renderings (templates)
            self._cache.pop((record["id"], variant), None)
        self.changed()

    # -- tags ----------------------------------------------------------------------------------
    def tags_of(self, record_id: str) -> list[dict]:
        return [RENDERERS["tag"](self, tag) for tag in self.tags_by_resource.get(record_id, [])]

    # -- IP pools ------------------------------------------------------------------------------
    def allocate_ip(self, pool_id: str, cidr: str, gateway: str | None = None) -> str:
        """A free host address of ``cidr``, never the gateway; handed out round-robin from a cursor
        (CloudStack picks any free address), so allocation stays O(1) for large pools."""
        taken = self.allocated_ips.setdefault(pool_id, set())
        network = ipaddress.ip_network(cidr, strict=False)
        first, last = int(network.network_address) + 1, int(network.broadcast_address) - 1
        size = last - first + 1
        gateway = gateway or str(ipaddress.ip_address(first))
        start = self._ip_cursor.get(pool_id, 0)
        for offset in range(size):
            position = (start + offset) % size
            text = str(ipaddress.ip_address(first + position))
            if text not in taken and text != gateway:
                taken.add(text)
                self._ip_cursor[pool_id] = position + 1
                self.changed()
                return text
        raise LookupError(cidr)

    def reserve_ip(self, pool_id: str, address: str) -> bool:
        taken = self.allocated_ips.setdefault(pool_id, set())
        if address in taken:
            return False
        taken.add(address)
        self.changed()
        return True

    def release_ip(self, pool_id: str, address: str | None) -> None:
        taken = self.allocated_ips.get(pool_id)
        if taken and address in taken:
            taken.discard(address)
            self.changed()

    # -- bulk helpers ----------------------------------------------------------------------------
    def seed_vms(self, account: str, count: int, **options) -> list[dict]:
        """``count`` Running VMs (root volume, NIC, default group) for ``account``, without jobs."""
        from .commands.vm import seed_vms   # the VM area owns VM construction
        return seed_vms(self, account, count, **options)

    # -- persistence ---------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"schema": SCHEMA_VERSION,
                "records": {kind: list(store.rows.values()) for kind, store in self.stores.items()},
                "sequences": dict(self.sequences),
                "allocated_ips": {pool: sorted(ips) for pool, ips in self.allocated_ips.items()},
                "removed": {kind: sorted(ids) for kind, ids in self.removed.items()}}

    def load_json(self, data: dict) -> None:
        if data.get("schema") != SCHEMA_VERSION:
            raise ValueError(f"unsupported simulator state schema {data.get('schema')!r}")
        self.stores = {kind: Store() for kind in KINDS}
        self.keys_by_apikey, self.rule_index, self.tags_by_resource, self._cache = {}, {}, {}, {}
        for kind in KINDS:
            for record in data["records"].get(kind, []):
                self.stores[kind].add(record)
                self.index(kind, record)
        self.sequences = Counter(data.get("sequences", {}))
        self.removed = {kind: set(data.get("removed", {}).get(kind, [])) for kind in KINDS}
        self.allocated_ips = {pool: set(ips) for pool, ips in data.get("allocated_ips", {}).items()}

    def save(self, path: Path) -> None:
        """Write atomically so a crash mid-save never leaves half a state file.

        The state holds users' secret keys, as CloudStack's database does: owner-only access.
        """
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(self.to_json(), separators=(",", ":")))
        os.replace(tmp, path)
        self.dirty = False

    def load(self, path: Path) -> None:
        self.load_json(json.loads(path.read_text()))
        self.dirty = False
