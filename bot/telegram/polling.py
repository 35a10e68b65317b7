"""Long polling that stores every update before Telegram is told it arrived.

``getUpdates`` with ``offset`` N confirms every update below N. So the offset moves past an
update only after the inbox has committed it: a crash between fetching and storing means
Telegram sends the update again, never that it is lost. Updates are fetched as raw JSON
(not parsed by python-telegram-bot here), so one the library cannot parse is stored as
poison instead of stopping the loop for everyone.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

import aiohttp

from bot.telegram.updates import CHANNEL, received
from storage.inbox import Received

log = logging.getLogger(__name__)

#: Seconds a getUpdates call waits for news before Telegram answers empty.
POLL_TIMEOUT = 30
#: Seconds to wait after a failed getUpdates, doubling up to the last.
BACKOFF = (1, 2, 5, 10, 30)

Store = Callable[[str, list[Received]], Awaitable[None]]


class Poller:
    """Fetches updates and hands them to ``store`` (the inbox) until :meth:`stop`.

    Args:
        base_url: The Bot API URL up to and including the token (never logged).
        store: Commits updates; the next offset confirms them only after it returns.
        allowed_updates: The update kinds to ask for.
        sleep: How to wait between failed calls.
    """

    def __init__(self, base_url: str, store: Store, allowed_updates: list[str], *,
                 timeout: int = POLL_TIMEOUT,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._url = f"{base_url}/getUpdates"
        self.store = store
        self.allowed_updates = json.dumps(allowed_updates)
        self.timeout = timeout
        self.sleep = sleep
        self.offset: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout + 15, connect=10))
        self._task = asyncio.create_task(self._run(), name="telegram-polling")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self.poll_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the network, Telegram or the database: wait, retry
                delay = BACKOFF[min(failures, len(BACKOFF) - 1)]
                failures += 1
                log.warning("getUpdates failed (%s); trying again in %d s",
                            _describe(exc), delay)
                await self.sleep(delay)

    async def poll_once(self) -> int:
        """One getUpdates round: fetch, store, then (next round) confirm. Returns how many
        updates came."""
        assert self._session is not None, "start() first"
        params = {"timeout": str(self.timeout), "allowed_updates": self.allowed_updates}
        if self.offset is not None:
            params["offset"] = str(self.offset)
        async with self._session.get(self._url, params=params) as response:
            body = await response.json(content_type=None)
        if not isinstance(body, dict) or not body.get("ok"):
            description = body.get("description") if isinstance(body, dict) else None
            raise RuntimeError(f"getUpdates answered {response.status}: {description}")
        raw_updates = body.get("result") or []
        if not isinstance(raw_updates, list):
            raise RuntimeError("getUpdates answered something that is not a list")
        updates = []
        for raw in raw_updates:
            update = received(raw)
            if update is None:
                log.error("skipping something without an update_id from getUpdates: %.200r",
                          raw)
                continue
            updates.append(update)
        if updates:
            await self.store(CHANNEL, updates)
        ids = [raw["update_id"] for raw in raw_updates
               if isinstance(raw, dict) and isinstance(raw.get("update_id"), int)]
        if ids:
            self.offset = max(ids) + 1  # confirmed by the next call, now that they are stored
        return len(raw_updates)


def _describe(exc: Exception) -> str:
    """The error without the URL (which holds the token)."""
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status}"
    if isinstance(exc, aiohttp.ClientError):
        return type(exc).__name__
    return str(exc)[:200]
