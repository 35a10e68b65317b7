"""A human coach when it matters: the hand-over from the bot to KERNpunt's coaches.

A shopkeeper asks for a coach (``/coach``, the offer after their result, or the button
under an AI answer): a ticket opens and the coaches get the request with a short profile
and an "I'll take it" button, in the coaches' group when one is configured, else each in
their private chat. The first to press it owns the ticket; the others are told who did.
The owner answers by replying to a message of the ticket, or with ``/reply N text`` (the
shopkeeper reads "Coach An: …"); the shopkeeper's next messages go to that coach until
``/close N`` or 7 silent days.

Every message about a ticket in a coach's chat or the group is remembered with the
ticket (:func:`storage.tickets.posted`): a platform reply to it names the ticket.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flows.messages import Button, Outbound, Reply
from flows.texts import Texts
from handlers.coaching import payload
from handlers.composer import Labels
from handlers.inbound import Inbound
from handlers.nudges import Waker
from handlers.turn import Turn
from storage import outbox, roles, runs, shopkeepers, tickets
from storage.tables import Role, utcnow
from storage.tickets import TicketRecord

#: The coaches' buttons under a request.
CLAIM_REF = "tkc"
#: A question longer than this is cut in the coaches' notification.
SHOWN = 600
#: The language of what the bot writes in the coaches' group (KERNpunt's coaches).
GROUP_LANGUAGE = "nl"


class Tickets:
    """Open, claim, relay, answer and close tickets (see the module docstring).

    Args:
        texts: What the bot says.
        labels: Names of shop types and themes for the profile summary.
        sender: Woken after a turn queued messages for other people.
        clock: The current time (tests move it).
        group: The coaches' group as (channel, chat id), or None: each coach's own chat.
    """

    def __init__(self, texts: Texts, labels: Labels, sender: Waker, *,
                 clock: Callable[[], datetime] = utcnow,
                 group: tuple[str, str] | None = None) -> None:
        self.texts = texts
        self.labels = labels
        self.sender = sender
        self.clock = clock
        self.group = group

    # -- the shopkeeper's side ----------------------------------------------------------

    async def request(self, turn: Turn, question: str) -> list[Outbound]:
        """Open a ticket (or add to the open one) and tell the coaches."""
        assert turn.shopkeeper is not None
        say = self.texts.get
        if turn.shopkeeper.consent_at is None:
            return [Outbound(say(turn.lang, "tk_needs_start"))]
        now = self.clock()
        text = question.strip()[:2000] or say("nl", "tk_contact_request")
        existing = await tickets.active_of(turn.tx, shopkeeper_id=turn.shopkeeper.id, now=now)
        ticket = await tickets.open_ticket(turn.tx, shopkeeper_id=turn.shopkeeper.id,
                                           question=text, now=now)
        if existing is not None:
            await self._relay(turn, ticket, text)
            return [Outbound(say(turn.lang, "tk_already_open"))]
        await self._tell_coaches(turn, ticket)
        return [Outbound(say(turn.lang, "tk_opened"))]

    async def press(self, turn: Turn, reply: Reply) -> list[Outbound]:
        """The shopkeeper's answer to "may a coach contact you?" (:data:`CONTACT_REF`)."""
        if reply.choice == "yes":
            return await self.request(turn, "")
        return [Outbound(self.texts.get(turn.lang, "tk_offer_declined"), notice=True)]

    async def relaying(self, turn: Turn) -> TicketRecord | None:
        """The person's active ticket, when what they type now goes to a coach."""
        if turn.shopkeeper is None or turn.run is not None:
            return None  # in the middle of the check, typing answers the question
        return await tickets.active_of(turn.tx, shopkeeper_id=turn.shopkeeper.id,
                                       now=self.clock())

    async def relay(self, turn: Turn, ticket: TicketRecord, text: str) -> list[Outbound]:
        """A shopkeeper's message on an active ticket goes to its coach (or to all)."""
        await tickets.add_message(turn.tx, ticket=ticket, text=text, from_coach=False,
                                  now=self.clock())
        await self._relay(turn, ticket, text)
        if ticket.coach_id is None:
            return [Outbound(self.texts.get(turn.lang, "tk_passed_on"))]
        return []  # a conversation with a person: no bot remarks in between

    # -- the coaches' side --------------------------------------------------------------

    async def listing(self, turn: Turn) -> list[Outbound]:
        """``/tickets``: the active ones, the coach's own first, with claim buttons."""
        say = self.texts.get
        me = self._me(turn)
        active = await tickets.active(turn.tx, now=self.clock())
        if not active:
            return [Outbound(say(turn.lang, "tk_none"))]
        active.sort(key=lambda t: (t.coach_id != me, t.id))
        lines = [say(turn.lang, "tk_list_title")]
        for ticket in active:
            name = await self._shop(turn, ticket.shopkeeper_id)
            owner = (say(turn.lang, "tk_mine") if ticket.coach_id == me
                     else ticket.coach_name or say(turn.lang, "tk_unclaimed"))
            lines.append(say(turn.lang, "tk_list_line", id=ticket.id, shop=name, owner=owner,
                             question=_short(ticket.question, 80)))
        buttons = tuple(Button(f"claim.{t.id}", say(turn.lang, "tk_claim_id", id=t.id))
                        for t in active if t.coach_id is None)
        return [Outbound("\n\n".join(lines), buttons, ref=CLAIM_REF if buttons else None,
                         tickets=tuple(t.id for t in active))]

    async def claim(self, turn: Turn, choice: str) -> list[Outbound]:
        """"I'll take it": the first coach owns the ticket; the others hear who."""
        say = self.texts.get
        ticket = await self._ticket(turn, choice.removeprefix("claim."))
        if ticket is None:
            return [Outbound(say(turn.lang, "tk_unknown"), notice=True)]
        me = self._me(turn)
        name = turn.display_name or say(turn.lang, "tk_a_coach")
        if not await tickets.claim(turn.tx, ticket_id=ticket.id, coach_id=me, coach_name=name,
                                   now=self.clock()):
            current = await tickets.get(turn.tx, ticket_id=ticket.id)
            owner = current.coach_name if current and current.coach_name else "?"
            key = "tk_yours_already" if current and current.coach_id == me else "tk_taken"
            return [Outbound(say(turn.lang, key, id=ticket.id, coach=owner), notice=True)]
        if self.group is not None:  # the group sees who; the coach gets a pop-up
            await self._to_group(turn, ticket, say(GROUP_LANGUAGE, "tk_claimed_by",
                                                      id=ticket.id, coach=name))
        else:
            for coach in await self._coaches(turn):
                if coach.shopkeeper_id != me:
                    await self._send(turn, coach.shopkeeper_id, coach.channel,
                                     coach.external_id, say(coach.language, "tk_claimed_by",
                                                            id=ticket.id, coach=name),
                                     coach.language)
        await self._tell_shopkeeper(turn, ticket, "tk_coach_took", coach=name)
        return [Outbound(say(turn.lang, "tk_claimed", id=ticket.id),
                         notice=self.group is not None)]

    async def answer(self, turn: Turn, argument: str) -> list[Outbound]:
        """``/reply N text``: to the shopkeeper, as "Coach <name>: text"."""
        say = self.texts.get
        number, _, text = argument.strip().partition(" ")
        ticket = await self._ticket(turn, number)
        if ticket is None or not text.strip():
            return [Outbound(say(turn.lang, "tk_reply_usage"))]
        return await self._answer(turn, ticket, text)

    async def answer_reply(self, turn: Turn, reply: Reply, *,
                           chat: str | None = None) -> list[Outbound] | None:
        """A coach's platform reply to a message of a ticket answers that ticket, as
        ``/reply N`` does; None when it is not (not a coach, not a ticket's message), so
        the message is what it would otherwise be. ``chat``: where the reply was written,
        when not the coach's own chat (the coaches' group)."""
        if (turn.shopkeeper is None or reply.replying_to is None or not reply.text
                or not ({Role.COACH, Role.ADMIN} & await self._roles(turn))):
            return None
        if chat is None:
            address = await shopkeepers.address_of(turn.tx, shopkeeper_id=turn.shopkeeper.id)
            if address is None:
                return None
            chat = address[1]
        number = await tickets.replied_to(turn.tx, channel=turn.channel, chat=chat,
                                          message_id=reply.replying_to)
        ticket = await tickets.get(turn.tx, ticket_id=number) if number is not None else None
        if ticket is None:
            return None
        return await self._answer(turn, ticket, reply.text)

    async def _answer(self, turn: Turn, ticket: TicketRecord, text: str) -> list[Outbound]:
        say = self.texts.get
        if ticket.coach_id != self._me(turn):
            return [Outbound(say(turn.lang, "tk_not_yours", id=ticket.id))]
        text = text.strip()[:3500]
        await tickets.add_message(turn.tx, ticket=ticket, text=text, from_coach=True,
                                  now=self.clock())
        await self._tell_shopkeeper(turn, ticket, "tk_from_coach",
                                    coach=ticket.coach_name or "", text=text)
        return [Outbound(say(turn.lang, "tk_replied", id=ticket.id), notice=True)]

    async def close(self, turn: Turn, argument: str) -> list[Outbound]:
        """``/close N``: the conversation ends; the shopkeeper is told kindly."""
        say = self.texts.get
        ticket = await self._ticket(turn, argument.strip())
        if ticket is None:
            return [Outbound(say(turn.lang, "tk_close_usage"))]
        if ticket.coach_id not in (None, self._me(turn)) and Role.ADMIN not in turn.roles:
            return [Outbound(say(turn.lang, "tk_not_yours", id=ticket.id))]
        if not await tickets.close(turn.tx, ticket_id=ticket.id, now=self.clock()):
            return [Outbound(say(turn.lang, "tk_closed_already", id=ticket.id))]
        await self._tell_shopkeeper(turn, ticket, "tk_coach_closed",
                                    coach=ticket.coach_name or say("nl", "tk_a_coach"))
        return [Outbound(say(turn.lang, "tk_closed", id=ticket.id))]

    async def in_group(self, turn: Turn, inbound: Inbound, *,
                       coach: bool) -> list[Outbound]:
        """Something done in a group. In the coaches' group a coach may claim, answer (a
        reply to a ticket's message, or ``/reply``), close and list tickets; anyone else
        pressing "I'll take it" is told kindly it is for coaches. The rest, and every other
        group, is ignored: a group is no place for the shopkeeper's conversation."""
        if self.group != (inbound.channel, inbound.group):
            return []
        reply = inbound.reply
        if reply is not None and reply.ref == CLAIM_REF:
            if not coach:
                return [Outbound(self.texts.get(turn.lang, "tk_only_coaches"), notice=True)]
            return await self.claim(turn, reply.choice or "")
        if not coach:
            return []
        if inbound.command == "reply":
            return await self.answer(turn, inbound.argument)
        if inbound.command == "close":
            return await self.close(turn, inbound.argument)
        if inbound.command == "tickets":
            return await self.listing(turn)
        if reply is not None:
            return await self.answer_reply(turn, reply, chat=inbound.group) or []
        return []

    # -- small things -------------------------------------------------------------------

    async def _tell_coaches(self, turn: Turn, ticket: TicketRecord) -> None:
        say = self.texts.get

        def request(lang: str, summary: str) -> tuple[str, tuple[Button, ...]]:
            return (say(lang, "tk_new", id=ticket.id, profile=summary,
                        question=_short(ticket.question, SHOWN)),
                    (Button(f"claim.{ticket.id}", say(lang, "tk_claim")),))

        if self.group is not None:
            summary = await self._summary(turn, ticket.shopkeeper_id, GROUP_LANGUAGE)
            await self._to_group(turn, ticket, *request(GROUP_LANGUAGE, summary))
            return
        for coach in await self._coaches(turn):
            summary = await self._summary(turn, ticket.shopkeeper_id, coach.language)
            text, buttons = request(coach.language, summary)
            await self._send(turn, coach.shopkeeper_id, coach.channel, coach.external_id, text,
                             coach.language, buttons=buttons, ticket=ticket.id)

    async def _relay(self, turn: Turn, ticket: TicketRecord, text: str) -> None:
        """A shopkeeper's message to the owner, or while nobody took the ticket to the
        group (or every coach)."""
        shop = await self._shop(turn, ticket.shopkeeper_id)

        def relayed(lang: str) -> str:
            return self.texts.get(lang, "tk_relayed", id=ticket.id, shop=shop,
                                  text=_short(text, 3500))

        if self.group is not None and ticket.coach_id is None:
            await self._to_group(turn, ticket, relayed(GROUP_LANGUAGE))
            return
        for coach in await self._coaches(turn):
            if ticket.coach_id in (None, coach.shopkeeper_id):
                await self._send(turn, coach.shopkeeper_id, coach.channel, coach.external_id,
                                 relayed(coach.language), coach.language, ticket=ticket.id)

    async def _to_group(self, turn: Turn, ticket: TicketRecord, text: str,
                        buttons: tuple[Button, ...] = ()) -> None:
        """A message about ``ticket`` to the coaches' group. The row is the shopkeeper's:
        it is about them, and goes when they are erased (and a row of nobody's is
        deleted once sent, with its message id)."""
        assert self.group is not None
        channel, chat = self.group
        await self._send(turn, ticket.shopkeeper_id, channel, chat, text, GROUP_LANGUAGE,
                         buttons=buttons, ticket=ticket.id)

    async def _tell_shopkeeper(self, turn: Turn, ticket: TicketRecord, key: str,
                               **values: str) -> None:
        address = await shopkeepers.address_of(turn.tx, shopkeeper_id=ticket.shopkeeper_id)
        if address is not None:
            channel, external_id, lang = address
            await self._send(turn, ticket.shopkeeper_id, channel, external_id,
                             self.texts.get(lang, key, **values), lang)

    async def _send(self, turn: Turn, person: int | None, channel: str, external_id: str,
                    text: str, lang: str, buttons: tuple[Button, ...] = (),
                    ticket: int | None = None) -> None:
        """Queue a message; with ``ticket``, a reply to it will answer that ticket."""
        message = Outbound(text, buttons, ref=CLAIM_REF if buttons else None)
        ids = await outbox.record(turn.tx, shopkeeper_id=person, channel=channel,
                                  external_id=external_id, payloads=[payload(message, lang)])
        if ticket is not None:
            await tickets.posted(turn.tx, ticket_id=ticket, outbox_ids=list(ids))
        if self._wake not in turn.afterwards:
            turn.afterwards.append(self._wake)

    async def _wake(self) -> None:
        self.sender.wake()

    @staticmethod
    async def _roles(turn: Turn) -> frozenset[Role]:
        if not turn.roles and turn.shopkeeper is not None:  # a reply: roles not read yet
            turn.roles = await roles.of(turn.tx, shopkeeper_id=turn.shopkeeper.id)
        return turn.roles

    async def _coaches(self, turn: Turn) -> list[roles.Holder]:
        """Who hears about tickets: the coaches, or the admins while there are none."""
        return (await roles.holders(turn.tx, role=Role.COACH)
                or await roles.holders(turn.tx, role=Role.ADMIN))

    async def _summary(self, turn: Turn, shopkeeper_id: int, lang: str) -> str:
        """Shop, kind, municipality, latest scores and focus, for the coach."""
        say = self.texts.get
        shop = await tickets.shop_of(turn.tx, shopkeeper_id=shopkeeper_id)
        kind = self.labels.shop_types.get(shop.shop_type or "", {}).get(lang, "?")
        lines = [say(lang, "tk_profile", shop=shop.name or f"#{shopkeeper_id}", kind=kind,
                     municipality=shop.municipality or "?")]
        latest = await runs.latest_result(turn.tx, shopkeeper_id=shopkeeper_id)
        if latest is not None:
            names = {t: n.get(lang, t) for t, n in self.labels.themes.items()}
            lines.append(" · ".join(f"{names.get(t, t)} {s}" for t, s in latest.scores.items()))
            if latest.focus:
                lines.append(say(lang, "tk_profile_focus",
                                 themes=", ".join(names.get(t, t) for t in latest.focus)))
        return "\n".join(lines)

    async def _shop(self, turn: Turn, shopkeeper_id: int) -> str:
        shop = await tickets.shop_of(turn.tx, shopkeeper_id=shopkeeper_id)
        return shop.name or f"#{shopkeeper_id}"

    async def _ticket(self, turn: Turn, number: str) -> TicketRecord | None:
        return (await tickets.get(turn.tx, ticket_id=int(number))
                if number.isdigit() else None)

    @staticmethod
    def _me(turn: Turn) -> int:
        assert turn.shopkeeper is not None
        return turn.shopkeeper.id


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"
