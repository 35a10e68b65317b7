"""What one turn works with: the transaction, the person, their roles and their open run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection

from storage.records import RunRecord, ShopkeeperRecord
from storage.tables import Role


@dataclass(slots=True)
class Turn:
    """One inbound message being answered, inside its transaction.

    ``shopkeeper`` is None once the person was forgotten (consent refused), ``lang`` the
    language to answer in; ``press`` is the platform's id of a button press, when it was one
    (a notice answers it as a pop-up).
    """

    tx: AsyncConnection
    shopkeeper: ShopkeeperRecord | None
    run: RunRecord | None
    lang: str
    roles: frozenset[Role] = frozenset()
    press: str | None = None
    #: The channel the person wrote on (``telegram``): a picture they sent is its file.
    channel: str = ""
    #: The first name the person's app shows, when the channel gives one.
    display_name: str | None = None
    #: Slow work to do after this turn's transaction committed, outside the person's lock
    #: (a call to a language model): each opens its own transactions and records what it
    #: says in the outbox. A failure is logged; the turn itself stands.
    afterwards: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
