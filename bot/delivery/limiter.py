"""Shared rate limits: one :class:`RateLimiter` per channel account, used by every sender.

Telegram's Bots FAQ ("My bot is hitting limits, how do I avoid this?",
https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this) says:

* in one chat, avoid more than one message per second; short bursts may pass, but eventually
  the API answers 429;
* bulk notifications to many users: no more than about 30 messages per second;
* no more than 20 messages per minute to the same group.

So the limiter keeps two token buckets: an overall one (``rate``, 25 msg/s by default, a margin
under the 30) and one per chat (``chat_rate`` 1 msg/s with a burst of ``chat_burst`` 3, so a
three-message reply goes out at once). Paid broadcasts (``allow_paid_broadcast`` in the Bot
API's ``sendMessage``, https://core.telegram.org/bots/api#sendmessage: up to 1000 messages per
second for a fee per message) are a configuration matter: a limiter built with that ``rate``.
The 20-per-minute group limit is not modelled: the bot talks to shopkeepers in private chats.

A 429 carries ``retry_after``; the sender reports it with :meth:`RateLimiter.pause`, for one
chat or for the whole account. Nothing is let out to that scope until the window ends, and
then the waiting senders leave through the overall bucket, at ``rate``, not all at once.

The limiter lives in one process; with several sender processes each takes its share of the
overall rate (:meth:`RateLimiter.set_share`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import timedelta
from enum import IntEnum

# Token counts are floats refilled from clock differences: 0.9999999999 must count as a whole
# token, or a waiter would sleep again for a duration the clock cannot even represent.
_EPS = 1e-9


class Priority(IntEnum):
    """Which messages go first when the overall rate is the bottleneck."""

    INTERACTIVE = 0
    """Replies to what a user just did."""
    BULK = 1
    """Tips, broadcasts: anything nobody is waiting for right now."""


class _Chat:
    """One chat's bucket and 429 window, and who is sending to it."""

    __slots__ = ("busy", "paused", "stamp", "tokens", "waiters")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp
        self.paused = 0.0
        self.busy = False  # an acquire for this chat is under way; the others queue behind it
        self.waiters: deque[asyncio.Future[None]] = deque()


class _Waiter:
    """An acquire in line for the overall bucket; ``wake`` is set while it waits its turn."""

    __slots__ = ("wake",)

    def __init__(self) -> None:
        self.wake: asyncio.Future[None] | None = None


