"""What a channel hands to the use cases, and what it gets back to deliver."""

from __future__ import annotations

from dataclasses import dataclass, field

from flows.messages import Outbound, Reply


@dataclass(frozen=True, slots=True)
class Inbound:
    """One thing a user did, translated by a channel.

    Exactly one of ``command`` (``"start"``, ``"help"``, … without the slash) and ``reply``
    is set. ``language_hint`` is what the platform says the user's language is;
    ``update_id`` the platform's id of this update, so a redelivery is handled only once.
    """

    channel: str
    external_id: str
    reply: Reply | None = None
    command: str | None = None
    argument: str = ""
    language_hint: str | None = None
    update_id: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message to send now; ``outbox_id`` is its outbox row (None after a deletion).

    ``lang`` is the user's language, for anything the channel itself has to say.
    """

    outbox_id: int | None
    channel: str
    external_id: str
    message: Outbound
    lang: str


@dataclass(slots=True)
class Report:
    """What a channel managed to deliver of one turn's messages.

    ``unreachable`` means the platform says the user blocked the bot: nothing more is sent
    to them until they come back.
    """

    sent: list[Delivery]
    failed: list[Delivery] = field(default_factory=list)
    error: str | None = None
    unreachable: bool = False
