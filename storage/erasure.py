"""Erasing a person: every row about them deleted, every mention of them removed, in the
caller's transaction (so it is all or nothing), and the act recorded in the audit trail
with counts only.

What counts as theirs is read from the schema (:mod:`storage.footprint`); a picture a coach
attached to a draft goes with the draft unless a broadcast or another draft uses it.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage import audit, footprint
from storage.tables import BROADCAST, BROADCAST_DRAFT, MEDIA, OUTBOX, TICKET, TICKET_POST


async def erase(tx: AsyncConnection, *, shopkeeper_id: int, actor: str, reason: str,
                now: datetime | None = None) -> dict[str, int]:
    """Erase the person; returns the rows deleted or cleared per table (also written to
    the audit trail as ``erase`` by ``actor`` — ``self``, ``retention``, never an address).
    """
    who = await footprint.person(tx, shopkeeper_id=shopkeeper_id)
    drafted = set((await tx.execute(
        sa.select(BROADCAST_DRAFT.c.media_id).where(
            BROADCAST_DRAFT.c.shopkeeper_id == shopkeeper_id,
            BROADCAST_DRAFT.c.media_id.is_not(None)))).scalars())
    counts: dict[str, int] = {}
    # The messages about their tickets in the coaches' chats (their shop, their question)
    # are rows of the coaches: found through ``ticket_post`` before the tickets go.
    about = (sa.select(TICKET_POST.c.outbox_id).join(TICKET, TICKET.c.id == TICKET_POST.c.ticket_id)
             .where(TICKET.c.shopkeeper_id == shopkeeper_id))
    result = await tx.execute(sa.delete(OUTBOX).where(OUTBOX.c.id.in_(about)))
    _add(counts, OUTBOX.name, result.rowcount)
    for table in footprint.tables():
        for column, value in footprint.mentions(table, who):
            cleared = None if column.foreign_keys else footprint.ERASED
            result = await tx.execute(
                sa.update(table).where(column == value).values({column.name: cleared}))
            _add(counts, table.name, result.rowcount)
        condition = footprint.theirs(table, who)
        if condition is not None:
            result = await tx.execute(sa.delete(table).where(condition))
            _add(counts, table.name, result.rowcount)
    if drafted:
        in_use = sa.union(
            sa.select(BROADCAST.c.media_id).where(BROADCAST.c.media_id.is_not(None)),
            sa.select(BROADCAST_DRAFT.c.media_id).where(BROADCAST_DRAFT.c.media_id.is_not(None)))
        result = await tx.execute(sa.delete(MEDIA).where(
            MEDIA.c.id.in_(sorted(drafted)), MEDIA.c.id.not_in(in_use)))
        _add(counts, MEDIA.name, result.rowcount)
    await audit.record(tx, actor=actor, action="erase",
                       detail={"reason": reason, "rows": counts}, now=now)
    return counts


def _add(counts: dict[str, int], table: str, rows: int) -> None:
    if rows:
        counts[table] = counts.get(table, 0) + rows
