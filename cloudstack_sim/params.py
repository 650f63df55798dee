"""Request parameters as CloudStack's ``ParamProcessWorker`` sees them.

Each declared parameter is checked in declaration order: a missing required one is a 431 "due to
missing parameter", a malformed number a 431 "due to invalid value <v> for parameter <p>", and a
UUID that names no entity a 431 "Invalid parameter <p> value=<uuid> ...". MAP parameters arrive as
``name[i].key=value`` and become a list of dicts ordered by index; LIST parameters are
comma-separated. Parameter names are matched without regard to case, as CloudStack does for the
``apiKey``/``signatureVersion`` spellings clients send - but a map entry's own key keeps its case
(``details[0].UEFI`` is the detail ``UEFI``).
"""

from __future__ import annotations

import re
from typing import Callable, Mapping

from .errors import bad_value, missing_parameter, unknown_entity
from .spec import CommandSpec, Param

MAP_KEY = re.compile(r"^([a-z0-9_]+)\[(\d+)\]\.(.+)$")
INTEGER_TYPES = {"INTEGER", "LONG", "SHORT"}
EntityExists = Callable[[str | None, str], bool]


def lowercase_names(raw: Mapping[str, str]) -> dict[str, str]:
    return {lowercase_name(name): value for name, value in raw.items()}


def lowercase_name(name: str) -> str:
    base, bracket, entry = name.partition("[")
    return base.lower() + bracket + entry


def collect_maps(params: Mapping[str, str]) -> dict[str, list[dict[str, str]]]:
    """``tags[0].key=a&tags[0].value=b`` -> ``{"tags": [{"key": "a", "value": "b"}]}``."""
    grouped: dict[str, dict[int, dict[str, str]]] = {}
    for name, value in params.items():
        match = MAP_KEY.match(name)
        if match:
            base, index, field = match.groups()
            grouped.setdefault(base, {}).setdefault(int(index), {})[field] = value
    return {base: [entries[i] for i in sorted(entries)] for base, entries in grouped.items()}


def parse_params(spec: CommandSpec, params: Mapping[str, str], exists: EntityExists) -> dict[str, object]:
    """Typed values of the declared parameters present in ``params`` (names already lowercased)."""
    maps = collect_maps(params)
    values: dict[str, object] = {}
    for param in spec.params:
        if param.type == "MAP":
            if param.name in maps:
                values[param.name] = maps[param.name]
            elif param.required:
                raise missing_parameter(spec.wrapper, param.name)
            continue
        raw = params.get(param.name)
        if raw is None:
            if param.required:
                raise missing_parameter(spec.wrapper, param.name)
            continue
        values[param.name] = convert(spec, param, raw, exists)
    return values


def convert(spec: CommandSpec, param: Param, raw: str, exists: EntityExists) -> object:
    if param.type in INTEGER_TYPES:
        return to_int(spec, param.name, raw)
    if param.type == "BOOLEAN":
        return raw.strip().lower() == "true"    # Java Boolean.valueOf: anything else is false
    if param.type == "UUID":
        return check_entity(spec, param, raw.strip(), exists)
    if param.type == "LIST":
        items = [item.strip() for item in raw.split(",") if item.strip()]
        if param.collection == "UUID":
            return [check_entity(spec, param, item, exists) for item in items]
        if param.collection in INTEGER_TYPES:
            return [to_int(spec, param.name, item) for item in items]
        return items
    return raw


def to_int(spec: CommandSpec, name: str, raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise bad_value(spec.wrapper, name, raw) from None


def check_entity(spec: CommandSpec, param: Param, value: str, exists: EntityExists) -> str:
    if not exists(param.entity, value):
        raise unknown_entity(spec.wrapper, param.name, value)
    return value
