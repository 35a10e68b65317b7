"""SQLite's transactions take turns in one process; urgent ones (a platform waiting for its
webhook's answer) go before the ordinary queue, and a cancelled waiter never stalls it."""

from __future__ import annotations

import asyncio

from storage.database import Turns


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)  # let every ready task take its step (no time passes)


async def test_an_urgent_waiter_goes_before_the_ordinary_queue() -> None:
    turns = Turns()
    order: list[str] = []
    release = asyncio.Event()

    async def work(name: str, *, urgent: bool = False, wait: bool = False) -> None:
        async with turns.hold(urgent=urgent):
            order.append(name)
            if wait:
                await release.wait()

    first = asyncio.create_task(work("first", wait=True))
    await _settle()
    others = [asyncio.create_task(work(f"turn {n}")) for n in range(3)]
    await _settle()
    urgent = asyncio.create_task(work("webhook", urgent=True))
    await _settle()
    assert order == ["first"]
    release.set()
    await asyncio.gather(first, *others, urgent)
    assert order == ["first", "webhook", "turn 0", "turn 1", "turn 2"]


async def test_a_waiter_cancelled_in_the_queue_is_skipped() -> None:
    turns = Turns()
    order: list[str] = []
    release = asyncio.Event()

    async def work(name: str) -> None:
        async with turns.hold():
            order.append(name)
            if name == "first":
                await release.wait()

    first = asyncio.create_task(work("first"))
    await _settle()
    gone, after = asyncio.create_task(work("gone")), asyncio.create_task(work("after"))
    await _settle()
    gone.cancel()
    await _settle()
    release.set()
    await asyncio.gather(first, after)
    assert gone.cancelled()
    assert order == ["first", "after"]


async def test_a_waiter_cancelled_just_as_its_turn_came_passes_it_on() -> None:
    turns = Turns()
    order: list[str] = []

    async def work(name: str) -> None:
        async with turns.hold():
            order.append(name)

    async with turns.hold():
        unlucky, next_one = asyncio.create_task(work("unlucky")), asyncio.create_task(work("next"))
        await _settle()
    # The turn was just handed to "unlucky", which has not resumed yet; it is cancelled now.
    unlucky.cancel()
    await asyncio.gather(unlucky, next_one, return_exceptions=True)
    assert unlucky.cancelled()
    assert order == ["next"]
    async with asyncio.timeout(1):  # and the turn is free again
        async with turns.hold():
            order.append("free")
    assert order == ["next", "free"]
