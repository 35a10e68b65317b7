"""Run the bot on Telegram: long polling by default, a webhook when a public URL is set."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from telegram import Bot, Update

from bot import logs
from bot.app import App
from bot.config import Settings
from bot.delivery.limiter import RateLimiter
from bot.telegram.channel import TelegramChannel
from bot.telegram.polling import Poller
from bot.telegram.request import AiohttpRequest
from bot.telegram.updates import CHANNEL, Reader
from bot.telegram.webhook import WEBHOOK_PATH, webhook_handler
from bot.web import WebServer

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY, Update.MY_CHAT_MEMBER]
#: Seconds between looks for command menus to set again (a role was granted or revoked).
MENU_SECONDS = 30
#: Messages the overall rate lets through at once (see RateLimiter).
OVERALL_BURST = 4


class WebhookInUse(RuntimeError):  # noqa: N818  (named for the situation it reports)
    """Polling would take over a webhook deployment that uses the same token."""


def make_bot(settings: Settings) -> Bot:
    """A python-telegram-bot ``Bot`` on the aiohttp transport."""
    assert settings.telegram_token is not None
    logs.hide(settings.telegram_token, settings.webhook_secret)
    return Bot(settings.telegram_token, base_url=settings.telegram_api_base_url,
               base_file_url=file_url(settings.telegram_api_base_url),
               request=AiohttpRequest(connection_pool_size=64))


def file_url(api_base_url: str) -> str:
    """Where the Bot API server hands out files: ``…/file/bot`` beside ``…/bot`` (for
    api.telegram.org, a local Bot API server and the tests' emulator alike)."""
    base = api_base_url.rstrip("/")
    return f"{base.removesuffix('/bot')}/file/bot"


class TelegramBot:
    """Start and stop everything Telegram needs, in order. Usable as ``async with``.

    Args:
        settings: Token, URLs, rates.
        app: The built app; its background work is started here too.
        replace_webhook: In polling mode, delete a webhook that is set (otherwise refuse:
            another deployment may be using it).
        web: The process's web server, started by the caller after every part is mounted.
            Without one, webhook mode starts its own on ``settings.http_listen``.
    """

    def __init__(self, settings: Settings, app: App, *, replace_webhook: bool = False,
                 web: WebServer | None = None) -> None:
        self.settings = settings
        self.web = web
        self._own_web: WebServer | None = None
        self.app = app
        self.replace_webhook = replace_webhook
        self.bot = make_bot(settings)
        self.channel = TelegramChannel(self.bot, app.texts)
        # A burst of 4 on top of 25/s keeps any 1-second window under Telegram's ~30, even
        # when a broadcast starts on a full bucket; a 3-message reply still goes at once.
        self.limiter = RateLimiter(rate=settings.telegram_rate, burst=OVERALL_BURST,
                                   chat_rate=settings.chat_rate, chat_burst=settings.chat_burst)
        base = f"{settings.telegram_api_base_url}{settings.telegram_token}"
        self.poller = Poller(base, app.inbox.receive, [str(u) for u in ALLOWED_UPDATES])
        if settings.webhook_url:
            self._mount(web or self._own())

    def _own(self) -> WebServer:
        self._own_web = WebServer(self.settings.http_listen)
        return self._own_web

    def _mount(self, server: WebServer) -> None:
        assert self.settings.webhook_secret is not None
        receive = webhook_handler(self.app.inbox.receive, self.settings.webhook_secret)
        server.add_post(WEBHOOK_PATH, receive)
        # Deployments that pointed the proxy at the public URL's own path keep working.
        path = urlsplit(self.settings.webhook_url).path
        if path and path != WEBHOOK_PATH:
            server.add_post(path, receive)

    async def start(self) -> None:
        await self.bot.initialize()
        self.app.dispatcher.admin.bot_username = self.bot.username  # for invite links
        self.app.closers.append(self.bot.shutdown)  # after the sender's last sends
        self.app.sender.add_channel(CHANNEL, self.channel, self.limiter)
        self.app.inbox.add_reader(CHANNEL, Reader(self.channel))
        await self.channel.set_commands()
        await self.channel.sync_menus(self.app.db)
        self.app.scheduler.add_job(self.channel.sync_menus, "interval", args=[self.app.db],
                                   seconds=MENU_SECONDS, max_instances=1, coalesce=True)
        await self.app.start()  # updates a crash left stored are handled first
        if self.settings.webhook_url:
            await self._start_webhook()
        else:
            await self._start_polling()
        log.info("serving Telegram as @%s (%s)", self.bot.username,
                 "webhook" if self.settings.webhook_url else "long polling")

    async def _start_polling(self) -> None:
        info = await self.bot.get_webhook_info()
        if info.url:
            if not self.replace_webhook:
                raise WebhookInUse(
                    f"a webhook is set for this bot ({urlsplit(info.url).netloc}): another "
                    "deployment may be serving it. Polling would take it over. Start with "
                    "--replace-webhook if that is what you want.")
            log.warning("deleting the webhook to %s (--replace-webhook)",
                        urlsplit(info.url).netloc)
            await self.bot.delete_webhook()
        self.poller.start()

    async def _start_webhook(self) -> None:
        if self._own_web is not None:
            await self._own_web.start()
        elif self.web is not None:
            await self.web.start()  # the caller's too: Telegram may post as soon as it is set
        await self.bot.set_webhook(self.settings.webhook_url,
                                   secret_token=self.settings.webhook_secret,
                                   allowed_updates=[str(u) for u in ALLOWED_UPDATES])

    async def stop(self) -> None:
        """Stop receiving; the app's close finishes what was received and sends the rest."""
        await self.poller.stop()
        if self._own_web is not None:
            await self._own_web.stop()

    async def __aenter__(self) -> TelegramBot:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
