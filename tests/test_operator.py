"""The operator's view: /healthz, /metrics and structured logs, on the real web server with
the real python-telegram-bot against the Bot API emulator, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from telegram_emulator import BotAPIEmulator

from bot import logs
from bot.app import App
from bot.config import ConfigError, Operator, Settings
from bot.health import Health
from bot.metrics import Metrics
from bot.serve import operator_endpoints, serve, wanted
from bot.telegram import TelegramBot
from bot.web import WebServer
from handlers import turn_ids
from storage import outbox, shopkeepers
from storage.database import Database
from storage.tables import utcnow

CHAT = 5151
TOKEN = "s3cret-metrics-token"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def on_telegram(settings: Settings, emu: BotAPIEmulator) -> Settings:
    return replace(settings, telegram_token=emu.token, telegram_api_base_url=emu.base_url)


@dataclass
class Served:
    """A bot as ``bot.serve`` runs it: Telegram (long polling) and the operator's
    endpoints on one web server."""

    url: str


@pytest.fixture
async def served(app: App, settings: Settings,
                 emulator: BotAPIEmulator) -> AsyncIterator[Served]:
    web = WebServer("127.0.0.1:0")
    assert operator_endpoints(settings, app, web) is not None
    async with TelegramBot(on_telegram(settings, emulator), app, web=web):
        await web.start()
        try:
            yield Served(f"http://127.0.0.1:{web.port}")
        finally:
            await web.stop()


@pytest.fixture
async def endpoints(app: App, settings: Settings) -> AsyncIterator[str]:
    """The operator's endpoints alone, no channel (``KISS_OPERATOR_ENDPOINTS=always``)."""
    web = WebServer("127.0.0.1:0")
    operator_endpoints(settings, app, web)
    await web.start()
    try:
        yield f"http://127.0.0.1:{web.port}"
    finally:
        await web.stop()


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        return response.status, await response.text()


async def health(base: str) -> tuple[int, dict[str, Any]]:
    status, body = await get(f"{base}/healthz")
    return status, json.loads(body)


