"""``/dashboard`` in a coach's or admin's chat: a one-time login link to the dashboard.

The link is valid for :data:`storage.dashboard.LOGIN_VALID` and works once; the chat is
where the person already proved who they are, so no password is needed. Someone without a
role never gets here: the dispatcher answers them as if the command did not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flows.messages import Outbound
from flows.texts import Texts
from handlers.turn import Turn
from storage import dashboard
from storage.tables import utcnow


class DashboardLink:
    """Makes the link.

    Args:
        texts: What the chat says.
        public_url: Where browsers reach the bot's web server (``https://coach.example.be``);
            the link is ``<public_url>/dashboard/login/<token>``.
        clock: The current time (tests move it).
    """

    COMMAND = "dashboard"

    def __init__(self, texts: Texts, public_url: str, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.texts = texts
        self.public_url = public_url.rstrip("/")
        self.clock = clock

    async def command(self, turn: Turn) -> list[Outbound]:
        assert turn.shopkeeper is not None
        token = await dashboard.create_login(turn.tx, shopkeeper_id=turn.shopkeeper.id,
                                             now=self.clock())
        minutes = int(dashboard.LOGIN_VALID.total_seconds() // 60)
        return [Outbound(self.texts.get(turn.lang, "dash_link", minutes=minutes,
                                        link=f"{self.public_url}/dashboard/login/{token}"))]
