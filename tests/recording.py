"""A real channel for tests that records what the outbox sender delivers to it.

It implements the sender's channel protocol (:class:`bot.delivery.outcomes.Channel`), so a
test goes through the dispatcher, the outbox and the sender exactly as Telegram does; it can
be told to fail the next sends with any delivery outcome.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from bot.app import App, build
from bot.config import Settings
from bot.delivery.limiter import RateLimiter
from bot.delivery.outcomes import DeliveryError, Media, Pace
from bot.inbox import Interpreted
from flows.messages import Outbound, Reply
from flows.timing import BRUSSELS
from handlers.inbound import Inbound
from storage.inbox import Received

CHAT = "test"


@dataclass
class Recorder:
    """Delivered messages as (address, message, language); ``faults`` fail the next sends."""

    sent: list[tuple[str, Outbound, str]] = field(default_factory=list)
    faults: deque[DeliveryError] = field(default_factory=deque)
    attempts: int = 0

    async def send(self, to: str, message: Outbound, *, lang: str, done: int,
                   pace: Pace, media: Media | None = None) -> None:
        await pace()
        self.attempts += 1
        if self.faults:
            raise self.faults.popleft()
        self.sent.append((to, message, lang))

    def to(self, user: str) -> list[Outbound]:
        return [message for address, message, _ in self.sent if address == user]


def recorder(app: App, channel: str = CHAT) -> Recorder:
    """The app's recording channel called ``channel`` (added on first use)."""
    existing = app.sender.channels.get(channel)
    if isinstance(existing, Recorder):
        return existing
    added = Recorder()
    app.sender.add_channel(channel, added, RateLimiter(rate=1e6, burst=10_000,
                                                      chat_rate=1e6, chat_burst=10_000))
    return added


def inbound(text: str, user: str = "u1", **extra: str) -> Inbound:
    if text.startswith("/"):
        command, _, argument = text[1:].partition(" ")
        return Inbound(CHAT, user, command=command, argument=argument, **extra)  # type: ignore[arg-type]
    return Inbound(CHAT, user, reply=Reply(text=text), **extra)  # type: ignore[arg-type]


async def say(app: App, text: str, user: str = "u1", **extra: str) -> list[Outbound]:
    """Send ``text`` as ``user`` and return what was delivered to them in answer."""
    return await handle(app, inbound(text, user, **extra))


async def handle(app: App, message: Inbound) -> list[Outbound]:
    channel = recorder(app)
    before = len(channel.to(message.external_id))
    await app.dispatcher.handle(message)
    return channel.to(message.external_id)[before:]


def texts_of(messages: list[Outbound]) -> str:
    return "\n---\n".join(m.text for m in messages)


async def onboard(app: App, user: str = "u1", team: str = "2") -> list[Outbound]:
    await say(app, "/start", user)
    for answer in ("Nederlands", "ja", "Bakkerij Dewitte", "Kortrijk", "voeding"):
        await say(app, answer, user)
    return await say(app, team, user)


class Reader:
    """Reads the test channel's stored updates: ``{"user": …, "text": …}`` (a text or a
    command) or ``{"user": …, "reachable": bool}``; anything else cannot be read."""

    def interpret(self, payload: dict[str, object]) -> Interpreted | None:
        user = str(payload["user"])
        if "reachable" in payload:
            return Interpreted(Inbound(CHAT, user, reachable=bool(payload["reachable"])))
        return Interpreted(inbound(str(payload["text"]), user))


def reading(app: App) -> Recorder:
    """The recording channel, with its updates read through the app's inbox."""
    app.inbox.add_reader(CHAT, Reader())
    return recorder(app)


def update(seq: int, user: str, text: str) -> Received:
    return Received(key=str(seq), chat=user, seq=seq, payload={"user": user, "text": text})


class Clock:
    """The app's "now" (``build(settings, clock=…)``), moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A wall-clock time in Brussels, as UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=BRUSSELS).astimezone(UTC)


#: A Tuesday morning in Kortrijk, within sending hours: where scheduled tests start.
TUESDAY = local(2027, 3, 30, 10)


@pytest.fixture(name="app")
async def recorded_app(settings: Settings, clock: Clock) -> AsyncIterator[App]:
    """The ``app`` of a test module that imports this: built on the module's ``clock``,
    what it sends recorded (:func:`recorder`) rather than sent to a platform."""
    app = await build(settings, clock=clock)
    recorder(app)
    yield app
    await app.close()
