"""Run the bot on Telegram: long polling by default, a webhook when a public URL is set."""

from __future__ import annotations

import asyncio
import logging
import signal
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Bot, Update

from bot import logs
from bot.app import App, build
from bot.config import Settings
from bot.delivery.limiter import RateLimiter
from bot.telegram.channel import TelegramChannel
from bot.telegram.polling import Poller
from bot.telegram.request import AiohttpRequest
from bot.telegram.updates import CHANNEL, Reader
from bot.telegram.webhook import webhook_app

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
               request=AiohttpRequest(connection_pool_size=64))


class TelegramBot:
    """Start and stop everything Telegram needs, in order. Usable as ``async with``.

    Args:
        settings: Token, URLs, rates.
        app: The built app; its background work is started here too.
        replace_webhook: In polling mode, delete a webhook that is set (otherwise refuse:
            another deployment may be using it).
    """

    def __init__(self, settings: Settings, app: App, *, replace_webhook: bool = False) -> None:
        self.settings = settings
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
        self._site: web.AppRunner | None = None

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
        assert self.settings.webhook_secret is not None
        host, _, port = self.settings.webhook_listen.rpartition(":")
        path = urlsplit(self.settings.webhook_url).path or "/telegram"
        self._site = web.AppRunner(webhook_app(self.app.inbox.receive,
                                               self.settings.webhook_secret, path))
        await self._site.setup()
        await web.TCPSite(self._site, host or "127.0.0.1", int(port)).start()
        await self.bot.set_webhook(self.settings.webhook_url,
                                   secret_token=self.settings.webhook_secret,
                                   allowed_updates=[str(u) for u in ALLOWED_UPDATES])

    async def stop(self) -> None:
        """Stop receiving; the app's close finishes what was received and sends the rest."""
        await self.poller.stop()
        if self._site is not None:
            await self._site.cleanup()
            self._site = None

    async def __aenter__(self) -> TelegramBot:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def run_telegram(settings: Settings, *, replace_webhook: bool = False) -> int:
    """Serve until SIGINT or SIGTERM."""

    async def serve() -> int:
        app = await build(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            async with TelegramBot(settings, app, replace_webhook=replace_webhook):
                await stop.wait()
        except WebhookInUse as exc:
            log.error("%s", exc)
            return 2
        finally:
            await app.close()
        return 0

    return asyncio.run(serve())