async def scrape(base: str) -> Samples:
    status, body = await get(f"{base}/metrics")
    assert status == 200, body
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 for a counter nobody has touched yet (it has no series)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` (every 20 ms, for at most 15 s) until it holds."""
    async with asyncio.timeout(15):
        while not await check():  # noqa: ASYNC110  (the figures have no event to wait on)
            await asyncio.sleep(0.02)


# -- /healthz -------------------------------------------------------------------------------


async def test_healthz_is_200_with_the_vital_signs(served: Served) -> None:
    status, report = await health(served.url)
    assert status == 200, report
    assert report["status"] == "ok" and report["problems"] == []
    assert report["database"]["reachable"] and report["database"]["at_head"]
    assert report["database"]["revision"] == report["database"]["head"] is not None
    assert report["backlog"] == {"waiting": 0, "oldest_seconds": 0.0, "limit_seconds": 300.0}
    # Telegram is served and has sent nothing yet (the menus are not messages)
    assert report["channels"] == {"telegram": {"last_success": None, "seconds_ago": None}}


async def test_healthz_names_the_last_successful_send(served: Served,
                                                      emulator: BotAPIEmulator) -> None:
    emulator.user_sends_text(CHAT, "/start")
    async with asyncio.timeout(15):
        await emulator.wait_for_sent(1, chat_id=CHAT)

    async def told() -> bool:
        return (await health(served.url))[1]["channels"]["telegram"]["last_success"] is not None

    await eventually(told)
    _, report = await health(served.url)
    assert 0 <= report["channels"]["telegram"]["seconds_ago"] < 15


async def test_healthz_is_503_while_the_database_is_gone(endpoints: str,
                                                          database_url: str) -> None:
    status, report = await health(endpoints)
    assert status == 200, report
    if database_url.startswith("sqlite"):
        # The open connection would go on writing into a file nobody can open again.
        path = Path(sa.make_url(database_url).database or "")
        path.rename(path.with_suffix(".away"))
        status, report = await health(endpoints)
        assert status == 503
        assert report["problems"] == ["database unreachable (OSError)"]
        assert report["database"]["reachable"] is False
        path.with_suffix(".away").rename(path)
    else:
        name = sa.make_url(database_url).database
        admin = sa.create_engine(sa.make_url(database_url).set(database="postgres"),
                                 isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            status, report = await health(endpoints)
            assert status == 503
            assert report["problems"] == ["database unreachable (OperationalError)"]
            # It comes back empty: reachable, but not at the newest migration.
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            status, report = await health(endpoints)
            assert status == 503
            assert report["database"]["reachable"] and report["database"]["revision"] is None
            assert "not at" in report["problems"][0]
            db = Database(database_url)
            await db.upgrade()
            await db.close()
        finally:
            admin.dispose()
    status, report = await health(endpoints)
    assert status == 200, report
    assert report["database"]["at_head"]


async def test_healthz_is_503_when_a_message_waits_too_long(app: App) -> None:
    async with app.db.transaction() as tx:
        await outbox.record(tx, shopkeeper_id=None, channel="telegram", external_id="77",
                            payloads=[{"text": "Hallo", "lang": "nl"}])
    now = utcnow()

    def checked_at(minutes: int) -> Health:
        return Health(app.db, channels=lambda: ["telegram"], last_success={},
                      backlog_limit=timedelta(minutes=5), timeout=timedelta(seconds=2),
                      clock=lambda: now + timedelta(minutes=minutes))

    healthy, report = await checked_at(4).check()
    assert healthy and report["backlog"]["waiting"] == 1
    assert 240 <= report["backlog"]["oldest_seconds"] < 250
    healthy, report = await checked_at(6).check()
    assert not healthy
    assert report["problems"] == ["1 due to be sent, the oldest waiting for 360 s"]


async def test_serve_starts_the_web_server_in_polling_mode(
        settings: Settings, emulator: BotAPIEmulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.web")
    polling = replace(on_telegram(settings, emulator), http_listen="127.0.0.1:0")
    assert polling.webhook_url == "" and wanted(polling)
    stop = asyncio.Event()
    running = asyncio.create_task(serve(polling, stop))

    async def listening() -> bool:  # the port it picked, from its own log line
        return "web server listening on 127.0.0.1:" in caplog.text

    try:
        await eventually(listening)
        port = caplog.text.split("web server listening on 127.0.0.1:")[1].split()[0]
        status, report = await health(f"http://127.0.0.1:{port}")
        assert status == 200 and list(report["channels"]) == ["telegram"]
    finally:
        stop.set()
        assert await running == 0


async def test_a_taken_port_costs_the_endpoints_not_the_chats(
        settings: Settings, emulator: BotAPIEmulator, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:  # someone else listens on the configured port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        stop = asyncio.Event()
        running = asyncio.create_task(serve(replace(on_telegram(settings, emulator),
                                                    http_listen=listen), stop))
        try:
            emulator.user_sends_text(CHAT, "/start")
            async with asyncio.timeout(15):
                await emulator.wait_for_sent(1, chat_id=CHAT)
        finally:
            stop.set()
            assert await running == 0
    assert f"/healthz and /metrics are not served: cannot listen on {listen}" in caplog.text


# -- /metrics -------------------------------------------------------------------------------


async def test_metrics_move_with_a_telegram_turn_and_a_429(served: Served,
                                                           emulator: BotAPIEmulator) -> None:
    before = await scrape(served.url)
    assert value(before, "kiss_database_up") == 1
    assert value(before, "kiss_updates_handled_total", channel="telegram") == 0
    assert value(before, "kiss_tips_due") == 0 and value(before, "kiss_llm_tokens_month") == 0

    emulator.user_sends_text(CHAT, "/start")
    async with asyncio.timeout(15):
        await emulator.wait_for_sent(1, chat_id=CHAT)

    async def turn_counted() -> bool:
        now = await scrape(served.url)
        return value(now, "kiss_updates_handled_total", channel="telegram") == 1

    await eventually(turn_counted)
    after = await scrape(served.url)
    assert value(after, "kiss_turn_seconds_count", channel="telegram") == 1
    assert 0 < value(after, "kiss_turn_seconds_sum", channel="telegram") < 15
    sent = value(after, "kiss_messages_sent_total", channel="telegram")
    assert sent == len(emulator.messages_to(CHAT)) >= 1
    assert value(after, "kiss_rate_limited_total", channel="telegram") == 0

    # Telegram says 429 to the next answer: counted, and the answer still goes out after it.
    emulator.flood(1, chat_id=CHAT)
    emulator.user_sends_text(CHAT, "hallo")

    async def limited() -> bool:
        now = await scrape(served.url)
        return value(now, "kiss_rate_limited_total", channel="telegram") >= 1

    await eventually(limited)
    async with asyncio.timeout(15):
        await emulator.wait_for_sent(int(sent) + 1, chat_id=CHAT)

    async def turn_and_send_counted() -> bool:
        now = await scrape(served.url)
        return (value(now, "kiss_updates_handled_total", channel="telegram") == 2
                and value(now, "kiss_messages_sent_total", channel="telegram") > sent)

    await eventually(turn_and_send_counted)


async def test_unfinished_rows_are_counted_at_each_scrape_finished_ones_every_5_minutes(
        app: App) -> None:
    now = utcnow()
    minutes = [0]
    metrics = Metrics(app.db, clock=lambda: now + timedelta(minutes=minutes[0]))

    async def rows() -> dict[str, float]:
        text = (await metrics.exposition()).decode()
        return {s.labels["status"]: s.value for f in text_string_to_metric_families(text)
                for s in f.samples if s.name == "kiss_outbox_rows"}

    async with app.db.transaction() as tx:
        await outbox.record(tx, shopkeeper_id=None, channel="telegram", external_id="77",
                            payloads=[{"text": "Hallo", "lang": "nl"}] * 2)
        claimed = await outbox.record(tx, shopkeeper_id=None, channel="telegram",
                                      external_id="78", payloads=[{"text": "Dag", "lang": "nl"}],
                                      sending_until=now + timedelta(minutes=1), claimed_by="x")
    counted = await rows()
    assert (counted["queued"], counted["claimed"], counted["sent"]) == (2, 1, 0)
    async with app.db.transaction() as tx:
        await outbox.mark_sent(tx, ids={claimed[0]: ["1"]})
    minutes[0] = 4
    counted = await rows()
    assert counted["claimed"] == 0  # the backlog: exact at every scrape
    assert counted["sent"] == 0  # the finished rows: as counted at the first scrape
    minutes[0] = 5
    assert (await rows())["sent"] == 1


async def test_metrics_need_the_token_unless_on_loopback(app: App) -> None:
    metrics = Metrics(app.db)
    web = WebServer("127.0.0.1:0")
    web.mount("/open", metrics.routes(token=None, listen="127.0.0.1:8080"))
    web.mount("/public", metrics.routes(token=None, listen="0.0.0.0:8080"))
    web.mount("/named", metrics.routes(token=None, listen="coach.example.be:8080"))
    web.mount("/guarded", metrics.routes(token=TOKEN, listen="0.0.0.0:8080"))
    await web.start()
    base = f"http://127.0.0.1:{web.port}"
    try:
        status, body = await get(f"{base}/open")
        assert status == 200 and "kiss_database_up 1.0" in body
        # loopback, but through a proxy: someone outside asked
        status, _ = await get(f"{base}/open", {"X-Forwarded-For": "203.0.113.7"})
        assert status == 403
        for exposed in ("public", "named"):
            status, body = await get(f"{base}/{exposed}")
            assert status == 403 and "KISS_METRICS_TOKEN" in body
        assert (await get(f"{base}/guarded"))[0] == 401
        assert (await get(f"{base}/guarded", {"Authorization": "Bearer wrong"}))[0] == 401
        assert (await get(f"{base}/guarded", {"Authorization": TOKEN}))[0] == 401
        status, body = await get(f"{base}/guarded", {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and "kiss_outbox_rows" in body
    finally:
        await web.stop()


async def test_two_apps_in_one_process_keep_their_own_figures(app: App) -> None:
    first, second = Metrics(app.db), Metrics(app.db)
    first.turn_handled("telegram", 0.02)
    first.rate_limited("telegram")
    one = {s.name: s.value for f in text_string_to_metric_families(
        (await first.exposition()).decode()) for s in f.samples}
    other = {s.name: s.value for f in text_string_to_metric_families(
        (await second.exposition()).decode()) for s in f.samples}
    assert one["kiss_updates_handled_total"] == 1 and one["kiss_rate_limited_total"] == 1
    assert "kiss_updates_handled_total" not in other


async def test_metrics_say_when_the_database_does_not_answer(tmp_path: Path) -> None:
    empty = Database(f"sqlite+aiosqlite:///{tmp_path / 'not-migrated.sqlite3'}")
    try:
        metrics = Metrics(empty)
        metrics.sent("telegram")
        samples = {(s.name, frozenset(s.labels.items())): s.value for f in
                   text_string_to_metric_families((await metrics.exposition()).decode())
                   for s in f.samples}
    finally:
        await empty.close()
    assert value(samples, "kiss_database_up") == 0
    assert ("kiss_outbox_rows", frozenset({("status", "sent")})) not in samples
    # what this process counted is still there
    assert value(samples, "kiss_messages_sent_total", channel="telegram") == 1
    assert value(samples, "kiss_last_send_timestamp_seconds", channel="telegram") > 0


# -- logs -----------------------------------------------------------------------------------


async def test_log_lines_of_a_turn_name_the_update_and_the_person(
        served: Served, emulator: BotAPIEmulator, app: App,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # python-telegram-bot logs each call (URL too) at DEBUG
    update_id = emulator.user_sends_text(CHAT, "/start")
    async with asyncio.timeout(15):
        await emulator.wait_for_sent(1, chat_id=CHAT)
    async with app.db.transaction() as tx:
        person = await shopkeepers.find_by_identity(tx, channel="telegram",
                                                    external_id=str(CHAT))
    assert person is not None
    lines = [json.loads(logs.JsonFormatter().format(r)) for r in caplog.records]
    ours = [line for line in lines if line["update"] == f"telegram:{update_id}"]
    assert ours, "no log line was written during the turn"
    assert {line["person"] for line in ours} <= {None, person.id}
    assert any(line["person"] == person.id for line in ours)
    # the turn's sends are python-telegram-bot's calls: they carry the turn's ids too
    assert any(line["logger"] == "telegram.Bot" for line in ours)
    assert emulator.token not in caplog.text
    assert all(emulator.token not in logs.JsonFormatter().format(r) for r in caplog.records)


def test_json_lines_hide_secrets_in_the_message_and_the_traceback() -> None:
    secret = "7777777:AAE-not-for-anyone"
    logs.hide(secret)
    log = logging.getLogger("kiss_test.operator")
    with turn_ids.turn("telegram:991"):
        turn_ids.person(42)
        try:
            raise RuntimeError(f"POST https://api.telegram.org/bot{secret}/sendMessage")
        except RuntimeError:
            record = log.makeRecord(log.name, logging.ERROR, __file__, 1, "calling %s",
                                    (f"https://api.telegram.org/bot{secret}/getMe",),
                                    exc_info=sys.exc_info())
    line = logs.JsonFormatter().format(record)
    assert secret not in line
    data = json.loads(line)
    assert data["message"] == "calling https://api.telegram.org/bot<secret>/getMe"
    assert "bot<secret>/sendMessage" in data["exception"]
    assert (data["update"], data["person"], data["level"]) == ("telegram:991", 42, "ERROR")
    plain = logs.PlainFormatter(logs.PLAIN).format(record)
    assert secret not in plain and "[update=telegram:991 person=42]" in plain
    # outside a turn: no ids
    later = log.makeRecord(log.name, logging.INFO, __file__, 1, "idle", (), None)
    assert json.loads(logs.JsonFormatter().format(later))["update"] is None
    assert logs.PlainFormatter(logs.PLAIN).format(later).endswith("idle")


# -- settings -------------------------------------------------------------------------------


def test_settings_of_the_operators_view() -> None:
    shipped = Settings.load(environ={})
    assert shipped.operator == Operator()  # the file and the code agree on the defaults
    assert shipped.log_format == "plain" and not wanted(shipped)
    chosen = Settings.load(environ={
        "KISS_OPERATOR_ENDPOINTS": "always", "KISS_LOG_FORMAT": "JSON",
        "KISS_METRICS_TOKEN": TOKEN, "KISS_HEALTHZ_BACKLOG_LIMIT": "90s",
        "KISS_HEALTHZ_TIMEOUT": "1s"})
    assert chosen.operator == Operator("always", timedelta(seconds=90), timedelta(seconds=1),
                                       TOKEN)
    assert chosen.log_format == "json" and wanted(chosen)  # serves with no channel at all
    assert TOKEN not in repr(chosen)
    for variable, wrong in (("KISS_OPERATOR_ENDPOINTS", "sometimes"),
                            ("KISS_LOG_FORMAT", "xml"), ("KISS_HEALTHZ_TIMEOUT", "0s"),
                            ("KISS_HEALTHZ_BACKLOG_LIMIT", "soon")):
        with pytest.raises(ConfigError, match=variable):
            Settings.load(environ={variable: wrong})


async def test_no_operator_endpoints_when_switched_off(app: App, settings: Settings) -> None:
    off = replace(settings, operator=Operator(endpoints="no"))
    web = WebServer("127.0.0.1:0")
    assert operator_endpoints(off, app, web) is None
    assert not web.mounted and app.sender.watcher is None and app.dispatcher.watcher is None


async def test_work_a_turn_starts_in_the_background_names_no_turn() -> None:
    seen: list[tuple[str | None, int | None]] = []

    async def background() -> None:
        seen.append(turn_ids.current())

    with turn_ids.turn("telegram:5"):
        turn_ids.person(9)
        inherited = asyncio.get_running_loop().create_task(background())
        detached = asyncio.get_running_loop().create_task(background(),
                                                          context=turn_ids.outside())
        await asyncio.gather(inherited, detached)
        assert turn_ids.current() == ("telegram:5", 9)  # the turn itself keeps its ids
    assert seen == [("telegram:5", 9), (None, None)]
    assert turn_ids.current() == (None, None)
