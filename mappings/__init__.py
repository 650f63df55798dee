"""The declarative EC2-to-CloudStack mapping table: one record per EC2 action.

Each module of this package holds the records of one area (``RECORDS``) with the small
conversion functions they use; ``actions()`` gathers every module's records by action name
for the server's dispatcher. A new area is a new module; nothing else needs to change.

The table is built on first use rather than at import, so that the engine may import the
record types (``mappings.records``) while area modules import the engine.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil


@functools.cache
def actions() -> dict:
    table: dict = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for record in getattr(module, "RECORDS", ()):
            if record.name in table:
                raise RuntimeError(f"{record.name} is mapped twice ({info.name})")
            table[record.name] = record
    return table


def __getattr__(name: str):
    if name == "ACTIONS":
        return actions()
    raise AttributeError(name)
