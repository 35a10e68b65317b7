"""Coach broadcasts through the real Telegram channel when the platform misbehaves: 429s,
5xx, blocked users, the shipped rate limit, a cancel half-way, and a SIGKILL of the bot.

The bot is python-telegram-bot over HTTP against the loopback emulator; the emulator here
also records when each call arrived and each message was stored (``time.monotonic``) and
when a 429 was answered, so windows can be checked from what the platform saw.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from telegram_emulator import BotAPIEmulator

from bot.app import App, build
from bot.config import Settings
from bot.telegram import TelegramBot
from flows.audience import Segment
from flows.rich_text import parse
from handlers.broadcasts import Broadcasts
from storage import broadcasts, shopkeepers
from storage.broadcasts import Counts
from storage.tables import OutboxMessage, Shopkeeper, utcnow

FIRST_CHAT = 7_000_000


class TimedEmulator(BotAPIEmulator):
    """The emulator, timing what it sees: ``arrivals`` (when each call came in, its
    method), a monotonic ``at`` on every stored message, and ``told`` (when each 429 was
    answered, and its retry_after)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[tuple[float, str]] = []
        self.told: list[tuple[float, float]] = []

    async def _api(self, request: web.Request, token: str, method: str) -> web.StreamResponse:
        self.arrivals.append((time.monotonic(), method.lower()))
        response: web.StreamResponse = await super()._api(request, token, method)
        return response

    def _store(self, chat: Any, record: dict[str, Any]) -> dict[str, Any]:
        record["at"] = time.monotonic()
        message: dict[str, Any] = super()._store(chat, record)
        return message

    def _error(self, request: web.Request, method: str, status: int, description: str,
               parameters: dict[str, Any] | None = None, *,
               injected: bool = False) -> web.Response:
        if status == 429:
            self.told.append((time.monotonic(), float((parameters or {})["retry_after"])))
        return super()._error(request, method, status, description, parameters,
                              injected=injected)

    def block_silently(self, chat_id: int) -> None:
        """The user blocked the bot, but the bot has not heard of it (its my_chat_member
        update got lost): the next send to them answers 403 "bot was blocked"."""
        self._chats[chat_id].blocked = True

    def texts_to(self, chat_id: int, fragment: str) -> int:
        """How often a message containing ``fragment`` was sent to ``chat_id``."""
        return sum(1 for r in self.sent if r["chat_id"] == chat_id
                   and r["method"] == "sendMessage" and fragment in (r["text"] or ""))


@pytest.fixture
async def emulator() -> AsyncIterator[TimedEmulator]:
    async with TimedEmulator() as emu:
        yield emu
        refused = [e for e in emu.errors if not e.get("injected")
                   and "blocked" not in e["description"]]
        assert refused == [], "the emulator refused calls that Telegram would refuse too"


def on_telegram(settings: Settings, emu: BotAPIEmulator, **extra: Any) -> Settings:
    return replace(settings, telegram_token=emu.token, telegram_api_base_url=emu.base_url,
                   **extra)


#: Telegram's own limits as shipped (config.toml), instead of conftest's lifted ones.
SHIPPED = {"telegram_rate": 25.0, "chat_rate": 1.0, "chat_burst": 3}


async def seed(app: App, emu: BotAPIEmulator, chats: Iterable[int], **values: Any) -> dict[
        int, int]:
    """Consented Telegram shopkeepers the emulator knows (as if each had written before),
    in one transaction; returns their ids by chat."""
    ids = {}
    async with app.db.transaction() as tx:
        for chat in chats:
            emu.register_chat(chat)
            found, _ = await shopkeepers.find_or_create(tx, channel="telegram",
                                                        external_id=str(chat), language="nl")
            await shopkeepers.update(tx, shopkeeper=found, municipality="Kortrijk",
                                     shop_type="food", consent_at=utcnow(), **values)
            ids[chat] = found.id
    return ids


async def polled(condition: Callable[[], Any], seconds: float = 20) -> None:
    """Wait for a state the database holds (no event to wait on): checked every 20 ms."""
    async with asyncio.timeout(seconds):
        while not await condition():  # noqa: ASYNC110  (no event to wait on)
            await asyncio.sleep(0.02)


async def final(app: App, broadcast_id: int) -> Counts:
    """Wait until every row of the broadcast is final; its counts."""
    counts = Counts()

    async def done() -> bool:
        nonlocal counts
        await app.sender.marks.flush()  # "sent" is written in batches
        counts = await app.broadcasts.counts(broadcast_id)
        return counts.total > 0 and counts.queued == 0

    await polled(done)
    return counts