class RateLimiter:
    """Token buckets for one channel account: overall and per chat; a 429 pauses a scope.

    ``await limiter.acquire(chat)`` before each send. When nothing is waiting and both buckets
    have a token it returns without suspending. Otherwise:

    * Acquires for one chat go one at a time, in arrival order, whatever their priority (the
      outbox keeps a chat's messages in order anyway). The first waits for the chat's token
      and 429 window, then queues for the overall bucket.
    * The overall queue serves :attr:`Priority.INTERACTIVE` before :attr:`Priority.BULK`, and
      each priority in arrival order. Only the head of the queue sleeps on the clock; the
      others wait to be woken, so a pause that ends lets one sender go, then the next as the
      bucket allows: no thundering herd, and no busy loop.
    * Bulk acquires can wait as long as interactive ones keep the overall bucket empty: replies
      come first by design, and bulk catches up when the replies slow down.
    * A chat paused while queued steps out of the overall queue without a token, so it never
      holds up other chats; it queues again (at the back) when its window ends.
    * A cancelled acquire takes no token and hands its place on; tokens are only taken at the
      moment :meth:`acquire` returns.

    Per-chat state is forgotten once a chat's bucket is full again and no window is open, so
    the limiter holds at most the chats served in the last few seconds.

    Args:
        rate: Overall messages per second for the account (before :meth:`set_share`).
        burst: Messages the overall bucket lets through at once.
        chat_rate: Sustained messages per second to one chat.
        chat_burst: Messages to one chat that may go out at once.
        clock: Seconds, monotonic; tests pass a fake one.
        sleep: Waits that many seconds on ``clock``; tests pass a fake one.

    Raises:
        ValueError: A rate that is not positive and finite, or a burst below 1.
    """

    def __init__(self, *, rate: float = 25.0, burst: int = 5, chat_rate: float = 1.0,
                 chat_burst: int = 3, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if not (0 < rate < math.inf and 0 < chat_rate < math.inf):
            raise ValueError("rates must be positive and finite")
        if burst < 1 or chat_burst < 1:
            raise ValueError("bursts must be at least 1")
        self._rate = rate
        self._fill = rate  # rate * share: what this process refills per second
        self._burst = float(burst)
        self._chat_rate = chat_rate
        self._chat_burst = float(chat_burst)
        self._clock = clock
        self._sleep = sleep
        self._stamp = clock()
        self._tokens = self._burst
        self._paused = 0.0
        self._chats: dict[str, _Chat] = {}
        self._queues: tuple[deque[_Waiter], deque[_Waiter]] = (deque(), deque())
        # A chat's bucket is full again at most this long after its last message.
        self._idle_after = self._chat_burst / chat_rate
        self._next_sweep = self._stamp + self._idle_after

    @property
    def rate(self) -> float:
        """Messages per second this process may send now (its share of the overall rate)."""
        return self._fill

    @property
    def chat_count(self) -> int:
        """How many chats the limiter holds state for (for tests and metrics)."""
        return len(self._chats)

    async def acquire(self, chat: str, priority: Priority = Priority.INTERACTIVE) -> None:
        """Wait until one message to ``chat`` may go out now, then take its tokens.

        Args:
            chat: The chat's key on this channel account.
            priority: :attr:`Priority.INTERACTIVE` goes before :attr:`Priority.BULK`.
        """
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        c = self._chats.get(chat)
        if c is None:
            c = self._chats[chat] = _Chat(self._chat_burst, now)
        # Fast path, no suspension: nobody ahead of us (a reply only defers to other replies)
        # and both buckets have a token.
        if (not c.busy and now >= c.paused and now >= self._paused and not self._queues[0]
                and (priority == Priority.INTERACTIVE or not self._queues[1])):
            self._refill(now)
            self._refill_chat(c, now)
            if self._tokens >= 1 - _EPS and c.tokens >= 1 - _EPS:
                self._tokens -= 1
                c.tokens -= 1
                return
        await self._acquire_slow(c, priority)

    async def _acquire_slow(self, c: _Chat, priority: Priority) -> None:
        if c.busy:
            turn = asyncio.get_running_loop().create_future()
            c.waiters.append(turn)
            try:
                await turn  # the previous acquire hands the chat over: busy stays True
            except asyncio.CancelledError:
                if turn.cancelled():
                    c.waiters.remove(turn)
                else:  # handed over just as we were cancelled: pass it on
                    self._release_chat(c)
                raise
        else:
            c.busy = True
        try:
            while True:
                await self._chat_ready(c)
                if await self._overall_turn(c, priority):
                    return
        finally:
            self._release_chat(c)

    async def _chat_ready(self, c: _Chat) -> None:
        """Sleep until the chat's window is over and its bucket has a token (not taken)."""
        while True:
            now = self._clock()
            self._refill_chat(c, now)
            if now >= c.paused and c.tokens >= 1 - _EPS:
                return
            await self._sleep(max(c.paused - now, (1 - c.tokens) / self._chat_rate))

    async def _overall_turn(self, c: _Chat, priority: Priority) -> bool:
        """Queue for the overall bucket; take both tokens (True) or step out (False)."""
        queue = self._queues[priority]
        me = _Waiter()
        queue.append(me)
        try:
            while True:
                if self._leader() is not me:
                    me.wake = asyncio.get_running_loop().create_future()
                    await me.wake
                    me.wake = None
                    continue
                now = self._clock()
                if now < c.paused:
                    return False  # a 429 for this chat came while it was in line
                self._refill(now)
                if now >= self._paused and self._tokens >= 1 - _EPS:
                    # The chat's bucket only filled up since _chat_ready: it has the token.
                    self._refill_chat(c, now)
                    self._tokens -= 1
                    c.tokens -= 1
                    return True
                # An interactive arrival may take the lead meanwhile; we check on waking.
                await self._sleep(max(self._paused - now, (1 - self._tokens) / self._fill))
        finally:
            if queue[0] is me:
                queue.popleft()
            else:  # cancelled (or outranked) while not at the head: rare
                queue.remove(me)
            self._wake_leader()

    def _leader(self) -> _Waiter | None:
        queue = self._queues[0] or self._queues[1]
        return queue[0] if queue else None

    def _wake_leader(self) -> None:
        leader = self._leader()
        if leader is not None and leader.wake is not None and not leader.wake.done():
            leader.wake.set_result(None)

    def _release_chat(self, c: _Chat) -> None:
        if c.waiters:  # a cancelled waiter removes itself, so the first one is live
            c.waiters.popleft().set_result(None)
        else:
            c.busy = False

    def _refill(self, now: float) -> None:
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._fill)
        self._stamp = now

    def _refill_chat(self, c: _Chat, now: float) -> None:
        c.tokens = min(self._chat_burst, c.tokens + (now - c.stamp) * self._chat_rate)
        c.stamp = now

    def _sweep(self, now: float) -> None:
        # Once per refill period, so the cost is spread over the acquires of that period and
        # the dict holds only chats that sent within the last two periods (or are paused).
        self._next_sweep = now + self._idle_after
        full = self._chat_burst - _EPS
        idle = [key for key, c in self._chats.items()
                if not c.busy and c.paused <= now
                and c.tokens + (now - c.stamp) * self._chat_rate >= full]
        for key in idle:
            del self._chats[key]

    def pause(self, seconds: float | timedelta, chat: str | None = None) -> None:
        """A 429: nothing goes out to ``chat`` (or, with None, to anyone) for ``seconds``.

        A pause only ever extends an open window, never shortens it: two senders may report
        the same 429 late, or a shorter one after a longer one.

        Args:
            seconds: The 429's ``retry_after``; python-telegram-bot's
                :attr:`telegram.error.RetryAfter.retry_after` can be passed as it is.
            chat: The chat the 429 applies to, or None for the whole account.

        Raises:
            ValueError: ``seconds`` negative or not finite.
        """
        if isinstance(seconds, timedelta):
            seconds = seconds.total_seconds()
        if not 0 <= seconds < math.inf:
            raise ValueError(f"pause needs a finite, non-negative duration, not {seconds!r}")
        now = self._clock()
        until = now + seconds
        if chat is None:
            self._paused = max(self._paused, until)
            return
        c = self._chats.get(chat)
        if c is None:
            c = self._chats[chat] = _Chat(self._chat_burst, now)
        c.paused = max(c.paused, until)

    def paused_until(self, chat: str | None = None) -> float:
        """When the open window ends, as a ``clock`` value; 0 when not paused.

        Args:
            chat: With a chat: when it may next receive, the later of its own window and the
                account's. With None: the account's window only.
        """
        until = self._paused
        if chat is not None and (c := self._chats.get(chat)) is not None:
            until = max(until, c.paused)
        return until if until > self._clock() else 0.0

    def set_share(self, share: float) -> None:
        """This process's share of the overall rate (1/number of live sender processes).

        The overall bucket then refills at ``rate * share``. Its capacity stays ``burst``, so
        replies keep their speed; with N processes the account may briefly see N * ``burst``,
        which the margin of ``rate`` under Telegram's 30/s absorbs for a few processes.

        Args:
            share: 0 < share ≤ 1.

        Raises:
            ValueError: ``share`` out of range.
        """
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], not {share!r}")
        self._refill(self._clock())  # the time so far counts at the old rate
        self._fill = self._rate * share
