"""Run the bot on WhatsApp: the webhook on the shared web server, the Cloud API for sending."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bot import logs
from bot.app import App
from bot.delivery.limiter import RateLimiter
from bot.web import WebServer
from bot.whatsapp.channel import WhatsAppChannel
from bot.whatsapp.graph import Graph
from bot.whatsapp.settings import WhatsAppSettings
from bot.whatsapp.updates import CHANNEL, Reader
from bot.whatsapp.webhook import PREFIX, WebhookRoutes
from storage.tables import utcnow

log = logging.getLogger(__name__)

#: Messages the overall rate lets through at once (see RateLimiter).
OVERALL_BURST = 10


class WhatsAppBot:
    """Start and stop everything WhatsApp needs. Usable as ``async with``.

    Args:
        settings: ``[whatsapp]`` with its secrets.
        app: The built app; its background work is started here too.
        web: The process's web server; the webhook is mounted on it here, and the caller
            starts it after every part is mounted.
        clock: The current time for the window and the tier (tests move it).
    """

    def __init__(self, settings: WhatsAppSettings, app: App, web: WebServer, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        if not settings.configured:
            raise ValueError("WhatsApp needs WHATSAPP_ACCESS_TOKEN, WHATSAPP_APP_SECRET, "
                             "WHATSAPP_VERIFY_TOKEN and WHATSAPP_PHONE_NUMBER_ID")
        assert settings.access_token and settings.app_secret and settings.verify_token
        logs.hide(settings.access_token, settings.app_secret, settings.verify_token)
        self.settings = settings
        self.app = app
        self.graph = Graph(settings.api_base_url, settings.phone_number_id,
                           settings.access_token)
        self.channel = WhatsAppChannel(self.graph, app.texts, settings, app.db, clock=clock)
        # Replies are not slowed per person (a conversation is quick); the pair rate for
        # bulk messages is the channel's.
        self.limiter = RateLimiter(rate=settings.rate, burst=OVERALL_BURST, chat_rate=1e6,
                                   chat_burst=1000)
        self.routes = WebhookRoutes(app.inbox, app.db, self.channel,
                                    app_secret=settings.app_secret,
                                    verify_token=settings.verify_token,
                                    max_body=settings.max_body, wake=app.sender.wake)
        web.mount(PREFIX, self.routes.app)

    async def start(self) -> None:
        self.app.closers.append(self.graph.close)  # after the sender's last sends
        self.app.sender.add_channel(CHANNEL, self.channel, self.limiter)
        self.app.inbox.add_reader(CHANNEL, Reader(self.app.texts))
        await self.app.start()  # updates a crash left stored are handled first
        log.info("serving WhatsApp number %s (webhook %s/webhook)",
                 self.settings.phone_number_id, PREFIX)

    async def stop(self) -> None:
        """Nothing to stop here: the web server stops receiving, the app sends the rest."""

    async def __aenter__(self) -> WhatsAppBot:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
