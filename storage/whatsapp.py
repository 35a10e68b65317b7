"""What WhatsApp's rules need kept, shared by every process that serves the number: each
number's customer-service window, its last bulk message (the pair rate), who template
messages reached each day and how many of the day's slots that used (the tier), and what
became of each message (status webhooks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import (
    IDENTITY,
    OUTBOX,
    UNFINISHED,
    WHATSAPP_PACE,
    WHATSAPP_REACH,
    WHATSAPP_RECEIPT,
    WHATSAPP_TIER,
    WHATSAPP_WINDOW,
    OutboxStatus,
)

CHANNEL = "whatsapp"
#: How a row held until the person writes again starts its ``error`` (see :func:`release`).
WAITING = "whatsapp: waiting"
#: Rows of one chat searched for a message id (status webhooks come within days).
RECENT_ROWS = 200
#: How far each status gets: a late "delivered" never undoes "read".
_RANK = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}


#: ``status IN ('queued', …)`` written out as in the partial index ``ix_outbox_chat_open``:
#: only then does SQLite's planner use it (see :mod:`storage.outbox`).
_OPEN = OUTBOX.c.status.in_([sa.literal_column(f"'{status}'") for status in UNFINISHED])


def _recent_of(external_id: str) -> sa.Select[Any]:
    """The latest outbox rows to a number, found through its person (``shopkeeper_id`` is
    indexed; ``(channel, external_id)`` only for unfinished rows)."""
    person = (sa.select(IDENTITY.c.shopkeeper_id)
              .where(IDENTITY.c.channel == CHANNEL, IDENTITY.c.external_id == external_id)
              .scalar_subquery())
    return (sa.select(OUTBOX.c.id, OUTBOX.c.shopkeeper_id, OUTBOX.c.payload,
                      OUTBOX.c.platform_ids)
            .where(OUTBOX.c.shopkeeper_id == person, OUTBOX.c.channel == CHANNEL,
                   OUTBOX.c.external_id == external_id)
            .order_by(OUTBOX.c.id.desc()).limit(RECENT_ROWS))


def _insert(tx: AsyncConnection, table: sa.Table) -> Any:
    return (postgresql.insert if tx.dialect.name == "postgresql" else sqlite.insert)(table)


async def wrote(tx: AsyncConnection, *, at: Mapping[str, datetime]) -> None:
    """The numbers in ``at`` wrote at those times: their windows open (never moved back)."""
    for external_id, when in at.items():
        statement = _insert(tx, WHATSAPP_WINDOW).values(
            channel=CHANNEL, external_id=external_id, last_inbound_at=when)
        await tx.execute(statement.on_conflict_do_update(
            index_elements=["channel", "external_id"],
            set_={"last_inbound_at": statement.excluded.last_inbound_at},
            where=WHATSAPP_WINDOW.c.last_inbound_at < statement.excluded.last_inbound_at))


async def last_wrote(tx: AsyncConnection, *, external_id: str) -> datetime | None:
    """When the number last wrote (None: never, or erased)."""
    found: datetime | None = (await tx.execute(
        sa.select(WHATSAPP_WINDOW.c.last_inbound_at).where(
            WHATSAPP_WINDOW.c.channel == CHANNEL,
            WHATSAPP_WINDOW.c.external_id == external_id))).scalar_one_or_none()
    return found


async def release(tx: AsyncConnection, *, external_ids: Sequence[str], now: datetime) -> int:
    """Rows held until these people wrote again go out now; returns how many."""
    if not external_ids:
        return 0
    result = await tx.execute(
        sa.update(OUTBOX).where(
            OUTBOX.c.channel == CHANNEL, OUTBOX.c.external_id.in_(list(external_ids)), _OPEN,
            OUTBOX.c.status == OutboxStatus.ERRORED, OUTBOX.c.error.startswith(WAITING))
        .values(next_attempt_at=now))
    return int(result.rowcount)


async def claim_pace(tx: AsyncConnection, *, external_id: str, now: datetime,
                     pair: timedelta) -> datetime | None:
    """Take the number's turn for a bulk message: one statement that moves its last bulk
    send to ``now`` only when the previous one is at least ``pair`` old, so of two
    processes asking at once exactly one gets it. None when this one did; else when the
    previous bulk message went (the next may go ``pair`` after it)."""
    statement = _insert(tx, WHATSAPP_PACE).values(
        channel=CHANNEL, external_id=external_id, last_bulk_at=now)
    # RETURNING, not rowcount: an INSERT's rowcount is not always known (psycopg: -1).
    won = (await tx.execute(statement.on_conflict_do_update(
        index_elements=["channel", "external_id"],
        set_={"last_bulk_at": statement.excluded.last_bulk_at},
        where=WHATSAPP_PACE.c.last_bulk_at <= now - pair)
        .returning(WHATSAPP_PACE.c.last_bulk_at))).first()
    if won is not None:
        return None
    last: datetime | None = (await tx.execute(sa.select(WHATSAPP_PACE.c.last_bulk_at).where(
        WHATSAPP_PACE.c.channel == CHANNEL,
        WHATSAPP_PACE.c.external_id == external_id))).scalar_one_or_none()
    return last or now  # gone meanwhile (erased): wait a whole interval anyway


class Slot(Enum):
    """What :func:`claim_slot` found: the person already counts today, took a new slot
    (to give back with :func:`release_slot` when the message surely did not go), or the
    day's tier is full."""

    COUNTED = "counted"
    NEW = "new"
    FULL = "full"


