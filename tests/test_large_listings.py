"""Whole-account listings of a large or not yet known fleet wait for one of a few slots per
process; fleets known to be small never wait."""

from __future__ import annotations

import asyncio

import pytest

from mappings.instance_view import LargeListings


class Listing:
    """A listing that reports how many ran at once and finishes when released."""

    def __init__(self, size: int):
        self.size = size
        self.running = self.most = 0
        self.release = asyncio.Event()

    async def __call__(self) -> list[dict]:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await self.release.wait()
            return [{}] * self.size
        finally:
            self.running -= 1


async def known(gate: LargeListings, caller: str, size: int) -> None:
    """Let ``gate`` see one listing of ``size`` VMs for ``caller``."""
    listing = Listing(size)
    listing.release.set()
    await gate.run(caller, listing())


async def known_large(gate: LargeListings, caller: str) -> None:
    await known(gate, caller, LargeListings.LARGE)


async def known_small(gate: LargeListings, caller: str) -> None:
    await known(gate, caller, LargeListings.LARGE - 1)


async def run_together(gate: LargeListings, caller: str, listing: Listing, count: int) -> list:
    calls = [asyncio.create_task(gate.run(caller, listing())) for _ in range(count)]
    await asyncio.sleep(0.01)
    listing.release.set()
    return await asyncio.gather(*calls)


async def test_a_fleet_known_to_be_small_is_not_gated():
    gate = LargeListings()
    await known_small(gate, "small")
    small = Listing(LargeListings.LARGE - 1)
    await run_together(gate, "small", small, 6)
    assert small.most == 6


async def test_a_fleet_of_unknown_size_waits_for_a_slot():
    """A process's first listings of an account may be of 10,000 VMs each."""
    gate = LargeListings()
    first = Listing(LargeListings.LARGE * 5)
    await run_together(gate, "new", first, 4)
    assert first.most == LargeListings.SLOTS


async def test_a_large_fleet_waits_for_a_slot():
    gate = LargeListings()
    await known_large(gate, "big")
    later = Listing(LargeListings.LARGE)
    results = await run_together(gate, "big", later, 6)
    assert later.most == LargeListings.SLOTS and [len(r) for r in results] == [LargeListings.LARGE] * 6
    await known_small(gate, "other caller")
    other = Listing(10)
    await run_together(gate, "other caller", other, 3)   # another caller's small fleet is not held up
    assert other.most == 3


async def test_a_failed_listing_frees_its_slot():
    gate = LargeListings()
    await known_large(gate, "big")

    async def failing():
        raise RuntimeError("CloudStack went away")

    for _ in range(LargeListings.SLOTS + 1):
        with pytest.raises(RuntimeError):
            await gate.run("big", failing())
    again = Listing(LargeListings.LARGE)
    again.release.set()
    assert len(await asyncio.wait_for(gate.run("big", again()), 1)) == LargeListings.LARGE
