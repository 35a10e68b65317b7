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
from bot.config import Settings, public_url
from bot.dashboard.site import dashboard_app
from bot.health import Health
from bot.metrics import Metrics
from bot.web import WebServer

log = logging.getLogger(__name__)


class Channel(Protocol):
    """A running channel: receives updates into the app's inbox, sends from its outbox."""

    async def __aenter__(self) -> object: ...

    async def __aexit__(self, *exc: object) -> None: ...


def wanted(settings: Settings) -> bool:
    """Whether to serve: a channel is configured, or the operator's endpoints alone are
    asked for (``KISS_OPERATOR_ENDPOINTS=always``: a process that runs only the scheduled
    work: tips, broadcasts, retention)."""
    return bool(configured(settings)) or settings.operator.endpoints == "always"


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
            built = channels(settings, app, web, replace_webhook=replace_webhook)
            needed = web.mounted  # a channel receives through it (a webhook)
            # Mounted before a channel may start the server (webhook mode starts it early).
            web.mount("/dashboard", dashboard_app(app, public_url=public_url(settings)))
            operator_endpoints(settings, app, web)
            for channel in built:
                await running.enter_async_context(channel)
            await app.start()
            await _start_web(web, needed=needed)
            running.push_async_callback(web.stop)
            await stop.wait()
    except WebhookInUse as exc:
        log.error("%s", exc)
        return 2
    finally:
        await web.stop()
        await app.close()
    return 0


async def _start_web(web: WebServer, *, needed: bool) -> None:
    """Start the web server. When it serves only the dashboard and the operator's endpoints
    (long polling), a port that cannot be had costs those, not the chats: said loudly, not
    fatal."""
    try:
        await web.start()
    except OSError as exc:
        if needed:
            raise
        log.error("the dashboard, /healthz and /metrics are not served: cannot listen on %s "
                  "(%s); set KISS_HTTP_LISTEN to a free address", web.listen,
                  exc.strerror or exc)


def operator_endpoints(settings: Settings, app: App, web: WebServer) -> Metrics | None:
    """Mount ``/healthz`` and ``/metrics`` (unless ``operator_endpoints = "no"``), and let
    the metrics watch the app's turns and sends. Returns the metrics, when mounted."""
    operator = settings.operator
    if operator.endpoints == "no":
        return None
    metrics = Metrics(app.db, timeout=operator.timeout)
    app.dispatcher.watcher = metrics
    app.sender.watcher = metrics
    health = Health(app.db, channels=lambda: app.sender.channels,
                    last_success=metrics.last_success, backlog_limit=operator.backlog_limit,
                    timeout=operator.timeout)
    web.mount("/healthz", health.routes())
    web.mount("/metrics", metrics.routes(token=operator.metrics_token,
                                         listen=settings.http_listen))
    return metrics


def run(settings: Settings, *, replace_webhook: bool = False) -> int:
    """Serve until SIGINT or SIGTERM."""

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await serve(settings, stop, replace_webhook=replace_webhook)

    return asyncio.run(main())
