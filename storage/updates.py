"""Updates already handled, so a redelivered one is processed at most once."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import PROCESSED, utcnow

# Built once per dialect, on the table: the turn's first statement, on every update.
_CLAIM = {
    name: (insert(PROCESSED)
           .values(channel=sa.bindparam("channel"), key=sa.bindparam("key"),
                   created_at=sa.bindparam("now"))
           .on_conflict_do_nothing()
           .returning(PROCESSED.c.key))
    for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}


async def claim(tx: AsyncConnection, *, channel: str, key: str) -> bool:
    """Record (channel, key) as handled; False when it was handled before."""
    dialect = tx.dialect.name
    if dialect not in ("postgresql", "sqlite"):  # no portable upsert: look, then insert
        seen = await tx.execute(sa.select(PROCESSED.c.key).where(
            PROCESSED.c.channel == channel, PROCESSED.c.key == key))
        if seen.first() is not None:
            return False
        await tx.execute(sa.insert(PROCESSED).values(channel=channel, key=key,
                                                     created_at=utcnow()))
        return True
    # RETURNING, not rowcount: psycopg reports a row even when the conflict skipped it.
    claimed = await tx.execute(_CLAIM[dialect], {"channel": channel, "key": key,
                                                      "now": utcnow()})
    return claimed.first() is not None


async def forget_older_than(tx: AsyncConnection, *, days: int) -> int:
    """Drop old marks; platforms stop redelivering long before (Telegram: 24 hours)."""
    cutoff = utcnow() - timedelta(days=days)
    result = await tx.execute(
        sa.delete(PROCESSED).where(PROCESSED.c.created_at < cutoff))
    return int(result.rowcount)
