"""A person's privacy rights in chat: the notice (/privacy), a copy of their data
(/mydata), and erasure after a confirmation (/delete).

Who the controller is, whom to write to and how long data is kept come from the
configuration (``[privacy]``), so the notice names whoever really runs the bot.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flows.messages import Button, Document, Outbound, Reply
from flows.texts import Texts
from handlers.turn import Turn
from storage import erasure, personal_data
from storage.tables import utcnow

#: The ref of the erasure question's buttons: ``erase.<when asked, epoch minutes>``.
ERASE_REF = "erase"
#: The ref of the retention notice's "keep my data" button.
KEEP_REF = "retention"
#: An erasure question older than this is stale: a press asks to type /delete again.
ERASE_QUESTION_LIFETIME = timedelta(hours=24)
#: The file /mydata sends.
FILE_NAME = "mijn-gegevens.json"
#: Shown in months from this length on, else in days.
_MONTH = timedelta(days=30.4375)


@dataclass(frozen=True, slots=True)
class Privacy:
    """``[privacy]``: who the controller is (per language), how to reach them, and how
    long data is kept.

    Attributes:
        controller: Who decides about the data, as the notice names it.
        partners: Who takes part without being the controller.
        contact: Where to exercise one's rights (an e-mail address).
        inactive_after: Inactivity after which a person is told their data will go.
        erase_after_notice: From that notice to the erasure, unless they answer.
        unconsented_kept: How long someone who never consented is kept (chat id, language).
    """

    controller: Mapping[str, str] = field(default_factory=lambda: {
        "nl": "de Provincie West-Vlaanderen, via KERNpunt",
        "en": "the Province of West Flanders, through KERNpunt",
        "fr": "la Province de Flandre occidentale, via KERNpunt"})
    partners: Mapping[str, str] = field(default_factory=lambda: {
        "nl": "Leiedal en UNIZO West-Vlaanderen",
        "en": "Leiedal and UNIZO West-Vlaanderen",
        "fr": "Leiedal et UNIZO West-Vlaanderen"})
    contact: str = "privacy@kernpunt.be"
    inactive_after: timedelta = timedelta(days=730)
    erase_after_notice: timedelta = timedelta(days=30)
    unconsented_kept: timedelta = timedelta(days=30)


def period(texts: Texts, lang: str, length: timedelta) -> str:
    """A retention period in words: "24 maanden", "30 dagen", "5 minuten" (short periods
    are for trying the cycle out)."""
    if length >= 2 * _MONTH:
        return texts.get(lang, "period_months", n=round(length / _MONTH))
    if length >= timedelta(days=1):
        return texts.get(lang, "period_days", n=round(length / timedelta(days=1)))
    return texts.get(lang, "period_minutes", n=max(1, round(length / timedelta(minutes=1))))


class PrivacyChat:
    """The privacy commands and the erasure question's buttons.

    Args:
        texts: What the bot says.
        privacy: The controller's details and the retention periods.
        consent_version: The version of the notice people consent to.
        clock: The current time (tests move it).
    """

    def __init__(self, texts: Texts, privacy: Privacy, consent_version: str,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.texts = texts
        self.privacy = privacy
        self.consent_version = consent_version
        self.clock = clock

    @staticmethod
    def owns(ref: str) -> bool:
        """Whether a button press belongs here."""
        return ref == KEEP_REF or ref.partition(".")[0] == ERASE_REF

    def notice(self, lang: str) -> Outbound:
        """The privacy notice, filled in with the configured details."""
        p = self.privacy
        return Outbound(self.texts.get(
            lang, "privacy",
            controller=p.controller.get(lang) or p.controller.get("nl", ""),
            partners=p.partners.get(lang) or p.partners.get("nl", ""),
            contact=p.contact,
            period=period(self.texts, lang, p.inactive_after),
            notice_period=period(self.texts, lang, p.erase_after_notice),
            unconsented_period=period(self.texts, lang, p.unconsented_kept),
            version=self.consent_version))

    async def my_data(self, turn: Turn) -> Outbound:
        """Everything held about the person, as a JSON file."""
        assert turn.shopkeeper is not None
        say = self.texts.get
        found = await personal_data.everything_about(turn.tx,
                                                     shopkeeper_id=turn.shopkeeper.id)
        copy = {
            "about": say(turn.lang, "mydata_about", contact=self.privacy.contact),
            "made_at": self.clock().isoformat(),
            "privacy_notice_version": self.consent_version,
            "data": found,
        }
        data = json.dumps(copy, ensure_ascii=False, indent=2, sort_keys=False).encode()
        caption = say(turn.lang, "mydata_caption", contact=self.privacy.contact)
        return Outbound(caption, document=Document(FILE_NAME, "application/json", data))

    def ask_erase(self, lang: str) -> Outbound:
        """Are you sure? Yes, erase everything / No."""
        asked = int(self.clock().timestamp() // 60)
        return Outbound(self.texts.get(lang, "delete_confirm"),
                        (Button("yes", self.texts.get(lang, "delete_yes")),
                         Button("no", self.texts.get(lang, "delete_no"))),
                        ref=f"{ERASE_REF}.{asked}")

    async def press(self, turn: Turn, reply: Reply) -> list[Outbound]:
        """The erasure question's answer, or the retention notice's "keep my data"."""
        assert turn.shopkeeper is not None and reply.ref is not None
        say = self.texts.get
        if reply.ref == KEEP_REF:  # the turn itself was the activity that keeps them
            return [Outbound(say(turn.lang, "retention_kept"))]
        if reply.choice != "yes":
            return [Outbound(say(turn.lang, "delete_kept"))]
        asked = reply.ref.partition(".")[2]
        now = self.clock()
        if (not asked.isdecimal() or now - datetime.fromtimestamp(int(asked) * 60, now.tzinfo)
                > ERASE_QUESTION_LIFETIME):
            return [Outbound(say(turn.lang, "delete_expired"))]
        await erasure.erase(turn.tx, shopkeeper_id=turn.shopkeeper.id, actor="self",
                            reason="request", now=now)
        # The goodbye goes to nobody we keep: the dispatcher records it without an owner
        # and the sender deletes it once it is out.
        turn.shopkeeper, turn.run = None, None
        return [Outbound(say(turn.lang, "delete_done"))]
