"""Rendering records into CloudStack response objects, with gson's conventions.

gson drops null fields, so renderers build dicts and ``compact`` removes ``None`` values. Dates
use ``yyyy-MM-dd'T'HH:mm:ssZ`` (``2021-10-04T09:24:38+0000``). Renderers register per record kind
with ``@renderer("vm")``; the state caches each rendered object (and its JSON text) until the
record is touched, so a listing of thousands of objects is mostly a string join.
"""

from __future__ import annotations

import time
from typing import Callable

RENDERERS: dict[str, Callable] = {}


def renderer(kind: str) -> Callable[[Callable], Callable]:
    def register(fn: Callable) -> Callable:
        RENDERERS[kind] = fn
        return fn
    return register


def cs_date(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(epoch))


def compact(fields: dict) -> dict:
    """Drop ``None`` values the way gson omits null fields."""
    return {name: value for name, value in fields.items() if value is not None}
