"""Receive Telegram updates by webhook: check the secret, queue the update, answer at once.

Telegram sends ``X-Telegram-Bot-Api-Secret-Token`` with the secret given to ``setWebhook``;
anything without it is rejected with 401 before the body is even parsed.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from aiohttp import web
from telegram import Update
from telegram.ext import Application

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105  (a header name)
#: Telegram's updates are small; anything much larger is not from Telegram.
MAX_BODY = 1024 * 1024


def webhook_app(application: Application[Any, Any, Any, Any, Any, Any], secret: str,
                path: str = "/telegram") -> web.Application:
    """An aiohttp app with one route, ``POST path``, feeding ``application.update_queue``."""
    expected = secret.encode("utf-8")

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8")
        if not hmac.compare_digest(given, expected):
            return web.Response(status=401, text="unauthorized")
        try:
            data = json.loads(await request.read())
            update = Update.de_json(data, application.bot)
        except (ValueError, TypeError, KeyError):
            log.warning("webhook: ignoring a body that is not a Telegram update")
            return web.Response(status=400, text="not an update")
        await application.update_queue.put(update)
        return web.Response(text="ok")

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post(path, receive)
    return app
