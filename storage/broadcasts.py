"""Broadcasts and their recipients' outbox rows.

A broadcast is a row; each recipient is one outbox row carrying its ``broadcast_id``. The
pair (broadcast, person) is unique, so an enqueue that is retried (a crash, a second
process) never sends anyone the message twice: ``INSERT … ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import (
    BROADCAST,
    IDENTITY,
    OUTBOX,
    RESULT,
    SHOPKEEPER,
    UNFINISHED,
    BroadcastStatus,
    OutboxKind,
    OutboxStatus,
    utcnow,
)


@dataclass(slots=True)
class BroadcastRecord:
    """A row of ``broadcast`` (see :class:`storage.tables.Broadcast`)."""

    id: int
    created_by: int | None
    created_via: str
    texts: dict[str, str]
    segment: dict[str, list[str]]
    urgent: bool
    status: str
    send_at: datetime
    recipients: int
    created_at: datetime
    finished_at: datetime | None
    media_id: int | None = None
    deleted_at: datetime | None = None
    #: Rows WhatsApp's daily tier held for a later day, when the coach was told (None:
    #: none were held).
    next_day_rows: int | None = None


_COLUMNS = [BROADCAST.c[f.name] for f in fields(BroadcastRecord)]


@dataclass(slots=True)
class Candidate:
    """Someone a broadcast may reach: where, in which language, and their profile."""

    shopkeeper_id: int
    channel: str
    external_id: str
    language: str
    municipality: str | None
    shop_type: str | None
    scores: dict[str, int] | None
    focus: list[str] | None


@dataclass(slots=True)
class Counts:
    """How a broadcast's rows stand."""

    queued: int = 0  # not final yet (queued, claimed, sending, errored)
    sent: int = 0
    failed: int = 0
    unreachable: int = 0  # failed because the person blocked the bot
    uncertain: int = 0
    cancelled: int = 0
    #: Of ``queued``: waiting for the next day (WhatsApp's daily tier was reached).
    next_day: int = 0

    @property
    def total(self) -> int:
        return (self.queued + self.sent + self.failed + self.unreachable + self.uncertain
                + self.cancelled)

    def add(self, status: str, error: str | None, unreachable: bool, number: int) -> None:
        """Count ``number`` rows of one outbox ``status`` (and ``error``), sent to people
        who are ``unreachable`` or not."""
        if status in UNFINISHED:
            self.queued += number
            if error is not None and error.startswith(NEXT_DAY):
                self.next_day += number
        elif status == OutboxStatus.SENT:
            self.sent += number
        elif status == OutboxStatus.UNCERTAIN:
            self.uncertain += number
        elif error == CANCELLED:
            self.cancelled += number
        elif unreachable:
            self.unreachable += number
        else:
            self.failed += number


CANCELLED = "cancelled by the coach"
#: How a row held for the next day by WhatsApp's daily tier starts its error.
NEXT_DAY = "whatsapp: daily tier"


async def candidates(tx: AsyncConnection) -> list[Candidate]:
    """Everyone a broadcast may reach: consented, not opted out, not unreachable; at their
    newest address, with their latest result."""
    people = await tx.execute(
        sa.select(SHOPKEEPER.c.id, SHOPKEEPER.c.language, SHOPKEEPER.c.municipality,
                  SHOPKEEPER.c.shop_type)
        .where(SHOPKEEPER.c.consent_at.is_not(None), SHOPKEEPER.c.opted_out_at.is_(None),
               SHOPKEEPER.c.unreachable_since.is_(None)))
    found = {person: Candidate(person, "", "", language, municipality, shop_type, None, None)
             for person, language, municipality, shop_type in people}
    for owner, channel, external_id in await tx.execute(
            sa.select(IDENTITY.c.shopkeeper_id, IDENTITY.c.channel, IDENTITY.c.external_id)
            .order_by(IDENTITY.c.id)):
        if owner in found:
            found[owner].channel, found[owner].external_id = channel, external_id
    latest = sa.select(sa.func.max(RESULT.c.id)).group_by(RESULT.c.shopkeeper_id)
    for owner, scores, focus in await tx.execute(
            sa.select(RESULT.c.shopkeeper_id, RESULT.c.scores, RESULT.c.focus)
            .where(RESULT.c.id.in_(latest))):
        if owner in found:
            found[owner].scores, found[owner].focus = dict(scores), list(focus or [])
    return [c for c in found.values() if c.channel]


