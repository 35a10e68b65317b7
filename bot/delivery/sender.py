"""One way out: the outbox sender delivers every message, whoever recorded it.

Two paths, one bookkeeping. A reply's rows are recorded already claimed and delivered right
after the turn's commit (:meth:`OutboxSender.deliver`); everything else (retries, rows
another process recorded, later tips and broadcasts) is claimed by :meth:`OutboxSender.poll`,
which the app's scheduler runs every second and :meth:`OutboxSender.wake` runs at once.

Each platform call first waits for the channel's shared :class:`RateLimiter`. The outcome
decides the row's next status (see :mod:`bot.delivery.outcomes`)::

    sent · errored (retried with exponential backoff and jitter) · failed · uncertain

A chat's rows go out in order: when one does not go out, its chat's later rows are given
back and wait for it. A chart that cannot be drawn is the exception: the result goes out as
text and the chart follows when the painter works again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.delivery.limiter import Priority, RateLimiter
from bot.delivery.marks import SentMarks
from bot.delivery.outcomes import (
    Channel,
    DeliveryError,
    Held,
    MaybeDelivered,
    Media,
    NotDelivered,
    Pace,
    RateLimited,
    Refused,
    RowChannel,
    Unreachable,
)
from bot.delivery.pictures import Pictures
from bot.delivery.waves import Waves
from bot.painter import ChartPainter, PainterError
from flows.definition import DEFAULT_LANGUAGE
from flows.messages import Image, Outbound
from flows.texts import Texts
from handlers import turn_ids
from storage import outbox, senders, shopkeepers
from storage.database import Database
from storage.records import OutboxRecord
from storage.tables import OutboxKind, utcnow

log = logging.getLogger(__name__)

#: A sender that has not said it is alive for this long is gone (heartbeats every 5 s).
ALIVE_FOR = timedelta(seconds=20)
#: The most rows one claim takes (see OutboxSender._claim_size).
MAX_CLAIM = 1000
#: A row held until the person writes again is looked at again after this long anyway.
HELD_FOR = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    """How hard the sender tries (``[delivery]`` in config.toml)."""

    max_attempts: int = 8
    backoff_base: float = 1.0  # seconds before the first retry; doubled each time
    backoff_max: float = 300.0
    lease_seconds: float = 60.0  # a claimed row is ours this long, then "uncertain"
    poll_seconds: float = 1.0
    #: Resend a reply (once, with a note) when it may or may not have arrived.
    resend_uncertain_replies: bool = False
    chart_retry_seconds: float = 30.0
    batch: int = 200  # rows claimed per poll
    concurrency: int = 64  # chats delivered at once by one poll


class SendWatcher(Protocol):
    """Told about every send's outcome that the operator counts (see :mod:`bot.metrics`)."""

    def sent(self, channel: str) -> None:
        """A message went out through ``channel``."""

    def rate_limited(self, channel: str) -> None:
        """``channel``'s platform answered 429."""


class _LeaseLostError(Exception):
    """The row was given to another sender while this one waited (a long 429 pause)."""


class _Result(Enum):
    SENT = "sent"
    DEFERRED = "deferred"  # not now, but the chat's next rows may go on
    STOPPED = "stopped"  # not now, and the chat's next rows must wait


