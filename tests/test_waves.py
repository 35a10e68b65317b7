"""Bulk rows go out in waves: never more than the sender's concurrency ``sending`` at once
(what a crash can leave uncertain), and a cancel stops every row not yet in a wave."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest
import sqlalchemy as sa

from bot.app import App, build
from bot.config import Settings
from bot.delivery.limiter import RateLimiter
from bot.delivery.outcomes import Media, Pace
from flows.audience import Segment
from flows.messages import Outbound
from flows.rich_text import parse
from storage import shopkeepers
from storage.broadcasts import Counts
from storage.tables import OUTBOX, OutboxStatus, utcnow

PROBE = "probe"
CONCURRENCY = 8


class Probe:
    """A channel that, at each call, counts the rows the database holds ``sending``."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.sent: list[str] = []
        self.sending: list[int] = []
        self.before_send: Callable[[], Awaitable[None]] | None = None

    async def send(self, to: str, message: Outbound, *, lang: str, done: int, pace: Pace,
                   media: Media | None = None) -> list[str]:
        await pace()
        if self.before_send is not None:
            await self.before_send()
        async with self.app.db.transaction() as tx:
            self.sending.append((await tx.execute(
                sa.select(sa.func.count()).where(
                    OUTBOX.c.status == OutboxStatus.SENDING))).scalar_one())
        self.sent.append(to)
        return [str(len(self.sent))]


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[App]:
    built = await build(replace(settings, delivery=replace(settings.delivery,
                                                           concurrency=CONCURRENCY)))
    yield built
    await built.close()


async def probe(app: App, people: int) -> Probe:
    channel = Probe(app)
    app.sender.add_channel(PROBE, channel, RateLimiter(rate=1e6, burst=10_000,
                                                       chat_rate=1e6, chat_burst=10_000))
    async with app.db.transaction() as tx:
        for n in range(people):
            found, _ = await shopkeepers.find_or_create(tx, channel=PROBE,
                                                        external_id=f"c{n}", language="nl")
            await shopkeepers.update(tx, shopkeeper=found, consent_at=utcnow())
    return channel


async def broadcast(app: App) -> int:
    made = await app.broadcasts.create(texts={"nl": parse("Koopavond")}, segment=Segment(),
                                       urgent=True, via="test")
    return made.id


async def test_never_more_than_the_concurrency_is_sending_and_each_row_keeps_its_id(
        app: App) -> None:
    channel = await probe(app, 120)
    made = await broadcast(app)
    assert await app.broadcasts.tick() == 120
    while await app.sender.poll():
        pass
    await app.sender.settled()
    assert sorted(channel.sent) == sorted(f"c{n}" for n in range(120))
    assert 0 < max(channel.sending) <= CONCURRENCY
    assert await app.broadcasts.counts(made) == Counts(sent=120)
    async with app.db.transaction() as tx:
        ids = (await tx.execute(sa.select(OUTBOX.c.platform_ids))).scalars().all()
    assert sorted(int(i[0]) for i in ids) == list(range(1, 121))  # each its own message


async def test_a_cancel_stops_every_row_not_yet_in_a_wave(app: App) -> None:
    channel = await probe(app, 100)
    made = await broadcast(app)

    async def cancel_once() -> None:
        channel.before_send = None
        assert await app.broadcasts.cancel(made)

    channel.before_send = cancel_once
    assert await app.broadcasts.tick() == 100
    while await app.sender.poll():
        pass
    await app.sender.settled()
    counts = await app.broadcasts.counts(made)
    # What was marked sending (two waves at most) still went out; nothing else did.
    assert 1 <= counts.sent == len(channel.sent) <= CONCURRENCY
    assert counts.sent + counts.cancelled == 100 and counts.uncertain == 0
