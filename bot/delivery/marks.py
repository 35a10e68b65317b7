"""Mark delivered rows as sent in batches, off the reply's path, and never lose a mark.

One statement (with the platform's message ids of each row) for everything delivered in the
last few milliseconds instead of a transaction per message. Ids stay in
:attr:`SentMarks.pending` until their UPDATE has committed: a database error keeps them for
the next flush. If the process dies first, their rows are
still ``sending`` and become ``uncertain`` when the lease runs out (never "sent" twice).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from storage import outbox
from storage.database import Database

log = logging.getLogger(__name__)

#: How long delivered ids wait for company before they are written.
DELAY = 0.05


class SentMarks:
    """Collects delivered outbox ids, each with the platform's ids of the messages it made;
    :meth:`flush` writes them (also on :meth:`close`). :attr:`pending` is keyed by row id."""

    def __init__(self, db: Database, delay: float = DELAY) -> None:
        self.db = db
        self.delay = delay
        self.pending: dict[int, Sequence[str] | None] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, message_id: int, platform_ids: Sequence[str] | None = None) -> None:
        """``message_id`` was delivered as the platform's messages ``platform_ids`` (None:
        keep what the row has)."""
        self.pending[message_id] = platform_ids
        if self._task is None:
            self._task = asyncio.create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self.delay)
        self._task = None
        await self.flush()

    async def flush(self) -> bool:
        """Write what is pending; False (and the ids kept) when the database failed."""
        ids = dict(self.pending)
        if not ids:
            return True
        try:
            async with self.db.transaction() as tx:
                await outbox.mark_sent(tx, ids=ids)
        except Exception:
            log.exception("could not mark %d delivered messages as sent; will try again",
                          len(ids))
            if self._task is None:
                self._task = asyncio.create_task(self._flush_soon())
            return False
        for row_id, written in ids.items():
            # Unless added again meanwhile (a retried row that went out once more).
            if row_id in self.pending and self.pending[row_id] is written:
                del self.pending[row_id]
        return True

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if not await self.flush():
            log.error("%d messages were delivered but could not be marked sent; they will "
                      "show as uncertain", len(self.pending))
