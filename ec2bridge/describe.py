"""The one describe engine: selection by key, filters, sorting and MaxResults/NextToken paging.

It works on items already shaped like the action's EC2 output (plain dicts keyed by botocore
member names), so every Describe action gets the same semantics:

- **Filters** (``Filter.N.Name`` / ``Filter.N.Value.M``): each filter name maps to a dotted path
  in the EC2 item (``"Attachments.Device"``); lists on the way fan out. Values are OR'd,
  filters AND'd, ``*`` and ``?`` are wildcards (``\\*`` a literal star), booleans compare as
  ``true``/``false``. ``tag:<key>``, ``tag-key`` and ``tag-value`` work on every kind with
  ``Tags``. An unknown filter is ``InvalidParameterValue``, as AWS answers.
- **Paging**: keyset paging on the sort key. The token carries the last key returned, signed
  with an HMAC so a tampered token is rejected, and a page boundary stays correct when items
  are added or removed between calls.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping, Sequence

from ec2bridge.errors import EC2Error

Item = dict[str, Any]
Predicate = Callable[[Item], bool]


def invalid_filter(name: str) -> EC2Error:
    return EC2Error("InvalidParameterValue", f"The filter '{name}' is invalid")


def _pattern(value: str) -> re.Pattern[str]:
    """AWS filter wildcards: ``*`` any run, ``?`` one character, backslash escapes either."""
    out, chars = [], iter(value)
    for ch in chars:
        if ch == "\\":
            out.append(re.escape(next(chars, "\\")))
        elif ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return str(value)


def values_at(item: Any, path: Sequence[str]) -> Iterable[Any]:
    """Every value at ``path``; a list on the way yields from each element."""
    if isinstance(item, list):
        for element in item:
            yield from values_at(element, path)
        return
    if not path:
        if item is not None:
            yield item
        return
    if isinstance(item, dict):
        yield from values_at(item.get(path[0]), path[1:])


def _matcher(values: Sequence[str]) -> Callable[[Any], bool]:
    patterns = [_pattern(v) for v in values]
    return lambda value: any(p.fullmatch(_text(value)) for p in patterns)


def _tag_predicate(name: str, match: Callable[[Any], bool]) -> Predicate | None:
    if name.startswith("tag:"):
        key = name[4:]
        return lambda item: any(t.get("Key") == key and match(t.get("Value", "")) for t in item.get("Tags") or ())
    if name == "tag-key":
        return lambda item: any(match(t.get("Key")) for t in item.get("Tags") or ())
    if name == "tag-value":
        return lambda item: any(match(t.get("Value", "")) for t in item.get("Tags") or ())
    return None


def compile_filters(filters: Sequence[Mapping[str, Any]] | None, filter_map: Mapping[str, str],
                    taggable: bool) -> list[Predicate]:
    predicates: list[Predicate] = []
    for flt in filters or ():
        name, values = flt.get("Name"), flt.get("Values") or []
        if not name:
            raise EC2Error("InvalidParameterValue", "The filter name must not be empty")
        match = _matcher(values)
        tag_predicate = _tag_predicate(name, match) if taggable else None
        if tag_predicate:
            predicates.append(tag_predicate)
        elif name in filter_map:
            path = tuple(filter_map[name].split("."))
            predicates.append(lambda item, path=path, match=match: any(map(match, values_at(item, path))))
        else:
            raise invalid_filter(name)
    return predicates


def apply_filters(items: Iterable[Item], predicates: Sequence[Predicate]) -> list[Item]:
    if not predicates:
        return list(items)
    return [item for item in items if all(p(item) for p in predicates)]


@dataclass(frozen=True)
class Paging:
    """AWS's MaxResults bounds for one action."""

    minimum: int = 5
    maximum: int = 1000


class PageTokens:
    """Opaque, tamper-evident NextTokens carrying the last sort key of a page."""

    def __init__(self, secret: bytes):
        self._secret = secret

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]

    def issue(self, action: str, last_key: Any) -> str:
        payload = json.dumps([action, last_key], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(self._mac(payload) + payload).decode().rstrip("=")

    def read(self, action: str, token: str) -> Any:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            mac, payload = raw[:16], raw[16:]
            if len(mac) == 16 and hmac.compare_digest(mac, self._mac(payload)):
                token_action, last_key = json.loads(payload)
                if token_action == action:
                    return last_key
        except (ValueError, TypeError):
            pass
        raise EC2Error("InvalidNextToken" if action else "InvalidParameterValue", "The token is invalid or expired")


def check_max_results(max_results: int | None, paging: Paging | None, action: str) -> int | None:
    if max_results is None:
        return None
    if paging is None:
        raise EC2Error("InvalidParameterCombination", f"{action} does not support MaxResults")
    if not paging.minimum <= max_results <= paging.maximum:
        raise EC2Error("InvalidParameterValue",
                       f"Value ({max_results}) for parameter maxResults is invalid. "
                       f"Expecting a value between {paging.minimum} and {paging.maximum}.")
    return max_results


def paginate(items: list[Item], sort_key: Callable[[Item], Any], max_results: int | None,
             after: Any, tokens: PageTokens, action: str) -> tuple[list[Item], str | None]:
    """Sort, skip past ``after``, cut at ``max_results``; return the page and its NextToken."""
    ordered = sorted(items, key=sort_key)
    if after is not None:
        ordered = [item for item in ordered if sort_key(item) > _restore(after)]
    if max_results is None or len(ordered) <= max_results:
        return ordered, None
    page = ordered[:max_results]
    return page, tokens.issue(action, sort_key(page[-1]))


def _restore(key: Any) -> Any:
    # JSON turns tuples into lists; sort keys are compared as tuples.
    return tuple(key) if isinstance(key, list) else key
