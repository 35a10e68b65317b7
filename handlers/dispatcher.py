"""One way in: every channel hands what a person did to :class:`Dispatcher`.

A turn reads top to bottom: take the person's lock (in this process, and on PostgreSQL an
advisory lock for every process) → claim the received update → find or create the person →
route by role and command → record the new state and the outbox rows in one transaction →
hand the rows to the sender, which delivers them right away.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from flows.definition import DEFAULT_LANGUAGE, LANGUAGES
from flows.messages import Outbound, Reply
from flows.texts import Texts
from handlers.admin import AdminDesk
from handlers.coach import CoachDesk
from handlers.coaching import CONTACT_REF, payload
from handlers.inbound import Inbound
from handlers.locks import UserLocks
from handlers.shopkeeper import ShopkeeperChat
from handlers.turn import Turn
from handlers.turn_ids import person as person_of_turn
from storage import inbox, isolation, outbox, roles, shopkeepers, tickets
from storage.database import Database
from storage.records import OutboxRecord
from storage.tables import OutboxKind, Role, utcnow

log = logging.getLogger(__name__)

#: How often a turn is tried before its update counts as poison.
ATTEMPTS = inbox.MAX_ATTEMPTS


class Sender(Protocol):
    """What the dispatcher needs of the outbox sender (see :mod:`bot.delivery.sender`)."""

    @property
    def unmarked(self) -> Collection[int]:
        """Rows delivered by this process whose "sent" mark is not written yet."""

    @property
    def id(self) -> str:
        """This sender's name, on the rows it claims."""

    def lease(self) -> datetime:
        """Until when a row claimed now is this sender's."""

    async def deliver(self, rows: list[OutboxRecord]) -> bool:
        """Deliver one chat's claimed rows, in order; True when all went out."""

    def wake(self) -> None:
        """Rows are queued: look for them soon."""


class TurnWatcher(Protocol):
    """Told about every turn (the operator's metrics, see :mod:`bot.metrics`)."""

    def turn_handled(self, channel: str, seconds: float) -> None:
        """A turn of ``channel`` ended with its answer delivered, ``seconds`` after it began."""


@dataclass(slots=True)
class Handled:
    """How a turn went: the rows to deliver now, whether one of them is a notice that
    answers the person's button press (channels then leave the press to the outbox), and
    whether everything it said went out."""

    rows: list[OutboxRecord] = field(default_factory=list)
    notice: bool = False
    failed: bool = False
    delivered: bool = False
    #: Another process handled this update first: nothing more to do here.
    elsewhere: bool = False
    #: Slow work the turn left for after its commit (see :attr:`Turn.afterwards`).
    afterwards: list[Afterwards] = field(default_factory=list)


After = Callable[[Handled], Awaitable[None]]
Afterwards = Callable[[], Awaitable[None]]


