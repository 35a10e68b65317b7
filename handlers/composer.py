"""A coach composes a broadcast in chat.

``/broadcast`` → the text (a photo with it if they like; bold, italic and links allowed) →
the same text in the other languages, if they like → who gets it, built from buttons (a
municipality, an arrondissement, a shop type, a focus theme, a level on a theme, those who
did not finish the check, a language, and combinations), with the recipient count always in
view → a preview exactly as shopkeepers will see it → now or a typed day and hour →
confirm. Every step is saved in the coach's draft (:mod:`storage.drafts`), so nothing is
lost between messages or across a restart.

Buttons carry the step they belong to (``bc.<step>``): a button of an earlier step changes
nothing. Typed text reaches the composer only on a step that asks for it (the dispatcher
asks :meth:`BroadcastComposer.wants_text`); otherwise a coach chats like any shopkeeper.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from flows.audience import Member, Segment, SegmentError
from flows.definition import DEFAULT_LANGUAGE, LANGUAGES, Flow
from flows.messages import Button, Outbound, Reply
from flows.places import Gazetteer
from flows.rich_text import RichTextError, parse
from flows.texts import Texts
from flows.timing import BRUSSELS, SendingHours
from flows.tips import LEVELS
from flows.when import DayWords, WhenError, parse_when
from handlers.broadcasts import version_for
from handlers.turn import Turn
from storage import broadcasts, drafts, media, shopkeepers
from storage.broadcasts import Candidate
from storage.drafts import DraftRecord
from storage.tables import utcnow

REF = "bc"
CANCEL, NEXT, BACK = "_cancel", "_next", "_back"
#: Steps that wait for typed text (or a photo) rather than a button.
TYPED = frozenset({"text", *(f"text_{lang}" for lang in LANGUAGES), "municipality", "when"})
#: Segment keys chosen from a list of values.
PICKED = ("municipality", "arrondissement", "shop_type", "focus", "language")
#: Municipalities offered as buttons (the most shopkeepers first); others can be typed.
MUNICIPALITY_BUTTONS = 10


@dataclass(frozen=True, slots=True)
class Labels:
    """What the values of a segment are called, per language: shop types, themes, level
    bands (``start`` …) and languages."""

    shop_types: Mapping[str, Mapping[str, str]]
    themes: Mapping[str, Mapping[str, str]]
    bands: Mapping[str, Mapping[str, str]]

    @classmethod
    def from_flows(cls, onboarding: Flow, assessment: Flow) -> Labels:
        """The onboarding's shop-type answers, the assessment's themes and its levels (one
        per band of :data:`flows.tips.LEVELS`, lowest first)."""
        if len(assessment.levels) != len(LEVELS):
            raise ValueError(f"the assessment has {len(assessment.levels)} levels; segments "
                             f"know {len(LEVELS)} bands")
        return cls({c.id: dict(c.label) for c in onboarding.node("shop_type").choices},
                   {t.id: dict(t.name) for t in assessment.themes},
                   {band: dict(level.name) for band, level in zip(LEVELS, assessment.levels,
                                                                   strict=True)})

    def of(self, key: str, value: str, lang: str, texts: Texts) -> str:
        match key:
            case "shop_type":
                return self.shop_types.get(value, {}).get(lang, value)
            case "focus":
                return self.themes.get(value, {}).get(lang, value)
            case "language":
                return texts.get(value, "language_name")
            case "level":
                theme, _, band = value.partition(":")
                return (f"{self.themes.get(theme, {}).get(lang, theme)}: "
                        f"{self.bands.get(band, {}).get(lang, band)}")
        return value


class BroadcastComposer:
    """The steps of composing a broadcast in chat (see the module docstring).

    Args:
        texts: What the composer says.
        places: Municipalities and arrondissements.
        labels: The names of shop types, themes and level bands.
        hours: The sending hours (the confirmation says when a broadcast would wait).
        clock: The current time (tests move it).
    """

    def __init__(self, texts: Texts, places: Gazetteer, labels: Labels, hours: SendingHours,
                 *, clock: Callable[[], datetime] = utcnow) -> None:
        self.texts = texts
        self.places = places
        self.labels = labels
        self.hours = hours
        self.clock = clock

    @staticmethod
    def owns(ref: str | None) -> bool:
        """Is this a button of the composer?"""
        return ref is not None and ref.startswith(REF + ".")

    @staticmethod
    async def wants_text(tx: AsyncConnection, shopkeeper_id: int) -> bool:
        """Does this person's draft wait for typed text (or a photo)?"""
        return await drafts.step_of(tx, coach=shopkeeper_id) in TYPED

    async def start(self, turn: Turn) -> list[Outbound]:
        """``/broadcast``: a new draft (replacing an unfinished one)."""
        draft = DraftRecord(self._coach(turn), "text")
        await drafts.save(turn.tx, draft)
        return [self._ask_text(turn.lang, turn.lang, draft)]

    # -- typed --------------------------------------------------------------------------

    async def typed(self, turn: Turn, reply: Reply) -> list[Outbound]:
        """Text (or a photo) on a step that asks for it."""
        draft = await drafts.get(turn.tx, coach=self._coach(turn))
        if draft is None:
            return []
        if draft.step == "municipality":
            return await self._typed_municipality(turn, draft, reply.text or "")
        if draft.step == "when":
            return await self._typed_when(turn, draft, reply.text or "")
        return await self._typed_text(turn, draft, reply)

    async def _typed_text(self, turn: Turn, draft: DraftRecord, reply: Reply) -> list[Outbound]:
        say = self.texts.get
        lang = turn.lang if draft.step == "text" else draft.step.removeprefix("text_")
        if reply.photo is not None:
            draft.media_id = await media.put_platform(
                turn.tx, channel=self._channel(turn), platform_id=reply.photo[0],
                unique_id=reply.photo[1])
        source = reply.formatted or reply.text or ""
        if not source.strip():
            await drafts.save(turn.tx, draft)
            key = "bc_photo_received" if reply.photo is not None else "bc_text_only"
            return [Outbound(say(turn.lang, key)), self._ask_text(turn.lang, lang, draft)]
        try:
            text = parse(source)
        except RichTextError as exc:
            return [Outbound(say(turn.lang, f"bc_error_{exc.code}", reason=exc.reason)),
                    self._ask_text(turn.lang, lang, draft)]
        draft.texts[lang] = text.html()
        draft.step = "languages"
        await drafts.save(turn.tx, draft)
        return [self._languages(turn.lang, draft)]

    async def _typed_municipality(self, turn: Turn, draft: DraftRecord,
                                  typed: str) -> list[Outbound]:
        found = self.places.find(typed).name
        if found is None:
            return [Outbound(self.texts.get(turn.lang, "bc_municipality_unknown",
                                            typed=typed[:40])),
                    await self._pick(turn, draft, "municipality")]
        _toggle(draft, "municipality", found)
        return await self._to_audience(turn, draft)

    async def _typed_when(self, turn: Turn, draft: DraftRecord, typed: str) -> list[Outbound]:
        try:
            draft.send_at = parse_when(typed, self.clock(), self._day_words(turn.lang))
        except WhenError as exc:
            return [Outbound(self.texts.get(turn.lang, f"bc_when_{exc.code}")),
                    self._ask_when(turn.lang)]
        draft.step = "confirm"
        await drafts.save(turn.tx, draft)
        return [await self._confirm(turn, draft)]

    # -- pressed ------------------------------------------------------------------------

    async def press(self, turn: Turn, reply: Reply) -> list[Outbound]:
        """A button of the composer; one of an earlier step changes nothing."""
        say = self.texts.get
        draft = await drafts.get(turn.tx, coach=self._coach(turn))
        step = (reply.ref or "").removeprefix(REF + ".")
        if draft is None or draft.step != step:
            return [Outbound(say(turn.lang, "bc_stale"), notice=True)]
        choice = reply.choice or ""
        if choice == CANCEL:
            await drafts.discard(turn.tx, coach=draft.shopkeeper_id)
            return [Outbound(say(turn.lang, "bc_cancelled"))]
        if step.startswith("text"):
            return await self._to_languages(turn, draft) if choice == BACK else []
        if step == "languages":
            return await self._pressed_languages(turn, draft, choice)
        if step == "audience":
            return await self._pressed_audience(turn, draft, choice)
        if step in PICKED or step.startswith("band:"):
            if choice != BACK:
                key, value = ("level", f"{step[5:]}:{choice}") if step.startswith("band:") \
                    else (step, choice)
                _toggle(draft, key, value)
            return await self._to_audience(turn, draft)
        if step == "level":
            if choice == BACK:
                return await self._to_audience(turn, draft)
            draft.step = f"band:{choice}"
            await drafts.save(turn.tx, draft)
            return [self._bands(turn.lang, choice)]
        if step == "preview":
            return await self._pressed_preview(turn, draft, choice)
        if step == "when":
            return await self._to_preview(turn, draft)
        assert step == "confirm"
        if choice == BACK:
            return await self._to_preview(turn, draft)
        return await self._send(turn, draft, urgent=choice == "urgent")

    async def _pressed_languages(self, turn: Turn, draft: DraftRecord,
                                 choice: str) -> list[Outbound]:
        if choice == NEXT:
            return await self._to_audience(turn, draft)
        if choice in LANGUAGES:
            draft.step = f"text_{choice}"
            await drafts.save(turn.tx, draft)
            return [self._ask_text(turn.lang, choice, draft)]
        return [self._languages(turn.lang, draft)]

    async def _pressed_audience(self, turn: Turn, draft: DraftRecord,
                                choice: str) -> list[Outbound]:
        match choice:
            case "unfinished":
                _toggle(draft, "unfinished", "yes")
                return await self._to_audience(turn, draft)
            case "everyone":
                draft.segment = {}
                return await self._to_audience(turn, draft)
            case "level":
                draft.step = "level"
                await drafts.save(turn.tx, draft)
                return [self._themes(turn.lang)]
            case choice if choice in PICKED:
                return [await self._pick(turn, draft, choice)]
            case "_next":
                return await self._to_preview(turn, draft)
            case "_back":
                return await self._to_languages(turn, draft)
        return [await self._audience(turn, draft)]

    async def _pressed_preview(self, turn: Turn, draft: DraftRecord,
                               choice: str) -> list[Outbound]:
        if choice == BACK:
            return await self._to_audience(turn, draft)
        if choice == "later":
            draft.step = "when"
            await drafts.save(turn.tx, draft)
            return [self._ask_when(turn.lang)]
        draft.send_at = None
        draft.step = "confirm"
        await drafts.save(turn.tx, draft)
        return [await self._confirm(turn, draft)]

    # -- the steps' messages ------------------------------------------------------------

    def _ask_text(self, lang: str, written: str, draft: DraftRecord) -> Outbound:
        say = self.texts.get
        buttons: tuple[Button, ...]
        if draft.step == "text":
            text = say(lang, "bc_ask_text")
            buttons = (Button(CANCEL, say(lang, "bc_cancel")),)
        else:
            text = say(lang, "bc_ask_translation", language=say(written, "language_name"))
            buttons = (Button(BACK, say(lang, "bc_back")), Button(CANCEL, say(lang, "bc_cancel")))
        return Outbound(text, buttons, ref=f"{REF}.{draft.step}")

    def _languages(self, lang: str, draft: DraftRecord) -> Outbound:
        say = self.texts.get
        have = ", ".join(say(code, "language_name") for code in LANGUAGES if code in draft.texts)
        buttons = [Button(code, say(lang, "bc_edit_language" if code in draft.texts
                                    else "bc_add_language", language=say(code, "language_name")))
                   for code in LANGUAGES if code != lang]
        photo = say(lang, "bc_with_photo") if draft.media_id is not None else ""
        return Outbound(say(lang, "bc_languages", languages=have, photo=photo),
                        (*buttons, Button(CANCEL, say(lang, "bc_cancel")),
                         Button(NEXT, say(lang, "bc_to_audience"))), ref=f"{REF}.languages")

    async def _audience(self, turn: Turn, draft: DraftRecord) -> Outbound:
        say, lang = self.texts.get, turn.lang
        count = len(await self._recipients(turn.tx, draft.segment))
        buttons = [Button(key, say(lang, f"bc_by_{key}"))
                   for key in ("municipality", "arrondissement", "shop_type", "focus", "level",
                               "language")]
        unfinished = "unfinished" in draft.segment
        buttons.append(Button("unfinished", say(lang, "bc_by_unfinished_on" if unfinished
                                                else "bc_by_unfinished")))
        if draft.segment:
            buttons.append(Button("everyone", say(lang, "bc_everyone_button")))
        buttons += [Button(BACK, say(lang, "bc_back")), Button(NEXT, say(lang, "bc_to_preview"))]
        return Outbound(say(lang, "bc_audience", who=self.describe(draft.segment, lang),
                            count=count), tuple(buttons), ref=f"{REF}.audience")

    async def _pick(self, turn: Turn, draft: DraftRecord, key: str) -> Outbound:
        """The values of one segment key that reach someone, with how many each."""
        say, lang = self.texts.get, turn.lang
        everyone = await broadcasts.candidates(turn.tx)
        found: Counter[str] = Counter()
        for candidate in everyone:
            for value in self._values(key, candidate):
                found[value] += 1
        chosen = set(draft.segment.get(key, ()))
        values = [v for v, _ in found.most_common()]
        if key == "municipality":
            values = values[:MUNICIPALITY_BUTTONS]
        else:
            values.sort(key=lambda v: self.labels.of(key, v, lang, self.texts))
        buttons = [Button(v, ("✓ " if v in chosen else "")
                          + f"{self.labels.of(key, v, lang, self.texts)} ({found[v]})")
                   for v in values]
        draft.step = key
        await drafts.save(turn.tx, draft)
        text = say(lang, "bc_pick_municipality" if key == "municipality" else "bc_pick")
        return Outbound(text, (*buttons, Button(BACK, say(lang, "bc_back"))),
                        ref=f"{REF}.{key}")

    def _values(self, key: str, candidate: Candidate) -> list[str]:
        match key:
            case "municipality":
                return [candidate.municipality] if candidate.municipality else []
            case "arrondissement":
                found = self.places.arrondissement_of.get(candidate.municipality or "")
                return [found] if found else []
            case "shop_type":
                return [candidate.shop_type] if candidate.shop_type else []
            case "focus":
                return list(candidate.focus or ())
            case "language":
                return [candidate.language]
        return []

    def _themes(self, lang: str) -> Outbound:
        say = self.texts.get
        buttons = [Button(theme, names.get(lang, theme))
                   for theme, names in self.labels.themes.items()]
        return Outbound(say(lang, "bc_pick_theme"), (*buttons, Button(BACK, say(lang, "bc_back"))),
                        ref=f"{REF}.level")

    def _bands(self, lang: str, theme: str) -> Outbound:
        say = self.texts.get
        buttons = [Button(band, names.get(lang, band)) for band, names in self.labels.bands.items()]
        return Outbound(say(lang, "bc_pick_band",
                            theme=self.labels.themes.get(theme, {}).get(lang, theme)),
                        (*buttons, Button(BACK, say(lang, "bc_back"))), ref=f"{REF}.band:{theme}")

    def _ask_when(self, lang: str) -> Outbound:
        say = self.texts.get
        return Outbound(say(lang, "bc_ask_when"), (Button(BACK, say(lang, "bc_back")),
                                                   Button(CANCEL, say(lang, "bc_cancel"))),
                        ref=f"{REF}.when")

    async def _confirm(self, turn: Turn, draft: DraftRecord) -> Outbound:
        say, lang = self.texts.get, turn.lang
        count = len(await self._recipients(turn.tx, draft.segment))
        now = self.clock()
        at = draft.send_at or now
        buttons = [Button("send", say(lang, "bc_send"))]
        if self.hours.allowed(at):
            when = say(lang, "bc_when_now") if draft.send_at is None else self._date(lang, at)
        else:
            waits = self.hours.next_slot(at)
            when = say(lang, "bc_when_waits", at=self._date(lang, at),
                       next=self._date(lang, waits))
            buttons.append(Button("urgent", say(lang, "bc_urgent")))
        return Outbound(say(lang, "bc_confirm", who=self.describe(draft.segment, lang),
                            count=count, when=when),
                        (*buttons, Button(BACK, say(lang, "bc_back")),
                         Button(CANCEL, say(lang, "bc_cancel"))), ref=f"{REF}.confirm")

    # -- moving between steps -----------------------------------------------------------

    async def _to_languages(self, turn: Turn, draft: DraftRecord) -> list[Outbound]:
        draft.step = "languages"
        await drafts.save(turn.tx, draft)
        return [self._languages(turn.lang, draft)]

    async def _to_audience(self, turn: Turn, draft: DraftRecord) -> list[Outbound]:
        draft.step = "audience"
        await drafts.save(turn.tx, draft)
        return [await self._audience(turn, draft)]

    async def _to_preview(self, turn: Turn, draft: DraftRecord) -> list[Outbound]:
        """The message as each language's recipients will see it, then the choice."""
        say, lang = self.texts.get, turn.lang
        recipients = await self._recipients(turn.tx, draft.segment)
        if not recipients:
            return [Outbound(say(lang, "bc_nobody")), *await self._to_audience(turn, draft)]
        draft.step = "preview"
        await drafts.save(turn.tx, draft)
        per_language = Counter(version_for(draft.texts, c.language) for c in recipients)
        shown = [Outbound(draft.texts[code], html=True, photo=draft.media_id)
                 for code in LANGUAGES if per_language[code]]
        split = ", ".join(say(lang, "bc_language_count", language=say(code, "language_name"),
                              count=per_language[code])
                          for code in LANGUAGES if per_language[code])
        buttons = (Button("now", say(lang, "bc_now")), Button("later", say(lang, "bc_later")),
                   Button(BACK, say(lang, "bc_back")), Button(CANCEL, say(lang, "bc_cancel")))
        card = Outbound(say(lang, "bc_preview", count=len(recipients), languages=split),
                        buttons, ref=f"{REF}.preview")
        return [*shown, card]

    async def _send(self, turn: Turn, draft: DraftRecord, *, urgent: bool) -> list[Outbound]:
        say, lang = self.texts.get, turn.lang
        if not await self._recipients(turn.tx, draft.segment):
            return [Outbound(say(lang, "bc_nobody")), *await self._to_audience(turn, draft)]
        now = self.clock()
        address = await shopkeepers.address_of(turn.tx, shopkeeper_id=draft.shopkeeper_id)
        via = f"{address[0]}:{address[1]}" if address else f"shopkeeper:{draft.shopkeeper_id}"
        made = await broadcasts.create(
            turn.tx, created_by=draft.shopkeeper_id, created_via=via, texts=draft.texts,
            segment=draft.segment, urgent=urgent, send_at=draft.send_at or now, now=now,
            media_id=draft.media_id)
        await drafts.discard(turn.tx, coach=draft.shopkeeper_id)
        at = draft.send_at or now
        if urgent or self.hours.allowed(at):
            when = say(lang, "bc_when_now") if draft.send_at is None else self._date(lang, at)
        else:
            when = self._date(lang, self.hours.next_slot(at))
        return [Outbound(say(lang, "bc_made", id=made.id, when=when))]

    # -- small things -------------------------------------------------------------------

    def describe(self, segment: Mapping[str, list[str]], lang: str) -> str:
        """The audience in words: "Kortrijk of Roeselare · Voeding", or "iedereen"."""
        say = self.texts.get
        parts = []
        for key in ("municipality", "arrondissement", "shop_type", "focus", "level",
                    "language", "unfinished"):
            values = segment.get(key)
            if not values:
                continue
            if key == "unfinished":
                parts.append(say(lang, "bc_who_unfinished"))
                continue
            names = [self.labels.of(key, v, lang, self.texts) for v in values]
            joined = say(lang, "bc_or").join(names)
            parts.append(say(lang, f"bc_who_{key}", values=joined))
        return " · ".join(parts) or say(lang, "bc_who_everyone")

    async def _recipients(self, tx: AsyncConnection,
                          segment: Mapping[str, list[str]]) -> list[Candidate]:
        try:
            chosen = Segment.from_data(segment, self.places)
        except SegmentError:  # a value this deployment no longer knows
            chosen = Segment({}, self.places.arrondissement_of)
        return [c for c in await broadcasts.candidates(tx) if chosen.matches(
            Member(c.municipality, c.shop_type, c.language, c.scores, tuple(c.focus or ())))]

    def _date(self, lang: str, moment: datetime) -> str:
        local = moment.astimezone(BRUSSELS)
        day = self.texts.list(lang, "bc_weekdays")[local.weekday()]
        return self.texts.get(lang, "bc_date", day=day, date=local.strftime("%d/%m"),
                              time=local.strftime("%H:%M"))

    def _day_words(self, lang: str) -> list[DayWords]:
        return [DayWords(dict(zip(self.texts.list(code, "bc_relative_days"), range(3),
                                  strict=True)),
                         self.texts.list(code, "bc_weekdays"))
                for code in dict.fromkeys((lang, DEFAULT_LANGUAGE, *LANGUAGES))]

    @staticmethod
    def _coach(turn: Turn) -> int:
        assert turn.shopkeeper is not None
        return turn.shopkeeper.id

    @staticmethod
    def _channel(turn: Turn) -> str:
        return turn.channel


def _toggle(draft: DraftRecord, key: str, value: str) -> None:
    """Add a value to the segment, or take it away when it was there."""
    values = set(draft.segment.get(key, ()))
    values ^= {value}
    if values:
        draft.segment[key] = sorted(values)
    else:
        draft.segment.pop(key, None)
