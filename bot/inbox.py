"""One way in: received updates are stored first, then handled from the database.

A channel hands what the platform delivered to :meth:`Inbox.receive`, which stores it (the
platform is told it arrived only after that commit: the next polling offset, the webhook's
200) and starts handling it. Each chat's updates are handled in order, one at a time; after a
crash :meth:`Inbox.recover` picks up whatever was stored and not yet handled.

An update the channel cannot read is *poison*: stored, logged once with its id, skipped. It
never holds up anybody else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from handlers import turn_ids
from handlers.dispatcher import After, Dispatcher
from handlers.inbound import Inbound
from storage import inbox
from storage.database import Database
from storage.inbox import Received
from storage.records import InboxRecord
from storage.tables import InboxStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Interpreted:
    """What a stored update means: an inbound message, and what the channel does beside
    the answer (``after``: e.g. rewrite the question that was answered)."""

    inbound: Inbound
    after: After | None = None


class Reader(Protocol):
    """A channel's side of the inbox: what one of its stored updates means."""

    def interpret(self, payload: dict[str, Any]) -> Interpreted | None:
        """The update's meaning; None for an update the bot ignores (a group message).
        Raises when the update cannot be read (it becomes poison)."""


class Inbox:
    """Stores received updates and handles them, per chat in order, across processes.

    Args:
        db: The database.
        dispatcher: Handles each update's inbound message.
        readers: For each channel, how to read its updates.
        concurrency: Updates handled at once (different chats).
    """

    def __init__(self, db: Database, dispatcher: Dispatcher,
                 readers: Mapping[str, Reader] | None = None, concurrency: int = 256) -> None:
        self.db = db
        self.dispatcher = dispatcher
        self.readers: dict[str, Reader] = dict(readers or {})
        self._gate = asyncio.Semaphore(concurrency)
        self._draining: set[tuple[str, str]] = set()
        self._again: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def add_reader(self, channel: str, reader: Reader) -> None:
        self.readers[channel] = reader

    async def receive(self, channel: str, updates: Sequence[Received]) -> None:
        """Store updates (one transaction), then start handling the new ones. When this
        returns, the updates are safe: the platform may be told they arrived."""
        async with self.db.transaction() as tx:
            ids = await inbox.store(tx, channel=channel, updates=updates)
        for update, row_id in zip(updates, ids, strict=True):
            if row_id is None:
                continue  # a redelivery of something stored before
            if update.chat is not None:
                self.drain_soon(channel, update.chat)
            else:
                self._spawn(self._handle_alone(channel, row_id))

    def drain_soon(self, channel: str, chat: str) -> None:
        """Handle the chat's pending updates, unless that is already under way here."""
        key = (channel, chat)
        if key in self._draining:
            self._again.add(key)  # arrived while draining: look once more at the end
            return
        self._draining.add(key)
        self._spawn(self._drain(channel, chat))

    async def _drain(self, channel: str, chat: str) -> None:
        """Handle the chat's pending updates in order. Updates stored meanwhile by this
        process are picked up by one more look; another process drains its own."""
        key = (channel, chat)
        try:
            while True:
                self._again.discard(key)
                async with self.db.transaction() as tx:
                    rows = await inbox.pending_of_chat(tx, channel=channel, chat=chat)
                for row in rows:
                    async with self._gate:
                        await self.handle(row)
                if key not in self._again:
                    return
        except Exception:  # the database is away: recover() tries again later
            log.exception("could not handle the updates of %s:%s now", channel, chat)
        finally:
            self._draining.discard(key)

    async def _handle_alone(self, channel: str, row_id: int) -> None:
        async with self.db.transaction() as tx:
            row = await inbox.by_id(tx, row_id=row_id)
        if row is not None and row.status == InboxStatus.PENDING:
            async with self._gate:
                await self.handle(row)

    async def handle(self, row: InboxRecord) -> None:
        """Read one stored update and hand it to the dispatcher (which marks it done in
        the turn's own transaction). Every log line meanwhile names the update."""
        with turn_ids.turn(f"{row.channel}:{row.key}"):
            await self._handle(row)

    async def _handle(self, row: InboxRecord) -> None:
        reader = self.readers.get(row.channel)
        if reader is None:
            return  # another process serves that channel
        try:
            meaning = reader.interpret(row.payload)
        except Exception as exc:
            log.error("skipping update %s:%s, which cannot be read: %r", row.channel,
                      row.key, exc)
            async with self.db.transaction() as tx:
                await inbox.mark_poison(tx, row_id=row.id, error=f"unreadable: {exc!r}")
            return
        if meaning is None:
            async with self.db.transaction() as tx:
                await inbox.mark_done(tx, row_id=row.id)
            return
        await self.dispatcher.handle(meaning.inbound, inbox_row=row.id, after=meaning.after)

    async def recover(self) -> int:
        """Start handling every stored update not handled yet (after a crash, or when the
        database was away); returns how many chats that concerned."""
        started = 0
        for channel in self.readers:
            async with self.db.transaction() as tx:
                chats = await inbox.pending_chats(tx, channel=channel)
                alone = await inbox.pending_without_chat(tx, channel=channel)
            for chat in chats:
                if chat is not None and (channel, chat) not in self._draining:
                    self.drain_soon(channel, chat)
                    started += 1
            for row in alone:
                self._spawn(self._handle_alone(channel, row.id))
        return started

    async def idle(self) -> None:
        """Wait until everything started so far is handled (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
