"""Run the bot on Telegram: long polling by default, a webhook when a public URL is set."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Update
from telegram.ext import Application, ApplicationBuilder

from bot.app import App, build
from bot.config import Settings
from bot.telegram.channel import TelegramChannel
from bot.telegram.request import AiohttpRequest
from bot.telegram.webhook import webhook_app

log = logging.getLogger(__name__)

#: Seconds a getUpdates call waits for news before Telegram answers empty.
POLL_TIMEOUT = 30
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY, Update.MY_CHAT_MEMBER]


PTBApplication = Application[Any, Any, Any, Any, Any, Any]


def make_application(settings: Settings) -> PTBApplication:
    """A python-telegram-bot application on the aiohttp transport."""
    assert settings.telegram_token is not None
    return (
        ApplicationBuilder()
        .token(settings.telegram_token)
        .base_url(settings.telegram_api_base_url)
        .request(AiohttpRequest(connection_pool_size=64))
        .get_updates_request(AiohttpRequest(connection_pool_size=1,
                                            read_timeout=POLL_TIMEOUT + 10))
        .concurrent_updates(settings.concurrent_updates)
        .build()
    )


class TelegramBot:
    """Start and stop everything Telegram needs, in order. Usable as ``async with``."""

    def __init__(self, settings: Settings, app: App) -> None:
        self.settings = settings
        self.app = app
        self.application = make_application(settings)
        self.channel = TelegramChannel(app, self.application, settings.admin_chat_id)
        self._site: web.AppRunner | None = None

    async def start(self) -> None:
        await self.application.initialize()
        await self.channel.set_commands()
        await self.application.start()
        if self.settings.webhook_url:
            await self._start_webhook()
        else:
            await self.application.bot.delete_webhook()
            assert self.application.updater is not None
            await self.application.updater.start_polling(
                poll_interval=0, timeout=POLL_TIMEOUT, allowed_updates=ALLOWED_UPDATES)
        log.info("serving Telegram as @%s (%s)", self.application.bot.username,
                 "webhook" if self.settings.webhook_url else "long polling")

    async def _start_webhook(self) -> None:
        assert self.settings.webhook_secret is not None
        host, _, port = self.settings.webhook_listen.rpartition(":")
        path = urlsplit(self.settings.webhook_url).path or "/telegram"
        self._site = web.AppRunner(webhook_app(self.application, self.settings.webhook_secret,
                                               path))
        await self._site.setup()
        await web.TCPSite(self._site, host or "127.0.0.1", int(port)).start()
        await self.application.bot.set_webhook(
            self.settings.webhook_url, secret_token=self.settings.webhook_secret,
            allowed_updates=ALLOWED_UPDATES)

    async def stop(self) -> None:
        if self.application.updater is not None and self.application.updater.running:
            await self.application.updater.stop()
        if self._site is not None:
            await self._site.cleanup()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    async def __aenter__(self) -> TelegramBot:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def run_telegram(settings: Settings) -> int:
    """Serve until SIGINT or SIGTERM."""

    async def serve() -> None:
        app = await build(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            async with TelegramBot(settings, app):
                await stop.wait()
        finally:
            await app.close()

    asyncio.run(serve())
    return 0
