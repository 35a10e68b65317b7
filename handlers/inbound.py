"""What a channel hands to the dispatcher."""

from __future__ import annotations

from dataclasses import dataclass

from flows.messages import Reply


@dataclass(frozen=True, slots=True)
class Inbound:
    """One thing a person did, translated by a channel.

    Exactly one of ``command`` (``"start"``, ``"help"``, … without the slash), ``reply`` and
    ``reachable`` is set. ``reachable`` is the platform saying the person blocked the bot
    (False) or came back (True). ``language_hint`` is what the platform says the person's
    language is; ``press`` the platform's id of a button press.
    """

    channel: str
    external_id: str
    reply: Reply | None = None
    command: str | None = None
    argument: str = ""
    reachable: bool | None = None
    language_hint: str | None = None
    press: str | None = None
    #: The first name the person's app shows (kept only for coaches, on tickets they take).
    display_name: str | None = None
    #: The group chat it was written in (the coaches' group), None in a private chat. The
    #: person is still ``external_id``; what the bot answers goes to the group.
    group: str | None = None
    #: The label of the answer pressed (``reply`` is a press), for a channel that confirms
    #: it in the answer rather than on the question (WhatsApp): it goes on the turn's first
    #: message (:attr:`flows.messages.Outbound.answered`), so it survives a restart and any
    #: process may send it.
    answered: str | None = None

    @property
    def chat(self) -> str:
        """Where the answer goes: the group it was written in, else the person's chat."""
        return self.group if self.group is not None else self.external_id

    @property
    def address(self) -> str:
        """``channel:external_id``: how the person is named everywhere (locks, the CLI)."""
        return f"{self.channel}:{self.external_id}"
