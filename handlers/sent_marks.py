"""Mark delivered outbox rows as sent in batches, off the conversation's hot path.

One UPDATE for everything delivered in the last few milliseconds instead of a transaction
per turn: under load that is a fifth of the database work of a turn. The cost: if the
process dies in that window, a few delivered rows stay "pending" (the outbox errs on the
side of "maybe not sent", never the other way round).
"""

from __future__ import annotations

import asyncio
import contextlib

from storage import outbox
from storage.database import Database

#: How long delivered ids wait for company before they are written.
DELAY = 0.05


class SentMarks:
    """Collects delivered outbox ids; :meth:`flush` writes them (also on close)."""

    def __init__(self, db: Database, delay: float = DELAY) -> None:
        self.db = db
        self.delay = delay
        self._ids: list[int] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, ids: list[int]) -> None:
        self._ids.extend(ids)
        if self._ids and self._task is None:
            self._task = asyncio.create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self.delay)
        self._task = None
        await self.flush()

    async def flush(self) -> None:
        ids, self._ids = self._ids, []
        if ids:
            async with self.db.transaction() as tx:
                await outbox.mark_sent(tx, ids=ids)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
