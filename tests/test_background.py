"""The process's background instance tasks stop when the bridge shuts down."""

from __future__ import annotations

import asyncio

from mappings.instance_tasks import Background


async def test_closing_cancels_the_running_tasks_and_waits_for_them():
    background = Background()
    ended = []

    async def forever(name: str) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            ended.append(name)

    tasks = [background.spawn(forever(name), name) for name in ("a", "b")]
    await asyncio.sleep(0)
    await background.aclose()
    assert sorted(ended) == ["a", "b"] and all(task.cancelled() for task in tasks)
    await asyncio.wait_for(background.drain(), 1)  # nothing left to wait for
