"""The outbox: every message is a row before it is sent, and the row says how it went.

Claiming is one atomic statement on both backends: an ``UPDATE … WHERE id IN (SELECT …)
RETURNING`` whose inner select takes ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (several
senders never claim the same row) and is serialised by the single writer on SQLite. Only a
chat's *head* is claimable: a row waits while an earlier row of the same chat is unfinished,
so one chat's messages arrive in the order they were recorded.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.records import OUTBOX_COLUMNS, OutboxRecord
from storage.tables import OUTBOX, UNFINISHED, OutboxKind, OutboxStatus, utcnow

# On the table, not the ORM class: the ORM's bulk-insert path costs several times the INSERT.
_RECORD = OUTBOX.insert().returning(OUTBOX.c.id, sort_by_parameter_order=True)
def _unfinished(table: sa.FromClause) -> sa.ColumnElement[bool]:
    """``status IN ('queued', …)`` with the values written out, as in the partial index
    ``ix_outbox_chat_open``: only then does SQLite's planner use it (bound parameters
    would make it scan the whole table)."""
    return table.c.status.in_([sa.literal_column(f"'{status}'") for status in UNFINISHED])


_OPEN_OF_CHAT = (
    sa.select(OUTBOX.c.id)
    .where(OUTBOX.c.channel == sa.bindparam("channel"),
           OUTBOX.c.external_id == sa.bindparam("external_id"),
           _unfinished(OUTBOX), OUTBOX.c.ordered)
    .order_by(OUTBOX.c.id).limit(50))
_CLAIMABLE = (OutboxStatus.QUEUED, OutboxStatus.ERRORED)


def _attachment(payload: dict[str, Any]) -> tuple[dict[str, Any], bytes | None]:
    """A document's bytes (``payload["document"]["data"]``) apart from the JSON payload:
    they go in the row's attachment column (``image``), read back only to send it."""
    document = payload.get("document")
    if not isinstance(document, dict) or "data" not in document:
        return payload, None
    data = document["data"]
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"a document's data must be bytes, not {type(data).__name__}")
    rest = {key: value for key, value in document.items() if key != "data"}
    return {**payload, "document": rest}, bytes(data)


async def record(tx: AsyncConnection, *, shopkeeper_id: int | None, channel: str, external_id: str,
                 payloads: Sequence[dict[str, Any]], kind: OutboxKind = OutboxKind.REPLY,
                 sending_until: datetime | None = None,
                 claimed_by: str | None = None) -> list[int]:
    """Record messages to one address, in order, in one round trip; returns their ids.

    ``shopkeeper_id`` None: to someone who is forgotten (see :func:`delete`).
    With ``sending_until`` the rows are recorded already claimed (status ``claimed`` with
    that lease, by sender ``claimed_by``): the caller delivers them right after the commit
    (a reply's fast path).

    A payload may carry a document's bytes as ``payload["document"]["data"]``
    (``Outbound.to_data()`` leaves them out; add them to send a file): they are stored in
    the row's attachment column, not in the JSON, and the sender reads them back with
    :func:`attachment` just before the call.
    """
    now = utcnow()
    status = OutboxStatus.QUEUED if sending_until is None else OutboxStatus.CLAIMED
    rows = []
    for given in payloads:
        payload, data = _attachment(given)
        rows.append({"shopkeeper_id": shopkeeper_id, "channel": channel,
                     "external_id": external_id, "payload": payload, "image": data,
                     "kind": kind, "status": status, "ordered": True, "attempts": 0,
                     "progress": 0, "next_attempt_at": now, "lease_until": sending_until,
                     "claimed_by": claimed_by, "created_at": now})
    result = await tx.execute(_RECORD, rows)
    return [int(row_id) for row_id in result.scalars()]


async def attachment(tx: AsyncConnection, *, message_id: int) -> bytes | None:
    """The bytes stored with a row (a document's), or None."""
    data = (await tx.execute(sa.select(OUTBOX.c.image).where(OUTBOX.c.id == message_id))
            ).scalar_one_or_none()
    return bytes(data) if data is not None else None


async def open_ids(tx: AsyncConnection, *, channel: str, external_id: str) -> list[int]:
    """Unfinished rows of one chat that later rows must wait for (at most 50)."""
    result = await tx.execute(_OPEN_OF_CHAT, {"channel": channel, "external_id": external_id})
    return [int(row_id) for row_id in result.scalars()]


