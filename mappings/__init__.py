"""The declarative EC2-to-CloudStack mapping table: one record per EC2 action.

Each module of this package holds the records of one area (``RECORDS``) with the small
conversion functions they use; ``ACTIONS`` gathers every module's records by action name for
the server's dispatcher. A new area is a new module; nothing else needs to change.
"""

from __future__ import annotations

import importlib
import pkgutil

_SUPPORT_MODULES = {"records", "sources", "common"}


def _collect() -> dict:
    actions: dict = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name in _SUPPORT_MODULES:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for record in getattr(module, "RECORDS", ()):
            if record.name in actions:
                raise RuntimeError(f"{record.name} is mapped twice ({info.name})")
            actions[record.name] = record
    return actions


ACTIONS = _collect()
