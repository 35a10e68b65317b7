"""The coaching plan, as the shopkeeper meets it: the offer after the result, tips and their
buttons, this week's action and its check-in, ``/tips`` and ``/progress``.

What goes out later on its own (the tips themselves, check-ins, reminders, the invitation
to redo the check) is recorded by :mod:`handlers.nudges`; this module answers what the
person does with those messages. Buttons carry a ``ref`` naming what they answer
(``tip.<tip id>``, ``check.<commitment id>``, ``plan``, …), so a button pressed days
later still means the same thing, and a button that no longer applies changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flows.definition import Flow
from flows.messages import Button, Chart, Outbound, Reply
from flows.scoring import Result
from flows.texts import Texts
from flows.timing import BRUSSELS
from flows.tips import Tip, TipLibrary
from handlers.schedule import Schedule
from handlers.turn import Turn
from storage import coaching, due, outbox
from storage.records import ResultRecord
from storage.tables import Cadence, CommitmentOutcome, DueKind, TipOutcome, utcnow

PLAN_REF, MOMENT_REF, REASSESS_REF, RESUME_REF = "plan", "moment", "reassess", "resume"
TIP_PREFIX, CHECK_PREFIX, COMMIT_PREFIX = "tip.", "check.", "commit."
MOMENTS = ("morning", "afternoon", "evening")


def tip_message(texts: Texts, tip: Tip, lang: str, theme: str) -> Outbound:
    """A tip as the person reads it, with its four buttons."""
    text = texts.get(lang, "tip", theme=theme, action=tip.action[lang], why=tip.why[lang])
    if tip.link:
        text += "\n" + texts.get(lang, "tip_link", link=tip.link)
    buttons = tuple(Button(choice, texts.get(lang, f"tip_{choice}"))
                    for choice in ("done", "later", "no", "week"))
    return Outbound(text, buttons, ref=TIP_PREFIX + tip.id)


def date_text(texts: Texts, lang: str, at: datetime) -> str:
    """"dinsdag 1 december": the day in the person's language and time zone."""
    local = at.astimezone(BRUSSELS)
    return texts.get(lang, "date_format", weekday=texts.words(lang, "weekday_names")[
        local.weekday()], day=local.day, month=texts.words(lang, "month_names")[local.month - 1])


def when_text(texts: Texts, lang: str, at: datetime, moment: str | None) -> str:
    """"dinsdag 1 december, 's ochtends": a day and a moment a person recognises."""
    local = at.astimezone(BRUSSELS)
    day = date_text(texts, lang, at)
    if moment is None:
        return texts.get(lang, "date_at_time", date=day, time=local.strftime("%H:%M"))
    return texts.get(lang, "date_at_moment", date=day,
                     moment=texts.get(lang, f"when_{moment}"))


#: The buttons of "may a coach contact you?" (answered by :mod:`handlers.tickets`).
CONTACT_REF = "tk.ask"


def payload(message: Outbound, lang: str) -> dict[str, Any]:
    """An outbox payload for a message: its data, the language, and a document's bytes
    (which :func:`storage.outbox.record` keeps apart from the JSON)."""
    data = message.to_data()
    data["lang"] = lang
    if message.document is not None:
        data["document"] = {**data["document"], "data": message.document.data}
    return data


@dataclass(frozen=True, slots=True)
class Latest:
    """A person's latest result, as scored, with the flow it was scored on."""

    result: Result
    flow: Flow
    result_id: int


