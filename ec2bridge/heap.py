"""Giving memory back to the operating system after very large answers.

A DescribeInstances over thousands of instances builds tens of MB of short-lived objects; a
burst of them at once (16 concurrent 10,000-instance describes take some 800 MB) leaves the
allocator's free pages in the process, where glibc keeps them: the worker then stays that
large long after the burst. ``malloc_trim(0)`` hands free pages in the middle of the heap
back as well, at a cost of a few milliseconds, so it runs only after an answer of
``LARGE_ANSWER_BYTES`` or more, once the answer has been sent.

Blocks of ``MMAP_THRESHOLD_BYTES`` or more (CloudStack pages, large answers) get mappings of
their own, unmapped as soon as they are freed (``mmap_large_blocks``). Left alone, glibc
raises that threshold to the largest block freed so far (up to 32 MB), so after one large
block the later ones are carved from the heap, where a burst leaves them fragmented.

Where the C library lacks these functions (not glibc), nothing is done.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util

LARGE_ANSWER_BYTES = 4 << 20
MMAP_THRESHOLD_BYTES = 1 << 20
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h


def _libc_function(name: str):
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)
    except (OSError, AttributeError):
        return None


_TRIM = _libc_function("malloc_trim")
_MALLOPT = _libc_function("mallopt")


def mmap_large_blocks() -> bool:
    """Serve blocks of ``MMAP_THRESHOLD_BYTES`` or more from their own mappings; False where
    the C library cannot."""
    return _MALLOPT is not None and _MALLOPT(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1


def after_answer(size: int) -> None:
    """Schedule the heap trim after an answer of ``size`` bytes, if it is large."""
    if _TRIM is not None and size >= LARGE_ANSWER_BYTES:
        asyncio.get_running_loop().call_soon(_TRIM, 0)
