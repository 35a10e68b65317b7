"""Commands for admins: who holds which role, invites to a role, how delivery is doing,
and the programme's figures (``/stats``, see :mod:`handlers.stats`) and exports
(:mod:`handlers.exports`)."""

from __future__ import annotations

from typing import ClassVar

from flows.messages import Outbound, Reply
from flows.texts import Texts
from handlers.exports import ChatExports
from handlers.stats import StatsView
from handlers.turn import Turn
from storage import inbox, invites, outbox, roles, shopkeepers
from storage.tables import InboxStatus, OutboxStatus, Role, utcnow


class AdminDesk:
    """``/roles`` lists coaches and admins; ``/invite coach|admin`` makes a one-time link to
    that role; ``/delivery`` shows the outbox and the inbox (what waits, what failed, what
    may or may not have arrived); ``/stats`` the programme's figures, k-anonymous;
    ``/export`` sends data as a file.

    ``bot_username`` (known once the bot asked Telegram's getMe) makes the invite a
    ``t.me`` link; without it the admin gets the ``/start invite_…`` text to pass on.
    """

    COMMANDS: ClassVar[tuple[str, ...]] = ("roles", "invite", "delivery", "stats", "export")

    def __init__(self, texts: Texts, bot_username: str | None = None,
                 stats: StatsView | None = None, *, exports: ChatExports) -> None:
        self.texts = texts
        self.bot_username = bot_username
        self.stats = stats or StatsView(texts)
        self.exports = exports

    async def command(self, turn: Turn, command: str, argument: str) -> list[Outbound]:
        say = self.texts.get
        if command == "roles":
            granted = await roles.everyone(turn.tx)
            if not granted:
                return [Outbound(say(turn.lang, "roles_none"))]
            lines = [say(turn.lang, "roles_line", role=role.value, user=f"{channel}:{ext}",
                         by=by) for channel, ext, role, by in granted]
            return [Outbound("\n".join([say(turn.lang, "roles_title"), *lines]))]
        if command == "invite":
            return [await self._invite(turn, argument.strip().lower())]
        if command == "stats":
            return await self.stats.command(turn)
        if command == ChatExports.COMMAND:
            return await self.exports.command(turn, argument)
        assert command == "delivery"
        sent = await outbox.status_counts(turn.tx)
        received = await inbox.counts(turn.tx)
        oldest = await outbox.oldest_due(turn.tx)
        waiting = int((utcnow() - oldest).total_seconds()) if oldest is not None else 0
        return [Outbound(say(
            turn.lang, "delivery_status",
            queued=sent.get(OutboxStatus.QUEUED, 0) + sent.get(OutboxStatus.ERRORED, 0),
            sending=sent.get(OutboxStatus.SENDING, 0) + sent.get(OutboxStatus.CLAIMED, 0),
            sent=sent.get(OutboxStatus.SENT, 0),
            failed=sent.get(OutboxStatus.FAILED, 0),
            uncertain=sent.get(OutboxStatus.UNCERTAIN, 0), oldest=max(waiting, 0),
            pending=received.get(InboxStatus.PENDING, 0),
            poison=received.get(InboxStatus.POISON, 0)))]

    @staticmethod
    def owns(ref: str) -> bool:
        """Whether a button press with ``ref`` belongs to an admin's conversation (the
        dispatcher routes those here, for admins only)."""
        return ChatExports.owns(ref)

    async def press(self, turn: Turn, reply: Reply) -> list[Outbound]:
        """A tap on one of an admin conversation's buttons (see :meth:`owns`)."""
        return await self.exports.press(turn, reply)

    async def _invite(self, turn: Turn, wanted: str) -> Outbound:
        say = self.texts.get
        if wanted not in {r.value for r in Role}:
            return Outbound(say(turn.lang, "invite_usage"))
        assert turn.shopkeeper is not None
        address = await shopkeepers.address_of(turn.tx, shopkeeper_id=turn.shopkeeper.id)
        via = f"{address[0]}:{address[1]}" if address else f"shopkeeper:{turn.shopkeeper.id}"
        code = await invites.create(turn.tx, role=Role(wanted), via=via,
                                    created_by=turn.shopkeeper.id)
        role = say(turn.lang, f"role_{wanted}")
        if self.bot_username:
            return Outbound(say(turn.lang, "invite_link", role=role,
                                link=invite_link(self.bot_username, code)))
        return Outbound(say(turn.lang, "invite_typed", role=role,
                            start=f"/start {invites.payload(code)}"))


def invite_link(bot_username: str, code: str) -> str:
    """The deep link that redeems ``code``: ``https://t.me/<bot>?start=invite_<code>``."""
    return f"https://t.me/{bot_username.removeprefix('@')}?start={invites.payload(code)}"
