"""Questions to the coach: a consented shopkeeper's free text outside a question step, or
``/ask <question>``, answered by the language model, grounded in this person's results and
the tips found for the question, or else from the tip library.

A turn in two phases. In the turn (its transaction, the person's lock): the length and the
daily quota are checked, the question is recorded, the one-time AI notice said, and the
model call is left in :attr:`Turn.afterwards`. After the commit, outside any transaction,
the model is called; a second transaction records the answer and its tokens and queues it
in the outbox. Whatever the model does (no key, an error, too slow, the budget spent), the
person gets an answer: the tips found, labelled as such.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime, time

from openai.types.chat import ChatCompletionMessageParam

from flows.messages import Button, Outbound, Reply
from flows.texts import Texts
from flows.timing import BRUSSELS
from flows.tips import Tip, TipLibrary
from handlers.coaching import payload
from handlers.composer import Labels
from handlers.grounding import Facts, Prompts
from handlers.language_model import Completion, LanguageModel, ModelUnavailableError
from handlers.nudges import Waker
from handlers.tickets import Tickets
from handlers.turn import Turn
from storage import coaching, outbox, questions, runs, shopkeepers
from storage.database import Database
from storage.tables import QuestionSource, utcnow
from storage.tip_search import TipSearch

#: Refs of the button under an answer: ``ask.<question id>``.
PREFIX = "ask."
COACH = "coach"
#: A question longer than this is refused kindly (and not sent anywhere).
LONGEST_QUESTION = 2000
#: An answer is cut at a sentence end to at most this (asked of the model: about 700);
#: with its label it stays far below every channel's limit (Telegram: 4,096).
LONGEST_ANSWER = 1000
#: Tips found for a question: in the prompt, or as the answer.
TIPS_FOUND = 3
#: A line of the system prompt this long appearing in an answer means it is being revealed.
_LEAK = 40
_MARKUP = re.compile(r"\*\*|__|^#+\s*|`", re.MULTILINE)


class QuestionsChat:
    """Answers shopkeepers' questions (:meth:`ask`, ``/ask``) and the button under them.

    Args:
        db: For the second phase's transaction.
        texts: What the shopkeeper reads.
        prompts: The system prompt and headings per language.
        library: The tip library (texts of the tips a person had and found).
        search: Finds the tips that answer a question.
        model: The language model (unconfigured: every answer comes from the tips).
        labels: Shop types and theme names per language (what the model is told).
        sender: Woken when an answer is queued.
        clock: The current time (tests move it).
    """

    def __init__(self, db: Database, texts: Texts, prompts: Prompts, library: TipLibrary,
                 search: TipSearch, model: LanguageModel, labels: Labels, sender: Waker, *,
                 tickets: Tickets | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        #: Where "talk to a coach" under an answer goes (None: the request is only noted).
        self.tickets = tickets
        self.texts = texts
        self.prompts = prompts
        self.library = library
        self.search = search
        self.model = model
        self.labels = labels
        self.sender = sender
        self.clock = clock

    @staticmethod
    def owns(ref: str) -> bool:
        """Is this the button under an answer?"""
        return ref.startswith(PREFIX)

    async def command(self, turn: Turn, argument: str) -> list[Outbound]:
        """``/ask <question>``; without a question, how to ask one."""
        if not argument.strip():
            return [Outbound(self.texts.get(turn.lang, "question_ask_empty"))]
        return await self.ask(turn, argument)

    async def ask(self, turn: Turn, text: str) -> list[Outbound]:
        """Phase 1: answer from the tips now, or record the question and leave the model
        call for after the commit (:attr:`Turn.afterwards`)."""
        assert turn.shopkeeper is not None
        person, lang, say = turn.shopkeeper, turn.lang, self.texts.get
        question = text.strip()
        if len(question) > LONGEST_QUESTION:
            return [Outbound(say(lang, "question_too_long", length=len(question),
                                 limit=LONGEST_QUESTION))]
        if not question:
            return [Outbound(say(lang, "question_ask_empty"))]
        now = self.clock()
        settings = self.model.settings
        found = self.search.find(question, lang, shop_type=person.shop_type, limit=TIPS_FOUND)
        note: str | None = None  # why the model is not asked, when it is there
        if not self.model.configured:
            pass
        elif await questions.asked_since(turn.tx, shopkeeper_id=person.id,
                                         since=_day_start(now)) >= settings.daily_questions:
            note = say(lang, "question_quota_reached", limit=settings.daily_questions)
        elif await questions.tokens_since(
                turn.tx, since=_month_start(now)) >= settings.monthly_tokens:
            note = say(lang, "question_budget_spent")
        if note is not None or not self.model.configured:
            question_id = await questions.ask(turn.tx, shopkeeper_id=person.id, text=question,
                                              now=now, ai_notice=False)
            answer = self._from_tips(lang, found, note)
            await questions.answer(turn.tx, question_id=question_id, text=answer,
                                   source=QuestionSource.TIPS, now=now)
            return [self._under(answer, question_id, lang)]
        notice = not await questions.had_ai_notice(turn.tx, shopkeeper_id=person.id)
        question_id = await questions.ask(turn.tx, shopkeeper_id=person.id, text=question,
                                          now=now, ai_notice=notice)
        messages = self.prompts.messages(lang, await self._facts(turn), found, self.library,
                                         question)

        async def answer_later() -> None:
            await self._answer(person.id, question_id, lang, messages, found)

        turn.afterwards.append(answer_later)
        return [Outbound(say(lang, "question_ai_notice"))] if notice else []

    async def press(self, turn: Turn, reply: Reply) -> list[Outbound]:
        """"Spreek met een coach" under an answer: the request is recorded, and a ticket
        with the question goes to the coaches (:mod:`handlers.tickets`)."""
        assert turn.shopkeeper is not None and reply.ref is not None
        question_id = reply.ref.removeprefix(PREFIX)
        if (reply.choice != COACH or not question_id.isdigit()
                or not await questions.request_coach(turn.tx, question_id=int(question_id),
                                                     shopkeeper_id=turn.shopkeeper.id)):
            return [Outbound(self.texts.get(turn.lang, "stale_button"), notice=True)]
        if self.tickets is not None:
            asked = await questions.text_of(turn.tx, question_id=int(question_id))
            return await self.tickets.request(turn, asked or "")
        return [Outbound(self.texts.get(turn.lang, "question_coach_requested"))]

    # -- phase 2 --------------------------------------------------------------------------

    async def _answer(self, person: int, question_id: int, lang: str,
                      messages: Sequence[ChatCompletionMessageParam],
                      found: Sequence[Tip]) -> None:
        """After the turn: the model call (no transaction open), then the answer recorded
        and queued; the model's failure is answered from the tips."""
        completion: Completion | None
        try:
            completion = await self.model.complete(messages)
            text = self._fitted(completion.text, lang)
        except ModelUnavailableError:
            completion = None
            text = self._from_tips(lang, found, self.texts.get(lang, "question_model_down"))
        async with self.db.transaction() as tx:
            address = await shopkeepers.address_of(tx, shopkeeper_id=person)
            if address is None:
                return  # forgotten meanwhile: their question went with them
            channel, external_id, _ = address
            if completion is not None:
                await questions.answer(
                    tx, question_id=question_id, text=text, source=QuestionSource.AI,
                    now=self.clock(), model=completion.model,
                    prompt_tokens=completion.prompt_tokens,
                    completion_tokens=completion.completion_tokens)
                text = f"{self.texts.get(lang, 'question_ai_label')}\n\n{text}"
            else:
                await questions.answer(tx, question_id=question_id, text=text,
                                       source=QuestionSource.TIPS, now=self.clock())
            await outbox.record(tx, shopkeeper_id=person, channel=channel,
                                external_id=external_id,
                                payloads=[payload(self._under(text, question_id, lang), lang)])
        self.sender.wake()

    def _fitted(self, text: str, lang: str) -> str:
        """The model's answer as plain text of a phone-sized length; one that repeats the
        system prompt counts as no answer."""
        system = self.prompts.system(lang)
        if any(len(line) >= _LEAK and line in text for line in system.splitlines()):
            raise ModelUnavailableError("the answer repeats the system prompt")
        text = _MARKUP.sub("", text).strip()
        if len(text) <= LONGEST_ANSWER:
            return text
        cut = text[:LONGEST_ANSWER]
        end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "), cut.rfind("\n"))
        return cut[:end + 1].rstrip() if end > LONGEST_ANSWER // 2 else cut.rstrip() + "…"

    def _from_tips(self, lang: str, found: Sequence[Tip], note: str | None) -> str:
        """The answer from the tip library: the tips found, labelled as found tips."""
        say = self.texts.get
        parts = [note] if note else []
        if not found:
            return "\n\n".join([*parts, say(lang, "question_tips_none")])
        parts.append(say(lang, "question_tips_intro"))
        parts += [f"• {tip.action[lang]}" + (f"\n{tip.link}" if tip.link else "")
                  for tip in found]
        return "\n\n".join(parts)

    def _under(self, text: str, question_id: int, lang: str) -> Outbound:
        """An answer with "Spreek met een coach" under it."""
        return Outbound(text, (Button(COACH, self.texts.get(lang, "question_coach_button")),),
                        ref=f"{PREFIX}{question_id}")

    async def _facts(self, turn: Turn) -> Facts:
        """This person's profile, latest result, tips and open commitment, and nobody
        else's (every read is by their id)."""
        assert turn.shopkeeper is not None
        person = turn.shopkeeper
        latest = await runs.latest_result(turn.tx, shopkeeper_id=person.id)
        names = {theme: name[turn.lang] for theme, name in self.labels.themes.items()}
        shop_type = self.labels.shop_types.get(person.shop_type or "", {}).get(turn.lang)
        scores = {names.get(theme, theme): value
                  for theme, value in (latest.scores if latest else {}).items()}
        focus = [names.get(theme, theme) for theme in (latest.focus or [])] if latest else []
        had = await coaching.history(turn.tx, shopkeeper_id=person.id)
        return Facts(shop_type or person.shop_type, person.municipality, scores, focus,
                     [(sent.tip_id, sent.outcome) for sent in had],
                     await questions.open_commitment(turn.tx, shopkeeper_id=person.id))


def _day_start(now: datetime) -> datetime:
    """Midnight of ``now``'s day in Brussels: the daily quota starts again then."""
    local = now.astimezone(BRUSSELS)
    return datetime.combine(local.date(), time(), BRUSSELS)


def _month_start(now: datetime) -> datetime:
    """The first of ``now``'s month in Brussels: the token budget starts again then."""
    local = now.astimezone(BRUSSELS)
    return datetime.combine(local.date().replace(day=1), time(), BRUSSELS)