async def broadcast(app: App, text: str) -> int:
    made = await app.broadcasts.create(texts={"nl": parse(text)}, segment=Segment(),
                                       urgent=True, via="test")
    return made.id


async def test_429_5xx_and_a_blocked_user_every_recipient_ends_final(
        app: App, settings: Settings, emulator: TimedEmulator) -> None:
    chats = range(FIRST_CHAT, FIRST_CHAT + 40)
    await seed(app, emulator, chats)
    blocked = FIRST_CHAT + 17
    emulator.block_silently(blocked)
    emulator.fail_next("sendMessage", status=429, retry_after=1)
    emulator.fail_next("sendMessage", status=502, description="Bad Gateway")
    async with TelegramBot(on_telegram(settings, emulator, **SHIPPED), app):
        made = await broadcast(app, "<b>Wegenwerken</b> maandag")
        assert await app.broadcasts.tick() == 40
        counts = await final(app, made)
        await app.sender.settled()

    assert counts == Counts(sent=39, unreachable=1), counts
    assert sorted(e["status"] for e in emulator.errors) == [403, 429, 502]
    for chat in chats:
        assert emulator.texts_to(chat, "Wegenwerken maandag") == (chat != blocked), chat
    # Nothing reached Telegram inside the retry_after window once the 429 was answered
    # (a call already on its way when the answer came back may land just after it).
    [(told, retry_after)] = emulator.told
    inside = [(round(at - told, 3), method) for at, method in emulator.arrivals
              if told + 0.1 < at < told + retry_after]
    assert inside == []
    assert any(r["at"] >= told + retry_after for r in emulator.sent)  # and it went on
    async with app.db.session() as session:
        person = (await session.execute(sa.select(Shopkeeper).join_from(
            Shopkeeper, OutboxMessage, OutboxMessage.shopkeeper_id == Shopkeeper.id).where(
            OutboxMessage.external_id == str(blocked)))).scalar_one()
        rows = Counter((await session.execute(sa.select(OutboxMessage.status).where(
            OutboxMessage.broadcast_id == made))).scalars())
    assert person.unreachable_since is not None and person.opted_out_at is None
    assert rows == {"sent": 39, "failed": 1}


def busiest_second(times: list[float]) -> int:
    """The most timestamps in any window of one second."""
    times = sorted(times)
    start, most = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


async def test_the_shipped_rate_keeps_every_second_under_telegrams_limit(
        app: App, settings: Settings, emulator: TimedEmulator) -> None:
    chats = range(FIRST_CHAT, FIRST_CHAT + 60)
    await seed(app, emulator, chats)
    async with TelegramBot(on_telegram(settings, emulator, **SHIPPED), app):
        made = await broadcast(app, "Koopzondag")
        started = time.monotonic()
        assert await app.broadcasts.tick() == 60
        async with asyncio.timeout(10):
            await emulator.wait_for_sent(60)
        took = time.monotonic() - started
        counts = await final(app, made)
    assert counts == Counts(sent=60)
    times = [r["at"] for r in emulator.sent]
    assert busiest_second(times) <= 30, busiest_second(times)
    assert took >= (60 - 30) / 25  # it was paced, not let through at once
    assert emulator.errors == []


async def test_a_cancel_half_way_stops_what_has_not_gone_out(
        app: App, settings: Settings, emulator: TimedEmulator) -> None:
    chats = range(FIRST_CHAT, FIRST_CHAT + 60)
    await seed(app, emulator, chats)
    async with TelegramBot(on_telegram(settings, emulator, **{**SHIPPED, "telegram_rate": 20.0}),
                           app):
        made = await broadcast(app, "Braderie gaat niet door")
        assert await app.broadcasts.tick() == 60
        async with asyncio.timeout(10):
            await emulator.wait_for_sent(10)
        at_cancel = len(emulator.sent)
        assert await app.broadcasts.cancel(made)
        counts = await final(app, made)
        await app.sender.settled()
        after = len(emulator.sent)
        await app.sender.poll()  # nothing is left to send
        await app.broadcasts.tick()
        await app.sender.settled()
        assert len(emulator.sent) == after
        async with app.db.transaction() as tx:
            record = await broadcasts.get(tx, broadcast_id=made)
    assert record is not None and record.status == "cancelled"
    assert counts.sent == after and counts.uncertain == counts.failed == 0
    assert counts.sent + counts.cancelled == 60
    # Only what was past the rate limiter (its burst of 4) when the cancel came goes out.
    assert after <= at_cancel + 4, (at_cancel, after)


