"""Coach broadcasts: who a message reaches, sending it when it is due, and the report after.

A broadcast is made ``scheduled`` (now or at a time). The app's tick takes it when its time
has come and the sending hours allow (an urgent one goes out whenever): it records one bulk
outbox row per recipient in batches (unique per broadcast and person, so a second process
or a retry after a crash never doubles anyone's message), and only then marks it
``sending``. The outbox sender delivers at the platform's pace, replies to chatting
shopkeepers first. When every row is final the coach gets a report in chat.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from flows.audience import Member, Segment
from flows.definition import DEFAULT_LANGUAGE, LANGUAGES
from flows.messages import Outbound
from flows.pictures import Picture
from flows.places import Gazetteer
from flows.rich_text import RichText
from flows.texts import Texts
from flows.timing import SendingHours
from handlers.coaching import payload
from handlers.nudges import Waker
from storage import broadcasts, media, outbox, shopkeepers
from storage.broadcasts import BroadcastRecord, Candidate, Counts
from storage.database import Database
from storage.tables import utcnow

log = logging.getLogger(__name__)

#: Recipients per transaction: SQLite's single writer is free again between batches, so
#: shopkeepers chatting meanwhile are not held up.
BATCH = 1000


def version_for(texts: Mapping[str, str], language: str) -> str:
    """The version a recipient gets: their language when the coach wrote it, else the
    first of Dutch, English, French that was written."""
    if language in texts:
        return language
    return next(code for code in (DEFAULT_LANGUAGE, *LANGUAGES) if code in texts)


def payload_for(texts: Mapping[str, str], language: str,
                photo: int | None = None) -> dict[str, Any]:
    """The outbox payload for one recipient, in :func:`version_for` their language."""
    lang = version_for(texts, language)
    return payload(Outbound(texts[lang], html=True, photo=photo), lang)


class Broadcasts:
    """Make, send, follow and cancel broadcasts.

    Args:
        db: The database.
        texts: What the bot says (the coach's report).
        places: Municipalities and arrondissements (segments name them).
        hours: When non-urgent messages may go out.
        sender: Woken when rows were queued.
        clock: The current time (tests move it).
    """

    def __init__(self, db: Database, texts: Texts, places: Gazetteer, hours: SendingHours,
                 sender: Waker, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.texts = texts
        self.places = places
        self.hours = hours
        self.sender = sender
        self.clock = clock

    async def audience(self, segment: Segment) -> list[Candidate]:
        """Who the segment reaches now (opted-out and unreachable people never)."""
        async with self.db.transaction() as tx:
            everyone = await broadcasts.candidates(tx)
        return [c for c in everyone if segment.matches(_member(c))]

    async def create(self, *, texts: Mapping[str, RichText], segment: Segment,
                     send_at: datetime | None = None, urgent: bool = False,
                     created_by: int | None = None, via: str,
                     media_id: int | None = None) -> BroadcastRecord:
        """Schedule a broadcast (``send_at`` None: now); the next tick sends it."""
        if not texts or set(texts) - set(LANGUAGES):
            raise ValueError(f"texts must be given per language, in {', '.join(LANGUAGES)}")
        now = self.clock()
        async with self.db.transaction() as tx:
            made = await broadcasts.create(
                tx, created_by=created_by, created_via=via,
                texts={lang: text.html() for lang, text in texts.items()},
                segment=segment.to_data(), urgent=urgent, send_at=send_at or now, now=now,
                media_id=media_id)
        return made

    async def tick(self, now: datetime | None = None) -> int:
        """Start the broadcasts that are due and report the finished ones; returns the
        number of rows queued."""
        now = now or self.clock()
        queued = 0
        async with self.db.transaction() as tx:
            due = [b for b in await broadcasts.due(tx, now=now)
                   if b.urgent or self.hours.allowed(now)]
        for broadcast in due:
            queued += await self._start(broadcast, now)
        await self._report_finished(now)
        return queued

    async def _start(self, broadcast: BroadcastRecord, now: datetime) -> int:
        segment = Segment.from_data(broadcast.segment, self.places)
        recipients = await self.audience(segment)
        for start in range(0, len(recipients), BATCH):
            async with self.db.transaction() as tx:
                await broadcasts.enqueue(tx, broadcast_id=broadcast.id, rows=[
                    {"shopkeeper_id": c.shopkeeper_id, "channel": c.channel,
                     "external_id": c.external_id,
                     "payload": payload_for(broadcast.texts, c.language,
                                            broadcast.media_id)}
                    for c in recipients[start:start + BATCH]])
            self.sender.wake()
        async with self.db.transaction() as tx:
            current = await broadcasts.get(tx, broadcast_id=broadcast.id)
            if current is not None and current.status == "scheduled":
                await broadcasts.started(tx, broadcast_id=broadcast.id,
                                         recipients=len(recipients))
            else:  # cancelled while it was being queued: nothing more goes out
                await broadcasts.cancel(tx, broadcast_id=broadcast.id, now=now)
        log.info("broadcast %s queued for %d recipients", broadcast.id, len(recipients))
        return len(recipients)

    async def _report_finished(self, now: datetime) -> None:
        async with self.db.transaction() as tx:
            for broadcast in await broadcasts.in_flight(tx):
                counts = await broadcasts.counts(tx, broadcast_id=broadcast.id)
                if counts.queued:
                    if counts.next_day and broadcast.next_day_rows is None and \
                            await broadcasts.held_for_next_day(
                                tx, broadcast_id=broadcast.id, rows=counts.next_day):
                        # WhatsApp's daily tier: the rest goes tomorrow; say so now (once,
                        # whichever process saw it first).
                        await self._report(tx, broadcast, counts, "wa_broadcast_next_day")
                    continue
                await broadcasts.finished(tx, broadcast_id=broadcast.id, now=now)
                await self._report(tx, broadcast, counts)

    async def _report(self, tx: Any, broadcast: BroadcastRecord, counts: Counts,
                      key: str = "broadcast_report") -> None:
        if broadcast.created_by is None:
            return  # sent from the command line: `kiss-coach broadcast status` shows it
        coach = await shopkeepers.address_of(tx, shopkeeper_id=broadcast.created_by)
        if coach is None:
            return
        channel, external_id, lang = coach
        text = self.texts.get(lang, key, id=broadcast.id, sent=counts.sent,
                              failed=counts.failed, unreachable=counts.unreachable,
                              uncertain=counts.uncertain, waiting=counts.next_day)
        if key == "broadcast_report" and broadcast.next_day_rows:
            later = self.texts.get(lang, "wa_broadcast_report_next_day",
                                   rows=broadcast.next_day_rows)
            text = f"{text}\n{later}"
        await outbox.record(tx, shopkeeper_id=broadcast.created_by, channel=channel,
                            external_id=external_id, payloads=[payload(Outbound(text), lang)])
        self.sender.wake()

    async def attach(self, photo: Picture) -> int:
        """Store a picture to send with a broadcast; returns its media id."""
        async with self.db.transaction() as tx:
            return await media.put(tx, data=photo.data, content_type=photo.content_type,
                                   name=photo.name)

    async def delete_from_chats(self, broadcast_id: int) -> broadcasts.Deletion | None:
        """Delete a broadcast from the chats it reached (within Telegram's 48 hours); what
        has not gone out yet is cancelled. None when it was deleted already."""
        async with self.db.transaction() as tx:
            deletion = await broadcasts.delete_from_chats(tx, broadcast_id=broadcast_id,
                                                          now=self.clock())
        if deletion is not None and deletion.queued:
            self.sender.wake()
        return deletion

    async def cancel(self, broadcast_id: int) -> bool:
        async with self.db.transaction() as tx:
            return await broadcasts.cancel(tx, broadcast_id=broadcast_id, now=self.clock())

    async def resend_uncertain(self, broadcast_id: int) -> int:
        """Send again to those it may not have reached; the coach gets a new report."""
        async with self.db.transaction() as tx:
            queued = await broadcasts.resend_uncertain(tx, broadcast_id=broadcast_id)
        if queued:
            self.sender.wake()
        return queued

    async def counts(self, broadcast_id: int) -> Counts:
        async with self.db.transaction() as tx:
            return await broadcasts.counts(tx, broadcast_id=broadcast_id)

    async def recent(self, limit: int = 10) -> list[BroadcastRecord]:
        async with self.db.transaction() as tx:
            return await broadcasts.recent(tx, limit=limit)


def _member(candidate: Candidate) -> Member:
    return Member(candidate.municipality, candidate.shop_type, candidate.language,
                  candidate.scores, tuple(candidate.focus or ()))
