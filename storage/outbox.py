"""The outbox: every message is recorded before it is sent, with the outcome after."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import OUTBOX, OutboxStatus, utcnow

# On the table, not the ORM class: these rows are never read back in the turn, and the
# ORM's bulk-insert path costs several times the INSERT itself.
_RECORD = OUTBOX.insert().returning(OUTBOX.c.id, sort_by_parameter_order=True)


async def record(tx: AsyncConnection, *, shopkeeper_id: int, channel: str, external_id: str,
                 payloads: list[dict[str, Any]]) -> list[int]:
    """Record messages to one address, in order, in one round trip; returns their ids."""
    now = utcnow()
    rows = [{"shopkeeper_id": shopkeeper_id, "channel": channel, "external_id": external_id,
             "payload": payload, "status": OutboxStatus.PENDING, "attempts": 0,
             "created_at": now} for payload in payloads]
    result = await tx.execute(_RECORD, rows)
    return [int(row_id) for row_id in result.scalars()]


async def mark_sent(tx: AsyncConnection, *, ids: list[int]) -> None:
    if ids:
        await tx.execute(
            sa.update(OUTBOX).where(OUTBOX.c.id.in_(ids))
            .values(status=OutboxStatus.SENT, sent_at=utcnow(), attempts=OUTBOX.c.attempts + 1))


async def mark_failed(tx: AsyncConnection, *, message_id: int, error: str) -> None:
    await tx.execute(
        sa.update(OUTBOX).where(OUTBOX.c.id == message_id)
        .values(status=OutboxStatus.FAILED, error=error[:500], attempts=OUTBOX.c.attempts + 1))