class CoachingChat:
    """Answers the coaching plan's buttons and commands for one turn.

    Args:
        texts: What the bot says.
        library: The tip library.
        schedule: When nudges go out.
        clock: The current time (tests move it).
    """

    def __init__(self, texts: Texts, library: TipLibrary, schedule: Schedule, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.texts = texts
        self.library = library
        self.schedule = schedule
        self.clock = clock

    @staticmethod
    def owns(ref: str) -> bool:
        """Is this a button of the coaching plan (not of a flow's question)?"""
        return ref in (PLAN_REF, MOMENT_REF, REASSESS_REF) or ref.startswith(
            (TIP_PREFIX, CHECK_PREFIX, COMMIT_PREFIX))

    # -- after a result -------------------------------------------------------------------

    async def after_result(self, turn: Turn, result: Result, flow: Flow,
                           result_id: int) -> list[Outbound]:
        """What follows a result: the tip plan (asked once), this week's action, and the
        invitation to redo the check later."""
        assert turn.shopkeeper is not None
        person = turn.shopkeeper.id
        now = self.clock()
        plan = await coaching.plan_of(turn.tx, shopkeeper_id=person)
        moment = plan.moment if plan else None
        await due.plan(turn.tx, shopkeeper_id=person, kind=DueKind.REASSESS,
                       at=self.schedule.reassess(now, moment))
        await due.cancel(turn.tx, shopkeeper_id=person, kinds=[DueKind.REMINDER])
        if plan is None:
            # The plan last: where a channel numbers the answers (the terminal, later
            # WhatsApp), a typed number answers the last question asked.
            return [self._contact_offer(turn.lang), self._plan_offer(turn.lang)]
        if plan.cadence != Cadence.OFF:  # a new result: tips follow it from now on
            await due.plan(turn.tx, shopkeeper_id=person, kind=DueKind.TIP,
                           at=self.schedule.first_tip(now, moment))
        return [self._contact_offer(turn.lang),
                *self._commit_offer(turn.lang, result, flow, result_id)]

    def _contact_offer(self, lang: str) -> Outbound:
        """"May a coach of KERNpunt contact you?" (see :mod:`handlers.tickets`)."""
        say = self.texts.get
        return Outbound(say(lang, "tk_offer"), (Button("yes", say(lang, "tk_offer_yes")),
                                                Button("no", say(lang, "tk_offer_no"))),
                        ref=CONTACT_REF)

    def _plan_offer(self, lang: str) -> Outbound:
        say = self.texts.get
        return Outbound(say(lang, "plan_offer"), tuple(
            Button(c, say(lang, f"plan_{c}")) for c in Cadence), ref=PLAN_REF)

    def _moment_prompt(self, lang: str) -> Outbound:
        say = self.texts.get
        return Outbound(say(lang, "moment_prompt"), tuple(
            Button(m, say(lang, f"moment_{m}")) for m in MOMENTS), ref=MOMENT_REF)

    def _commit_offer(self, lang: str, result: Result, flow: Flow,
                      result_id: int) -> list[Outbound]:
        if not result.actions:
            return []
        buttons = [Button(action.node_id, self.texts.get(lang, "commit_action", n=number))
                   for number, action in enumerate(result.actions, start=1)]
        buttons.append(Button("none", self.texts.get(lang, "commit_none")))
        return [Outbound(self.texts.get(lang, "commit_offer"), tuple(buttons),
                         ref=f"{COMMIT_PREFIX}{result_id}")]

    # -- buttons --------------------------------------------------------------------------

    async def press(self, turn: Turn, reply: Reply, *, latest: Latest | None) -> list[Outbound]:
        """A coaching button. ``latest`` is the person's latest result (this week's action
        is picked from it)."""
        assert turn.shopkeeper is not None and reply.ref is not None
        ref, choice = reply.ref, reply.choice or ""
        if ref == PLAN_REF and choice in set(Cadence):
            return await self._choose_cadence(turn, Cadence(choice), latest)
        if ref == MOMENT_REF and choice in MOMENTS:
            return await self._choose_moment(turn, choice, latest)
        if ref == REASSESS_REF and choice == "later":
            plan = await coaching.plan_of(turn.tx, shopkeeper_id=turn.shopkeeper.id)
            at = self.schedule.hours.due_after(self.clock(), self.schedule.tip_every,
                                               plan.moment if plan else None)
            await due.plan(turn.tx, shopkeeper_id=turn.shopkeeper.id, kind=DueKind.REASSESS,
                           at=at)
            return [Outbound(self.texts.get(turn.lang, "reassess_later_ok"))]
        if ref.startswith(TIP_PREFIX):
            return await self._tip_press(turn, ref.removeprefix(TIP_PREFIX), choice)
        if ref.startswith(CHECK_PREFIX):
            return await self._check_in(turn, ref.removeprefix(CHECK_PREFIX), choice)
        if ref.startswith(COMMIT_PREFIX) and latest is not None \
                and ref.removeprefix(COMMIT_PREFIX) == str(latest.result_id):
            return await self._commit_from_result(turn, choice, latest)
        return [self._notice(turn, "stale_button")]

    def _notice(self, turn: Turn, key: str, **values: object) -> Outbound:
        return Outbound(self.texts.get(turn.lang, key, **values), notice=True)

    async def _choose_cadence(self, turn: Turn, cadence: Cadence,
                              latest: Latest | None) -> list[Outbound]:
        assert turn.shopkeeper is not None
        person = turn.shopkeeper.id
        plan = await coaching.plan_of(turn.tx, shopkeeper_id=person)
        moment = plan.moment if plan else None
        await coaching.choose_plan(turn.tx, shopkeeper_id=person, cadence=cadence,
                                   moment=moment, now=self.clock())
        if cadence == Cadence.OFF:
            await due.cancel(turn.tx, shopkeeper_id=person, kinds=[DueKind.TIP])
            offer = self._offer(turn.lang, latest) if plan is None else []
            return [Outbound(self.texts.get(turn.lang, "plan_off_set")), *offer]
        if moment is None:
            return [self._moment_prompt(turn.lang)]
        return await self._planned(turn, cadence, moment, None)

    async def _choose_moment(self, turn: Turn, moment: str,
                             latest: Latest | None) -> list[Outbound]:
        assert turn.shopkeeper is not None
        person = turn.shopkeeper.id
        plan = await coaching.plan_of(turn.tx, shopkeeper_id=person)
        cadence = Cadence(plan.cadence) if plan and plan.cadence != Cadence.OFF \
            else Cadence.WEEKLY
        first = plan is None or plan.moment is None
        await coaching.choose_plan(turn.tx, shopkeeper_id=person, cadence=cadence,
                                   moment=moment, now=self.clock())
        return await self._planned(turn, cadence, moment, latest if first else None)

    async def _planned(self, turn: Turn, cadence: Cadence, moment: str,
                       latest: Latest | None) -> list[Outbound]:
        """Tips are on: plan the next one and say when it comes; the first time, this
        week's action from the result follows (``latest``)."""
        assert turn.shopkeeper is not None
        person = turn.shopkeeper.id
        now = self.clock()
        at = self.schedule.first_tip(now, moment)
        await due.plan(turn.tx, shopkeeper_id=person, kind=DueKind.TIP, at=at)
        said = Outbound(self.texts.get(turn.lang, "plan_set",
                                       when=when_text(self.texts, turn.lang, at, moment)))
        return [said, *self._offer(turn.lang, latest)]

    def _offer(self, lang: str, latest: Latest | None) -> list[Outbound]:
        if latest is None:
            return []
        return self._commit_offer(lang, latest.result, latest.flow, latest.result_id)

    async def _tip_press(self, turn: Turn, tip_id: str, choice: str) -> list[Outbound]:
        assert turn.shopkeeper is not None
        person = turn.shopkeeper.id
        sent = await coaching.sent_tip(turn.tx, shopkeeper_id=person, tip_id=tip_id)
        tip = self.library.get(tip_id)
        if sent is None or tip is None or choice not in ("done", "later", "no", "week"):
            return [self._notice(turn, "tip_gone")]
        now = self.clock()
        if choice == "week":
            return await self._commit(turn, f"tip:{tip_id}", tip.action[turn.lang], now)
        if sent.outcome in (TipOutcome.DONE, TipOutcome.NOT_FOR_ME):
            return [self._notice(turn, f"tip_already_{sent.outcome}")]
        plan = await coaching.plan_of(turn.tx, shopkeeper_id=person)
        moment = plan.moment if plan else None
        if choice == "later":
            at = self.schedule.later(now, moment)
            await coaching.rate_tip(turn.tx, shopkeeper_id=person, tip_id=tip_id,
                                    outcome=TipOutcome.LATER, now=now)
            await due.plan(turn.tx, shopkeeper_id=person, kind=DueKind.LATER, subject=tip_id,
                           at=at)
            return [self._notice(turn, "tip_later_ok",
                                 when=when_text(self.texts, turn.lang, at, moment))]
        outcome = TipOutcome.DONE if choice == "done" else TipOutcome.NOT_FOR_ME
        await coaching.rate_tip(turn.tx, shopkeeper_id=person, tip_id=tip_id, outcome=outcome,
                                now=now)
        await due.cancel(turn.tx, shopkeeper_id=person, kinds=[DueKind.LATER], subject=tip_id)
        return [self._notice(turn, f"tip_{outcome}_ok")]

    async def _commit_from_result(self, turn: Turn, choice: str,
                                  latest: Latest) -> list[Outbound]:
        result, flow = latest.result, latest.flow
        if choice == "none":
            return [Outbound(self.texts.get(turn.lang, "commit_later"))]
        action = next((a for a in result.actions if a.node_id == choice), None)
        if action is None:
            return [self._notice(turn, "stale_button")]
        theme = flow.theme(action.theme).name[turn.lang]
        return await self._commit(turn, f"result:{action.node_id}"[:40],
                                  f"{theme}: {action.text[turn.lang]}", self.clock(),
                                  as_message=True)

    async def _commit(self, turn: Turn, source: str, what: str, now: datetime, *,
                      as_message: bool = False) -> list[Outbound]:
        """This week's action: one at a time; the check-in comes a few days later."""
        assert turn.shopkeeper is not None
        person = turn.shopkeeper.id
        plan = await coaching.plan_of(turn.tx, shopkeeper_id=person)
        moment = plan.moment if plan else None
        new, replaced = await coaching.commit(turn.tx, shopkeeper_id=person, source=source,
                                              what=what, now=now)
        for old in replaced:
            await due.cancel(turn.tx, shopkeeper_id=person, kinds=[DueKind.CHECK_IN],
                             subject=str(old))
        at = self.schedule.check_in(now, moment)
        await due.plan(turn.tx, shopkeeper_id=person, kind=DueKind.CHECK_IN, subject=str(new),
                       at=at)
        when = when_text(self.texts, turn.lang, at, moment)
        if as_message:
            return [Outbound(self.texts.get(turn.lang, "commit_set", what=what, when=when))]
        return [self._notice(turn, "commit_set_short", when=when)]

    async def _check_in(self, turn: Turn, commitment_id: str, choice: str) -> list[Outbound]:
        assert turn.shopkeeper is not None
        person = turn.shopkeeper.id
        found = await coaching.commitment(
            turn.tx, commitment_id=int(commitment_id) if commitment_id.isdigit() else -1,
            shopkeeper_id=person)
        if found is None or choice not in ("done", "busy", "dropped"):
            return [self._notice(turn, "stale_button")]
        if found.outcome is not None and found.outcome != CommitmentOutcome.BUSY:
            return [self._notice(turn, "checkin_already")]
        now = self.clock()
        outcome = CommitmentOutcome(choice)
        await coaching.settle_commitment(turn.tx, commitment_id=found.id, outcome=outcome,
                                         now=now)
        if outcome == CommitmentOutcome.DONE and found.source.startswith("tip:"):
            await coaching.rate_tip(turn.tx, shopkeeper_id=person,
                                    tip_id=found.source.removeprefix("tip:"),
                                    outcome=TipOutcome.DONE, now=now)
        if outcome == CommitmentOutcome.BUSY and found.outcome is None:
            # Still on it: one more check-in, a few days on (then it is theirs to tell).
            plan = await coaching.plan_of(turn.tx, shopkeeper_id=person)
            await due.plan(turn.tx, shopkeeper_id=person, kind=DueKind.CHECK_IN,
                           subject=str(found.id),
                           at=self.schedule.check_in(now, plan.moment if plan else None),
                           count=1)
        return [Outbound(self.texts.get(turn.lang, f"checkin_{choice}_ok"))]

    # -- commands -------------------------------------------------------------------------

    async def tips(self, turn: Turn, has_result: bool) -> list[Outbound]:
        """``/tips``: how tips come now, with buttons to change it."""
        assert turn.shopkeeper is not None
        if not has_result:
            return [Outbound(self.texts.get(turn.lang, "tips_after_check"))]
        plan = await coaching.plan_of(turn.tx, shopkeeper_id=turn.shopkeeper.id)
        if plan is None or plan.cadence == Cadence.OFF:
            return [self._plan_offer(turn.lang)]
        at = await due.when(turn.tx, shopkeeper_id=turn.shopkeeper.id, kind=DueKind.TIP)
        say = self.texts.get
        status = say(turn.lang, "plan_status", cadence=say(turn.lang, f"cadence_{plan.cadence}"),
                     moment=say(turn.lang, f"when_{plan.moment or 'morning'}"))
        if at is not None:
            status += "\n" + say(turn.lang, "plan_next",
                                 when=when_text(self.texts, turn.lang, at, plan.moment))
        return [Outbound(status), self._plan_offer(turn.lang), self._moment_prompt(turn.lang)]

    async def progress(self, turn: Turn, flow: Flow) -> list[Outbound]:
        """``/progress``: done tips per theme, as text and as a small chart."""
        assert turn.shopkeeper is not None
        done = await coaching.progress(turn.tx, shopkeeper_id=turn.shopkeeper.id)
        say = self.texts.get
        if not done.done and not done.kept:
            return [Outbound(say(turn.lang, "progress_none"))]
        names = [t.name[turn.lang] for t in flow.themes]
        counts = [done.done.get(t.id, 0) for t in flow.themes]
        lines = [say(turn.lang, "progress_title", done=sum(counts), kept=done.kept)]
        lines += [say(turn.lang, "progress_line", theme=name, count=count)
                  for name, count in zip(names, counts, strict=True) if count]
        text = "\n".join(lines)
        chart = Chart(say(turn.lang, "progress_chart_title"), tuple(names), tuple(counts),
                      say(turn.lang, "progress_caption"), "kiss-coach-vooruitgang.png",
                      style="bars")
        return [Outbound(text), Outbound(chart.caption, chart=chart)]

    async def comparison(self, turn: Turn, flow: Flow, now: ResultRecord,
                         before: ResultRecord) -> tuple[Chart, Outbound]:
        """A re-assessment against the check before it: the change per theme (the chart
        overlays both), and what was done in between."""
        assert turn.shopkeeper is not None
        say, lang = self.texts.get, turn.lang
        lines = [say(lang, "compare_title",
                     date=date_text(self.texts, lang, before.created_at))]
        for theme in flow.themes:
            old, new = before.scores.get(theme.id), now.scores.get(theme.id, 0)
            if old is None:
                continue
            change = new - old
            lines.append(say(lang, "compare_line", theme=theme.name[lang], before=old, now=new,
                             change=f"+{change}" if change > 0 else str(change) if change
                             else say(lang, "compare_same")))
        between = await coaching.progress(turn.tx, shopkeeper_id=turn.shopkeeper.id,
                                          since=before.created_at, until=now.created_at)
        lines.append(say(lang, "compare_since", done=sum(between.done.values()),
                         kept=between.kept))
        chart = Chart(say(lang, "chart_title"), tuple(t.name[lang] for t in flow.themes),
                      tuple(now.scores.get(t.id, 0) for t in flow.themes),
                      say(lang, "chart_caption", score=now.overall), "kiss-coach-resultaat.png",
                      before=tuple(before.scores.get(t.id, 0) for t in flow.themes),
                      legend=(say(lang, "chart_before"), say(lang, "chart_now")))
        return chart, Outbound("\n".join(lines))

    # -- stopping and starting again ------------------------------------------------------

    async def stop(self, turn: Turn) -> None:
        """``/stop``: nothing more is due, and what was waiting to go out does not."""
        assert turn.shopkeeper is not None
        # The due rows first: on PostgreSQL this waits for a tick that holds them, so the
        # messages that tick recorded are there to be dropped next.
        await due.cancel(turn.tx, shopkeeper_id=turn.shopkeeper.id)
        await outbox.drop_unsent(turn.tx, shopkeeper_id=turn.shopkeeper.id,
                                 reason="the person sent /stop", bulk_only=True)

    async def resume(self, turn: Turn, result_at: datetime | None) -> None:
        """``/start`` after ``/stop``: the plan picks up again from now."""
        assert turn.shopkeeper is not None
        person = turn.shopkeeper.id
        plan = await coaching.plan_of(turn.tx, shopkeeper_id=person)
        now = self.clock()
        if plan is not None and plan.cadence != Cadence.OFF:
            await due.plan(turn.tx, shopkeeper_id=person, kind=DueKind.TIP,
                           at=self.schedule.first_tip(now, plan.moment))
        if result_at is not None:
            await due.plan(turn.tx, shopkeeper_id=person, kind=DueKind.REASSESS,
                           at=max(self.schedule.reassess(result_at, plan.moment if plan else None),
                                  self.schedule.first_tip(now, plan.moment if plan else None)))
