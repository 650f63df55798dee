"""The record types of the mapping table: what one EC2 action is, declared as data.

- :class:`Action`: an action run by a small function (``handler(ctx, request) -> output``).
- :class:`Describe`: a Describe* action. It declares where its items come from (``source``),
  which request parameters select items by key (``selectors``), its filters as paths into the
  EC2-shaped item, its sort key and whether AWS pages it. The describe engine does the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping

from ec2bridge.describe import Paging
from ec2bridge.errors import EC2Error

Handler = Callable[[Any, dict], Awaitable[dict]]
Source = Callable[[Any, dict], Awaitable[list[dict]]]


@dataclass(frozen=True)
class Action:
    """``errors`` maps a CloudStack parameter to (EC2 id kind, request member), so that a
    CloudStack "no such object" on that parameter becomes that kind's NotFound."""

    name: str
    handler: Handler
    mutating: bool = True
    errors: Mapping[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Selector:
    """A request parameter listing keys of wanted items (``KeyNames``, ``ImageIds``...)."""

    param: str
    field: str
    not_found: Callable[[list[str]], EC2Error]
    kind: str | None = None  # EC2 id kind whose format the values must have


@dataclass(frozen=True)
class Describe:
    name: str
    result_key: str
    source: Source
    sort_key: str
    filters: Mapping[str, str] = field(default_factory=dict)
    selectors: tuple[Selector, ...] = ()
    paging: Paging | None = None
    taggable: bool = True
    mutating: bool = False
    errors: Mapping[str, tuple[str, str]] = field(default_factory=dict)
