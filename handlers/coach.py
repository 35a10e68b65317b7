"""Commands for coaches (admins have them too): what a coach needs before reaching out."""

from __future__ import annotations

from typing import ClassVar

from flows.messages import Outbound
from flows.texts import Texts
from handlers.turn import Turn
from storage import shopkeepers


class CoachDesk:
    """``/reach``: how many shopkeepers a message would reach right now, and why not the
    others (opted out, or the platform says they blocked the bot)."""

    COMMANDS: ClassVar[tuple[str, ...]] = ("reach",)

    def __init__(self, texts: Texts) -> None:
        self.texts = texts

    async def command(self, turn: Turn, command: str, argument: str) -> list[Outbound]:
        assert command in self.COMMANDS
        reach = await shopkeepers.reach(turn.tx)
        return [Outbound(self.texts.get(turn.lang, "reach", **reach))]
