"""Tickets: a shopkeeper who asked for a human coach, and the conversation that follows.

Claiming is one conditional UPDATE: of two coaches pressing "I'll take it" at once, exactly
one gets a row back. A ticket with no message either way for :data:`SILENT_FOR` counts as
closed (it is closed the next time anyone looks).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import OUTBOX, SHOPKEEPER, TICKET, TICKET_MESSAGE, TICKET_POST, TicketStatus

#: How many of a chat's latest ticket messages a reply is looked up among.
RECENT_POSTS = 500
#: A ticket nobody wrote in for this long is closed.
SILENT_FOR = timedelta(days=7)
ACTIVE = (TicketStatus.OPEN, TicketStatus.CLAIMED)


@dataclass(slots=True)
class TicketRecord:
    """A row of ``ticket`` (see :class:`storage.tables.Ticket`)."""

    id: int
    shopkeeper_id: int
    question: str
    status: str
    coach_id: int | None
    coach_name: str | None
    created_at: datetime
    claimed_at: datetime | None
    active_at: datetime
    closed_at: datetime | None


_COLUMNS = [TICKET.c[f.name] for f in fields(TicketRecord)]


async def open_ticket(tx: AsyncConnection, *, shopkeeper_id: int, question: str,
                      now: datetime) -> TicketRecord:
    """A new ticket, or the person's active one (a second request joins the first)."""
    current = await active_of(tx, shopkeeper_id=shopkeeper_id, now=now)
    if current is not None:
        await add_message(tx, ticket=current, text=question, from_coach=False, now=now)
        return current
    row = (await tx.execute(sa.insert(TICKET).values(
        shopkeeper_id=shopkeeper_id, question=question[:2000], status=TicketStatus.OPEN,
        created_at=now, active_at=now).returning(*_COLUMNS))).one()
    return TicketRecord(*row)


async def get(tx: AsyncConnection, *, ticket_id: int) -> TicketRecord | None:
    row = (await tx.execute(sa.select(*_COLUMNS).where(TICKET.c.id == ticket_id))).first()
    return TicketRecord(*row) if row is not None else None


async def active_of(tx: AsyncConnection, *, shopkeeper_id: int,
                    now: datetime) -> TicketRecord | None:
    """The person's open or claimed ticket, unless it fell silent (then it is closed)."""
    await _close_silent(tx, now=now, shopkeeper_id=shopkeeper_id)
    row = (await tx.execute(sa.select(*_COLUMNS).where(
        TICKET.c.shopkeeper_id == shopkeeper_id, TICKET.c.status.in_(ACTIVE))
        .order_by(TICKET.c.id.desc()).limit(1))).first()
    return TicketRecord(*row) if row is not None else None


async def active(tx: AsyncConnection, *, now: datetime) -> list[TicketRecord]:
    """Every open or claimed ticket, oldest first."""
    await _close_silent(tx, now=now)
    rows = await tx.execute(sa.select(*_COLUMNS).where(TICKET.c.status.in_(ACTIVE))
                            .order_by(TICKET.c.id))
    return [TicketRecord(*row) for row in rows]


async def claim(tx: AsyncConnection, *, ticket_id: int, coach_id: int, coach_name: str,
                now: datetime) -> bool:
    """Make ``coach_id`` the owner; False when someone was first (or it is closed)."""
    result = await tx.execute(sa.update(TICKET).where(
        TICKET.c.id == ticket_id, TICKET.c.status == TicketStatus.OPEN)
        .values(status=TicketStatus.CLAIMED, coach_id=coach_id, coach_name=coach_name[:40],
                claimed_at=now, active_at=now))
    return bool(result.rowcount)


async def add_message(tx: AsyncConnection, *, ticket: TicketRecord, text: str,
                      from_coach: bool, now: datetime) -> None:
    await tx.execute(sa.insert(TICKET_MESSAGE).values(
        ticket_id=ticket.id, from_coach=from_coach, text=text[:4000], at=now))
    await tx.execute(sa.update(TICKET).where(TICKET.c.id == ticket.id).values(active_at=now))


async def close(tx: AsyncConnection, *, ticket_id: int, now: datetime) -> bool:
    result = await tx.execute(sa.update(TICKET).where(
        TICKET.c.id == ticket_id, TICKET.c.status.in_(ACTIVE))
        .values(status=TicketStatus.CLOSED, closed_at=now))
    return bool(result.rowcount)


async def messages(tx: AsyncConnection, *, ticket_id: int) -> list[tuple[bool, str, datetime]]:
    """The conversation: (from the coach, text, when), oldest first."""
    rows = await tx.execute(sa.select(TICKET_MESSAGE.c.from_coach, TICKET_MESSAGE.c.text,
                                      TICKET_MESSAGE.c.at)
                            .where(TICKET_MESSAGE.c.ticket_id == ticket_id)
                            .order_by(TICKET_MESSAGE.c.id))
    return [(bool(coach), str(text), at) for coach, text, at in rows]


async def posted(tx: AsyncConnection, *, ticket_id: int, outbox_ids: list[int]) -> None:
    """The outbox rows ``outbox_ids`` are about ticket ``ticket_id`` (a reply to one of them,
    once sent, answers it)."""
    if outbox_ids:
        await tx.execute(sa.insert(TICKET_POST),
                         [{"ticket_id": ticket_id, "outbox_id": row} for row in outbox_ids])


async def replied_to(tx: AsyncConnection, *, channel: str, chat: str,
                     message_id: str) -> int | None:
    """The ticket whose message ``message_id`` (the platform's id) in ``chat`` is, if it is
    one of the chat's latest ticket messages about one ticket; else None."""
    rows = await tx.execute(
        sa.select(TICKET_POST.c.ticket_id, OUTBOX.c.platform_ids)
        .join(OUTBOX, OUTBOX.c.id == TICKET_POST.c.outbox_id)
        .where(OUTBOX.c.channel == channel, OUTBOX.c.external_id == chat,
               OUTBOX.c.platform_ids.is_not(None))
        .order_by(TICKET_POST.c.id.desc()).limit(RECENT_POSTS))
    found = {int(ticket_id) for ticket_id, platform_ids in rows
             if message_id in (platform_ids or ())}
    # A message about several tickets (a coach's list) answers none of them.
    return found.pop() if len(found) == 1 else None


async def _close_silent(tx: AsyncConnection, *, now: datetime,
                        shopkeeper_id: int | None = None) -> None:
    query = sa.update(TICKET).where(TICKET.c.status.in_(ACTIVE),
                                    TICKET.c.active_at < now - SILENT_FOR)
    if shopkeeper_id is not None:
        query = query.where(TICKET.c.shopkeeper_id == shopkeeper_id)
    await tx.execute(query.values(status=TicketStatus.CLOSED, closed_at=now))


@dataclass(frozen=True, slots=True)
class Shop:
    """What a coach sees of the shopkeeper behind a ticket."""

    name: str | None
    shop_type: str | None
    municipality: str | None


async def shop_of(tx: AsyncConnection, *, shopkeeper_id: int) -> Shop:
    row = (await tx.execute(sa.select(SHOPKEEPER.c.shop_name, SHOPKEEPER.c.shop_type,
                                      SHOPKEEPER.c.municipality)
                            .where(SHOPKEEPER.c.id == shopkeeper_id))).first()
    return Shop(*row) if row is not None else Shop(None, None, None)