async def test_blocked_and_opted_out_people_are_never_included(
        app: App, settings: Settings, emulator: TimedEmulator) -> None:
    chats = range(FIRST_CHAT, FIRST_CHAT + 5)
    ids = await seed(app, emulator, chats)
    blocked, stopped = FIRST_CHAT + 1, FIRST_CHAT + 3
    async with TelegramBot(on_telegram(settings, emulator), app):
        emulator.user_blocks_bot(blocked)  # the bot hears of it: my_chat_member
        emulator.user_sends_text(stopped, "/stop")

        async def heard() -> bool:
            async with app.db.transaction() as tx:
                people = {c: await shopkeepers.find_by_identity(
                    tx, channel="telegram", external_id=str(c)) for c in (blocked, stopped)}
            return (people[blocked] is not None and people[blocked].unreachable_since
                    is not None and people[stopped] is not None
                    and people[stopped].opted_out_at is not None)

        await polled(heard)
        made = await broadcast(app, "Nieuwe parkeerregels")
        assert await app.broadcasts.tick() == 3
        counts = await final(app, made)
    assert counts == Counts(sent=3)
    assert {c for c in chats if emulator.texts_to(c, "parkeerregels")} == set(chats) - {
        blocked, stopped}
    assert emulator.errors == []  # nobody blocked was even tried
    reached = {c.shopkeeper_id for c in await app.broadcasts.audience(Segment())}
    assert reached == set(ids.values()) - {ids[blocked], ids[stopped]}


async def test_sigkill_mid_broadcast_sends_nobody_anything_twice(tmp_path: Path) -> None:
    from test_crash import start_bot

    database = tmp_path / "kiss.sqlite3"
    people = 300
    chats = range(FIRST_CHAT, FIRST_CHAT + people)
    text = "Stormwaarschuwing: zet je terras binnen"
    async with TimedEmulator() as emu:
        seeding = await build(Settings(database_url=f"sqlite+aiosqlite:///{database}",
                                       charts_dir=tmp_path / "charts",
                                       telegram_api_base_url="http://127.0.0.1:9/bot",
                                       log_level="WARNING"))
        try:
            await seed(seeding, emu, chats)
            made = await broadcast(seeding, text)

            class Asleep:
                def wake(self) -> None:
                    """No sender here: the bot process delivers."""

            quiet = Broadcasts(seeding.db, seeding.texts, seeding.broadcasts.places,
                               seeding.settings.schedule.hours, Asleep())
            assert await quiet.tick() == people
        finally:
            await seeding.close()

        bot = await start_bot(emu, database)
        try:
            async with asyncio.timeout(60):
                await emu.wait_for_sent(100)
            bot.send_signal(signal.SIGKILL)
            await bot.wait()
            killed_at = len(emu.sent)
            assert killed_at < people, "it was killed mid-broadcast"
            bot = await start_bot(emu, database)

            def unfinished() -> int:
                with sqlite3.connect(database) as db:
                    return int(db.execute(
                        "SELECT count(*) FROM outbox WHERE broadcast_id = ? AND status IN "
                        "('queued', 'claimed', 'sending', 'errored')", (made,)).fetchone()[0])

            async def all_final() -> bool:
                return unfinished() == 0

            await polled(all_final, 60)
        finally:
            if bot.returncode is None:
                bot.send_signal(signal.SIGTERM)
                await bot.wait()

    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT external_id, status FROM outbox WHERE broadcast_id = ?",
                          (made,)).fetchall()
    statuses = Counter(status for _, status in rows)
    assert len(rows) == people and set(statuses) <= {"sent", "uncertain"}, statuses
    # Before the kill: what arrived. "sent" is marked in batches off the sending path, so
    # a message that arrived just before the kill may be left "uncertain" too; but an
    # uncertain row that never arrived was on the wire (at most the sender's concurrency),
    # and the restarted bot sent no uncertain row again.
    before_kill = {r["chat_id"] for r in emu.sent[:killed_at]}
    uncertain = {int(external_id) for external_id, status in rows if status == "uncertain"}
    never_arrived = {c for c in uncertain if not emu.texts_to(c, "Stormwaarschuwing")}
    assert len(never_arrived) <= 64, len(never_arrived)
    assert uncertain - never_arrived <= before_kill
    # Bulk rows go out in waves, each marked sent before the next is marked sending: at the
    # kill at most the sender's concurrency (64) were sending, arrived or not.
    assert len(uncertain) <= 64, len(uncertain)
    for external_id, status in rows:
        copies = emu.texts_to(int(external_id), "Stormwaarschuwing")
        if status == "sent":
            assert copies == 1, (external_id, status, copies)
        else:
            assert copies <= 1, (external_id, status, copies)
    assert emu.duplicates() == []
    assert [e for e in emu.errors if not e.get("injected")] == []
