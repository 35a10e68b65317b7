"""What goes out on its own: tips, check-ins, reminders and the invitation to redo the check.

The app's scheduler calls :meth:`Nudges.tick` every ``[schedule] tick``; the database says
what is due (:mod:`storage.due`). A tick claims due rows in batches and, in the same
transaction, records the messages in the outbox (bulk priority: a chatting shopkeeper
still gets fast answers) and moves each row to its next time or deletes it. Two processes
never take the same row, a crash before the commit sends nothing, and after a downtime a
person gets one tip, not one per missed week: the next one is planned from now.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from flows.definition import Flow
from flows.messages import Button, Outbound
from flows.texts import Texts
from flows.timing import BRUSSELS
from flows.tips import Person, Tip, TipLibrary, choose
from handlers.coaching import CHECK_PREFIX, REASSESS_REF, RESUME_REF, payload, tip_message
from handlers.schedule import Schedule
from storage import coaching, due, outbox
from storage.coaching import Recipient
from storage.database import Database
from storage.due import DueRecord
from storage.tables import Cadence, DueKind, TipOutcome, utcnow

log = logging.getLogger(__name__)

#: Due rows per transaction. On SQLite small enough that a turn waiting for the single
#: writer is not held up for long; PostgreSQL has no such lock, and fewer, larger batches
#: save round trips (10,000 tips: 5 transactions instead of 20).
BATCH = 500
POSTGRES_BATCH = 2000
#: Someone answering the check right now is not interrupted by a tip.
BUSY = timedelta(minutes=30)
#: How often a due row of someone who blocked the bot is looked at again.
UNREACHABLE_RETRY = timedelta(days=1)
#: When a row could not be handled (a bug), it is tried again this much later.
RETRY = timedelta(hours=1)


class Waker(Protocol):
    def wake(self) -> None:
        """Rows are queued: look for them soon."""


@dataclass(slots=True)
class _Batch:
    messages: list[dict[str, Any]] = field(default_factory=list)
    tips: list[dict[str, Any]] = field(default_factory=list)
    moves: list[tuple[int, datetime, int]] = field(default_factory=list)
    deletes: list[int] = field(default_factory=list)


class Nudges:
    """Turns due rows into outbox messages.

    Args:
        db: The database.
        texts: What the bot says.
        library: The tip library.
        assessment: The current assessment flow (theme names).
        schedule: When nudges go out.
        sender: Woken when messages were queued.
        name: This process's name, on the rows it claims.
        clock: The current time (tests move it).
    """

    def __init__(self, db: Database, texts: Texts, library: TipLibrary, assessment: Flow,
                 schedule: Schedule, sender: Waker, *, name: str,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.texts = texts
        self.library = library
        self.assessment = assessment
        self.schedule = schedule
        self.sender = sender
        self.name = name
        self.clock = clock
        self.batch = BATCH if db.url.startswith("sqlite") else POSTGRES_BATCH

    async def tick(self, now: datetime | None = None) -> int:
        """Record everything due at ``now`` (default: the clock); returns the number of
        messages recorded."""
        now = now or self.clock()
        if not self.schedule.hours.allowed(now):
            return 0  # nothing non-urgent goes out now; due rows wait for the next slot
        recorded = 0
        while True:
            async with self.db.transaction() as tx:
                rows = await due.claim(tx, now=now, limit=self.batch, by=self.name)
                people = await coaching.recipients(tx, {row.shopkeeper_id for row in rows})
                check_ins = await coaching.commitments_of(
                    tx, [int(r.subject) for r in rows if r.kind == DueKind.CHECK_IN])
                batch = _Batch()
                for row in rows:
                    try:
                        self._one(row, people.get(row.shopkeeper_id), now, batch, check_ins)
                    except Exception:  # one broken row must not hold up everyone else
                        log.exception("due row %s (%s) failed; trying again later", row.id,
                                      row.kind)
                        batch.moves.append((row.id, now + RETRY, row.count))
                await outbox.record_many(tx, batch.messages)
                await coaching.record_sent(tx, batch.tips)
                await due.move(tx, batch.moves)
                await due.delete(tx, batch.deletes)
            recorded += len(batch.messages)
            if len(rows) < self.batch:
                break
        if recorded:
            self.sender.wake()
        return recorded

    def _one(self, row: DueRecord, person: Recipient | None, now: datetime, batch: _Batch,
             check_ins: dict[int, coaching.CommitmentRecord]) -> None:
        if person is None or not person.consented or person.opted_out:
            batch.deletes.append(row.id)  # /start plans again
            return
        if person.unreachable:  # blocked the bot: look again tomorrow, they may unblock it
            batch.moves.append((row.id, now + UNREACHABLE_RETRY, row.count))
            return
        moment = person.plan.moment if person.plan else None
        slot = self.schedule.hours.next_slot(now, moment)
        if slot > now:  # not this person's moment of the day: wait for it
            batch.moves.append((row.id, slot, row.count))
            return
        match row.kind:
            case DueKind.TIP:
                self._tip(row, person, now, batch)
            case DueKind.LATER:
                self._later(row, person, batch)
            case DueKind.CHECK_IN:
                self._check_in(row, person, batch, check_ins.get(int(row.subject)))
            case DueKind.REMINDER:
                self._reminder(row, person, now, batch)
            case DueKind.REASSESS:
                self._reassess(row, person, now, batch)
            case _:
                log.warning("unknown due kind %r: dropped", row.kind)
                batch.deletes.append(row.id)

    def _say(self, person: Recipient, message: Outbound, batch: _Batch) -> None:
        batch.messages.append({"shopkeeper_id": person.id, "channel": person.channel,
                               "external_id": person.external_id,
                               "payload": payload(message, person.language)})

    def _tip(self, row: DueRecord, person: Recipient, now: datetime, batch: _Batch) -> None:
        plan = person.plan
        if plan is None or plan.cadence == Cadence.OFF:
            batch.deletes.append(row.id)
            return
        if person.open_run is not None and now - person.open_run[2] < BUSY:
            batch.moves.append((row.id, now + BUSY, row.count))
            return
        found = choose(self.library, _chooser(person), now.astimezone(BRUSSELS).date())
        if found:
            tip = found[0]
            theme = self.assessment.theme(tip.theme).name[person.language]
            self._say(person, tip_message(self.texts, tip, person.language, theme), batch)
            batch.tips.append({"shopkeeper_id": person.id, "tip_id": tip.id,
                               "theme": tip.theme, "kind": tip.kind, "sent_at": now})
        # With no tip left today (seasonal ones may come later), the plan simply goes on.
        batch.moves.append((row.id, self.schedule.next_tip(now, plan.cadence, plan.moment,
                                                           row.count + 1), row.count + 1))

    def _later(self, row: DueRecord, person: Recipient, batch: _Batch) -> None:
        batch.deletes.append(row.id)
        tip = self.library.get(row.subject)
        sent = next((s for s in person.had if s.tip_id == row.subject), None)
        if tip is None or sent is None or sent.outcome != TipOutcome.LATER:
            return  # done or "not for me" in the meantime, or gone from the library
        theme = self.assessment.theme(tip.theme).name[person.language]
        self._say(person, tip_message(self.texts, tip, person.language, theme), batch)

    def _check_in(self, row: DueRecord, person: Recipient, batch: _Batch,
                  found: coaching.CommitmentRecord | None) -> None:
        batch.deletes.append(row.id)
        if found is None or found.shopkeeper_id != person.id or found.outcome not in (
                None, "busy"):
            return
        say, lang = self.texts.get, person.language
        self._say(person, Outbound(
            say(lang, "checkin", what=found.what),
            tuple(Button(c, say(lang, f"checkin_{c}")) for c in ("done", "busy", "dropped")),
            ref=f"{CHECK_PREFIX}{found.id}"), batch)

    def _reminder(self, row: DueRecord, person: Recipient, now: datetime,
                  batch: _Batch) -> None:
        run = person.open_run
        if run is None or str(run[0]) != row.subject:
            batch.deletes.append(row.id)  # finished, or started over (with its own row)
            return
        at = self.schedule.reminder(run[2], row.count)
        if at is None:
            batch.deletes.append(row.id)
            return
        if at > now:  # they answered since: count from their last answer
            batch.moves.append((row.id, at, row.count))
            return
        say, lang = self.texts.get, person.language
        self._say(person, Outbound(say(lang, f"reminder_{min(row.count, 1) + 1}"),
                                   (Button("go", say(lang, "reminder_go")),), ref=RESUME_REF),
                  batch)
        following = self.schedule.reminder(run[2], row.count + 1)
        if following is None:
            batch.deletes.append(row.id)
        else:
            batch.moves.append((row.id, max(following, now + timedelta(minutes=1)),
                                row.count + 1))

    def _reassess(self, row: DueRecord, person: Recipient, now: datetime,
                  batch: _Batch) -> None:
        if person.result_at is None:
            batch.deletes.append(row.id)
            return
        if person.open_run is not None and person.open_run[1] == "assessment":
            batch.deletes.append(row.id)  # already doing it again
            return
        weeks = max(1, (now - person.result_at).days // 7)
        say, lang = self.texts.get, person.language
        self._say(person, Outbound(
            say(lang, "reassess_invite", weeks=weeks),
            (Button("go", say(lang, "reassess_go")), Button("later", say(lang, "reassess_later"))),
            ref=REASSESS_REF), batch)
        batch.deletes.append(row.id)


def _chooser(person: Recipient) -> Person:
    per_theme: dict[str, int] = {}
    for sent in person.had:
        per_theme[sent.theme] = per_theme.get(sent.theme, 0) + 1
    return Person(person.shop_type, person.scores, tuple(person.focus),
                  {s.tip_id for s in person.had}, per_theme, person.unwanted(),
                  person.had[-1].tip_id if person.had else None)


def upcoming_tips(library: TipLibrary, schedule: Schedule, person: Recipient,
                  first_at: datetime, count: int = 5) -> list[tuple[datetime, Tip]]:
    """The person's next ``count`` tips and when each goes out, as the ticks will choose
    them if nothing changes (no rating, no new result) in between."""
    plan = person.plan
    if plan is None or plan.cadence == Cadence.OFF:
        return []
    chooser = _chooser(person)
    had, per_theme = set(chooser.had), dict(chooser.per_theme)
    at, sent, last = first_at, 0, chooser.last
    upcoming: list[tuple[datetime, Tip]] = []
    while len(upcoming) < count and sent < count * 20:  # seasonal gaps: look a while ahead
        found = choose(library, Person(chooser.shop_type, chooser.scores, chooser.focus, had,
                                       per_theme, chooser.unwanted, last),
                       at.astimezone(BRUSSELS).date())
        if found:
            last = found[0].id
            upcoming.append((at, found[0]))
            had.add(found[0].id)
            per_theme[found[0].theme] = per_theme.get(found[0].theme, 0) + 1
        sent += 1
        at = schedule.next_tip(at, plan.cadence, plan.moment, sent)
    return upcoming