async def claim(tx: AsyncConnection, *, lease_until: datetime, claimed_by: str, limit: int,
                chat: tuple[str, str] | None = None,
                delivered: Collection[int] = ()) -> list[OutboxRecord]:
    """Claim up to ``limit`` due chat heads (of one ``chat`` = (channel, external_id), if
    given): replies first, then oldest first.

    ``delivered`` are rows this process has sent but not yet marked: they no longer hold
    back their chat.
    """
    row, earlier = OUTBOX.alias("row"), OUTBOX.alias("earlier")
    blocked_by = [earlier.c.channel == row.c.channel,
                  earlier.c.external_id == row.c.external_id,
                  earlier.c.id < row.c.id, _unfinished(earlier), earlier.c.ordered]
    if delivered:
        blocked_by.append(earlier.c.id.not_in(list(delivered)))
    due = [row.c.status.in_(_CLAIMABLE), row.c.next_attempt_at <= utcnow(),
           ~sa.exists().where(*blocked_by)]
    if chat is not None:
        due += [row.c.channel == chat[0], row.c.external_id == chat[1]]
    heads = (sa.select(row.c.id).where(*due)
             .order_by(sa.case((row.c.kind == OutboxKind.REPLY, 0), else_=1), row.c.id)
             .limit(limit).with_for_update(skip_locked=True))
    result = await tx.execute(
        sa.update(OUTBOX).where(OUTBOX.c.id.in_(heads.scalar_subquery()),
                                OUTBOX.c.status.in_(_CLAIMABLE))
        .values(status=OutboxStatus.CLAIMED, lease_until=lease_until, claimed_by=claimed_by)
        .returning(*OUTBOX_COLUMNS))
    records = [OutboxRecord(*r) for r in result.all()]
    return sorted(records, key=lambda r: (r.kind != OutboxKind.REPLY, r.id))


_SENDING = (sa.update(OUTBOX)
            .where(OUTBOX.c.id == sa.bindparam("message_id"),
                   OUTBOX.c.status == OutboxStatus.CLAIMED)
            .values(status=OutboxStatus.SENDING)
            .returning(OUTBOX.c.id))


async def mark_sending(tx: AsyncConnection, *, message_id: int) -> bool:
    """Just before the platform call: from now on a crash leaves the row ``uncertain``.
    False when the row is no longer this sender's (its lease ran out)."""
    return (await tx.execute(_SENDING, {"message_id": message_id})).first() is not None


_DELIVERABLE = (OutboxStatus.CLAIMED, OutboxStatus.SENDING, OutboxStatus.UNCERTAIN)
# Written out, not bound: an expanding IN cannot run for many parameter sets.
_SENT_WITH_IDS = (sa.update(OUTBOX)
                  .where(OUTBOX.c.id == sa.bindparam("message_id"),
                         OUTBOX.c.status.in_([sa.literal_column(f"'{status}'")
                                              for status in _DELIVERABLE]))
                  .values(status=OutboxStatus.SENT, sent_at=sa.bindparam("now"),
                          lease_until=None, attempts=OUTBOX.c.attempts + 1, error=None,
                          platform_ids=sa.bindparam("ids")))


async def mark_sending_many(tx: AsyncConnection, *, ids: Collection[int],
                            claimed_by: str) -> set[int]:
    """A wave of bulk rows just before their platform calls: from now on a crash leaves
    them ``uncertain``. Returns the ids still ``claimed_by``'s (a row whose broadcast was
    cancelled meanwhile, or whose lease ran out and went to another sender, is not)."""
    result = await tx.execute(
        sa.update(OUTBOX)
        .where(OUTBOX.c.id.in_(list(ids)), OUTBOX.c.status == OutboxStatus.CLAIMED,
               OUTBOX.c.claimed_by == claimed_by)
        .values(status=OutboxStatus.SENDING)
        .returning(OUTBOX.c.id))
    return {int(row_id) for row_id in result.scalars()}


async def mark_sent(tx: AsyncConnection, *,
                    ids: Mapping[int, Sequence[str] | None] | Collection[int]) -> None:
    """Delivered, with the platform's message ids of each row (``ids``: row id → its
    message ids, or None to keep what the row has; a plain collection of row ids: keep).
    From ``claimed`` too (a notice shown as a pop-up makes no message call), and over
    ``uncertain`` (a lease that ran out while the send succeeded). Two statements at most:
    one for the rows without ids, one (run for many parameter sets) for those with."""
    if not ids:
        return
    platform = ids if isinstance(ids, Mapping) else dict.fromkeys(ids)
    now = utcnow()
    bare = [row_id for row_id, found in platform.items() if found is None]
    if bare:
        await tx.execute(
            sa.update(OUTBOX).where(OUTBOX.c.id.in_(bare), OUTBOX.c.status.in_(_DELIVERABLE))
            .values(status=OutboxStatus.SENT, sent_at=now, lease_until=None,
                    attempts=OUTBOX.c.attempts + 1, error=None))
    known = [{"message_id": row_id, "now": now, "ids": list(found)}
             for row_id, found in platform.items() if found is not None]
    if known:
        await tx.execute(_SENT_WITH_IDS, known)