async def create(tx: AsyncConnection, *, created_by: int | None, created_via: str,
                 texts: dict[str, str], segment: dict[str, list[str]], urgent: bool,
                 send_at: datetime, now: datetime,
                 media_id: int | None = None) -> BroadcastRecord:
    row = (await tx.execute(sa.insert(BROADCAST).values(
        created_by=created_by, created_via=created_via[:80], texts=texts, segment=segment,
        urgent=urgent, status=BroadcastStatus.SCHEDULED, send_at=send_at, recipients=0,
        created_at=now, media_id=media_id).returning(*_COLUMNS))).one()
    return BroadcastRecord(*row)


async def get(tx: AsyncConnection, *, broadcast_id: int) -> BroadcastRecord | None:
    row = (await tx.execute(sa.select(*_COLUMNS).where(BROADCAST.c.id == broadcast_id))).first()
    return BroadcastRecord(*row) if row is not None else None


async def recent(tx: AsyncConnection, *, limit: int = 10) -> list[BroadcastRecord]:
    rows = await tx.execute(sa.select(*_COLUMNS).order_by(BROADCAST.c.id.desc()).limit(limit))
    return [BroadcastRecord(*row) for row in rows]


async def due(tx: AsyncConnection, *, now: datetime) -> list[BroadcastRecord]:
    """Scheduled broadcasts whose time has come, taken for this transaction."""
    rows = await tx.execute(
        sa.select(*_COLUMNS).where(BROADCAST.c.status == BroadcastStatus.SCHEDULED,
                                   BROADCAST.c.send_at <= now)
        .order_by(BROADCAST.c.send_at).with_for_update(skip_locked=True))
    return [BroadcastRecord(*row) for row in rows]


async def in_flight(tx: AsyncConnection) -> list[BroadcastRecord]:
    rows = await tx.execute(sa.select(*_COLUMNS).where(
        BROADCAST.c.status == BroadcastStatus.SENDING).with_for_update(skip_locked=True))
    return [BroadcastRecord(*row) for row in rows]


