"""Receive Telegram updates by webhook: check the secret, store the update, then answer.

Telegram sends ``X-Telegram-Bot-Api-Secret-Token`` with the secret given to ``setWebhook``;
anything without it is rejected with 401 before the body is read. The 200 goes out only
after the update is stored (Telegram sends it again on anything else), and a body that is
not a JSON object with an ``update_id`` gets 400.
"""

from __future__ import annotations

import hmac
import json
import logging

from aiohttp import web

from bot.telegram.polling import Store
from bot.telegram.updates import CHANNEL, received
from bot.web import Handler

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105  (a header name)


#: Where the bot's web server receives Telegram's updates (behind the HTTPS proxy).
WEBHOOK_PATH = "/telegram/webhook"


def webhook_handler(store: Store, secret: str) -> Handler:
    """The ``POST`` handler storing each update with ``store``."""
    expected = secret.encode("utf-8")

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8")
        if not hmac.compare_digest(given, expected):
            return web.Response(status=401, text="unauthorized")
        try:
            data = json.loads(await request.read())
        except ValueError:
            data = None
        update = received(data)
        if update is None:
            log.warning("webhook: refusing a body that is not a Telegram update")
            return web.Response(status=400, text="not an update")
        try:
            await store(CHANNEL, [update])
        except Exception:  # not stored: Telegram must send it again
            log.exception("webhook: could not store update %s", update.key)
            return web.Response(status=500, text="try again")
        return web.Response(text="ok")

    return receive
