"""Keeping data no longer than needed: the periodic job that erases people who left.

The app's scheduler calls :meth:`Retention.tick`. Each tick:

1. erases people who never consented and have been silent for ``unconsented_kept``
   (all they left is a chat id and a language);
2. erases people who were told, ``erase_after_notice`` ago, that their data would go,
   and have not sent anything since (any message or button calls it off);
3. within the sending hours, tells people silent for ``inactive_after`` that their data
   will be erased unless they answer: a bulk outbox row, never a direct send. Someone who
   sent /stop or blocked the bot gets no message, and the same term runs for them.

Every erasure takes the person's lock and checks again under it, so a person who answers
at that very moment is kept; each is audited as ``erase`` by ``retention``, counts only.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from flows.messages import Button, Outbound
from flows.texts import Texts
from flows.timing import SendingHours
from handlers.coaching import payload
from handlers.nudges import Waker
from handlers.privacy import KEEP_REF, Privacy, period
from storage import erasure, isolation, outbox, retention
from storage.database import Database
from storage.retention import Away
from storage.tables import utcnow

log = logging.getLogger(__name__)

#: People per transaction when notifying, and per look when erasing.
BATCH = 200


@dataclass(slots=True)
class Swept:
    """What one tick did: people erased without consent, erased after the notice, told."""

    never_consented: int = 0
    erased: int = 0
    notified: int = 0


class Retention:
    """Erases the people whose time is up, and tells those whose time is coming.

    Args:
        db: The database.
        texts: What the bot says.
        privacy: The retention periods.
        hours: When a notice may go out.
        sender: Woken when notices were queued.
        clock: The current time (tests move it).
    """

    def __init__(self, db: Database, texts: Texts, privacy: Privacy, hours: SendingHours,
                 sender: Waker, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.texts = texts
        self.privacy = privacy
        self.hours = hours
        self.sender = sender
        self.clock = clock

    async def tick(self, now: datetime | None = None) -> Swept:
        """One sweep at ``now`` (default: the clock)."""
        now = now or self.clock()
        swept = Swept()
        unconsented_since = now - self.privacy.unconsented_kept
        swept.never_consented = await self._erase_all(
            "never_consented", unconsented_since, now,
            lambda tx: retention.never_consented(tx, inactive_since=unconsented_since,
                                                 limit=BATCH))
        notified_before = now - self.privacy.erase_after_notice
        swept.erased = await self._erase_all(
            "notified", notified_before, now,
            lambda tx: retention.to_erase(tx, notified_before=notified_before, limit=BATCH))
        if self.hours.allowed(now):
            swept.notified = await self._notify(now)
        if swept.notified:
            self.sender.wake()
        if swept.never_consented or swept.erased or swept.notified:
            log.info("retention: %s", swept)
        return swept

    async def _erase_all(self, condition: str, before: datetime, now: datetime,
                         find: Callable[[AsyncConnection], Awaitable[list[Away]]]) -> int:
        erased = 0
        while True:
            async with self.db.transaction() as tx:
                people = await find(tx)
            for person in people:
                erased += await self._erase(person, condition, before, now)
            if len(people) < BATCH:
                return erased

    async def _erase(self, person: Away, condition: str, before: datetime,
                     now: datetime) -> int:
        async with self.db.transaction() as tx:
            if person.address is not None:  # a turn of theirs and this erasure take turns
                await isolation.lock_person(tx, person.address)
            if not await retention.still_away(tx, shopkeeper_id=person.shopkeeper_id,
                                              condition=condition, before=before):
                return 0
            await erasure.erase(tx, shopkeeper_id=person.shopkeeper_id, actor="retention",
                                reason=condition, now=now)
        return 1

    async def _notify(self, now: datetime) -> int:
        inactive_since = now - self.privacy.inactive_after
        told = 0
        while True:
            async with self.db.transaction() as tx:
                people = await retention.to_notify(tx, inactive_since=inactive_since,
                                                   limit=BATCH)
                marked = set(await retention.notified(
                    tx, ids=[p.shopkeeper_id for p in people], inactive_since=inactive_since,
                    now=now))
                await outbox.record_many(tx, [
                    {"shopkeeper_id": p.shopkeeper_id, "channel": p.channel,
                     "external_id": p.external_id, "payload": self._notice(p.language)}
                    for p in people
                    if p.shopkeeper_id in marked and not p.silent and p.channel is not None])
            told += sum(1 for p in people if p.shopkeeper_id in marked and not p.silent)
            if len(people) < BATCH:
                return told

    def _notice(self, lang: str) -> dict[str, object]:
        say = self.texts.get
        text = say(lang, "retention_notice",
                   period=period(self.texts, lang, self.privacy.inactive_after),
                   notice_period=period(self.texts, lang, self.privacy.erase_after_notice))
        return payload(Outbound(text, (Button("keep", say(lang, "retention_keep")),),
                                ref=KEEP_REF), lang)
