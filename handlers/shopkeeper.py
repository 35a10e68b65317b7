"""The shopkeeper's conversation: onboarding, the assessment, the result, and commands.

Given a :class:`~handlers.turn.Turn` (the person, their open run, the transaction), a
command or the flow engine decides what to say; the dispatcher records it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import assert_never

from flows import report
from flows.definition import LANGUAGES, Flow, Outcome
from flows.engine import Context, Engine, RunState
from flows.messages import BACK, PAUSE, Button, Chart, Finished, Outbound, Reply, Saved, Step
from flows.places import normalize
from flows.scoring import score
from flows.texts import Texts
from handlers.coaching import REASSESS_REF, RESUME_REF, CoachingChat, Latest
from handlers.flow_versions import FlowVersions
from handlers.privacy import KEEP_REF, PrivacyChat
from handlers.questions import QuestionsChat
from handlers.turn import Turn
from storage import due, invites, outbox, runs, shopkeepers
from storage.records import ResultRecord, RunRecord
from storage.tables import DueKind, Role, RunStatus, utcnow

ONBOARDING = "onboarding"
ASSESSMENT = "assessment"
LANGUAGE_REF = "lang"
#: Where a poster's municipality waits in the onboarding's state until consent.
POSTER = "_poster"
#: Bumped when the consent text or the privacy notice changes materially; stored with each
#: consent. 2026-11-27: the full notice (controller, rights, retention, the GBA).
CONSENT_VERSION = "2026-11-27"


class ShopkeeperChat:
    """The shopkeeper's side of a turn: commands and replies, whatever the channel.

    The dispatcher (:mod:`handlers.dispatcher`) opens the turn and records what these
    methods return; nothing here knows how messages travel.
    """

    def __init__(self, flows: FlowVersions, engine: Engine, texts: Texts,
                 coaching: CoachingChat, privacy: PrivacyChat,
                 questions: QuestionsChat | None = None) -> None:
        self.flows = flows
        self.engine = engine
        self.texts = texts
        self.coaching = coaching
        self.privacy = privacy
        #: Answers questions typed outside the check (None: they get a pointer to /help).
        self.questions = questions

    # -- commands -----------------------------------------------------------------------

    async def command(self, turn: Turn, command: str, argument: str) -> list[Outbound]:
        """``/start``, ``/help``, …; an unknown command gets a friendly pointer."""
        say = self.texts.get
        await self._active(turn)
        match command:
            case "start":
                code = invites.code_in(argument)
                if code is not None:
                    return await self._redeem(turn, code)
                return await self._start(turn, poster=self._poster(turn, argument))
            case "help":
                return [Outbound(say(turn.lang, "help"))]
            case "privacy":
                return [self.privacy.notice(turn.lang)]
            case "mydata":
                return [await self.privacy.my_data(turn)]
            case "delete":
                return [self.privacy.ask_erase(turn.lang)]
            case "language":
                return [self._language_prompt(turn.lang)]
            case "stop":
                await self._pause(turn, opt_out=True)
                await self.coaching.stop(turn)
                return [Outbound(say(turn.lang, "stopped"))]
            case "results":
                return await self._results(turn)
            case "tips" if _consented(turn):
                latest = await self._latest_result(turn)
                return await self.coaching.tips(turn, has_result=latest is not None)
            case "progress" if _consented(turn):
                return await self.coaching.progress(turn, self.flows.latest(ASSESSMENT))
            case "ask" if _consented(turn) and self.questions is not None:
                return await self.questions.command(turn, argument)
            case "tips" | "progress" | "ask":
                return await self._start(turn)
            case "restart":
                if not _consented(turn):
                    return await self._start(turn)
                return [Outbound(say(turn.lang, "restarting")),
                        *await self._begin(turn, ASSESSMENT)]
            case _:
                return [Outbound(say(turn.lang, "unknown_command", command=command[:32]))]

    async def _active(self, turn: Turn) -> None:
        """Anything the person sends counts as activity (retention), and calls off an
        erasure they were told of."""
        assert turn.shopkeeper is not None
        await shopkeepers.touch(turn.tx, shopkeeper=turn.shopkeeper, now=self.coaching.clock())

    async def _start(self, turn: Turn, *, poster: str | None = None) -> list[Outbound]:
        assert turn.shopkeeper is not None
        if turn.shopkeeper.opted_out_at is not None:  # only /start undoes /stop
            await shopkeepers.update(turn.tx, shopkeeper=turn.shopkeeper, opted_out_at=None)
            latest = await self._latest_result(turn)
            await self.coaching.resume(turn, latest.created_at if latest else None)
        if turn.run is not None:
            return [Outbound(self.texts.get(turn.lang, "welcome_back")),
                    *await self._resume(turn)]
        if not _consented(turn):
            return await self._begin(turn, ONBOARDING, poster=poster)
        if await runs.latest_result(turn.tx, shopkeeper_id=turn.shopkeeper.id):
            return [Outbound(self.texts.get(turn.lang, "welcome_back_done"))]
        return await self._begin(turn, ASSESSMENT)

    async def _redeem(self, turn: Turn, code: str) -> list[Outbound]:
        """A one-time invite (``?start=invite_<code>``) gives its role once. A used, expired
        or unknown code gets one and the same answer; an admin (who may do everything
        already) leaves the code unspent."""
        assert turn.shopkeeper is not None
        say = self.texts.get
        if Role.ADMIN in turn.roles:
            return [Outbound(say(turn.lang, "invite_already"))]
        role = await invites.redeem(turn.tx, code=code, shopkeeper_id=turn.shopkeeper.id)
        if role is None:
            return [Outbound(say(turn.lang, "invite_spent"))]
        turn.roles = turn.roles | {role}
        welcome = say(turn.lang, "invite_welcome", role=say(turn.lang, f"role_{role}"))
        helps = [say(turn.lang, f"help_{r}") for r in (Role.COACH, Role.ADMIN)
                 if r is role or role is Role.ADMIN]
        return [Outbound("\n\n".join([welcome, *helps]))]

    def _poster(self, turn: Turn, argument: str) -> str | None:
        """A deep link like ``?start=kortrijk`` (a QR code on a poster) names the municipality;
        anything else in it is ignored. It waits in the onboarding's state and becomes part
        of the profile only with consent (see :meth:`_save`)."""
        assert turn.shopkeeper is not None
        if not argument or turn.shopkeeper.municipality is not None or _consented(turn):
            return None
        return self.engine.places.find(argument.replace("_", " ")).name

    def _language_prompt(self, lang: str) -> Outbound:
        buttons = tuple(Button(code, self.texts.get(code, "language_name")) for code in LANGUAGES)
        return Outbound(self.texts.get(lang, "language_prompt"), buttons, ref=LANGUAGE_REF)

    async def _latest_result(self, turn: Turn) -> ResultRecord | None:
        assert turn.shopkeeper is not None
        return await runs.latest_result(turn.tx, shopkeeper_id=turn.shopkeeper.id)

    async def _results(self, turn: Turn) -> list[Outbound]:
        latest = await self._latest_result(turn)
        run = await runs.run_by_id(turn.tx, run_id=latest.run_id) if latest else None
        flow = await self.flows.pinned(turn.tx, run.flow_key) if run else None
        if latest is None or run is None or flow is None:
            return [Outbound(self.texts.get(turn.lang, "no_results"))]
        return await self._report(turn, flow, RunState.from_data(run.state), latest)

    async def _scored(self, turn: Turn) -> Latest | None:
        """The latest result as scored, for a coaching button that needs its actions."""
        latest = await self._latest_result(turn)
        run = await runs.run_by_id(turn.tx, run_id=latest.run_id) if latest else None
        flow = await self.flows.pinned(turn.tx, run.flow_key) if run else None
        if latest is None or run is None or flow is None:
            return None
        answers = RunState.from_data(run.state).answers
        return Latest(score(flow, answers, self._context(turn).profile), flow, latest.id)

    # -- replies ------------------------------------------------------------------------

    async def reply(self, turn: Turn, reply: Reply) -> list[Outbound]:
        """An answer to the current question, typed or pressed."""
        assert turn.shopkeeper is not None
        await self._active(turn)
        if reply.ref is not None and PrivacyChat.owns(reply.ref):
            if reply.ref == KEEP_REF and not _consented(turn):  # erased already: too late
                return await self._stale(turn)
            return await self.privacy.press(turn, reply)
        if not reply.text and reply.choice is None:  # a sticker, a photo, a voice note
            return [Outbound(self.texts.get(turn.lang, "only_text")), *await self._resume(turn)]
        if reply.ref == LANGUAGE_REF:
            return await self._set_language(turn, reply.choice or "")
        if reply.ref is not None and (reply.ref == RESUME_REF or CoachingChat.owns(reply.ref)):
            return await self._coaching_press(turn, reply)
        if reply.ref is not None and self.questions and QuestionsChat.owns(reply.ref):
            if not _consented(turn):
                return await self._stale(turn)
            return await self.questions.press(turn, reply)
        if turn.run is None:
            if reply.ref is not None:
                return await self._stale(turn)
            if not _consented(turn):
                return await self._begin(turn, ONBOARDING)
            if self.questions is not None:  # free text outside the check is a question
                return await self.questions.ask(turn, reply.text or "")
            return [Outbound(self.texts.get(turn.lang, "unexpected_text"))]
        if reply.ref is not None:
            run_id, _, seq = reply.ref.partition(".")
            if run_id != str(turn.run.id):
                return await self._stale(turn)  # a button from an earlier run
            reply = replace(reply, ref=seq)
        flow = await self.flows.pinned(turn.tx, turn.run.flow_key)
        if flow is None:  # a run from a flow this deployment no longer knows
            return await self._begin(turn, turn.run.flow_id)
        state = RunState.from_data(turn.run.state)
        ctx = self._context(turn)
        if self._means(turn.lang, reply, PAUSE, "pause_words", state):
            await self._pause(turn, opt_out=False)
            return [Outbound(self.texts.get(turn.lang, "paused"))]
        if self._means(turn.lang, reply, BACK, "back_words", state):
            step = self.engine.back(flow, state, ctx)
        else:
            step = self.engine.answer(flow, state, reply, ctx)
        if step.stale:
            return await self._stale(turn)
        return await self._after_step(turn, flow, state, step)

    async def _coaching_press(self, turn: Turn, reply: Reply) -> list[Outbound]:
        """A button of a tip, a check-in, the plan or a reminder: valid whatever question
        the person is on; the two that lead back into the check are answered here."""
        if not _consented(turn):
            return await self._stale(turn)
        if reply.ref == RESUME_REF:  # a reminder's "continue"
            if turn.run is None:
                return await self._stale(turn)
            return [Outbound(self.texts.get(turn.lang, "welcome_back")),
                    *await self._resume(turn)]
        if reply.ref == REASSESS_REF and reply.choice == "go":
            return [Outbound(self.texts.get(turn.lang, "restarting")),
                    *await self._begin(turn, ASSESSMENT)]
        return await self.coaching.press(turn, reply, latest=await self._scored(turn))

    async def _stale(self, turn: Turn) -> list[Outbound]:
        """A button of an older question changes nothing. When the last message may not
        have arrived (its delivery was uncertain or failed), the current question is asked
        again, or, after the last question, the result is shown: the person tapped the old
        one because they never saw what came next."""
        notice = Outbound(self.texts.get(turn.lang, "stale_button"), notice=True)
        assert turn.shopkeeper is not None
        if await outbox.last_arrived(turn.tx, shopkeeper_id=turn.shopkeeper.id):
            return [notice]
        if turn.run is not None:
            return [notice, *await self._resume(turn)]
        if _consented(turn):
            return [notice, *await self._results(turn)]
        return [notice]

    def _means(self, lang: str, reply: Reply, button: str, words: str, state: RunState) -> bool:
        """Did the user press ``button`` (on the current prompt) or type one of ``words``?"""
        if reply.choice == button:
            return reply.ref is None or reply.ref == str(state.seq)
        typed = normalize(reply.text or "")
        return bool(typed) and typed in {normalize(w) for w in self.texts.words(lang, words)}

    async def _set_language(self, turn: Turn, code: str) -> list[Outbound]:
        assert turn.shopkeeper is not None
        if code not in LANGUAGES:
            return [self._language_prompt(turn.lang)]
        await shopkeepers.update(turn.tx, shopkeeper=turn.shopkeeper, language=code,
                                 language_chosen=True)
        turn.lang = code
        return [Outbound(self.texts.get(code, "language_set")), *await self._resume(turn)]

    # -- running flows ------------------------------------------------------------------

    async def _begin(self, turn: Turn, flow_id: str, *,
                     poster: str | None = None) -> list[Outbound]:
        assert turn.shopkeeper is not None
        flow = self.flows.latest(flow_id)  # its text was stored at start-up (FlowVersions)
        step, state = self.engine.start(flow, self._context(turn))
        if poster is not None:
            state.answers[POSTER] = poster
        turn.run = await runs.start_run(turn.tx, shopkeeper_id=turn.shopkeeper.id,
                                        flow_id=flow.id, flow_key=flow.key, state=state.to_data(),
                                        now=self.coaching.clock())
        if flow.themes and _consented(turn):  # left halfway, it is followed up (reminders)
            reminder = self.coaching.schedule.reminder(self.coaching.clock(), 0)
            if reminder is not None:
                await due.plan(turn.tx, shopkeeper_id=turn.shopkeeper.id, kind=DueKind.REMINDER,
                               subject=str(turn.run.id), at=reminder)
        return await self._after_step(turn, flow, state, step)

    async def _resume(self, turn: Turn) -> list[Outbound]:
        if turn.run is None:
            return []
        flow = await self.flows.pinned(turn.tx, turn.run.flow_key)
        if flow is None:
            return await self._begin(turn, turn.run.flow_id)
        state = RunState.from_data(turn.run.state)
        step = self.engine.prompt(flow, state, self._context(turn))
        await runs.save_run(turn.tx, run=turn.run, state=state.to_data(),
                            status=RunStatus.ACTIVE, now=self.coaching.clock())
        return _tagged(step.messages, turn.run)

    async def _pause(self, turn: Turn, *, opt_out: bool) -> None:
        if turn.run is not None:
            await runs.save_run(turn.tx, run=turn.run, state=turn.run.state,
                                status=RunStatus.PAUSED, now=self.coaching.clock())
        if opt_out and turn.shopkeeper is not None:
            await shopkeepers.update(turn.tx, shopkeeper=turn.shopkeeper, opted_out_at=utcnow())

    async def _after_step(self, turn: Turn, flow: Flow, state: RunState,
                          step: Step) -> list[Outbound]:
        """Apply what the engine decided: profile fields, the end of a flow, the next flow."""
        assert turn.run is not None and turn.shopkeeper is not None
        for event in step.events:
            if isinstance(event, Saved):
                await self._save(turn, event)
        messages = _tagged(step.messages, turn.run)
        done = step.finished
        if done is None:
            await runs.save_run(turn.tx, run=turn.run, state=state.to_data(),
                                status=RunStatus.ACTIVE, now=self.coaching.clock())
            return messages
        await runs.save_run(turn.tx, run=turn.run, state=state.to_data(),
                            status=RunStatus.COMPLETED, now=self.coaching.clock())
        messages.extend(await self._finish(turn, flow, state, done))
        return messages

    async def _finish(self, turn: Turn, flow: Flow, state: RunState,
                      done: Finished) -> list[Outbound]:
        assert turn.shopkeeper is not None
        match done.outcome:
            case Outcome.REFUSED:
                # No consent: keep nothing about this person, not even that they came by.
                await shopkeepers.forget(turn.tx, shopkeeper_id=turn.shopkeeper.id)
                turn.shopkeeper = None
                return []
            case Outcome.ONBOARDED | Outcome.COMPLETED:
                pass
            case unhandled:
                assert_never(unhandled)
        if done.next_flow is not None:
            turn.run = None
            return await self._begin(turn, done.next_flow)
        if flow.themes:
            assert turn.run is not None
            result = score(flow, state.answers, self._context(turn).profile)
            await runs.add_result(turn.tx, shopkeeper_id=turn.run.shopkeeper_id,
                                  run_id=turn.run.id, flow_key=flow.key,
                                  scores=result.scores, overall=result.overall,
                                  focus=list(result.focus), now=self.coaching.clock())
            stored = await runs.result_of_run(turn.tx, run_id=turn.run.id)
            assert stored is not None
            return [*await self._report(turn, flow, state, stored),
                    *await self.coaching.after_result(turn, result, flow, stored.id)]
        return []

    async def _report(self, turn: Turn, flow: Flow, state: RunState,
                      stored: ResultRecord) -> list[Outbound]:
        """The result in words and as a radar chart; after an earlier check, the chart
        shows both and a message says what changed."""
        result = score(flow, state.answers, self._context(turn).profile)
        names = report.theme_names(flow, turn.lang)
        caption = self.texts.get(turn.lang, "chart_caption", score=result.overall)
        drawing = Chart(
            self.texts.get(turn.lang, "chart_title"), tuple(names[t.id] for t in flow.themes),
            tuple(result.scores[t.id] for t in flow.themes), caption, "kiss-coach-resultaat.png")
        words = report.render(flow, result, self.texts, turn.lang)
        before = await runs.result_before(turn.tx, result=stored)
        if before is None:
            return [words[0], Outbound(caption, chart=drawing), *words[1:]]
        drawing, change = await self.coaching.comparison(turn, flow, stored, before)
        return [words[0], Outbound(drawing.caption, chart=drawing), change, *words[1:]]

    async def _save(self, turn: Turn, event: Saved) -> None:
        assert turn.shopkeeper is not None
        values: dict[str, object]
        match event.field:
            case "language":
                values = {"language": event.value, "language_chosen": True}
                turn.lang = event.value
            case "consent":
                values = ({"consent_at": utcnow(), "consent_version": CONSENT_VERSION}
                          if event.value == "yes" else {})
                poster = turn.run.state.get("answers", {}).get(POSTER) if turn.run else None
                if values and poster and turn.shopkeeper.municipality is None:
                    values["municipality"] = poster
            case "municipality":
                values = {"municipality": event.value, "municipality_input": event.raw}
            case name:
                values = {name: event.value}
        if values:
            await shopkeepers.update(turn.tx, shopkeeper=turn.shopkeeper, **values)

    def _context(self, turn: Turn) -> Context:
        profile = shopkeepers.profile_of(turn.shopkeeper) if turn.shopkeeper else {}
        return Context(turn.lang, profile)


def _tagged(messages: list[Outbound], run: RunRecord) -> list[Outbound]:
    """Prefix each prompt's ref with the run id, so a button from an earlier run of the same
    flow (same step number) is recognised as stale."""
    return [replace(m, ref=f"{run.id}.{m.ref}") if m.ref is not None else m for m in messages]


def _consented(turn: Turn) -> bool:
    return turn.shopkeeper is not None and turn.shopkeeper.consent_at is not None

