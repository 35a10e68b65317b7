"""WebhookDelivery: posting updates to the bot's webhook, to one URL or round-robin to several
(a load balancer in front of bot replicas), by hand or by a background pump.

As on Telegram, each POST carries ``X-Telegram-Bot-Api-Secret-Token``, and an update stays
pending until the webhook answers 2xx: any other answer (or a failed connection, status 0)
means it is delivered again later. Every POST is recorded in ``webhook_posts``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import ClientError, ClientSession, ClientTimeout

from .rules import LOOPBACK_HOSTS, SECRET_RE
from .state import EmulatorState, Pending, Webhook


def _chat_of(update: dict[str, Any]) -> int | None:
    """The chat an update belongs to, to keep one chat's updates in order."""
    for kind, body in update.items():
        if kind == "update_id" or not isinstance(body, dict):
            continue
        chat = body.get("chat") or (body.get("message") or {}).get("chat") or body.get("from")
        chat_id = chat.get("id") if isinstance(chat, dict) else None
        if isinstance(chat_id, int):
            return chat_id
    return None


def _check_loopback(urls: list[str]) -> None:
    """The emulator posts to this machine only (a test must never reach a real server)."""
    for url in urls:
        if urlsplit(url).hostname not in LOOPBACK_HOSTS:
            raise ValueError(f"refusing to post to {url}: not a loopback address")


def _release(tasks: set[asyncio.Task[None]], busy: set[object], chat: object,
             posting: set[int], update_id: int,
             wakeup: asyncio.Event) -> Callable[[asyncio.Task[None]], None]:
    """The done-callback of one delivery: free its chat and wake the pump."""
    def done(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        busy.discard(chat)
        posting.discard(update_id)
        wakeup.set()
    return done


class WebhookDelivery(EmulatorState):
    """The webhook side of BotAPIEmulator."""

    def set_webhook_target(self, url: str | None, secret: str | None) -> None:
        """Deliver updates by POST to ``url`` (None: back to getUpdates), as setWebhook does.

        Nothing is posted until ``deliver_pending_webhooks`` is awaited.
        """
        if url is None:
            self._replace_webhook(None)
        else:
            self.set_webhook_targets([url], secret)

    def set_webhook_targets(self, urls: Iterable[str], secret: str | None, *,
                            auto: bool = False, retry_delay: float = 0.05) -> None:
        """Deliver updates by POST to ``urls`` in turn, as a load balancer in front of
        several bot replicas would.

        Any URL may be set (as setWebhook would), but only loopback ones are posted to.
        Without ``auto``, nothing is posted until ``deliver_pending_webhooks`` is awaited.
        With ``auto``, a background pump posts each update as it is queued, up to the
        webhook's max_connections at once but one at a time per chat (so one chat's updates
        arrive in order, and its next update may go to the other replica while the first is
        still being handled); a refused update is posted again (to the next URL) after
        ``retry_delay`` seconds, and the chat's later updates wait for it.
        """
        targets = list(urls)
        if not targets:
            raise ValueError("no webhook URL given")
        if secret is not None and not SECRET_RE.fullmatch(secret):
            raise ValueError("secret token: 1-256 characters of A-Z, a-z, 0-9, _ and -")
        if auto:
            _check_loopback(targets)
        old = self._webhook
        webhook = Webhook(targets[0], secret, urls=targets)
        if old is not None:
            webhook.max_connections, webhook.allowed_updates = (old.max_connections,
                                                                old.allowed_updates)
        self._replace_webhook(webhook)
        if auto:
            self._webhook_wakeup = asyncio.Event()
            self._pump = asyncio.get_running_loop().create_task(
                self._run_pump(webhook, retry_delay))

    async def deliver_pending_webhooks(self) -> list[int]:
        """POST every pending update, in order, to the webhook; returns the HTTP statuses.

        Stops at the first answer outside 2xx (that update stays pending, as Telegram retries
        it later; with several URLs the next try goes to the next one); a connection failure
        counts as status 0.
        """
        webhook = self._webhook
        if webhook is None:
            raise RuntimeError("no webhook is set")
        if self._pump is not None:
            raise RuntimeError("the webhook is delivered automatically (auto=True)")
        try:
            _check_loopback(webhook.urls or [webhook.url])
        except ValueError as error:
            raise RuntimeError(str(error)) from None
        statuses: list[int] = []
        while self._queue and self._webhook is webhook:
            pending = self._queue[0]
            status = await self._post(webhook, pending)
            statuses.append(status)
            if not 200 <= status < 300:
                break
            if self._queue and self._queue[0] is pending:
                self._queue.popleft()
        return statuses

    def webhook_counts(self) -> dict[str, dict[int, int]]:
        """How many POSTs each URL got, by status (how the load was shared)."""
        counts: dict[str, dict[int, int]] = {}
        for post in self.webhook_posts:
            by_status = counts.setdefault(post["url"], {})
            by_status[post["status"]] = by_status.get(post["status"], 0) + 1
        return counts

    # ---- internals ------------------------------------------------------------------------

    async def _post(self, webhook: Webhook, pending: Pending) -> int:
        """POST one update to the next URL; its status (0: the connection failed)."""
        if self._session is None:
            self._session = ClientSession(timeout=ClientTimeout(total=30))
        url = webhook.next_url()
        headers = {"X-Telegram-Bot-Api-Secret-Token": webhook.secret} if webhook.secret else {}
        try:
            async with self._session.post(url, json=pending.update,
                                          headers=headers) as response:
                status = response.status
                await response.read()
        except (ClientError, TimeoutError) as error:
            status, message = 0, f"Connection failed: {error.__class__.__name__}"
        else:
            message = f"Wrong response from the webhook: {status} {response.reason}"
        self.webhook_posts.append({"update_id": pending.update_id, "url": url,
                                   "status": status})
        if not 200 <= status < 300:
            webhook.last_error_date = int(time.time())
            webhook.last_error_message = message
        return status

    async def _run_pump(self, webhook: Webhook, retry_delay: float) -> None:
        """Post pending updates as they come (see set_webhook_targets, ``auto``)."""
        assert self._webhook_wakeup is not None
        busy: set[object] = set()  # chats with an update in flight
        posting: set[int] = set()  # their update ids
        tasks: set[asyncio.Task[None]] = set()
        wakeup = self._webhook_wakeup
        try:
            while self._webhook is webhook and not self._closing:
                wakeup.clear()
                for pending in list(self._queue):
                    if len(posting) >= webhook.max_connections:
                        break
                    chat_id = _chat_of(pending.update)
                    chat = ("update", pending.update_id) if chat_id is None else chat_id
                    if pending.update_id in posting or chat in busy:
                        continue
                    busy.add(chat)
                    posting.add(pending.update_id)
                    task = asyncio.create_task(self._deliver_one(webhook, pending, retry_delay))
                    tasks.add(task)
                    task.add_done_callback(_release(tasks, busy, chat, posting,
                                                    pending.update_id, wakeup))
                await wakeup.wait()
        finally:
            for task in tasks:
                task.cancel()

    async def _deliver_one(self, webhook: Webhook, pending: Pending, retry_delay: float) -> None:
        while self._webhook is webhook and not self._closing:
            if 200 <= await self._post(webhook, pending) < 300:
                with contextlib.suppress(ValueError):
                    self._queue.remove(pending)
                return
            await asyncio.sleep(retry_delay)
