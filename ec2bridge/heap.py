"""Giving memory back to the operating system after very large answers.

A DescribeInstances over thousands of instances builds tens of MB of short-lived objects; a
burst of them at once (16 concurrent 10,000-instance describes take some 800 MB) leaves the
allocator's free pages in the process, where glibc keeps them: the worker then stays that
large long after the burst. ``malloc_trim(0)`` hands free pages in the middle of the heap
back as well, at a cost of a few milliseconds, so it runs only after an answer of
``LARGE_ANSWER_BYTES`` or more, once the answer has been handed to the transport. Where the
C library has no ``malloc_trim`` (not glibc), nothing is done.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util

LARGE_ANSWER_BYTES = 4 << 20


def _load_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_TRIM = _load_trim()


def after_answer(size: int) -> None:
    """Schedule the heap trim after an answer of ``size`` bytes, if it is large."""
    if _TRIM is not None and size >= LARGE_ANSWER_BYTES:
        asyncio.get_running_loop().call_soon(_TRIM, 0)
