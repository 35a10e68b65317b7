"""What the emulator remembers (chats, their messages, the update queue, the webhook, files,
injected faults), and EmulatorState, the base its parts share."""

from __future__ import annotations

import asyncio
import collections
import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, web

from .rules import DEFAULT_UPDATE_TYPES


@dataclass
class StoredFile:
    """A file the bot sent, to be found again by its file_id."""

    file_id: str
    file_unique_id: str
    data: bytes
    mime_type: str | None
    filename: str | None
    size: tuple[int, int] | None = None


@dataclass
class Fault:
    """A failure fail_next injected, for the next ``times`` calls."""

    status: int
    description: str
    parameters: dict[str, Any] | None
    times: int


@dataclass
class FractionFault:
    """fail_fraction: refuse about ``fraction`` of the calls, drawn from a seeded generator so
    that the same sequence of calls meets the same refusals in every run."""

    fraction: float
    status: int
    description: str
    parameters: dict[str, Any] | None
    rng: random.Random


@dataclass
class Drop:
    """drop_next: close the connection instead of answering, ``times`` more times."""

    times: int
    processed: bool


@dataclass
class Flood:
    """flood: every send-like call (to ``chat_id``, or any chat) is refused with 429 until
    ``until`` (time.monotonic); ``told_at`` is when the first 429 was answered."""

    until: float
    chat_id: int | None
    told_at: float | None = None


@dataclass
class Pending:
    """An update waiting to be fetched or posted (``raw``: given to enqueue_raw_update)."""

    update_id: int
    update: dict[str, Any]
    raw: bool = False
    delivered: bool = False


@dataclass
class Webhook:
    """The webhook setWebhook (or set_webhook_target[s]) set.

    ``urls`` holds more than ``url`` when set_webhook_targets put a load balancer in front of
    several bot replicas: each delivery goes to the next one in turn.
    """

    url: str
    secret: str | None
    max_connections: int = 40
    allowed_updates: list[str] | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None
    urls: list[str] = field(default_factory=list)
    turn: int = 0

    def next_url(self) -> str:
        """The target of the next delivery (round-robin over ``urls``)."""
        if not self.urls:
            return self.url
        url = self.urls[self.turn % len(self.urls)]
        self.turn += 1
        return url


