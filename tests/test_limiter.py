"""The shared rate limiter, on a fake clock: buckets, priority, 429 windows, cancellation."""

from __future__ import annotations

import asyncio
import heapq
import math
import random
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

import pytest

from bot.delivery.limiter import Priority, RateLimiter

INTERACTIVE, BULK = Priority.INTERACTIVE, Priority.BULK
RATE, BURST = 25.0, 5


class FakeTime:
    """A clock and a sleep in virtual time: time moves only when every task is blocked.

    ``run`` lets all runnable tasks settle, then wakes the earliest sleeper with the clock set
    to its deadline, and so on until the tasks are done. Tasks blocked with no sleeper left
    means a stuck waiter, and fails the test.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self.seq = 0
        self.most_sleepers = 0  # most sleeps pending at once: a herd would show up here

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        fut = asyncio.get_running_loop().create_future()
        heapq.heappush(self.timers, (self.now + max(delay, 0.0), self.seq, fut))
        self.seq += 1
        self.most_sleepers = max(self.most_sleepers, sum(not f.done() for *_, f in self.timers))
        await fut

    async def settle(self) -> None:
        for _ in range(50):  # enough loop turns for every hand-over chain in these tests
            await asyncio.sleep(0)

    async def advance(self, until: float) -> None:
        """Run the sleepers due up to ``until``, then set the clock to it."""
        while True:
            await self.settle()
            self.timers = [t for t in self.timers if not t[2].done()]
            heapq.heapify(self.timers)
            if not self.timers or self.timers[0][0] > until:
                break
            when, _, fut = heapq.heappop(self.timers)
            self.now = max(self.now, when)
            fut.set_result(None)
        self.now = max(self.now, until)
        await self.settle()

    async def run(self, tasks: list[asyncio.Task[Any]]) -> None:
        while not all(task.done() for task in tasks):
            await self.settle()
            self.timers = [t for t in self.timers if not t[2].done()]
            heapq.heapify(self.timers)
            if all(task.done() for task in tasks):
                break
            assert self.timers, "tasks blocked with nothing to wake them: a stuck waiter"
            when, _, fut = heapq.heappop(self.timers)
            self.now = max(self.now, when)
            fut.set_result(None)
        for task in tasks:
            if not task.cancelled():
                task.result()


@pytest.fixture
def ft() -> FakeTime:
    return FakeTime()


def make(ft: FakeTime, **kwargs: Any) -> RateLimiter:
    return RateLimiter(clock=ft.clock, sleep=ft.sleep, **kwargs)


def sender(ft: FakeTime, limiter: RateLimiter, log: list[tuple[str, float]], chat: str,
           priority: Priority = INTERACTIVE, name: str | None = None) -> asyncio.Task[None]:
    """A task that acquires once and logs (name, time) when let through."""
    async def go() -> None:
        await limiter.acquire(chat, priority)
        log.append((name or chat, ft.now))
    return asyncio.create_task(go())


def times(log: list[tuple[str, float]]) -> list[float]:
    return [round(t, 6) for _, t in log]


async def test_uncontended_acquire_never_suspends(ft: FakeTime) -> None:
    limiter = make(ft)
    coro: Coroutine[Any, Any, None] = limiter.acquire("a")
    with pytest.raises(StopIteration):  # returns on the first step: no await taken
        coro.send(None)
    assert ft.seq == 0


async def test_three_message_reply_goes_at_once_the_fourth_waits_a_second(ft: FakeTime) -> None:
    limiter, log = make(ft), []
    tasks = [sender(ft, limiter, log, "a", name=str(i)) for i in range(5)]
    await ft.run(tasks)
    assert [n for n, _ in log] == ["0", "1", "2", "3", "4"]  # in order within a chat
    assert times(log) == [0, 0, 0, 1, 2]


async def test_overall_bucket_bursts_then_spreads_at_rate(ft: FakeTime) -> None:
    limiter, log = make(ft), []
    tasks = [sender(ft, limiter, log, f"c{i}") for i in range(12)]
    await ft.run(tasks)
    assert [n for n, _ in log] == [f"c{i}" for i in range(12)]  # FIFO
    assert times(log) == pytest.approx([0] * BURST + [k / RATE for k in range(1, 8)])


async def test_share_slows_this_process(ft: FakeTime) -> None:
    limiter, log = make(ft), []
    limiter.set_share(0.5)
    tasks = [sender(ft, limiter, log, f"c{i}") for i in range(BURST + 3)]
    await ft.run(tasks)
    assert times(log)[BURST:] == pytest.approx([k / (RATE / 2) for k in range(1, 4)])


@pytest.mark.parametrize("share", [0, -0.5, 1.01, math.nan])
def test_share_is_validated(ft: FakeTime, share: float) -> None:
    with pytest.raises(ValueError, match="share"):
        make(ft).set_share(share)


@pytest.mark.parametrize("kwargs", [{"rate": 0}, {"chat_rate": -1}, {"rate": math.inf},
                                    {"burst": 0}, {"chat_burst": 0}])
def test_settings_are_validated(ft: FakeTime, kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        make(ft, **kwargs)


async def test_interactive_goes_before_bulk_waiting_longer(ft: FakeTime) -> None:
    limiter, log = make(ft), []
    first = [sender(ft, limiter, log, f"x{i}") for i in range(BURST)]  # empty the bucket
    bulk = [sender(ft, limiter, log, f"b{i}", BULK) for i in range(3)]
    await ft.advance(0.01)  # the bulk ones are in line, the first asleep on the bucket
    replies = [sender(ft, limiter, log, f"i{i}", INTERACTIVE) for i in range(2)]
    await ft.run(first + bulk + replies)
    assert [n for n, _ in log][BURST:] == ["i0", "i1", "b0", "b1", "b2"]
    assert times(log)[BURST:] == pytest.approx([k / RATE for k in range(1, 6)])


async def test_fifo_within_each_priority(ft: FakeTime) -> None:
    limiter, log = make(ft, burst=1), []
    tasks = [sender(ft, limiter, log, f"{p.name}{i}", p) for i in range(10) for p in Priority]
    await ft.run(tasks)
    names = [n for n, _ in log]
    assert names[0] == "INTERACTIVE0"  # it found the token there
    assert [n for n in names if n.startswith("I")] == [f"INTERACTIVE{i}" for i in range(10)]
    assert [n for n in names if n.startswith("B")] == [f"BULK{i}" for i in range(10)]
    assert names.index("BULK0") > names.index("INTERACTIVE9")


async def test_global_pause_releases_waiters_at_rate_not_all_at_once(ft: FakeTime) -> None:
    limiter, log = make(ft), []
    limiter.pause(5)
    assert limiter.paused_until() == 5 and limiter.paused_until("anyone") == 5
    tasks = [sender(ft, limiter, log, f"c{i}") for i in range(100)]
    await ft.run(tasks)
    stamps = times(log)
    assert min(stamps) >= 5
    assert stamps.count(5) <= BURST
    for k, t in enumerate(stamps):  # the k-th waits for its token, and not much longer
        assert t == pytest.approx(5 + max(0, k - BURST + 1) / RATE)
    assert [n for n, _ in log] == [f"c{i}" for i in range(100)]
    assert ft.most_sleepers == 1  # one head sleeps; the other 99 wait to be woken
    assert limiter.paused_until() == 0


async def test_chat_pause_holds_only_that_chat(ft: FakeTime) -> None:
    limiter, log = make(ft), []
    limiter.pause(timedelta(seconds=3), "a")  # RetryAfter.retry_after as it comes
    assert limiter.paused_until("a") == 3 and limiter.paused_until() == 0
    tasks = [sender(ft, limiter, log, "a"), sender(ft, limiter, log, "b")]
    await ft.run(tasks)
    assert log == [("b", 0), ("a", 3)]


async def test_a_pause_only_extends(ft: FakeTime) -> None:
    limiter = make(ft)
    limiter.pause(10)
    limiter.pause(3)
    limiter.pause(4, "a")
    limiter.pause(2, "a")
    assert limiter.paused_until() == 10
    assert limiter.paused_until("a") == 10  # a chat is also held by the account's window
    await ft.advance(10)
    assert limiter.paused_until() == 0 and limiter.paused_until("a") == 0
    with pytest.raises(ValueError):
        limiter.pause(-1)
    with pytest.raises(ValueError):
        limiter.pause(math.inf, "a")


async def test_pause_while_queued_does_not_block_other_chats(ft: FakeTime) -> None:
    limiter, log = make(ft, burst=1), []
    tasks = [sender(ft, limiter, log, c) for c in ("x", "a", "b", "c")]
    await ft.advance(0.01)  # x went; a heads the line, b and c behind it
    limiter.pause(2, "a")  # until t=2.01
    limiter.pause(1)  # and the account: nothing at all before t=1.01
    await ft.run(tasks)
    assert log[0] == ("x", 0)
    assert [n for n, _ in log[1:]] == ["b", "c", "a"]
    assert times(log)[1:] == pytest.approx([1.01, 1.01 + 1 / RATE, 2.01])


async def test_cancelled_waiters_leave_no_trace(ft: FakeTime) -> None:
    limiter, log = make(ft, burst=1), []
    tasks = [sender(ft, limiter, log, c) for c in ("x", "head", "mid", "tail")]
    same_chat = [sender(ft, limiter, log, "x", name=f"x{i}") for i in range(2)]
    await ft.advance(0.01)
    tasks[2].cancel()  # one in the middle, waiting to be woken
    await ft.settle()
    tasks[1].cancel()  # the head of the overall line, asleep on the bucket
    same_chat[1].cancel()  # one queued behind its own chat
    await ft.run(tasks + same_chat)
    assert [n for n, _ in log] == ["x", "tail", "x0"]
    # The cancelled ones took no token: "tail" gets the first one after x's, then x0 (the
    # chat's second of three), then a newcomer: one token each, 1/RATE apart.
    late = [sender(ft, limiter, log, "new")]
    await ft.run(late)
    assert times(log) == pytest.approx([k / RATE for k in range(4)])


async def test_cancelled_during_a_global_pause(ft: FakeTime) -> None:
    limiter, log = make(ft), []
    limiter.pause(5)
    tasks = [sender(ft, limiter, log, f"c{i}") for i in range(3)]
    await ft.advance(1)
    tasks[0].cancel()  # the one asleep until the window ends
    await ft.run(tasks)
    assert log == [("c1", 5), ("c2", 5)]


async def test_idle_chats_are_forgotten(ft: FakeTime) -> None:
    limiter = make(ft, rate=1e6, burst=10_000)
    for i in range(1000):
        await limiter.acquire(f"c{i}")
    assert limiter.chat_count == 1000
    limiter.pause(60, "slow")
    await ft.advance(3.5)  # every bucket full again (3 tokens at 1/s)
    await limiter.acquire("next")
    assert limiter.chat_count == 2  # "next", and "slow" while its window is open
    await ft.advance(70)
    await limiter.acquire("later")
    assert limiter.chat_count == 1


async def test_paced_load_keeps_state_small(ft: FakeTime) -> None:
    limiter = make(ft)
    for i in range(2000):  # one message per chat at 20/s: 100 s of traffic
        await limiter.acquire(f"c{i}")
        await ft.advance(ft.now + 0.05)
        assert limiter.chat_count <= 2 * 3 / 0.05 + 1


@pytest.mark.parametrize("same_chat", [True, False])
async def test_cancelled_just_after_being_handed_the_turn(ft: FakeTime, same_chat: bool) -> None:
    """Woken (the chat handed over, or the head of the line), then cancelled before running:
    the turn passes on to the next one."""
    limiter, log = make(ft, burst=1), []
    victim: list[asyncio.Task[None]] = []

    async def first() -> None:
        await limiter.acquire("x")  # x's chat and the overall token...
        await limiter.acquire("x")  # ...and again, with the others queued behind it
        victim[0].cancel()  # our return just handed them the turn; they have not run yet
        log.append(("first", ft.now))

    chats = ("x", "x") if same_chat else ("y", "z")
    tasks = [asyncio.create_task(first())]
    await asyncio.sleep(0)
    victim.append(sender(ft, limiter, log, chats[0], name="victim"))
    tasks += [victim[0], sender(ft, limiter, log, chats[1], name="next")]
    await ft.run(tasks)
    assert victim[0].cancelled()
    assert [n for n, _ in log] == ["first", "next"]
    assert times(log) == pytest.approx([1 / RATE, 2 / RATE])


@pytest.mark.parametrize("seed", range(5))
async def test_random_traffic_keeps_every_limit(ft: FakeTime, seed: int) -> None:
    """Mixed chats and priorities arriving over time, 429s of both scopes, cancellations
    (seeded, so deterministic): no bucket is overdrawn, nothing goes out inside a window,
    and every acquire that was not cancelled completes."""
    rng = random.Random(seed)
    limiter, log = make(ft, rate=10.0, burst=3), []
    chat_of: dict[str, str] = {}
    windows: list[tuple[str | None, float, float]] = []
    tasks: list[asyncio.Task[None]] = []
    for i in range(300):
        await ft.advance(ft.now + rng.expovariate(12.0))  # a little over the rate
        chat, name = f"c{rng.randrange(8)}", f"m{i}"
        chat_of[name] = chat
        tasks.append(sender(ft, limiter, log, chat, rng.choice(list(Priority)), name))
        roll = rng.random()
        if roll < 0.02:
            scope = rng.choice([None, chat])
            limiter.pause(rng.uniform(0.5, 3), scope)
            windows.append((scope, ft.now, limiter.paused_until(scope)))
        elif roll < 0.06:
            rng.choice(tasks).cancel()
    await ft.run(tasks)
    assert len(log) == sum(not t.cancelled() for t in tasks) > 200

    def within(stamps: list[float], rate: float, burst: int) -> None:
        for a, start in enumerate(stamps):  # at most burst + rate * span in any span
            for b in range(a, len(stamps)):
                assert b - a + 1 <= burst + rate * (stamps[b] - start) + 1e-6

    within([t for _, t in log], 10.0, 3)
    for chat in set(chat_of.values()):
        within([t for n, t in log if chat_of[n] == chat], 1.0, 3)
    for scope, start, end in windows:
        assert not [n for n, t in log if start <= t < end and scope in (None, chat_of[n])]
