"""Commands for admins: who holds which role, and how delivery is doing."""

from __future__ import annotations

from typing import ClassVar

from flows.messages import Outbound
from flows.texts import Texts
from handlers.turn import Turn
from storage import inbox, outbox, roles
from storage.tables import InboxStatus, OutboxStatus, utcnow


class AdminDesk:
    """``/roles`` lists coaches and admins; ``/delivery`` shows the outbox and the inbox
    (what waits, what failed, what may or may not have arrived)."""

    COMMANDS: ClassVar[tuple[str, ...]] = ("roles", "delivery")

    def __init__(self, texts: Texts) -> None:
        self.texts = texts

    async def command(self, turn: Turn, command: str, argument: str) -> list[Outbound]:
        say = self.texts.get
        if command == "roles":
            granted = await roles.everyone(turn.tx)
            if not granted:
                return [Outbound(say(turn.lang, "roles_none"))]
            lines = [say(turn.lang, "roles_line", role=role.value, user=f"{channel}:{ext}",
                         by=by) for channel, ext, role, by in granted]
            return [Outbound("\n".join([say(turn.lang, "roles_title"), *lines]))]
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
