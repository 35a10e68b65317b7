"""What senders in different processes share: 429 pauses, and how many of them are alive
(each takes an equal share of the channel's overall rate)."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import RATE_PAUSE, SENDER_PROCESS, utcnow


async def pause(tx: AsyncConnection, *, scope: str, until: datetime) -> None:
    """Record a 429: nothing to ``scope`` before ``until`` (an existing later pause stays)."""
    insert = (postgresql.insert if tx.dialect.name == "postgresql" else sqlite.insert)(
        RATE_PAUSE).values(scope=scope, until=until)
    await tx.execute(insert.on_conflict_do_update(
        index_elements=[RATE_PAUSE.c.scope],
        set_={"until": sa.func.max(RATE_PAUSE.c.until, insert.excluded.until)
              if tx.dialect.name == "sqlite"
              else sa.func.greatest(RATE_PAUSE.c.until, insert.excluded.until)}))


async def pauses(tx: AsyncConnection) -> dict[str, datetime]:
    """Pauses still in force, by scope; expired ones are dropped on the way."""
    now = utcnow()
    await tx.execute(sa.delete(RATE_PAUSE).where(RATE_PAUSE.c.until <= now))
    result = await tx.execute(sa.select(RATE_PAUSE.c.scope, RATE_PAUSE.c.until))
    return {scope: until for scope, until in result.all()}


async def heartbeat(tx: AsyncConnection, *, sender_id: str, alive_for: timedelta) -> int:
    """Say this sender is alive; returns how many senders are (itself included)."""
    now = utcnow()
    insert = (postgresql.insert if tx.dialect.name == "postgresql" else sqlite.insert)(
        SENDER_PROCESS).values(id=sender_id, seen_at=now)
    await tx.execute(insert.on_conflict_do_update(index_elements=[SENDER_PROCESS.c.id],
                                                  set_={"seen_at": now}))
    await tx.execute(sa.delete(SENDER_PROCESS).where(SENDER_PROCESS.c.seen_at < now - alive_for))
    return int((await tx.execute(sa.select(sa.func.count()).select_from(SENDER_PROCESS)))
               .scalar_one())


async def alive(tx: AsyncConnection, *, alive_for: timedelta) -> list[str]:
    """The senders that said they were alive within ``alive_for``."""
    result = await tx.execute(sa.select(SENDER_PROCESS.c.id).where(
        SENDER_PROCESS.c.seen_at >= utcnow() - alive_for))
    return list(result.scalars())


async def forget_others(tx: AsyncConnection, *, sender_id: str) -> None:
    """Only this sender is alive (SQLite: one process); the others died."""
    await tx.execute(sa.delete(SENDER_PROCESS).where(SENDER_PROCESS.c.id != sender_id))


async def leave(tx: AsyncConnection, *, sender_id: str) -> None:
    await tx.execute(sa.delete(SENDER_PROCESS).where(SENDER_PROCESS.c.id == sender_id))
