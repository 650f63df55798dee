"""The command table: CloudStack's facts about each command plus the handler that implements it.

Facts (Java class, async flags, response keys, parameters) come from ``data/api.json``, generated
from the shared reference by ``tools/gen_api_data.py``. Handlers live in ``commands/<area>.py`` and
register with ``@command("deployVirtualMachine")``; an area is added by writing a new module and
listing it in ``commands/__init__.py`` - nothing else changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

DATA_FILE = Path(__file__).resolve().parent / "data" / "api.json"


@dataclass(frozen=True)
class Param:
    name: str
    type: str                 # CloudStack CommandType: STRING, UUID, INTEGER, LONG, BOOLEAN, LIST, MAP, ...
    required: bool
    entity: str | None        # response class naming the entity a UUID refers to
    collection: str | None    # element type of a LIST


@dataclass(frozen=True)
class CommandSpec:
    name: str
    java_class: str
    is_async: bool
    async_create: bool
    is_list: bool
    wrapper: str
    object_key: str
    params: tuple[Param, ...]


@dataclass(frozen=True)
class Command:
    spec: CommandSpec
    handler: Callable


def _load_specs() -> tuple[dict[str, CommandSpec], dict[str, dict]]:
    data = json.loads(DATA_FILE.read_text())
    specs = {}
    for name, entry in data["commands"].items():
        params = tuple(Param(*row) for row in entry["params"])
        specs[name] = CommandSpec(name, entry["java"], entry["async"], entry["async_create"], entry["list"],
                                  entry["wrapper"], entry["object"], params)
    return specs, data["listapis"]


SPECS, DISCOVERY = _load_specs()
COMMANDS: dict[str, Command] = {}


def command(name: str) -> Callable[[Callable], Callable]:
    """Register ``handler`` as the implementation of CloudStack command ``name``."""
    spec = SPECS[name]

    def register(handler: Callable) -> Callable:
        if name in COMMANDS:
            raise ValueError(f"{name} registered twice")
        COMMANDS[name] = Command(spec, handler)
        return handler
    return register
