"""Whole answers kept while nothing they were built from changed.

A client polling DescribeInstances over a steady fleet gets the same document every time,
yet each call converted, filtered, sorted and rendered every instance again. The memo keeps
the rendered answer of a request and hands it out again when the request is repeated on the
same **basis**: everything the answer was built from.

The basis has two parts:

- **What the action read outside the store**, given by the action when it calls
  ``RequestContext.reuse_answer(basis)`` after its backend reads and before its conversion:
  for DescribeInstances, the hash of every VM's JSON text as CloudStack listed it just now and
  the serials of the catalog listings used (:class:`mappings.zones.CatalogCache`).
- **The store's change stamp** (``SqliteDatabase.change_stamp``), taken at that same moment:
  a commit from any process since then, or a write by this one, makes the kept answer a miss.
  A store that cannot tell (``change_stamp()`` is None) disables the memo.

The **key** is who asks what: the action, the caller's access key, the API version and the
request as parsed from botocore's model (the signature and timestamps are not part of it). A
different caller never shares an entry, even for identical CloudStack listings.

What a basis cannot capture is the clock: an answer that holds anything time-dependent (a
terminated instance, which leaves the answer an hour later with no input changed) is marked
with ``RequestContext.answer_varies()`` and not kept. Errors are never kept; only answers
smaller than the streaming threshold are. The memo is process-local and bounded in bytes,
least recently used first out: correctness never depends on it, a changed input is a miss.
"""

from __future__ import annotations

from typing import Any, Hashable

import orjson

MAX_BYTES = 32 << 20  # rendered answers kept per process
MAX_ENTRIES = 4096


class KnownAnswer(Exception):
    """Raised by ``RequestContext.reuse_answer``: the request's answer is known already.

    Like aiohttp's ``HTTPException`` responses, it carries the answer out of the action; the
    query handler sends it. Only that handler catches it.
    """

    def __init__(self, pieces: tuple[bytes, ...]):
        super().__init__("known answer")
        self.pieces = pieces

    def body(self, request_id: str) -> bytes:
        return request_id.encode().join(self.pieces)


def answer_key(action: str, access_key: str, version: str, request: dict) -> tuple:
    """Who asks what: the memo's key for one request (see the module docstring)."""
    return action, access_key, version, orjson.dumps(request, option=orjson.OPT_SORT_KEYS, default=repr)


class AnswerMemo:
    """Rendered answers per request key, each with the basis it was built on.

    Built through ``ctx.services.store(AnswerMemo)``, which hands every store the database;
    the memo keeps nothing there.
    """

    def __init__(self, database: Any = None, max_bytes: int = MAX_BYTES, max_entries: int = MAX_ENTRIES):
        self._max_bytes = max_bytes
        self._max_entries = max_entries
        self._bytes = 0
        # key -> (basis, the body split around its request id)
        self._entries: dict[tuple, tuple[Hashable, tuple[bytes, ...]]] = {}
        self.hits = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: tuple) -> bool:
        return key in self._entries

    def known(self, key: tuple, basis: Hashable) -> tuple[bytes, ...] | None:
        """The kept answer to ``key`` if it was built on ``basis``, marking it as used."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        if entry[0] != basis:
            self._bytes -= _size(entry[1])
            return None
        self._entries[key] = entry  # now the most recently used
        self.hits += 1
        return entry[1]

    def keep(self, key: tuple, basis: Hashable, body: bytes, request_id: str) -> None:
        """Keep ``body``, the answer rendered for request ``request_id``."""
        pieces = tuple(body.split(request_id.encode()))
        size = _size(pieces)
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= _size(old[1])
        if size > self._max_bytes:
            return
        while self._entries and (self._bytes + size > self._max_bytes or len(self._entries) >= self._max_entries):
            oldest = next(iter(self._entries))
            self._bytes -= _size(self._entries.pop(oldest)[1])
        self._entries[key] = (basis, pieces)
        self._bytes += size


def _size(pieces: tuple[bytes, ...]) -> int:
    return sum(map(len, pieces))
