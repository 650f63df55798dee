"""Where Describe items come from: a CloudStack list command, converted to EC2 shape.

``FromCloudStack`` is the usual ``source`` of a :class:`mappings.records.Describe`:

- **push-down**: request parameters that CloudStack can filter on are sent along, so a large
  cloud is not listed whole to find one object (one id -> ``id``, one name -> ``name``, a
  ``tag:<key>`` filter with one plain value -> ``tags[0].key/value``). The describe engine
  still applies every selector and filter afterwards, so push-down only ever narrows.
- **ids**: the EC2 ids each object needs are minted in bulk before conversion (one store
  round trip per kind per page, not one per object); the converter reads them from an
  :class:`IdTable`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ec2bridge.describe import values_at
from mappings.common import cloudstack_tag_value


def owner_key(obj: Mapping[str, Any]) -> str:
    """The CloudStack account owning an object, as the id map and owner ids know it."""
    return f"{obj.get('domainid', '')}/{obj.get('account', '')}"


class IdTable:
    """EC2 ids prepared for one batch of CloudStack objects."""

    def __init__(self, table: dict[str, dict[tuple[str, str], str]]):
        self._table = table

    def ec2(self, kind: str, backend_id: str, owner: str) -> str:
        return self._table[kind][(backend_id, owner)]

    def get(self, kind: str, backend_id: str | None, owner: str) -> str | None:
        if backend_id is None:
            return None
        return self._table.get(kind, {}).get((backend_id, owner))


async def prepare_ids(ctx: Any, objects: list[dict], id_paths: Mapping[str, str]) -> IdTable:
    """Mint (or read) the EC2 ids at ``id_paths`` ({kind: "path.to.field"}) of every object."""
    table: dict[str, dict[tuple[str, str], str]] = {}
    for kind, path in id_paths.items():
        parts = tuple(path.split("."))
        wanted = list({(value, owner_key(obj)) for obj in objects for value in values_at(obj, parts)})
        table[kind] = await ctx.services.ids.ec2_ids(kind, wanted) if wanted else {}
    return IdTable(table)


@dataclass(frozen=True)
class PushId:
    """One EC2 id in ``member`` becomes CloudStack's ``param`` (the object's uuid)."""

    member: str
    kind: str
    param: str = "id"


@dataclass(frozen=True)
class PushValue:
    """One value in ``member`` is sent as CloudStack's ``param`` unchanged."""

    member: str
    param: str


Converter = Callable[[dict, IdTable], dict]


@dataclass(frozen=True)
class FromCloudStack:
    command: str
    convert: Converter
    params: Mapping[str, Any] = field(default_factory=dict)
    ids: Mapping[str, str] = field(default_factory=dict)
    pushdown: tuple[PushId | PushValue, ...] = ()
    push_tags: bool = True

    async def __call__(self, ctx: Any, request: dict) -> list[dict]:
        params = {**self.params, **await self._pushed(ctx, request)}
        objects = await ctx.cs_list(self.command, **params)
        ids = await prepare_ids(ctx, objects, self.ids)
        return [self.convert(obj, ids) for obj in objects]

    async def _pushed(self, ctx: Any, request: dict) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for push in self.pushdown:
            values = request.get(push.member) or []
            if len(values) != 1:
                continue
            if isinstance(push, PushId):
                record = await ctx.services.ids.backend_id(push.kind, values[0])
                params[push.param] = record.backend_id
            else:
                params[push.param] = values[0]
        if self.push_tags:
            params.update(_pushed_tag(request.get("Filters") or []))
        return params


def _pushed_tag(filters: list[dict]) -> dict[str, str]:
    for flt in filters:
        name, values = flt.get("Name", ""), flt.get("Values") or []
        if name.startswith("tag:") and len(values) == 1 and not any(c in values[0] for c in "*?\\"):
            return {"tags[0].key": name[4:], "tags[0].value": cloudstack_tag_value(values[0])}
    return {}
