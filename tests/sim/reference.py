"""The shared CloudStack reference, loaded for the tests (never shipped with the package)."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

# shared/ sits beside the project checkout, for developers and CI alike.
REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "cloudstack"
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{4}$")


@lru_cache(maxsize=1)
def api_reference() -> dict:
    return json.loads((REFERENCE / "cloudstack_api_reference.json").read_text())


def command(name: str) -> dict:
    return next(c for c in api_reference()["commands"] if c["name"] == name)


def fields_of(response_class: str) -> dict[str, str]:
    return {f["name"]: f["type"] for f in api_reference()["response_objects"][response_class]["fields"]}


def type_problems(value, ref_type: str, path: str) -> list[str]:
    """Why ``value`` does not have the JSON type the reference gives ``ref_type`` (empty if it does)."""
    base = ref_type.split("(")[0].strip()
    nested = re.match(r"^(list|object)\[(\w+Response)\]$", ref_type)
    if nested:
        kind, cls = nested.groups()
        items = value if kind == "list" else [value]
        if kind == "list" and not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        if kind == "object" and not isinstance(value, dict):
            return [f"{path}: expected an object, got {type(value).__name__}"]
        problems = []
        for index, item in enumerate(items):
            problems += object_problems(item, cls, f"{path}[{index}]")
        return problems
    checks = {"string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
              "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
              "date": lambda v: isinstance(v, str) and bool(DATE.match(v)),
              "map": lambda v: isinstance(v, dict), "object": lambda v: isinstance(v, dict),
              "list[string]": lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
              "list[map]": lambda v: isinstance(v, list), "list[s]": lambda v: isinstance(v, list)}
    check = checks.get(ref_type) or checks.get(base)
    if check is None:
        return [f"{path}: reference type {ref_type} unknown to the test"]
    return [] if check(value) else [f"{path}: {value!r} is not {ref_type}"]


def object_problems(obj: dict, response_class: str, path: str) -> list[str]:
    if not isinstance(obj, dict):
        return [f"{path}: expected an object"]
    fields = fields_of(response_class)
    problems = []
    for name, value in obj.items():
        if name not in fields:
            problems.append(f"{path}.{name}: not a field of {response_class}")
        else:
            problems += type_problems(value, fields[name], f"{path}.{name}")
    return problems


def json_type(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__