def _insert(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(OUTBOX).on_conflict_do_nothing(
        index_elements=["broadcast_id", "shopkeeper_id"])


_ENQUEUE = {name: _insert(name) for name in ("postgresql", "sqlite")}


async def enqueue(tx: AsyncConnection, *, broadcast_id: int,
                  rows: Sequence[dict[str, Any]]) -> None:
    """One bulk outbox row per recipient (``shopkeeper_id``, ``channel``, ``external_id``,
    ``payload``), due at once; a recipient already enqueued is skipped."""
    now = utcnow()  # the sender's clock, not the broadcast's schedule
    if rows:
        await tx.execute(_ENQUEUE[tx.dialect.name], [
            {**row, "broadcast_id": broadcast_id, "kind": OutboxKind.BULK,
             "status": OutboxStatus.QUEUED, "ordered": True, "attempts": 0, "progress": 0,
             "next_attempt_at": now, "lease_until": None, "claimed_by": None,
             "created_at": now} for row in rows])


async def started(tx: AsyncConnection, *, broadcast_id: int, recipients: int) -> None:
    await tx.execute(sa.update(BROADCAST).where(BROADCAST.c.id == broadcast_id)
                     .values(status=BroadcastStatus.SENDING, recipients=recipients))


async def held_for_next_day(tx: AsyncConnection, *, broadcast_id: int, rows: int) -> bool:
    """Note that ``rows`` of the broadcast wait for a later day (WhatsApp's daily tier).
    Only the first call changes the row and returns True: of several processes reporting
    at once, exactly one tells the coach."""
    changed = (await tx.execute(sa.update(BROADCAST).where(
        BROADCAST.c.id == broadcast_id, BROADCAST.c.next_day_rows.is_(None))
        .values(next_day_rows=rows))).rowcount
    return bool(changed)


async def finished(tx: AsyncConnection, *, broadcast_id: int, now: datetime) -> None:
    await tx.execute(sa.update(BROADCAST).where(BROADCAST.c.id == broadcast_id)
                     .values(status=BroadcastStatus.DONE, finished_at=now))


async def cancel(tx: AsyncConnection, *, broadcast_id: int, now: datetime) -> bool:
    """Stop a scheduled or running broadcast: what has not gone out yet does not. False
    when it was already done or cancelled."""
    changed = (await tx.execute(
        sa.update(BROADCAST).where(BROADCAST.c.id == broadcast_id, BROADCAST.c.status.in_(
            (BroadcastStatus.SCHEDULED, BroadcastStatus.SENDING)))
        .values(status=BroadcastStatus.CANCELLED, finished_at=now))).rowcount
    # Claimed rows too: a sender holds a whole batch while the rate limiter paces it, and
    # checks each row is still claimed just before its platform call (``mark_sending``).
    # Only rows already on their way (``sending``) still arrive.
    await tx.execute(sa.update(OUTBOX).where(
        OUTBOX.c.broadcast_id == broadcast_id,
        OUTBOX.c.status.in_((OutboxStatus.QUEUED, OutboxStatus.ERRORED,
                             OutboxStatus.CLAIMED)))
        .values(status=OutboxStatus.FAILED, error=CANCELLED, lease_until=None))
    return bool(changed)


async def counts(tx: AsyncConnection, *, broadcast_id: int) -> Counts:
    rows = await tx.execute(
        sa.select(OUTBOX.c.status, OUTBOX.c.error, SHOPKEEPER.c.unreachable_since.is_not(None),
                  sa.func.count())
        .outerjoin(SHOPKEEPER, SHOPKEEPER.c.id == OUTBOX.c.shopkeeper_id)
        .where(OUTBOX.c.broadcast_id == broadcast_id)
        .group_by(OUTBOX.c.status, OUTBOX.c.error, SHOPKEEPER.c.unreachable_since.is_not(None)))
    found = Counts()
    for status, error, unreachable, number in rows:
        found.add(status, error, unreachable, number)
    return found


async def resend_uncertain(tx: AsyncConnection, *, broadcast_id: int) -> int:
    """Queue again the rows that may or may not have arrived (a crash mid-send): the
    coach's choice, since some recipients will then see the message twice."""
    result = await tx.execute(
        sa.update(OUTBOX).where(OUTBOX.c.broadcast_id == broadcast_id,
                                OUTBOX.c.status == OutboxStatus.UNCERTAIN)
        .values(status=OutboxStatus.QUEUED, next_attempt_at=utcnow(), lease_until=None,
                claimed_by=None, progress=0, error=None))
    if result.rowcount:
        await tx.execute(sa.update(BROADCAST).where(BROADCAST.c.id == broadcast_id)
                         .values(status=BroadcastStatus.SENDING, finished_at=None))
    return int(result.rowcount)


#: How long Telegram lets a bot delete its own message in a private chat, less a margin for
#: the time the deletions take to go out.
DELETABLE_FOR = timedelta(hours=48) - timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Deletion:
    """What asking to delete a broadcast from the chats did."""

    queued: int  # chats a deletion was queued for
    too_old: int  # delivered too long ago: the platform no longer allows it


async def delete_from_chats(tx: AsyncConnection, *, broadcast_id: int,
                            now: datetime) -> Deletion | None:
    """Queue the deletion of a broadcast's delivered messages (one bulk row per chat
    carrying the platform's message ids), and stop what has not gone out yet. None when
    the broadcast does not exist or was deleted already."""
    changed = (await tx.execute(sa.update(BROADCAST).where(
        BROADCAST.c.id == broadcast_id, BROADCAST.c.deleted_at.is_(None))
        .values(deleted_at=now))).rowcount
    if not changed:
        return None
    await cancel(tx, broadcast_id=broadcast_id, now=now)
    delivered = await tx.execute(
        sa.select(OUTBOX.c.shopkeeper_id, OUTBOX.c.channel, OUTBOX.c.external_id,
                  OUTBOX.c.platform_ids, OUTBOX.c.sent_at, OUTBOX.c.payload)
        .where(OUTBOX.c.broadcast_id == broadcast_id, OUTBOX.c.status == OutboxStatus.SENT))
    rows, too_old = [], 0
    queued_at = utcnow()  # the sender's clock
    for owner, channel, external_id, ids, sent_at, payload in delivered:
        if not ids:
            continue  # delivered before message ids were kept
        if sent_at is None or sent_at < queued_at - DELETABLE_FOR:
            too_old += 1
            continue
        rows.append({"shopkeeper_id": owner, "channel": channel, "external_id": external_id,
                     "payload": {"text": "", "delete": list(ids),
                                 "lang": (payload or {}).get("lang", "nl")},
                     "kind": OutboxKind.BULK, "status": OutboxStatus.QUEUED, "ordered": True,
                     "attempts": 0, "progress": 0, "next_attempt_at": queued_at,
                     "created_at": queued_at})
    if rows:
        await tx.execute(sa.insert(OUTBOX), rows)
    return Deletion(len(rows), too_old)
