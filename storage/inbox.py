"""The inbox: received updates, stored before the platform is told they arrived.

Storing is also the dedupe: (channel, key) is unique, so an update the platform delivers
twice is stored once. Once handled, an update keeps only its key and status: the payload
(names, what was typed) is cleared, whoever sent it. A chat's updates are handled in
``seq`` order (the platform's update id where it has one), one at a time, by whichever
process holds the chat's lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.records import INBOX_COLUMNS, InboxRecord
from storage.tables import INBOX, InboxStatus, utcnow

#: A turn that failed this many times is poison: skipped, kept, logged once.
MAX_ATTEMPTS = 3

_PENDING_OF_CHAT = (
    sa.select(*INBOX_COLUMNS)
    .where(INBOX.c.status == InboxStatus.PENDING, INBOX.c.channel == sa.bindparam("channel"),
           INBOX.c.chat == sa.bindparam("chat"))
    .order_by(INBOX.c.seq, INBOX.c.id).limit(100))
# Handled: the payload goes (a first name, what was typed: personal data, also of people
# who never consented), the key stays for the dedupe of a redelivery.
_DONE = (sa.update(INBOX)
         .where(INBOX.c.id == sa.bindparam("row_id"), INBOX.c.status == InboxStatus.PENDING)
         .values(status=InboxStatus.DONE, handled_at=sa.bindparam("now"), payload={})
         .returning(INBOX.c.id))


@dataclass(frozen=True, slots=True)
class Received:
    """One update as a channel received it: ``key`` is unique per channel, ``chat`` the
    address it is about (None when it is about nobody), ``seq`` its order in that chat."""

    key: str
    chat: str | None
    seq: int
    payload: dict[str, Any]


def _insert(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(INBOX).on_conflict_do_nothing().returning(INBOX.c.id)


_STORE = {name: _insert(name) for name in ("postgresql", "sqlite")}


async def store(tx: AsyncConnection, *, channel: str,
                updates: Sequence[Received]) -> list[int | None]:
    """Store updates; for each, its new row id, or None when it was stored before."""
    statement = _STORE[tx.dialect.name]
    now = utcnow()
    ids: list[int | None] = []
    for update in updates:  # one by one: RETURNING under ON CONFLICT skips rows silently
        result = await tx.execute(statement, {
            "channel": channel, "key": update.key, "chat": update.chat, "seq": update.seq,
            "payload": update.payload, "status": InboxStatus.PENDING, "attempts": 0,
            "received_at": now})
        ids.append(result.scalar_one_or_none())
    return ids


async def pending_of_chat(tx: AsyncConnection, *, channel: str,
                          chat: str) -> list[InboxRecord]:
    """The chat's pending updates, oldest first (at most 100 at a time)."""
    result = await tx.execute(_PENDING_OF_CHAT, {"channel": channel, "chat": chat})
    return [InboxRecord(*row) for row in result.all()]


async def by_id(tx: AsyncConnection, *, row_id: int) -> InboxRecord | None:
    row = (await tx.execute(sa.select(*INBOX_COLUMNS).where(INBOX.c.id == row_id))).first()
    return InboxRecord(*row) if row is not None else None


async def mark_done(tx: AsyncConnection, *, row_id: int) -> bool:
    """Claim the update as handled, in the turn's transaction, and clear what it said (its
    key stays, so a redelivery is still recognised); False when another process handled
    it first."""
    return (await tx.execute(_DONE, {"row_id": row_id, "now": utcnow()})).first() is not None


async def mark_attempt_failed(tx: AsyncConnection, *, row_id: int, error: str) -> bool:
    """Count a failed attempt; True when that made the update poison."""
    result = await tx.execute(
        sa.update(INBOX).where(INBOX.c.id == row_id, INBOX.c.status == InboxStatus.PENDING)
        .values(attempts=INBOX.c.attempts + 1, error=error[:500])
        .returning(INBOX.c.attempts))
    attempts = result.scalar_one_or_none()
    if attempts is not None and attempts >= MAX_ATTEMPTS:
        await mark_poison(tx, row_id=row_id, error=error)
        return True
    return False


async def mark_poison(tx: AsyncConnection, *, row_id: int, error: str) -> None:
    await tx.execute(
        sa.update(INBOX).where(INBOX.c.id == row_id)
        .values(status=InboxStatus.POISON, error=error[:500], handled_at=utcnow()))


async def forget_chat(tx: AsyncConnection, *, channel: str, chat: str) -> None:
    """Delete every stored update of a chat (the person refused consent)."""
    await tx.execute(sa.delete(INBOX).where(INBOX.c.channel == channel, INBOX.c.chat == chat))


async def pending_chats(tx: AsyncConnection, *, channel: str,
                        limit: int = 500) -> list[str | None]:
    """Chats with pending updates, oldest first (after a restart: what is left to do).
    None stands for updates about nobody, handled one by one."""
    result = await tx.execute(
        sa.select(INBOX.c.chat, sa.func.min(INBOX.c.id).label("first"))
        .where(INBOX.c.status == InboxStatus.PENDING, INBOX.c.channel == channel)
        .group_by(INBOX.c.chat).order_by("first").limit(limit))
    return [chat for chat, _ in result.all()]


async def pending_without_chat(tx: AsyncConnection, *, channel: str) -> list[InboxRecord]:
    result = await tx.execute(
        sa.select(*INBOX_COLUMNS)
        .where(INBOX.c.status == InboxStatus.PENDING, INBOX.c.channel == channel,
               INBOX.c.chat.is_(None)).order_by(INBOX.c.id).limit(100))
    return [InboxRecord(*row) for row in result.all()]


async def forget_handled_older_than(tx: AsyncConnection, *, days: int) -> int:
    """Drop handled updates; platforms stop redelivering long before (Telegram: 24 hours).
    Poison updates stay for a look, for the same time."""
    cutoff = utcnow() - timedelta(days=days)
    result = await tx.execute(
        sa.delete(INBOX).where(INBOX.c.status != InboxStatus.PENDING,
                               INBOX.c.received_at < cutoff))
    return int(result.rowcount)


async def counts(tx: AsyncConnection) -> dict[str, int]:
    rows = await tx.execute(sa.select(INBOX.c.status, sa.func.count()).group_by(INBOX.c.status))
    return {str(status): int(count) for status, count in rows.all()}