class OutboxSender:
    """Delivers outbox rows through their channel, within its rate limits.

    Args:
        db: The database.
        channels: The channel for each ``outbox.channel`` name.
        limiters: The rate limiter of each channel's account, shared by all its sends.
        painter: Draws result charts just before they are sent.
        texts: For the note on a resent reply.
        settings: Attempts, backoff, lease.
        jitter: ``random.random`` (injectable, so backoff tests are exact).
    """

    def __init__(self, db: Database, channels: Mapping[str, Channel],
                 limiters: Mapping[str, RateLimiter], painter: ChartPainter, texts: Texts,
                 settings: DeliverySettings | None = None,
                 jitter: Callable[[], float] = random.random) -> None:
        self.db = db
        self.channels = dict(channels)
        self.limiters = dict(limiters)
        self.painter = painter
        self.texts = texts
        self.settings = settings or DeliverySettings()
        self.jitter = jitter
        self.id = f"{socket.gethostname()[:20]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.marks = SentMarks(db)
        self._waves = Waves(db, self.id, self.settings.concurrency, self.limiters,
                            self.marks, self._send)
        self._poll_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[object]] = set()
        self._closed = False
        self._in_flight = 0
        self._quiet = asyncio.Condition()
        #: Pictures as each channel sends them (the same channel mapping: they join later).
        self.pictures = Pictures(db, self.channels)
        #: Told of each send and 429 (set by the operator's endpoints, when served).
        self.watcher: SendWatcher | None = None

    # -- what the dispatcher uses -------------------------------------------------------

    @property
    def unmarked(self) -> Collection[int]:
        return self.marks.pending

    def lease(self) -> datetime:
        return utcnow() + timedelta(seconds=self.settings.lease_seconds)

    def wake(self) -> None:
        """Something was queued: poll now rather than at the next tick."""
        if not self._closed and not self._poll_lock.locked():
            self._spawn(self.poll())

    def add_channel(self, name: str, channel: Channel, limiter: RateLimiter) -> None:
        """Channels join when they start (Telegram needs its bot before it can send)."""
        self.channels[name] = channel
        self.limiters[name] = limiter

    async def deliver(self, rows: list[OutboxRecord]) -> bool:
        """Deliver one chat's claimed rows in order; stop at the first that does not go
        out and give the rest back. True when every row went out."""
        everything = True
        for index, row in enumerate(rows):
            result = await self._send(row)
            everything = everything and result is _Result.SENT
            if result is _Result.STOPPED:
                rest = [r.id for r in rows[index + 1:]]
                if rest:
                    async with self.db.transaction() as tx:
                        await outbox.release(tx, ids=rest)
                return False
        return everything

    # -- scheduled work -----------------------------------------------------------------

    async def tick(self) -> None:
        """The scheduler's call: poll, unless a poll is still delivering (it picks up what
        came due meanwhile when it chains a chat's next rows)."""
        if not self._poll_lock.locked():
            await self.poll()

    async def poll(self) -> int:
        """Claim due chat heads and deliver them, each chat's rows in turn; returns how many
        rows went through the sender. A poll already running is waited for first.

        A full batch is followed by the next one at once: waiting for the scheduler's next
        tick would leave the platform idle, and the rate limiter's bucket would refill and
        let a burst out that, on top of the steady rate, can touch the platform's limit."""
        total = 0
        gate = asyncio.Semaphore(self.settings.concurrency)

        async def chain(first: OutboxRecord) -> int:
            async with gate:
                return await self._chain(first)

        async with self._poll_lock:
            while True:
                await self.marks.flush()
                await self._apply_pauses()
                limit = self._claim_size()
                async with self.db.transaction() as tx:
                    rows = await outbox.claim(tx, lease_until=self.lease(), claimed_by=self.id,
                                              limit=limit, delivered=self.marks.pending)
                full = len(rows) == limit
                await self._give_back([r for r in rows if r.channel not in self.channels])
                rows = [r for r in rows if r.channel in self.channels]
                bulk = [r for r in rows if r.kind != OutboxKind.REPLY]
                total += sum(await asyncio.gather(
                    self._waves.deliver(bulk),
                    *(chain(row) for row in rows if row.kind == OutboxKind.REPLY)))
                # Bulk rows are not chained: their chats' next rows are claimed now.
                if not (full or bulk) or self._closed:
                    return total

    def _claim_size(self) -> int:
        """Rows per claim: the batch, or about a second's worth at the fastest rate (a
        claim scans the queue: at 1,000/s, 200 rows a claim would be five scans a second)."""
        rate = max((limiter.rate for limiter in self.limiters.values()), default=0.0)
        return max(self.settings.batch, min(MAX_CLAIM, int(rate)))

    async def _chain(self, row: OutboxRecord) -> int:
        """Deliver a claimed head, then the chat's next rows while they are due."""
        done = 0
        current: OutboxRecord | None = row
        while current is not None:
            done += 1
            if await self._send(current) is _Result.STOPPED:
                return done
            async with self.db.transaction() as tx:
                claimed = await outbox.claim(
                    tx, lease_until=self.lease(), claimed_by=self.id, limit=1,
                    chat=(current.channel, current.external_id),
                    delivered=self.marks.pending)
            current = claimed[0] if claimed else None
        return done

    async def _give_back(self, rows: list[OutboxRecord]) -> None:
        """Rows for a channel this process does not serve go back for one that does."""
        if rows:
            async with self.db.transaction() as tx:
                await outbox.release(tx, ids=[r.id for r in rows])

    async def expire(self) -> tuple[int, int]:
        """Rows claimed by a sender that stopped (a crash) are uncertain, or resent once
        (replies, when configured). Returns (uncertain, queued again)."""
        async with self.db.transaction() as tx:
            live = await senders.alive(tx, alive_for=ALIVE_FOR)
            counts = await outbox.expire_leases(
                tx, resend_replies=self.settings.resend_uncertain_replies, live={*live, self.id})
        if counts[1]:
            self.wake()
        if counts[0]:
            log.warning("%d messages may or may not have arrived (their sender stopped)",
                        counts[0])
        return counts

    async def heartbeat(self, *, only_one: bool = False) -> int:
        """Say this sender is alive and take an equal share of each channel's rate.
        ``only_one``: no other sender can be alive (SQLite serves one process), so rows
        other senders claimed are not waited for."""
        async with self.db.transaction() as tx:
            if only_one:
                await senders.forget_others(tx, sender_id=self.id)
            alive = await senders.heartbeat(tx, sender_id=self.id, alive_for=ALIVE_FOR)
        for limiter in self.limiters.values():
            limiter.set_share(1 / max(alive, 1))
        return alive

    async def _apply_pauses(self) -> None:
        """429s another process saw pause this one too."""
        async with self.db.transaction() as tx:
            pauses = await senders.pauses(tx)
        now = utcnow()
        for scope, until in pauses.items():
            channel, _, chat = scope.partition(":")
            limiter = self.limiters.get(channel)
            if limiter is not None:
                limiter.pause((until - now).total_seconds(), chat or None)

    async def close(self) -> None:
        """Finish what is being sent, then write the last marks."""
        self._closed = True
        async with self._poll_lock:
            pass
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        async with self._quiet:
            await self._quiet.wait_for(lambda: self._in_flight == 0)
        await self.marks.close()
        try:
            async with self.db.transaction() as tx:
                await senders.leave(tx, sender_id=self.id)
        except Exception:  # the database is going away too; the heartbeat times out
            log.debug("could not sign the sender off", exc_info=True)

    def _spawn(self, work: object) -> None:
        assert asyncio.iscoroutine(work)
        # not part of the turn that may have woken it: its log lines name no turn
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(
            work, context=turn_ids.outside())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- one row ------------------------------------------------------------------------

    async def settled(self) -> None:
        """Wait until nothing is being sent, then write the pending "sent" marks."""
        async with self._quiet:
            await self._quiet.wait_for(lambda: self._in_flight == 0)
        await self.marks.flush()

    async def _send(self, row: OutboxRecord,
                    wave: dict[int, Sequence[str] | None] | None = None) -> _Result:
        """Send one claimed row. ``wave``: the row is a bulk one, already marked
        ``sending`` with its wave; what went out is put there (row id → platform ids) for
        the wave's one UPDATE, instead of in :attr:`marks`."""
        self._in_flight += 1
        try:
            return await self._send_row(row, wave)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                async with self._quiet:
                    self._quiet.notify_all()

    async def _send_row(self, row: OutboxRecord,
                        wave: dict[int, Sequence[str] | None] | None) -> _Result:
        channel = self.channels.get(row.channel)
        if channel is None:
            await self._give_back([row])
            return _Result.STOPPED
        message = Outbound.from_data(row.payload)
        lang = str(row.payload.get("lang", DEFAULT_LANGUAGE))
        if row.payload.get("resent"):
            note = self.texts.get(lang, "resent_note")
            message = replace(message, text=f"{note}\n\n{message.text}")
        if message.chart is not None and message.image is None:
            try:
                chart = message.chart
                png = await self.painter.draw(list(chart.labels), list(chart.scores),
                                              chart.title, before=chart.before,
                                              legend=chart.legend, style=chart.style)
            except PainterError as exc:
                return await self._chart_later(row, exc)
            message = replace(message, image=Image(message.chart.name, png,
                                                   message.chart.caption))
        if message.document is not None and not message.document.data:
            async with self.db.transaction() as tx:
                data = await outbox.attachment(tx, message_id=row.id)
            if data is None:  # recorded without its bytes: nothing to send, ever
                async with self.db.transaction() as tx:
                    await self._give_up(tx, row, "the document's bytes are missing",
                                        row.progress)
                return _Result.DEFERRED
            message = replace(message, document=replace(message.document, data=data))
        media: Media | None = None
        if message.photo is not None:
            media = await self.pictures.get(row.channel, message.photo)
            if media is None:
                async with self.db.transaction() as tx:
                    await self._give_up(tx, row, f"picture {message.photo} is gone",
                                        row.progress)
                return _Result.DEFERRED
        limiter = self.limiters[row.channel]
        priority = Priority.INTERACTIVE if row.kind == OutboxKind.REPLY else Priority.BULK

        marked = wave is not None

        async def pace() -> None:
            """Wait for the rate limits; before the first call, say it is under way."""
            nonlocal marked
            await limiter.acquire(row.external_id, priority)
            if not marked:
                async with self.db.transaction() as tx:
                    if not await outbox.mark_sending(tx, message_id=row.id):
                        raise _LeaseLostError(row.id)
                marked = True
                if limiter.paused_until(row.external_id):
                    # A 429 came back while the mark was being written: wait it out.
                    await limiter.acquire(row.external_id, priority)

        try:
            if media is not None and media.platform_id is None:
                await self.pictures.ready(media)  # its bytes, fetched once from its origin
                # The first recipient uploads; the others wait and reuse its file id.
                async with self.pictures.upload_lock(row.channel, media.id):
                    made = await self._send_media(channel, row, message, lang, pace, media)
            else:
                made = await _call(channel, row, message, lang, pace, media)
        except _LeaseLostError:
            log.info("outbox row %s is no longer ours (its lease ran out, or its broadcast "
                     "was cancelled): not sent", row.id)
            return _Result.STOPPED
        except DeliveryError as exc:
            return await self._failed(row, exc)
        except Exception as exc:  # a bug in rendering: like a failure that may pass
            log.exception("sending outbox row %s failed unexpectedly", row.id)
            return await self._failed(row, NotDelivered(f"{type(exc).__name__}: {exc}",
                                                        progress=row.progress))
        if self.watcher is not None:
            self.watcher.sent(row.channel)
        if row.shopkeeper_id is None:  # a last word to someone forgotten: now forget it
            async with self.db.transaction() as tx:
                await outbox.delete(tx, message_id=row.id)
        elif wave is not None:
            wave[row.id] = None if made is None else _ids(row, made)
        else:
            self.marks.add(row.id, None if made is None else _ids(row, made))
        return _Result.SENT

    async def _send_media(self, channel: Channel, row: OutboxRecord, message: Outbound,
                          lang: str, pace: Pace, picture: Media) -> Sequence[str] | None:
        """Send with a picture the platform may not know yet; keep its id once it does
        (also when a later call of the message failed)."""
        known = picture.platform_id
        try:
            return await _call(channel, row, message, lang, pace, picture)
        finally:
            if picture.platform_id != known:
                await self.pictures.remember(row.channel, picture)

    async def _chart_later(self, row: OutboxRecord, exc: PainterError) -> _Result:
        attempts = row.attempts + 1
        async with self.db.transaction() as tx:
            if attempts >= self.settings.max_attempts:
                await outbox.mark_failed(tx, message_id=row.id, error=f"chart: {exc}")
            else:
                await outbox.mark_errored(
                    tx, message_id=row.id, error=f"chart: {exc}", progress=row.progress,
                    retry_at=utcnow() + timedelta(seconds=self.settings.chart_retry_seconds),
                    ordered=False)
        return _Result.DEFERRED

    async def _failed(self, row: OutboxRecord, exc: DeliveryError) -> _Result:
        """Record what went wrong; the row's next status follows from the kind of error."""
        reason = exc.reason
        if isinstance(exc, RateLimited):  # at once: the transaction may wait for a connection
            self.limiters[row.channel].pause(exc.retry_after, exc.chat)
            if self.watcher is not None:
                self.watcher.rate_limited(row.channel)
        async with self.db.transaction() as tx:
            if isinstance(exc, Held):
                # Not the message's fault either: waits, uncounted, saying why.
                await outbox.mark_errored(
                    tx, message_id=row.id, error=reason, progress=exc.progress,
                    retry_at=exc.until or utcnow() + HELD_FOR, counted=False,
                    platform_ids=_ids(row, exc.platform_ids))
            elif isinstance(exc, RateLimited):
                await self._rate_limited(tx, row, exc)
            elif isinstance(exc, NotDelivered):
                attempts = row.attempts + 1
                if attempts >= self.settings.max_attempts:
                    await self._give_up(tx, row, f"{reason} (after {attempts} attempts)",
                                        exc.progress, _ids(row, exc.platform_ids))
                else:
                    await outbox.mark_errored(tx, message_id=row.id, error=reason,
                                              progress=exc.progress,
                                              retry_at=utcnow() + self._backoff(attempts),
                                              platform_ids=_ids(row, exc.platform_ids))
            elif isinstance(exc, Refused):
                log.error("%s refused outbox row %s: %s", row.channel, row.id, reason)
                await self._give_up(tx, row, reason, exc.progress, _ids(row, exc.platform_ids))
            elif isinstance(exc, Unreachable):
                await self._give_up(tx, row, reason, exc.progress, _ids(row, exc.platform_ids))
                person = await shopkeepers.reachable(tx, channel=row.channel,
                                                     external_id=row.external_id,
                                                     reachable=False)
                if person is not None:
                    await outbox.drop_unsent(tx, shopkeeper_id=person.id,
                                             reason=f"unreachable: {reason}")
            else:
                assert isinstance(exc, MaybeDelivered)
                await self._uncertain(tx, row, exc)
        return _Result.STOPPED

    async def _rate_limited(self, tx: AsyncConnection, row: OutboxRecord, exc: RateLimited) -> None:
        """Share the 429 (the limiter here was paused already) and retry after it."""
        until = utcnow() + timedelta(seconds=exc.retry_after)
        scope = row.channel if exc.chat is None else f"{row.channel}:{exc.chat}"
        await senders.pause(tx, scope=scope, until=until)
        # Not the message's fault: the attempt is not counted against it.
        await outbox.mark_errored(tx, message_id=row.id, error=exc.reason,
                                  progress=exc.progress, retry_at=until, counted=False,
                                  platform_ids=_ids(row, exc.platform_ids))

    async def _uncertain(self, tx: AsyncConnection, row: OutboxRecord, exc: MaybeDelivered) -> None:
        if row.shopkeeper_id is None:
            await outbox.delete(tx, message_id=row.id)
        elif (self.settings.resend_uncertain_replies and row.kind == OutboxKind.REPLY
                and not row.payload.get("resent")):
            await outbox.requeue_resent(tx, message_id=row.id, payload=row.payload,
                                        error=exc.reason, progress=exc.progress)
        else:
            await outbox.mark_uncertain(tx, message_id=row.id, error=exc.reason,
                                        progress=exc.progress,
                                        platform_ids=_ids(row, exc.platform_ids))

    async def _give_up(self, tx: AsyncConnection, row: OutboxRecord, reason: str,
                       progress: int, platform_ids: Sequence[str] = ()) -> None:
        if row.shopkeeper_id is None:
            await outbox.delete(tx, message_id=row.id)
        else:
            await outbox.mark_failed(tx, message_id=row.id, error=reason, progress=progress,
                                     platform_ids=platform_ids)

    def _backoff(self, attempts: int) -> timedelta:
        """Exponential, capped, with full jitter in [½, 1½) so retries don't line up."""
        base = min(self.settings.backoff_max,
                   self.settings.backoff_base * 2 ** (attempts - 1))
        return timedelta(seconds=base * (0.5 + self.jitter()))


async def _call(channel: Channel, row: OutboxRecord, message: Outbound, lang: str,
                pace: Pace, media: Media | None) -> Sequence[str] | None:
    """One row through its channel: with the whole row when the channel wants it."""
    if isinstance(channel, RowChannel):
        return await channel.send_row(row, message, lang=lang, pace=pace, media=media)
    return await channel.send(row.external_id, message, lang=lang, done=row.progress,
                              pace=pace, media=media)


def _ids(row: OutboxRecord, made: Sequence[str]) -> list[str]:
    """The platform's message ids of a row: those of earlier attempts, then these."""
    return [*(row.platform_ids or ()), *made]