async def mark_errored(tx: AsyncConnection, *, message_id: int, error: str,
                       retry_at: datetime, progress: int, ordered: bool = True,
                       counted: bool = True, platform_ids: Sequence[str] | None = None) -> None:
    """Surely not delivered: try again at ``retry_at``. ``ordered=False`` lets the chat's
    later messages go first (a chart that could not be drawn follows when it can);
    ``counted=False`` does not count the attempt (a 429 is not the message's fault).
    ``platform_ids``: the messages its calls made so far (kept for the retry)."""
    await _finish(tx, message_id, OutboxStatus.ERRORED, error, progress,
                  next_attempt_at=retry_at, ordered=ordered, counted=counted,
                  platform_ids=platform_ids)


async def mark_failed(tx: AsyncConnection, *, message_id: int, error: str,
                      progress: int = 0, platform_ids: Sequence[str] | None = None) -> None:
    """Given up: the platform refused it, or every attempt failed."""
    await _finish(tx, message_id, OutboxStatus.FAILED, error, progress,
                  platform_ids=platform_ids)


async def mark_uncertain(tx: AsyncConnection, *, message_id: int, error: str,
                         progress: int = 0, platform_ids: Sequence[str] | None = None) -> None:
    """The request went out and no answer came back: it may have arrived."""
    await _finish(tx, message_id, OutboxStatus.UNCERTAIN, error, progress,
                  platform_ids=platform_ids)


async def _finish(tx: AsyncConnection, message_id: int, status: OutboxStatus, error: str,
                  progress: int, *, counted: bool = True,
                  platform_ids: Sequence[str] | None = None, **values: Any) -> None:
    if platform_ids:  # else what the row has stays
        values["platform_ids"] = list(platform_ids)
    await tx.execute(
        sa.update(OUTBOX).where(OUTBOX.c.id == message_id)
        .values(status=status, error=error[:500], progress=progress, lease_until=None,
                attempts=OUTBOX.c.attempts + int(counted), **values))


async def requeue_resent(tx: AsyncConnection, *, message_id: int, payload: dict[str, Any],
                         error: str, progress: int) -> None:
    """Queue a reply that may have arrived once more, marked so it says it is a resend
    (and is never resent again)."""
    await tx.execute(
        sa.update(OUTBOX).where(OUTBOX.c.id == message_id)
        .values(status=OutboxStatus.QUEUED, lease_until=None, next_attempt_at=utcnow(),
                payload={**payload, "resent": True}, error=error[:500], progress=progress,
                attempts=OUTBOX.c.attempts + 1))


async def expire_leases(tx: AsyncConnection, *, resend_replies: bool,
                        live: Collection[str]) -> tuple[int, int]:
    """Rows whose sender stopped (a crash): their lease ran out, or their sender is not
    among the ``live`` ones. Claimed rows that were never tried are queued again; rows
    caught mid-send become ``uncertain``, or, for a reply when ``resend_replies`` is set and
    it was not resent before, are queued once more with a note.

    Returns (made uncertain, queued again).
    """
    now = utcnow()
    gone = sa.or_(OUTBOX.c.lease_until < now, OUTBOX.c.claimed_by.is_(None),
                  OUTBOX.c.claimed_by.not_in(list(live)))
    # Claimed and never tried: safe to send, by whoever claims them next.
    await tx.execute(sa.update(OUTBOX).where(OUTBOX.c.status == OutboxStatus.CLAIMED, gone)
                     .values(status=OutboxStatus.QUEUED, lease_until=None, claimed_by=None))
    expired = (await tx.execute(
        sa.select(OUTBOX.c.id, OUTBOX.c.kind, OUTBOX.c.payload, OUTBOX.c.shopkeeper_id)
        .where(OUTBOX.c.status == OutboxStatus.SENDING, gone)
        .with_for_update(skip_locked=True))).all()
    uncertain, again = [], 0
    for message_id, kind, payload, owner in expired:
        if owner is None:  # to someone forgotten: nothing about them may stay
            await delete(tx, message_id=message_id)
        elif resend_replies and kind == OutboxKind.REPLY and not payload.get("resent"):
            await requeue_resent(tx, message_id=message_id, payload=payload,
                                 error="its sender stopped mid-send: resent once",
                                 progress=0)
            again += 1
        else:
            uncertain.append(message_id)
    if uncertain:
        await tx.execute(
            sa.update(OUTBOX).where(OUTBOX.c.id.in_(uncertain))
            .values(status=OutboxStatus.UNCERTAIN, lease_until=None,
                    attempts=OUTBOX.c.attempts + 1,
                    error="its sender stopped mid-send"))
    return len(uncertain), again


