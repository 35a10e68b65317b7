"""Bulk rows (tips, broadcasts) in waves: two statements per wave instead of three
transactions per row.

A reply goes out row by row (:meth:`OutboxSender.deliver`), each row marked ``sending``
just before its call. For thousands of bulk rows that per-row bookkeeping would cost more
than the calls themselves, so the rows a poll claimed go out in *waves*:

1. one ``UPDATE … RETURNING`` marks a wave of claimed rows ``sending`` just before their
   calls; it returns the rows that are still this sender's, so a row whose broadcast was
   cancelled meanwhile (or whose lease ran out) is skipped;
2. each row of the wave goes through the rate limiter and the channel as before, at bulk
   priority (replies still go first);
3. the wave's delivered rows, with their platform message ids, are marked ``sent`` in the
   same transaction that marks the next wave ``sending``.

At most four waves are under way (some being answered while the next are paced), so
the platform always has calls to answer although each wave waits for its slowest one.
Together they hold at most ``concurrency`` rows, and about a fifth of a second of the
channel's rate (four rows at 20/s, the whole concurrency at 1,000/s): at no moment are more
rows ``sending``, which bounds what a crash can leave uncertain, and rows already marked
``sending`` still go out after a cancel, so at a low rate they are as few as the limiter's
own burst. A delivered row is marked sent before the wave after the next starts, so what
arrived before a crash is never counted among the uncertain ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any

from bot.delivery.limiter import RateLimiter
from bot.delivery.marks import SentMarks
from storage import outbox
from storage.database import Database
from storage.records import OutboxRecord

log = logging.getLogger(__name__)

#: The waves under way hold about this many seconds of the channel's rate.
IN_FLIGHT_SECONDS = 0.2
#: Waves under way at once.
WAVES = 4

Delivered = dict[int, Sequence[str] | None]
"""Rows of a wave that went out: row id → the platform's message ids (None: keep)."""

SendInWave = Callable[[OutboxRecord, Delivered], Awaitable[Any]]


class Waves:
    """Delivers claimed bulk rows in waves (see the module docstring).

    Args:
        db: The database.
        sender_id: The sender that claimed the rows (only its rows are marked ``sending``).
        concurrency: At most this many rows ``sending`` at once.
        limiters: Each channel's rate limiter (a wave is sized by its rate).
        marks: Where delivered rows go when their wave's UPDATE fails (written later).
        send: Sends one row marked ``sending``, putting it in the dict when it went out.
    """

    def __init__(self, db: Database, sender_id: str, concurrency: int,
                 limiters: Mapping[str, RateLimiter], marks: SentMarks,
                 send: SendInWave) -> None:
        self.db = db
        self.sender_id = sender_id
        self.concurrency = concurrency
        self.limiters = limiters
        self.marks = marks
        self.send = send

    def size(self, channels: Collection[str]) -> int:
        """Rows per wave: the waves under way hold a fifth of a second at the slowest
        channel's rate, at most the concurrency; at least one row."""
        rate = min((self.limiters[c].rate for c in channels if c in self.limiters),
                   default=1.0)
        return max(1, min(self.concurrency, int(rate * IN_FLIGHT_SECONDS)) // WAVES)

    async def deliver(self, rows: list[OutboxRecord]) -> int:
        """Deliver claimed bulk rows (each the head of its chat); returns how many were
        still this sender's and went through it."""
        if not rows:
            return 0
        size = self.size({row.channel for row in rows})
        waiting = deque(rows[i:i + size] for i in range(0, len(rows), size))
        running: set[asyncio.Future[Delivered]] = set()
        delivered: Delivered = {}
        count = 0
        while True:
            starting: list[list[OutboxRecord]] = []
            while waiting and len(running) + len(starting) < WAVES:
                starting.append(waiting.popleft())
            ours = await self._turn(delivered, [row.id for wave in starting for row in wave])
            delivered = {}
            for wave in starting:
                mine = [row for row in wave if row.id in ours]
                count += len(mine)
                if mine:
                    running.add(asyncio.ensure_future(self._wave(mine)))
            if not running:
                if waiting:
                    continue  # those were all cancelled: on to the next
                return count
            finished, running = await asyncio.wait(running,
                                                   return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                delivered.update(task.result())

    async def _wave(self, rows: list[OutboxRecord]) -> Delivered:
        delivered: Delivered = {}
        await asyncio.gather(*(self.send(row, delivered) for row in rows))
        return delivered

    async def _turn(self, delivered: Delivered, starting: list[int]) -> set[int]:
        """One transaction: the last wave's rows ``sent``, the next waves' ``sending``;
        returns which of ``starting`` are still ours."""
        try:
            async with self.db.transaction() as tx:
                await outbox.mark_sent(tx, ids=delivered)
                if not starting:
                    return set()
                return await outbox.mark_sending_many(tx, ids=starting,
                                                      claimed_by=self.sender_id)
        except Exception:
            # The database failed: what went out is written by the sent marks later; the
            # rows not started stay claimed until their lease ends, then are queued again.
            log.exception("could not start a wave of %d bulk messages", len(starting))
            for row_id, ids in delivered.items():
                self.marks.add(row_id, ids)
            return set()
