"""What an operator watches: the sender's backlog, what is due, the schema's revision.

Each is one small query (the backlog and tips due on an index: ``ix_outbox_due``,
``due.due_at``), cheap enough for a health check every few seconds on a large outbox.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import DUE, OUTBOX, DueKind, OutboxStatus

#: Rows the sender would claim when they are due.
_WAITING = (OutboxStatus.QUEUED, OutboxStatus.ERRORED)


@dataclass(frozen=True, slots=True)
class Backlog:
    """Messages whose time has come and that are not sent yet."""

    #: How many.
    count: int
    #: When the longest-waiting one became due (None when nothing waits).
    oldest_due_at: datetime | None


async def backlog(tx: AsyncConnection, *, now: datetime) -> Backlog:
    """The outbox rows due at ``now`` and waiting for the sender (queued or to retry)."""
    o = OUTBOX.c
    count, oldest = (await tx.execute(
        sa.select(sa.func.count(), sa.func.min(o.next_attempt_at))
        .where(o.status.in_(_WAITING), o.next_attempt_at <= now))).one()
    return Backlog(int(count), oldest)


async def tips_due(tx: AsyncConnection, *, now: datetime) -> int:
    """Tips (new ones and those put off with "later") whose time has come, not sent yet."""
    d = DUE.c
    return int((await tx.execute(
        sa.select(sa.func.count()).where(d.due_at <= now,
                                         d.kind.in_((DueKind.TIP, DueKind.LATER))))
    ).scalar_one())


def file_problem(url: str) -> str | None:
    """What is wrong with an SQLite database's file, if anything. The bot's open connection
    goes on working on a file that was removed or made unreadable, writing where nobody
    will ever read again (the next start opens a new, empty file): that is broken too."""
    parsed = sa.make_url(url)
    path = parsed.database
    if not parsed.drivername.startswith("sqlite") or not path or path == ":memory:" \
            or path.startswith("file:"):
        return None
    if not os.path.exists(path):
        return f"the database file {os.path.basename(path)} is gone"
    if not os.access(path, os.R_OK | os.W_OK):
        return f"the database file {os.path.basename(path)} cannot be read and written"
    return None


async def revision(tx: AsyncConnection) -> str | None:
    """The migration the database is at; None for a database without the schema."""
    found: str | None = await tx.run_sync(
        lambda c: MigrationContext.configure(c).get_current_revision())
    return found
