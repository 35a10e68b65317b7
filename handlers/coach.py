"""Commands for coaches (admins have them too): who a message reaches, and how their
broadcasts are doing."""

from __future__ import annotations

from typing import ClassVar

from flows.messages import Outbound
from flows.rich_text import parse
from flows.texts import Texts
from flows.timing import BRUSSELS
from handlers.turn import Turn
from storage import broadcasts, shopkeepers

#: Broadcasts listed by /broadcasts.
LISTED = 5


class CoachDesk:
    """``/reach``: how many shopkeepers a message would reach right now, and why not the
    others (opted out, or the platform says they blocked the bot). ``/broadcasts``: the
    latest broadcasts with live counts."""

    COMMANDS: ClassVar[tuple[str, ...]] = ("reach", "broadcasts")

    def __init__(self, texts: Texts) -> None:
        self.texts = texts

    async def command(self, turn: Turn, command: str, argument: str) -> list[Outbound]:
        assert command in self.COMMANDS
        if command == "broadcasts":
            return [await self._broadcasts(turn)]
        reach = await shopkeepers.reach(turn.tx)
        return [Outbound(self.texts.get(turn.lang, "reach", **reach))]

    async def _broadcasts(self, turn: Turn) -> Outbound:
        say = self.texts.get
        lines = [say(turn.lang, "broadcasts_title")]
        for made in await broadcasts.recent(turn.tx, limit=LISTED):
            counts = await broadcasts.counts(turn.tx, broadcast_id=made.id)
            text = next(iter(made.texts.values()), "")
            lines.append(say(turn.lang, "broadcasts_line", id=made.id,
                             status=say(turn.lang, f"broadcast_{made.status}"),
                             when=made.send_at.astimezone(BRUSSELS).strftime("%d/%m %H:%M"),
                             queued=counts.queued, sent=counts.sent, failed=counts.failed,
                             unreachable=counts.unreachable, uncertain=counts.uncertain,
                             text=_preview(text)))
        if len(lines) == 1:
            return Outbound(say(turn.lang, "broadcasts_none"))
        return Outbound("\n\n".join(lines))


def _preview(html: str, width: int = 40) -> str:
    """The first words of a broadcast, without its markup."""
    plain = parse(html).plain().replace("\n", " ")
    return plain if len(plain) <= width else plain[:width - 1] + "…"
