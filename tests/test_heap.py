"""The heap trim runs after large answers only, and only where the C library has it; large
blocks get mappings of their own."""

from __future__ import annotations

import asyncio

from ec2bridge import heap


async def test_trim_is_scheduled_after_large_answers_only(monkeypatch):
    calls = []
    monkeypatch.setattr(heap, "_TRIM", calls.append)
    heap.after_answer(heap.LARGE_ANSWER_BYTES - 1)
    await asyncio.sleep(0)
    assert calls == []
    heap.after_answer(heap.LARGE_ANSWER_BYTES)
    assert calls == []          # not during the request: once the loop comes round
    await asyncio.sleep(0)
    assert calls == [0]


async def test_no_trim_without_malloc_trim(monkeypatch):
    monkeypatch.setattr(heap, "_TRIM", None)
    heap.after_answer(heap.LARGE_ANSWER_BYTES * 2)   # nothing to call, nothing raised
    await asyncio.sleep(0)


def test_glibc_trim_is_found_here():
    # This machine's C library is glibc; the trim must be available and callable.
    assert heap._TRIM is not None and heap._TRIM(0) in (0, 1)


def test_large_blocks_get_their_own_mappings():
    assert heap.mmap_large_blocks()     # glibc accepted the threshold


def test_no_mallopt_no_change(monkeypatch):
    monkeypatch.setattr(heap, "_MALLOPT", None)
    assert not heap.mmap_large_blocks()
