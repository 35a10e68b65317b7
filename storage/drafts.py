"""The broadcast a coach is composing in chat: one draft per coach, saved at every step so
a restart (or a coach who comes back an hour later) picks it up where it was."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import BROADCAST_DRAFT, utcnow


@dataclass(slots=True)
class DraftRecord:
    """A coach's draft (see :class:`storage.tables.BroadcastDraft`)."""

    shopkeeper_id: int
    step: str
    texts: dict[str, str] = field(default_factory=dict)
    segment: dict[str, list[str]] = field(default_factory=dict)
    media_id: int | None = None
    send_at: datetime | None = None
    urgent: bool = False


async def get(tx: AsyncConnection, *, coach: int) -> DraftRecord | None:
    row = (await tx.execute(sa.select(BROADCAST_DRAFT).where(
        BROADCAST_DRAFT.c.shopkeeper_id == coach))).mappings().first()
    if row is None:
        return None
    return DraftRecord(row["shopkeeper_id"], row["step"], dict(row["texts"] or {}),
                       {k: list(v) for k, v in (row["segment"] or {}).items()},
                       row["media_id"], row["send_at"], bool(row["urgent"]))


async def step_of(tx: AsyncConnection, *, coach: int) -> str | None:
    """The step of the coach's open draft (None: no draft); one cheap lookup per turn."""
    return (await tx.execute(sa.select(BROADCAST_DRAFT.c.step).where(
        BROADCAST_DRAFT.c.shopkeeper_id == coach))).scalar_one_or_none()


async def save(tx: AsyncConnection, draft: DraftRecord) -> None:
    values = {"step": draft.step, "texts": draft.texts, "segment": draft.segment,
              "media_id": draft.media_id, "send_at": draft.send_at, "urgent": draft.urgent,
              "updated_at": utcnow()}
    changed = (await tx.execute(sa.update(BROADCAST_DRAFT).where(
        BROADCAST_DRAFT.c.shopkeeper_id == draft.shopkeeper_id).values(**values))).rowcount
    if not changed:
        await tx.execute(sa.insert(BROADCAST_DRAFT).values(
            shopkeeper_id=draft.shopkeeper_id, **values))


async def discard(tx: AsyncConnection, *, coach: int) -> bool:
    return bool((await tx.execute(sa.delete(BROADCAST_DRAFT).where(
        BROADCAST_DRAFT.c.shopkeeper_id == coach))).rowcount)