@dataclass
class Chat:
    """A private chat with a user, and the messages in it."""

    id: int
    first_name: str
    language_code: str | None
    blocked: bool = False
    last_message_id: int = 0
    history: dict[int, dict[str, Any]] = field(default_factory=dict)  # message_id -> record
    #: what the bot's last send said, until the user writes or presses (see duplicates())
    last_send: tuple[Any, ...] | None = None

    @property
    def obj(self) -> dict[str, Any]:
        return {"id": self.id, "first_name": self.first_name, "type": "private"}

    @property
    def user(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.language_code:
            user["language_code"] = self.language_code
        return user


class EmulatorState:
    """The state of a BotAPIEmulator, and its update queue."""

    def __init__(self, token: str = "123456:TEST-TOKEN", *,
                 bot_username: str = "kiss_coach_test_bot", strict_html: bool = True) -> None:
        bot_id, sep, secret = token.partition(":")
        if not (sep and bot_id.isdigit() and secret):
            raise ValueError(f"not a bot token: {token!r}")
        self.token = token
        self.bot_username = bot_username
        # Telegram lets a bare '&' or '>' through in HTML; strict_html refuses them, as the docs
        # demand, so that text which only works by luck (an '&copy;' shown raw) is caught.
        self.strict_html = strict_html
        name = bot_username.removesuffix("_bot").removesuffix("bot").replace("_", " ").strip()
        self.bot_user: dict[str, Any] = {
            "id": int(bot_id), "is_bot": True, "first_name": name.title() or "Bot",
            "username": bot_username,
        }
        self.port: int | None = None
        #: Seconds added to the wall clock (advance_clock): ages every message at once.
        self.clock_offset = 0.0
        #: (chat_id, message_id) of every message deleted, in order.
        self.deleted: list[tuple[int, int]] = []

        self.sent: list[dict[str, Any]] = []
        self.answered_callbacks: dict[str, dict[str, Any]] = {}
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.errors: list[dict[str, Any]] = []
        self.calls: collections.Counter[str] = collections.Counter()
        self._sends: collections.Counter[int] = collections.Counter()
        self._chat_waiters: dict[int, list[tuple[int, asyncio.Future[int]]]] = {}
        #: every update ever made, by update_id (to re-deliver one verbatim)
        self.updates: dict[int, dict[str, Any]] = {}
        self.chat_actions: list[tuple[int, str]] = []

        self._chats: dict[int, Chat] = {}
        self._queue: collections.deque[Pending] = collections.deque()
        self._next_update_id = 1
        self._allowed_updates: frozenset[str] = DEFAULT_UPDATE_TYPES
        self._callbacks: dict[str, dict[str, Any]] = {}  # id -> callback_query, oldest first
        self._callback_ids = itertools.count(4_611_686_018_427_387_904 + 1)
        self._faults: dict[str, collections.deque[Fault]] = {}
        self._fractions: dict[str, FractionFault] = {}
        self._drops: dict[str, collections.deque[Drop]] = {}
        self._floods: list[Flood] = []
        #: send-like calls that came in a flood window after its first 429 (a bot's mistake)
        self.flood_violations: list[dict[str, Any]] = []
        #: calls drop_next answered by closing the connection
        self.dropped: list[dict[str, Any]] = []
        self._duplicates: list[dict[str, Any]] = []
        #: every webhook POST: update_id, url, status (0: the connection failed)
        self.webhook_posts: list[dict[str, Any]] = []
        self._webhook_wakeup: asyncio.Event | None = None
        self._pump: asyncio.Task[None] | None = None
        self._files: dict[str, StoredFile] = {}  # file_id (every photo size too) -> file
        self._file_ids = itertools.count(1)
        #: file_path (from getFile) -> (the file, until when the emulator's clock serves it)
        self._file_paths: dict[str, tuple[StoredFile, float]] = {}
        #: every file_path downloaded, in order
        self.downloads: list[str] = []
        self._webhook: Webhook | None = None
        self._wakeup: asyncio.Event | None = None
        self._poll_waiting: asyncio.Event | None = None
        self._stored: asyncio.Event | None = None
        self._pollers = 0
        self._poll_generation = 0
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None

    def now(self) -> float:
        """The emulator's clock (Unix seconds): message dates and their age for deleting."""
        return time.time() + self.clock_offset

    def advance_clock(self, seconds: float) -> float:
        """Move the emulator's clock on by ``seconds`` (every message is that much older);
        returns the new time."""
        if seconds < 0:
            raise ValueError("the clock only moves on")
        self.clock_offset += seconds
        return self.now()

    # ---- the update queue -----------------------------------------------------------------

    def _enqueue(self, body: dict[str, Any]) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        update = {"update_id": update_id, **body}
        self.updates[update_id] = update
        if next(iter(body)) in self._allowed_updates:
            self._queue.append(Pending(update_id, update))
            self._wake()
        return update_id

    def _replace_webhook(self, webhook: Webhook | None) -> None:
        """Set or delete the webhook; a pump delivering to the old one stops."""
        if self._pump is not None:
            self._pump.cancel()
            self._pump = None
        self._webhook = webhook
        self._wake()  # a waiting getUpdates now answers 409, as Telegram's would

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()
        if self._webhook_wakeup is not None:
            self._webhook_wakeup.set()

    def _confirm(self, offset: int) -> None:
        queue = self._queue
        if offset < 0:
            while len(queue) > -offset:
                queue.popleft()
            return
        while queue and queue[0].update_id < offset and (queue[0].delivered or not queue[0].raw):
            queue.popleft()
        if queue and queue[0].update_id < offset:  # a re-delivered update not yet sent: rare
            self._queue = collections.deque(
                p for p in queue if not (p.update_id < offset and (p.delivered or not p.raw)))