class Dispatcher:
    """Routes each inbound message to the handler of the role it needs.

    Args:
        db: The database.
        texts: What the bot says outside flows.
        shopkeeper: The shopkeeper's conversation (everyone is a shopkeeper).
        coach: Commands for coaches (admins have them too).
        admin: Commands for admins.
        sender: Delivers the outbox rows a turn recorded.
    """

    def __init__(self, db: Database, texts: Texts, shopkeeper: ShopkeeperChat,
                 coach: CoachDesk, admin: AdminDesk, sender: Sender) -> None:
        self.db = db
        self.texts = texts
        self.shopkeeper = shopkeeper
        self.coach = coach
        self.tickets = coach.tickets  # the shopkeeper's side of the hand-over
        self.admin = admin  # a channel tells it the bot's public name (invite links)
        self.desks: Mapping[Role, CoachDesk | AdminDesk] = {Role.COACH: coach,
                                                             Role.ADMIN: admin}
        #: The access table: which role a command needs. Anyone else gets the ordinary
        #: unknown-command answer, as if the command did not exist.
        self.access: dict[str, Role] = {
            **{name: Role.COACH for name in coach.COMMANDS},
            **{name: Role.ADMIN for name in admin.COMMANDS}}
        self.sender = sender
        self.locks = UserLocks()
        #: Told how long each turn took (set by the operator's endpoints, when served).
        self.watcher: TurnWatcher | None = None

    async def handle(self, inbound: Inbound, *, inbox_row: int | None = None,
                     after: After | None = None) -> Handled:
        """Answer one inbound message and deliver the answer.

        ``inbox_row`` is the stored update it came from (claimed in the turn's transaction,
        so it is handled once across processes); ``after`` runs once the answer is out (a
        channel's cosmetic calls, like rewriting the answered question, which must not
        happen when the next question did not arrive).
        """
        started = time.perf_counter()
        async with self.locks.hold(inbound.address):
            handled = await self._attempts(inbound, inbox_row)
            if handled.rows:
                handled.delivered = await self.sender.deliver(handled.rows)
            if after is not None and not handled.elsewhere:
                await after(handled)
        if self.watcher is not None and not handled.elsewhere:
            self.watcher.turn_handled(inbound.channel, time.perf_counter() - started)
        for work in handled.afterwards:  # outside the lock: the person may go on chatting
            try:
                await work()
            except Exception:
                log.exception("work after the turn of %s failed", inbound.address)
        return handled

    async def _attempts(self, inbound: Inbound, inbox_row: int | None) -> Handled:
        error: Exception | None = None
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await self._turn(inbound, inbox_row)
            except Exception as exc:  # a bug or the database: try again, then give up
                error = exc
                log.warning("turn for update %s failed (attempt %d of %d): %r", inbox_row,
                            attempt, ATTEMPTS, exc)
                if inbox_row is not None:
                    async with self.db.transaction() as tx:
                        if await inbox.mark_attempt_failed(tx, row_id=inbox_row,
                                                           error=repr(exc)):
                            break
        log.error("giving up on update %s of %s", inbox_row, inbound.address, exc_info=error)
        return await self._apologise(inbound, repr(error))

    async def _turn(self, inbound: Inbound, inbox_row: int | None) -> Handled:
        async with self.db.transaction() as tx:
            await isolation.lock_person(tx, inbound.address)
            if inbox_row is not None and not await inbox.mark_done(tx, row_id=inbox_row):
                return Handled(elsewhere=True)
            if inbound.reachable is not None:
                await self._reachable(tx, inbound)
                return Handled()
            if inbound.group is not None:
                return await self._in_group(tx, inbound)
            shopkeeper, run = await shopkeepers.find_or_create(
                tx, channel=inbound.channel, external_id=inbound.external_id,
                language=_language(inbound.language_hint))
            person_of_turn(shopkeeper.id)  # every log line of the turn names them from here
            turn = Turn(tx, shopkeeper, run, shopkeeper.language, press=inbound.press,
                        channel=inbound.channel, display_name=inbound.display_name)
            if inbound.command is not None:
                turn.roles = await roles.of(tx, shopkeeper_id=shopkeeper.id)
                messages = await self._command(turn, inbound.command, inbound.argument)
            else:
                messages = await self._reply(turn, inbound.reply or Reply(text=""))
            if turn.shopkeeper is None and inbox_row is not None:
                # Consent refused: not even the update that said so is kept.
                await inbox.forget_chat(tx, channel=inbound.channel, chat=inbound.external_id)
            handled = await self._record(turn, inbound, messages)
            handled.afterwards = turn.afterwards
            return handled

    async def _command(self, turn: Turn, command: str, argument: str) -> list[Outbound]:
        needed = self.access.get(command)
        if needed is not None and _may(turn.roles, needed):
            return await self.desks[needed].command(turn, command, argument)
        if command == "coach":  # anyone may ask for a human coach
            return await self.tickets.request(turn, argument)
        messages = await self.shopkeeper.command(turn, command, argument)
        if command == "help":
            for role in (Role.COACH, Role.ADMIN):
                if _may(turn.roles, role):
                    messages.append(Outbound(self.texts.get(turn.lang, f"help_{role}")))
        return messages

    async def _reply(self, turn: Turn, reply: Reply) -> list[Outbound]:
        """A coach's buttons, and what a coach types while composing a broadcast, go to the
        coach's desk, an admin's buttons to the admin's (a desk's button pressed by someone
        without the role is then an unknown, stale button); what a shopkeeper types while a
        coach has their ticket goes to that coach; the rest is the shopkeeper's
        conversation."""
        if reply.replying_to is not None and reply.text:  # a coach answering a ticket
            answered = await self.tickets.answer_reply(turn, reply)
            if answered is not None:
                return answered
        coach = self.coach
        ours = coach.owns(reply.ref) if reply.ref is not None else await coach.wants_text(turn)
        if ours:
            assert turn.shopkeeper is not None
            turn.roles = await roles.of(turn.tx, shopkeeper_id=turn.shopkeeper.id)
            if _may(turn.roles, Role.COACH):
                return await coach.reply(turn, reply)
        if reply.ref is not None and self.admin.owns(reply.ref):
            assert turn.shopkeeper is not None
            turn.roles = await roles.of(turn.tx, shopkeeper_id=turn.shopkeeper.id)
            if Role.ADMIN in turn.roles:
                return await self.admin.press(turn, reply)
        if reply.ref == CONTACT_REF:
            return await self.tickets.press(turn, reply)
        if reply.ref is None and reply.text:
            ticket = await self.tickets.relaying(turn)
            if ticket is not None:  # talking with a human coach
                return await self.tickets.relay(turn, ticket, reply.text)
        return await self.shopkeeper.reply(turn, reply)

    async def _in_group(self, tx: AsyncConnection, inbound: Inbound) -> Handled:
        """Something done in a group: only ticket work of coaches (see
        :meth:`Tickets.in_group`). Nobody is created from a group: a stranger there is not
        a shopkeeper who started a conversation."""
        person = await shopkeepers.find_by_identity(tx, channel=inbound.channel,
                                                    external_id=inbound.external_id)
        granted = (await roles.of(tx, shopkeeper_id=person.id) if person is not None
                   else frozenset[Role]())
        turn = Turn(tx, person, None, person.language if person else
                    _language(inbound.language_hint), roles=granted, press=inbound.press,
                    channel=inbound.channel, display_name=inbound.display_name)
        messages = await self.tickets.in_group(turn, inbound, coach=_may(granted, Role.COACH))
        handled = await self._record(turn, inbound, messages)
        handled.afterwards = turn.afterwards
        return handled

    async def _reachable(self, tx: AsyncConnection, inbound: Inbound) -> None:
        assert inbound.reachable is not None
        person = await shopkeepers.reachable(tx, channel=inbound.channel,
                                             external_id=inbound.external_id,
                                             reachable=inbound.reachable)
        if person is not None and not inbound.reachable:
            await outbox.drop_unsent(tx, shopkeeper_id=person.id,
                                     reason="the person blocked the bot")

    async def _record(self, turn: Turn, inbound: Inbound,
                      messages: list[Outbound]) -> Handled:
        """Record the messages in the outbox. When nothing of this chat is still waiting,
        they are recorded as already claimed, for delivery right after the commit."""
        if not messages:
            return Handled()
        if inbound.answered is not None:  # confirmed by the first message of the answer
            messages = [replace(messages[0], answered=inbound.answered), *messages[1:]]
        payloads = [_payload(m, turn.lang, turn.press) for m in messages]
        waiting = [row for row in await outbox.open_ids(
            turn.tx, channel=inbound.channel, external_id=inbound.chat)
            if row not in self.sender.unmarked]
        lease = None if waiting else self.sender.lease()
        owner = turn.shopkeeper.id if turn.shopkeeper is not None else None
        ids = await outbox.record(turn.tx, shopkeeper_id=owner, channel=inbound.channel,
                                  external_id=inbound.chat, payloads=payloads,
                                  sending_until=lease,
                                  claimed_by=self.sender.id if lease else None)
        for row_id, message in zip(ids, messages, strict=True):
            for ticket in message.tickets:  # erased with the ticket's shopkeeper
                await tickets.posted(turn.tx, ticket_id=ticket, outbox_ids=[row_id])
        notice = any(m.notice for m in messages) and turn.press is not None
        if lease is None:
            self.sender.wake()
            return Handled(notice=notice)
        now = utcnow()
        return Handled([OutboxRecord(row_id, owner, inbound.channel, inbound.chat,
                                     payload, OutboxKind.REPLY, 0, 0, now)
                        for row_id, payload in zip(ids, payloads, strict=True)], notice)

    async def _apologise(self, inbound: Inbound, error: str) -> Handled:
        """The turn really failed: say so kindly (through the outbox), and tell the admins.
        A stranger whose first message failed is not stored: the apology is addressed to
        nobody we keep, and deleted once it is out."""
        try:
            async with self.db.transaction() as tx:
                person = await shopkeepers.find_by_identity(
                    tx, channel=inbound.channel, external_id=inbound.external_id)
                lang = person.language if person else _language(inbound.language_hint)
                await outbox.record(
                    tx, shopkeeper_id=person.id if person else None, channel=inbound.channel,
                    external_id=inbound.external_id,
                    payloads=[_payload(Outbound(self.texts.get(lang, "error_generic")), lang,
                                       None)])
                for admin in await roles.holders(tx, role=Role.ADMIN):
                    note = self.texts.get(admin.language, "admin_turn_failed",
                                          address=inbound.address, error=error[:300])
                    await outbox.record(tx, shopkeeper_id=admin.shopkeeper_id,
                                        channel=admin.channel, external_id=admin.external_id,
                                        payloads=[_payload(Outbound(note), admin.language,
                                                           None)])
        except Exception:  # the database itself is down: the update stays for later
            log.exception("could not record the apology to %s", inbound.address)
        self.sender.wake()
        return Handled(failed=True)


def _payload(message: Outbound, lang: str, press: str | None) -> dict[str, Any]:
    if message.notice and press is not None:
        message = replace(message, press=press)  # the channel may show it as its pop-up
    return payload(message, lang)  # the language: for what the channel itself says


def _may(granted: frozenset[Role], needed: Role) -> bool:
    """Admins may do what coaches may."""
    return needed in granted or Role.ADMIN in granted


def _language(hint: str | None) -> str:
    code = (hint or "").split("-")[0].lower()
    return code if code in LANGUAGES else DEFAULT_LANGUAGE
