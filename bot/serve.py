"""Serve the bot on every configured channel from one process, until SIGINT or SIGTERM.

Each channel is built first (so it can mount its webhook on the shared web server), then
started; the web server starts last, when everything is mounted. Stopping goes the other
way: no more receiving, then the app finishes what it received and sends the rest.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import AsyncExitStack
from typing import Protocol

from bot.app import App, build
from bot.config import Settings
from bot.web import WebServer

log = logging.getLogger(__name__)


class Channel(Protocol):
    """A running channel: receives updates into the app's inbox, sends from its outbox."""

    async def __aenter__(self) -> object: ...

    async def __aexit__(self, *exc: object) -> None: ...


def configured(settings: Settings) -> list[str]:
    """The channels the settings ask for, in the order they start."""
    names = []
    if settings.telegram_token:
        names.append("telegram")
    if settings.whatsapp.configured:
        names.append("whatsapp")
    return names


def channels(settings: Settings, app: App, web: WebServer, *,
             replace_webhook: bool = False) -> list[Channel]:
    """Build each configured channel, mounting its routes on ``web``."""
    built: list[Channel] = []
    if settings.telegram_token:
        from bot.telegram import TelegramBot  # only pulled in when it is used

        built.append(TelegramBot(settings, app, replace_webhook=replace_webhook, web=web))
    if settings.whatsapp.configured:
        from bot.whatsapp.serve import WhatsAppBot

        built.append(WhatsAppBot(settings.whatsapp, app, web))
    return built


async def serve(settings: Settings, stop: asyncio.Event, *,
                replace_webhook: bool = False) -> int:
    """Serve until ``stop`` is set. Returns the process's exit code."""
    from bot.telegram import WebhookInUse

    app = await build(settings)
    web = WebServer(settings.http_listen)
    try:
        async with AsyncExitStack() as running:
            for channel in channels(settings, app, web, replace_webhook=replace_webhook):
                await running.enter_async_context(channel)
            await app.start()
            await web.start()
            running.push_async_callback(web.stop)
            await stop.wait()
    except WebhookInUse as exc:
        log.error("%s", exc)
        return 2
    finally:
        await web.stop()
        await app.close()
    return 0


def run(settings: Settings, *, replace_webhook: bool = False) -> int:
    """Serve until SIGINT or SIGTERM."""

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await serve(settings, stop, replace_webhook=replace_webhook)

    return asyncio.run(main())