async def claim_slot(tx: AsyncConnection, *, day: str, shopkeeper_id: int,
                     tier: int) -> Slot:
    """Take one of ``day``'s ``tier`` unique-recipient slots for the person, before the
    send. The person's ``whatsapp_reach`` row comes first (a second claim for them, from
    any process, waits for it and then finds them counted: a retry takes no new slot);
    then the day's counter goes up only while it is below the tier: PostgreSQL locks the
    counter's row for the increment and SQLite writes one transaction at a time, so two
    processes racing for the last slot cannot both get it."""
    added = (await tx.execute(_insert(tx, WHATSAPP_REACH).values(
        day=day, shopkeeper_id=shopkeeper_id).on_conflict_do_nothing()
        .returning(WHATSAPP_REACH.c.day))).first()
    if added is None:
        return Slot.COUNTED
    await tx.execute(_insert(tx, WHATSAPP_TIER).values(day=day, reached=0)
                     .on_conflict_do_nothing())
    taken = (await tx.execute(sa.update(WHATSAPP_TIER).where(
        WHATSAPP_TIER.c.day == day, WHATSAPP_TIER.c.reached < tier)
        .values(reached=WHATSAPP_TIER.c.reached + 1))).rowcount
    if taken:
        return Slot.NEW
    await tx.execute(sa.delete(WHATSAPP_REACH).where(
        WHATSAPP_REACH.c.day == day, WHATSAPP_REACH.c.shopkeeper_id == shopkeeper_id))
    return Slot.FULL


async def release_slot(tx: AsyncConnection, *, day: str, shopkeeper_id: int) -> None:
    """Give back a slot :func:`claim_slot` took as new when the template surely did not go
    out (Meta refused it, or it never left): the person was not reached after all."""
    gone = (await tx.execute(sa.delete(WHATSAPP_REACH).where(
        WHATSAPP_REACH.c.day == day,
        WHATSAPP_REACH.c.shopkeeper_id == shopkeeper_id))).rowcount
    if gone:
        await tx.execute(sa.update(WHATSAPP_TIER).where(
            WHATSAPP_TIER.c.day == day, WHATSAPP_TIER.c.reached > 0)
            .values(reached=WHATSAPP_TIER.c.reached - 1))


async def slots_used(tx: AsyncConnection, *, day: str) -> int:
    """How many of ``day``'s slots templates used. It counts slots, not the people still
    stored: erasing someone reached that day leaves it as it is (Meta counted them)."""
    found = (await tx.execute(sa.select(WHATSAPP_TIER.c.reached).where(
        WHATSAPP_TIER.c.day == day))).scalar_one_or_none()
    return int(found or 0)


@dataclass(frozen=True, slots=True)
class Status:
    """A status webhook: message ``wamid`` to ``recipient`` is ``status`` (with ``error``
    when it failed)."""

    wamid: str
    recipient: str
    status: str
    error: str | None = None


async def record_statuses(tx: AsyncConnection, *, statuses: Sequence[Status],
                          now: datetime) -> int:
    """Keep what became of each message on its outbox row's receipt; a failure also fails
    the row, with the error code. Returns how many rows were found."""
    found = 0
    for recipient in {s.recipient for s in statuses}:
        rows = (await tx.execute(_recent_of(recipient))).all()
        owner = {wamid: int(row.id) for row in rows for wamid in row.platform_ids or ()}
        for status in (s for s in statuses if s.recipient == recipient):
            row_id = owner.get(status.wamid)
            if row_id is None or status.status not in _RANK:
                continue
            found += 1
            await _receipt(tx, row_id, status, now)
            if status.status == "failed":
                await tx.execute(sa.update(OUTBOX).where(OUTBOX.c.id == row_id).values(
                    status=OutboxStatus.FAILED, lease_until=None,
                    error=(status.error or "whatsapp: failed")[:500]))
    return found


async def _receipt(tx: AsyncConnection, row_id: int, status: Status, now: datetime) -> None:
    current = (await tx.execute(sa.select(WHATSAPP_RECEIPT.c.status).where(
        WHATSAPP_RECEIPT.c.outbox_id == row_id))).scalar_one_or_none()
    if current is None:
        await tx.execute(_insert(tx, WHATSAPP_RECEIPT).values(
            outbox_id=row_id, status=status.status, error=status.error, at=now
        ).on_conflict_do_nothing())
    elif _RANK[status.status] > _RANK.get(str(current), 0):
        await tx.execute(sa.update(WHATSAPP_RECEIPT).where(
            WHATSAPP_RECEIPT.c.outbox_id == row_id).values(
            status=status.status, error=status.error, at=now))


async def receipt(tx: AsyncConnection, *, outbox_id: int) -> tuple[str, str | None] | None:
    """(status, error) WhatsApp last reported for an outbox row."""
    row = (await tx.execute(sa.select(WHATSAPP_RECEIPT.c.status, WHATSAPP_RECEIPT.c.error)
                            .where(WHATSAPP_RECEIPT.c.outbox_id == outbox_id))).first()
    return (str(row[0]), row[1]) if row is not None else None


async def source_of(tx: AsyncConnection, *, external_id: str,
                    wamid: str) -> tuple[int | None, dict[str, Any]] | None:
    """(owner, payload) of the outbox row that became message ``wamid`` (a list whose
    "more" row was picked), or None."""
    for row in (await tx.execute(_recent_of(external_id))).all():
        if wamid in (row.platform_ids or ()):
            return row.shopkeeper_id, dict(row.payload)
    return None
