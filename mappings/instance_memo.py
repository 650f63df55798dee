"""The EC2 item and XML of each instance, reused while everything it was built from is unchanged.

A DescribeInstances loop over a steady fleet parses, converts and renders the same VMs again
and again; that work (tens of microseconds an instance) was most of the call. Converting an
instance is a pure function of a few inputs: the VM as CloudStack listed it, its volumes,
the bridge's row for it, the DNS domains of its networks, the owner of its template, and EC2
ids, which never change once minted. :class:`InstanceMemo` keeps, per VM JSON text (as
CloudStack sent it, split from its page unparsed by ``CloudStackClient.list_raw``), a
fingerprint of the other inputs and the item built from them with its XML
(:class:`ec2bridge.protocol.serialize.Rendered`). A VM whose JSON and other inputs are the
same is then neither parsed nor converted nor rendered: its item is a copy of the kept one and
its XML is written as it is (one read-only object serves every call). Anything that differs (a state change, a new tag, a volume
attached) is a miss, and the VM is converted again. This costs a few microseconds an instance
per call and a few KB an instance of memory.

Correctness does not depend on the memo being current: a changed VM simply misses. It is
process-local (each bridge process keeps its own; nothing is shared or written through it)
and bounded: the least recently used entries go first, so a fleet larger than the memo misses.
Terminated instances are never kept: they leave the answer an hour later with no input changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ec2bridge.protocol.serialize import Rendered, prerender

INSTANCE_SHAPE = "Instance"
MEMO_MAX_ENTRIES = 20_000  # instances kept per process: a 10,000-instance fleet fits twice over


@dataclass(frozen=True, slots=True)
class Facts:
    """What a listing needs to know of a VM before converting it, kept so that a VM whose
    JSON is unchanged need not be parsed at all."""

    vm_id: str
    state: str
    template_id: str | None
    network_ids: tuple[str, ...]

    @classmethod
    def of(cls, vm: dict) -> "Facts":
        return cls(vm["id"], vm.get("state", ""), vm.get("templateid"),
                   tuple(nic["networkid"] for nic in vm.get("nic") or () if nic.get("networkid")))


class InstanceMemo:
    """Per VM JSON text (its hash): the VM's facts, the fingerprint of the other inputs, and
    the item built from them (a ``Rendered``).

    Built through ``ctx.services.store(InstanceMemo)``, which hands every store the database;
    the memo keeps nothing there.
    """

    def __init__(self, database: Any = None, max_entries: int = MEMO_MAX_ENTRIES):
        self._max_entries = max_entries
        self._entries: dict[int, tuple[Facts, int, Rendered]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def facts(self, vm_json: int) -> Facts | None:
        """The facts of a VM seen with this JSON (by its hash), marking the entry as used."""
        entry = self._entries.pop(vm_json, None)
        if entry is None:
            return None
        self._entries[vm_json] = entry  # now the most recently used
        return entry[0]

    def item(self, vm_json: int, others: int) -> Rendered | None:
        """The item built from this VM JSON and these other inputs, if kept (read-only)."""
        entry = self._entries.get(vm_json)
        return entry[2] if entry is not None and entry[1] == others else None

    def put(self, vm_json: int, facts: Facts, others: int, item: dict, private: tuple[str, ...],
            service: Any) -> dict:
        """Keep ``item`` (rendered without its ``private`` keys) and return it as kept;
        a terminated item is returned as it is and not kept."""
        self._entries.pop(vm_json, None)
        if item["State"]["Name"] == "terminated":
            return item
        kept = Rendered(item, INSTANCE_SHAPE, prerender(service, INSTANCE_SHAPE, _public(item, private)))
        if len(self._entries) >= self._max_entries:
            for old in list(self._entries)[: max(1, self._max_entries // 4)]:  # the least recently used
                del self._entries[old]
        if self._max_entries:
            self._entries[vm_json] = (facts, others, kept)
        return kept


def _public(item: dict, private: tuple[str, ...]) -> dict:
    return {key: value for key, value in item.items() if key not in private}
