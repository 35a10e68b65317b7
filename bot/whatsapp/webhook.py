"""Receive WhatsApp webhooks: verify the subscription, check the signature, store, answer.

``GET`` is Meta's subscription check: ``hub.mode=subscribe`` with our verify token gets the
``hub.challenge`` back. ``POST`` bodies carry ``X-Hub-Signature-256``: HMAC-SHA256 of the
raw body with the app secret, compared in constant time; a wrong or missing one gets 401
and nothing is read. A body over the sub-application's limit gets 413. The 200 goes out
after the messages are stored (Meta redelivers anything else, for days); they are handled
in the background by the inbox, which dedupes on the ``wamid``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.inbox import Inbox
from bot.whatsapp.channel import WhatsAppChannel
from bot.whatsapp.updates import CHANNEL, Webhook, parse
from storage import inbox, outbox, whatsapp
from storage.database import Database
from storage.inbox import Received
from storage.tables import OutboxKind, utcnow

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
#: Where the web server receives Meta's webhooks (the URL to give Meta, behind HTTPS).
PREFIX = "/whatsapp"
WEBHOOK_PATH = f"{PREFIX}/webhook"

def signed(body: bytes, signature: str, secret: bytes) -> bool:
    """Whether ``signature`` (``sha256=<hex>``) is the body's HMAC with the app secret."""
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature.encode(), expected.encode())


class WebhookRoutes:
    """The ``/whatsapp`` sub-application.

    Args:
        inbox: Handles what was stored (each chat's messages in order).
        db: For windows, receipts and list pages.
        channel: Told who wrote (it keeps their windows at hand).
        app_secret: Signs the posts.
        verify_token: Meta's subscription check.
        max_body: Larger posts get 413.
        wake: Called when rows were released or queued (the sender's ``wake``).
    """

    def __init__(self, inbox: Inbox, db: Database, channel: WhatsAppChannel, *,
                 app_secret: str, verify_token: str, max_body: int,
                 wake: Callable[[], None]) -> None:
        self.inbox = inbox
        self.db = db
        self.channel = channel
        self.secret = app_secret.encode()
        self.verify_token = verify_token.encode()
        self.wake = wake
        self.max_body = max_body
        self.app = web.Application(client_max_size=max_body)
        self.app.router.add_get("/webhook", self.verify)
        self.app.router.add_post("/webhook", self.receive)

    async def verify(self, request: web.Request) -> web.Response:
        query = request.query
        token = query.get("hub.verify_token", "").encode()
        if query.get("hub.mode") == "subscribe" and hmac.compare_digest(
                token, self.verify_token):
            return web.Response(text=query.get("hub.challenge", ""))
        return web.Response(status=403, text="forbidden")

    async def receive(self, request: web.Request) -> web.Response:
        """Check, store (one transaction: messages, windows, statuses), answer, handle."""
        signature = request.headers.get(SIGNATURE_HEADER)
        if signature is None:
            return web.Response(status=401, text="unsigned")
        raw = await self._body(request)
        if raw is None:
            return web.Response(status=413, text="too large")
        if not signed(raw, signature, self.secret):
            log.warning("whatsapp webhook: a post with a wrong signature was refused")
            return web.Response(status=401, text="bad signature")
        try:
            found = parse(json.loads(raw))
        except ValueError:
            found = None
        if found is None:
            return web.Response(status=400, text="not a WhatsApp notification")
        try:
            async with self.db.transaction() as tx:
                new, queued = await self._record(tx, found)
        except Exception:  # not stored: Meta must send it again
            log.exception("whatsapp webhook: could not store a notification")
            return web.Response(status=500, text="try again")
        self.channel.note_wrote(found.wrote)
        for chat in new:  # after the commit, as the inbox's own receive does
            self.inbox.drain_soon(CHANNEL, chat)
        if queued:
            self.wake()
        return web.Response(text="ok")

    async def _body(self, request: web.Request) -> bytes | None:
        """The raw body, or None when it is over the limit. (aiohttp applies the root
        application's limit to every request: a sub-application's own is checked here.)"""
        if (request.content_length or 0) > self.max_body:
            return None
        body = bytearray()
        async for chunk in request.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > self.max_body:
                return None
        return bytes(body)

    async def _record(self, tx: AsyncConnection, found: Webhook) -> tuple[list[str], int]:
        """Store the messages (a redelivered one is not stored twice), open windows and
        release what waited for them, keep statuses, queue list pages. Returns the chats
        with new messages and how many rows were queued or released. One transaction: on
        SQLite every transaction waits its turn, so the 200 waits for one, not two."""
        ids = await inbox.store(tx, channel=CHANNEL, updates=found.messages)
        new = list(dict.fromkeys(update.chat for update, row in zip(
            found.messages, ids, strict=True) if row is not None and update.chat is not None))
        now = utcnow()
        queued = 0
        if found.wrote:
            await whatsapp.wrote(tx, at=found.wrote)
            queued += await whatsapp.release(tx, external_ids=list(found.wrote), now=now)
        if found.statuses:
            await whatsapp.record_statuses(tx, statuses=found.statuses, now=now)
        for received, wamid, offset in found.pages:
            queued += await _page(tx, received, wamid, offset)
        return new, queued


async def _page(tx: AsyncConnection, received: Received, wamid: str, offset: int) -> int:
    """Queue the next page of the list ``wamid`` once (the pick is stored for the dedupe)."""
    (row_id,) = await inbox.store(tx, channel=CHANNEL, updates=[received])
    if row_id is None:
        return 0  # a redelivery
    await inbox.mark_done(tx, row_id=row_id)
    assert received.chat is not None
    source = await whatsapp.source_of(tx, external_id=received.chat, wamid=wamid)
    if source is None:
        return 0  # a list too old to find: its question is long gone
    owner, payload = source
    payload = {key: value for key, value in payload.items()
               if key not in ("notice", "press", "answered")}
    await outbox.record(tx, shopkeeper_id=owner, channel=CHANNEL, external_id=received.chat,
                        payloads=[{**payload, "wa_page": offset}], kind=OutboxKind.REPLY)
    return 1
