"""Commands for coaches (admins have them too): who a message reaches, composing a
broadcast, following (cancelling, deleting, resending) the recent ones, and the tickets of
shopkeepers who asked for a human coach."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar

from flows.messages import Button, Outbound, Reply
from flows.rich_text import parse
from flows.texts import Texts
from flows.timing import BRUSSELS
from handlers.composer import BroadcastComposer
from handlers.dashboard_link import DashboardLink
from handlers.tickets import CLAIM_REF, Tickets
from handlers.turn import Turn
from storage import broadcasts, shopkeepers
from storage.broadcasts import BroadcastRecord
from storage.tables import BroadcastStatus

#: Broadcasts listed by /broadcasts.
LISTED = 5
#: The ref of the buttons under /broadcasts.
LIST_REF = "bcl"
#: Offered while Telegram still lets a bot delete its messages (48 hours).
DELETABLE_FOR = timedelta(hours=47)


class CoachDesk:
    """``/reach``: how many shopkeepers a message would reach right now, and why not the
    others. ``/broadcast``: compose one (:mod:`handlers.composer`). ``/broadcasts``: the
    latest with live counts, and buttons to cancel one that is waiting or running, delete
    one from the chats, or send again to those it may not have reached.

    Coaches work as a team: any coach may act on any broadcast.
    """

    COMMANDS: ClassVar[tuple[str, ...]] = ("broadcast", "broadcasts", "reach", "tickets",
                                           "reply", "close", "dashboard")

    def __init__(self, texts: Texts, composer: BroadcastComposer, tickets: Tickets,
                 dashboard: DashboardLink | None = None) -> None:
        self.texts = texts
        self.composer = composer
        self.tickets = tickets
        self.dashboard = dashboard or DashboardLink(texts, "http://127.0.0.1:8080")

    async def command(self, turn: Turn, command: str, argument: str) -> list[Outbound]:
        assert command in self.COMMANDS
        match command:
            case "broadcast":
                return await self.composer.start(turn)
            case "broadcasts":
                return [await self._broadcasts(turn)]
            case "tickets":
                return await self.tickets.listing(turn)
            case "reply":
                return await self.tickets.answer(turn, argument)
            case "close":
                return await self.tickets.close(turn, argument)
            case "dashboard":
                return await self.dashboard.command(turn)
        reach = await shopkeepers.reach(turn.tx)
        return [Outbound(self.texts.get(turn.lang, "reach", **reach))]

    # -- what the dispatcher routes here ------------------------------------------------

    def owns(self, ref: str) -> bool:
        """A button of the composer, of the broadcast list, or to claim a ticket."""
        return ref in (LIST_REF, CLAIM_REF) or self.composer.owns(ref)

    async def wants_text(self, turn: Turn) -> bool:
        """Is this coach in the middle of typing a broadcast?"""
        return turn.shopkeeper is not None and await self.composer.wants_text(
            turn.tx, turn.shopkeeper.id)

    async def reply(self, turn: Turn, reply: Reply) -> list[Outbound]:
        if reply.ref == LIST_REF:
            return await self._list_press(turn, reply.choice or "")
        if reply.ref == CLAIM_REF:
            return await self.tickets.claim(turn, reply.choice or "")
        if reply.ref is not None:
            return await self.composer.press(turn, reply)
        return await self.composer.typed(turn, reply)

    # -- the list -----------------------------------------------------------------------

    async def _broadcasts(self, turn: Turn) -> Outbound:
        say = self.texts.get
        lines = [say(turn.lang, "broadcasts_title")]
        buttons: list[Button] = []
        now = self.composer.clock()
        for made in await broadcasts.recent(turn.tx, limit=LISTED):
            counts = await broadcasts.counts(turn.tx, broadcast_id=made.id)
            text = next(iter(made.texts.values()), "")
            status = "deleted" if made.deleted_at is not None else made.status
            lines.append(say(turn.lang, "broadcasts_line", id=made.id,
                             status=say(turn.lang, f"broadcast_{status}"),
                             when=made.send_at.astimezone(BRUSSELS).strftime("%d/%m %H:%M"),
                             queued=counts.queued, sent=counts.sent, failed=counts.failed,
                             unreachable=counts.unreachable, uncertain=counts.uncertain,
                             text=_preview(text)))
            buttons.extend(self._actions(turn.lang, made, counts.uncertain, now))
        if len(lines) == 1:
            return Outbound(say(turn.lang, "broadcasts_none"))
        return Outbound("\n\n".join(lines), tuple(buttons), ref=LIST_REF if buttons else None)

    def _actions(self, lang: str, made: BroadcastRecord, uncertain: int,
                 now: datetime) -> list[Button]:
        say = self.texts.get
        actions = []
        if made.status in (BroadcastStatus.SCHEDULED, BroadcastStatus.SENDING):
            actions.append(Button(f"cancel.{made.id}", say(lang, "bcl_cancel", id=made.id)))
        if (made.status in (BroadcastStatus.SENDING, BroadcastStatus.DONE)
                and made.deleted_at is None and now - made.send_at < DELETABLE_FOR):
            actions.append(Button(f"delete.{made.id}", say(lang, "bcl_delete", id=made.id)))
        if made.status == BroadcastStatus.DONE and uncertain and made.deleted_at is None:
            actions.append(Button(f"resend.{made.id}", say(lang, "bcl_resend", id=made.id,
                                                            count=uncertain)))
        return actions

    async def _list_press(self, turn: Turn, choice: str) -> list[Outbound]:
        say = self.texts.get
        action, _, number = choice.partition(".")
        made = await broadcasts.get(turn.tx, broadcast_id=int(number)) \
            if number.isdigit() else None
        if made is None:
            return [Outbound(say(turn.lang, "bc_stale"), notice=True)]
        now = self.composer.clock()
        match action:
            case "cancel":
                done = await broadcasts.cancel(turn.tx, broadcast_id=made.id, now=now)
                return [Outbound(say(turn.lang, "bcl_cancelled" if done else "bcl_not_running",
                                     id=made.id))]
            case "delete":
                counts = await broadcasts.counts(turn.tx, broadcast_id=made.id)
                return [Outbound(say(turn.lang, "bcl_delete_sure", id=made.id,
                                     count=counts.sent + counts.uncertain),
                                 (Button(f"deleteyes.{made.id}", say(turn.lang, "bcl_delete_yes")),
                                  Button(f"deleteno.{made.id}", say(turn.lang, "bcl_delete_no"))),
                                 ref=LIST_REF)]
            case "deleteyes":
                deletion = await broadcasts.delete_from_chats(turn.tx, broadcast_id=made.id,
                                                              now=now)
                if deletion is None:
                    return [Outbound(say(turn.lang, "bcl_deleted_already", id=made.id))]
                text = say(turn.lang, "bcl_deleting", id=made.id, count=deletion.queued)
                if deletion.too_old:
                    text += "\n" + say(turn.lang, "bcl_too_old", count=deletion.too_old)
                return [Outbound(text)]
            case "deleteno":
                return [Outbound(say(turn.lang, "bcl_kept", id=made.id), notice=True)]
            case "resend":
                queued = await broadcasts.resend_uncertain(turn.tx, broadcast_id=made.id)
                return [Outbound(say(turn.lang, "bcl_resent", id=made.id, count=queued))]
        return [Outbound(say(turn.lang, "bc_stale"), notice=True)]


def _preview(html: str, width: int = 40) -> str:
    """The first words of a broadcast, without its markup."""
    plain = parse(html).plain().replace("\n", " ")
    return plain if len(plain) <= width else plain[:width - 1] + "…"