async def delete(tx: AsyncConnection, *, message_id: int) -> None:
    """A row addressed to nobody we keep (consent refused) is deleted once it is final."""
    await tx.execute(sa.delete(OUTBOX).where(OUTBOX.c.id == message_id))


async def release(tx: AsyncConnection, *, ids: Collection[int]) -> None:
    """Give claimed rows back (an earlier row of their chat did not go out)."""
    if ids:
        await tx.execute(
            sa.update(OUTBOX)
            .where(OUTBOX.c.id.in_(list(ids)), OUTBOX.c.status == OutboxStatus.CLAIMED)
            .values(status=OutboxStatus.QUEUED, lease_until=None, claimed_by=None))


async def record_many(tx: AsyncConnection, rows: Sequence[dict[str, Any]], *,
                      kind: OutboxKind = OutboxKind.BULK) -> None:
    """Record messages to many people at once (``shopkeeper_id``, ``channel``,
    ``external_id``, ``payload`` each), queued for the sender: one round trip. A document's
    bytes in a payload are kept apart, as in :func:`record`."""
    if not rows:
        return
    now = utcnow()
    values = []
    for row in rows:
        payload, data = _attachment(row["payload"])
        values.append({**row, "payload": payload, "image": data, "kind": kind,
                       "status": OutboxStatus.QUEUED, "ordered": True, "attempts": 0,
                       "progress": 0, "next_attempt_at": now, "lease_until": None,
                       "claimed_by": None, "created_at": now})
    await tx.execute(OUTBOX.insert(), values)


async def drop_unsent(tx: AsyncConnection, *, shopkeeper_id: int, reason: str,
                      bulk_only: bool = False) -> int:
    """Give up on everything still waiting for one person (they blocked the bot), or only
    on the bulk messages (tips, broadcasts: they sent /stop)."""
    statement = (sa.update(OUTBOX)
                 .where(OUTBOX.c.shopkeeper_id == shopkeeper_id,
                        OUTBOX.c.status.in_(_CLAIMABLE))
                 .values(status=OutboxStatus.FAILED, error=reason[:500]))
    if bulk_only:
        statement = statement.where(OUTBOX.c.kind == OutboxKind.BULK)
    result = await tx.execute(statement)
    return int(result.rowcount)


async def last_arrived(tx: AsyncConnection, *, shopkeeper_id: int) -> bool:
    """Whether everything the person was last told (the rows of their latest answer, which
    share one ``created_at``) surely arrived, or is still on its way."""
    mine = OUTBOX.c.shopkeeper_id == shopkeeper_id
    latest = sa.select(sa.func.max(OUTBOX.c.created_at)).where(mine).scalar_subquery()
    lost = (await tx.execute(
        sa.select(sa.func.count()).where(
            mine, OUTBOX.c.created_at == latest,
            OUTBOX.c.status.in_((OutboxStatus.UNCERTAIN, OutboxStatus.FAILED))))).scalar_one()
    return int(lost) == 0


async def status_counts(tx: AsyncConnection, *,
                        statuses: Collection[OutboxStatus] | None = None) -> dict[str, int]:
    """How many rows are in each status (for operators and tests); only ``statuses`` when
    given. Counting the unfinished ones reads only their part of the status index; counting
    every status reads the whole table, which only grows."""
    statement = sa.select(OUTBOX.c.status, sa.func.count()).group_by(OUTBOX.c.status)
    if statuses is not None:
        statement = statement.where(OUTBOX.c.status.in_([s.value for s in statuses]))
    rows = await tx.execute(statement)
    return {str(status): int(count) for status, count in rows.all()}


async def oldest_due(tx: AsyncConnection) -> datetime | None:
    """When the longest-waiting claimable row became due (None when nothing waits)."""
    result = await tx.execute(sa.select(sa.func.min(OUTBOX.c.next_attempt_at)).where(
        OUTBOX.c.status.in_(_CLAIMABLE)))
    value: datetime | None = result.scalar_one_or_none()
    return value
