"""10,000 tips due in the same minute: enqueue them, then deliver them at Telegram's limit.

The goal (issue): "10,000 people with a tip due in the same minute: time to claim and
enqueue them all (≤ 2 s on SQLite and on PostgreSQL on this machine), then delivery through
the Telegram emulator at the platform limit (25/s) without a single 429; peak RSS."

Each run seeds a scratch database (not timed): ``--people`` consented shopkeepers with a
Telegram identity, a weekly or twice-weekly morning plan, a completed assessment with
varied scores and focus themes, a tip history for 40% of them, and one ``due`` row of kind
``tip`` each, spread over the minute before ``now``. ``now`` is the next Tuesday 10:00
Europe/Brussels that the shipped sending hours allow (in the future, so the real bot's own
ticks find nothing due later on). Bulk Core inserts through ``storage.database.Database``;
on PostgreSQL the database is then VACUUM ANALYZEd (autovacuum would have done so in
production, and is then not left to do it during the tick; SQLite gets no statistics, as in
production).

Phases:
  enqueue  ``build(Settings.load(), clock=…)`` in a subprocess pinned to cpu 0, then one
           ``await app.nudges.tick(now)``, timed (a first tick half an hour earlier, when
           nothing is due, opens the connection as the running bot's would be). The sender
           is not started: the tick only records. Reported: wall and CPU time, outbox rows
           recorded (must equal --people), rows/s, the worker's peak RSS.
  deliver  with those rows queued, ``python -m bot run`` (cpu 0) with the shipped rates
           (``[telegram] rate`` 25/s, 1/s per chat, burst 3) against the Bot API emulator
           (cpu 1, with this driver). The emulator here refuses, with 429 and
           ``retry_after`` 1, any message call that would make more than ``--limit`` (30,
           Telegram's documented "about 30 messages per second") within a sliding
           ``--window`` of 1 s: tests/bot_api has no rate limit of its own (its ``flood``
           is a fixed 429 window), so this script adds one by subclassing it. Message
           calls: sendMessage, sendPhoto, sendDocument, editMessageText; the 1/s per chat
           is not enforced (Telegram lets short bursts pass) but its peak is shown.
           Reported: tips per second (median of the whole seconds between the first tip and
           the N-th, the first second left out; the slowest second; overall), time to the
           N-th tip, 429s and when they came, calls sent into a 429's retry_after window,
           the most calls in any window, tips sent twice, the bot's peak RSS (VmHWM) and
           CPU per tip, and, after the bot is stopped with SIGTERM, how long it took, the
           outbox statuses and the ERROR lines of its log.
           ``--with-chat``: a coached shopkeeper sends /tips at 25, 50 and 75% of the
           broadcast; the latency to the first and the last message of the reply shows
           whether replies still go first.

``--phase enqueue`` stops after the tick; ``deliver`` (or ``all``, the default) needs the
tick's rows, so it runs and reports the tick too. ``--deliver N`` stops once N tips arrived
(10,000 at 25/s take about 400 s).
``--repeat 3`` reseeds and reruns everything and prints medians (and every run).
``--profile`` adds two ticks, each on a fresh seed: one with a timer around each part (the
claim, the recipients' queries, tip choice, the inserts…), one under cProfile.
``--database-url postgresql+psycopg://…`` uses a scratch database on that server, created
and dropped per run (the PostgreSQL server itself is not pinned).

    .venv/bin/python benchmarks/tips.py --phase enqueue --repeat 3
    .venv/bin/python benchmarks/tips.py --phase enqueue --repeat 3 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python benchmarks/tips.py --phase deliver --deliver 2000 --with-chat
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import cProfile
import io
import json
import os
import pstats
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from telegram_load import (
    HARNESS_CPU,
    PYTHON,
    ROOT,
    TOKEN,
    Emulator,
    Pinning,
    cpu_seconds,
    peak_rss_mb,
    scratch_database,
    wait_ready,
)

BOT_CPU = 0
#: Chat ids of the seeded people: CHAT_BASE + shopkeeper id.
CHAT_BASE = 700_000_000
#: The Bot API calls that put a message in a chat, and count towards the overall limit.
MESSAGE_CALLS = frozenset({"sendmessage", "sendphoto", "senddocument", "editmessagetext"})


def tick_time(day: date | None = None) -> datetime:
    """10:00 in Brussels on ``day``, in UTC; by default on the next Tuesday (from tomorrow
    on) that the shipped sending hours allow (a public holiday is skipped)."""
    from bot.config import Settings
    from flows.timing import BRUSSELS

    hours = Settings.load(environ={}).schedule.hours
    if day is not None:
        at = datetime.combine(day, clock_time(10), BRUSSELS)
        if not hours.allowed(at) or at <= datetime.now(UTC):
            raise SystemExit(f"--date {day}: 10:00 that day must be in the future and "
                             "allowed by the sending hours (no Sunday, no public holiday)")
        return at.astimezone(UTC)
    day = datetime.now(BRUSSELS).date() + timedelta(days=1)
    while True:
        day += timedelta(days=(1 - day.weekday()) % 7)
        at = datetime.combine(day, clock_time(10), BRUSSELS)
        if hours.allowed(at):
            return at.astimezone(UTC)
        day += timedelta(days=1)


# -- seeding -------------------------------------------------------------------------------

async def seed(url: str, people: int, now: datetime, rng: random.Random) -> None:
    """Migrate to head and store ``people`` coached shopkeepers with a tip due in the minute
    before ``now``, and one more (the chatting user of --with-chat) with nothing due."""
    from flows.timing import BRUSSELS
    from flows.tips import SHOP_TYPES, THEMES, Person, choose, load_tips
    from storage import tables as t
    from storage.database import Database

    library = load_tips()
    db = Database(url)
    await db.upgrade()
    rows: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    shop_types = sorted(SHOP_TYPES)
    minute = now - timedelta(minutes=1)
    for person in range(1, people + 2):
        joined = now - timedelta(days=rng.randint(14, 200))
        language = rng.choices(("nl", "fr", "en"), (80, 12, 8))[0]
        shop_type = rng.choice(shop_types)
        rows["shopkeeper"].append({
            "id": person, "language": language, "language_chosen": True, "consent_at": joined,
            "consent_version": "2026-11", "shop_name": f"Winkel {person}",
            "municipality": "Kortrijk", "shop_type": shop_type, "team_size": "2_4",
            "created_at": joined, "updated_at": joined})
        rows["identity"].append({"channel": "telegram", "external_id": str(CHAT_BASE + person),
                                 "shopkeeper_id": person, "created_at": joined})
        scores = {theme: max(0, min(100, round(rng.gauss(55, 22)))) for theme in THEMES}
        lowest = sorted((th for th, s in scores.items() if s < 100), key=scores.__getitem__)
        focus = None if rng.random() < 0.05 else lowest[:rng.choice((1, 2, 2))]
        done_at = joined + timedelta(days=1)
        rows["run"].append({
            "id": person, "shopkeeper_id": person, "flow_id": "assessment",
            "flow_key": "assessment@bench", "status": "completed", "state": {},
            "started_at": done_at, "updated_at": done_at, "completed_at": done_at})
        rows["assessment_result"].append({
            "shopkeeper_id": person, "run_id": person, "flow_key": "assessment@bench",
            "scores": scores, "overall": round(sum(scores.values()) / len(scores)),
            "focus": focus, "created_at": done_at})
        rows["coaching_plan"].append({"shopkeeper_id": person,
                                      "cadence": "twice" if rng.random() < 0.15 else "weekly",
                                      "moment": "morning", "updated_at": done_at})
        had = rng.randint(1, 6) if rng.random() < 0.4 or person > people else 0
        ids: set[str] = set()
        per_theme: dict[str, int] = {}
        unwanted: dict[str, int] = {}
        for week in range(had, 0, -1):  # what the ticks of the past weeks chose
            sent_at = now - timedelta(days=7 * week)
            tip = choose(library, Person(shop_type, scores, tuple(focus or lowest[:2]), ids,
                                         per_theme, unwanted),
                         sent_at.astimezone(BRUSSELS).date())[0]
            outcome = rng.choices((None, "done", "later", "not_for_me"), (35, 40, 10, 15))[0]
            ids.add(tip.id)
            per_theme[tip.theme] = per_theme.get(tip.theme, 0) + 1
            if outcome == "not_for_me":
                unwanted[tip.kind] = unwanted.get(tip.kind, 0) + 1
            rows["tip_sent"].append({
                "shopkeeper_id": person, "tip_id": tip.id, "theme": tip.theme,
                "kind": tip.kind, "sent_at": sent_at, "outcome": outcome,
                "outcome_at": sent_at + timedelta(hours=3) if outcome else None})
        if person <= people:
            rows["due"].append({"shopkeeper_id": person, "kind": "tip", "subject": "",
                                "due_at": minute + timedelta(seconds=rng.uniform(0, 59.999)),
                                "count": had, "claimed_by": None})
    tables = {"shopkeeper": t.SHOPKEEPER, "identity": t.IDENTITY, "run": t.RUN,
              "assessment_result": t.RESULT, "coaching_plan": t.COACHING_PLAN,
              "tip_sent": t.TIP_SENT, "due": t.DUE}
    try:
        async with db.transaction() as tx:
            for name, table in tables.items():
                await tx.execute(table.insert(), rows[name])
            if tx.dialect.name == "postgresql":  # explicit ids: move the sequences past them
                for name in ("shopkeeper", "run"):
                    await tx.execute(sa.text(f"SELECT setval(pg_get_serial_sequence("
                                             f"'{name}', 'id'), (SELECT max(id) FROM {name}))"))
        if db.url.startswith("postgresql"):
            async with db.engine.connect() as connection:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                await connection.execute(sa.text("VACUUM ANALYZE"))
    finally:
        await db.close()


@contextlib.contextmanager
def scratch(server_url: str | None) -> Iterator[tuple[str, str]]:
    """(database URL, temporary folder): an SQLite file in the folder, or a scratch
    database on the PostgreSQL server of ``server_url``, dropped afterwards."""
    with tempfile.TemporaryDirectory(prefix="kiss-tips-") as folder:
        if server_url is None:
            yield f"sqlite+aiosqlite:///{folder}/tips.sqlite3", folder
        else:
            with scratch_database(server_url) as url:
                yield url, folder


# -- the enqueue phase (runs in its own process, pinned to the bot's core) -----------------

class _Held:
    """Stands in for the sender during the enqueue phase: the tick only records."""

    woken = 0

    def wake(self) -> None:
        self.woken += 1


#: The parts of a tick that --profile times one by one: (module, function) → label.
PARTS = {("storage.due", "claim"): "due.claim (UPDATE … RETURNING)",
         ("storage.coaching", "recipients"): "coaching.recipients (5 SELECTs)",
         ("storage.coaching", "commitments_of"): "coaching.commitments_of",
         ("handlers.nudges", "choose"): "flows.tips.choose (pure Python)",
         ("handlers.nudges", "tip_message"): "tip_message (render text)",
         ("storage.outbox", "record_many"): "outbox.record_many (INSERT)",
         ("storage.coaching", "record_sent"): "coaching.record_sent (INSERT)",
         ("storage.due", "move"): "due.move (UPDATE executemany)",
         ("storage.due", "delete"): "due.delete"}


def time_parts(parts: dict[str, list[float]]) -> None:
    """Wrap each part of the tick with a timer, adding (calls, seconds) to ``parts``: the
    breakdown without cProfile's overhead on the millions of small calls in ``choose``."""
    import importlib
    import inspect

    for (module_name, name), label in PARTS.items():
        module = importlib.import_module(module_name)
        original = getattr(module, name)
        totals = parts.setdefault(label, [0, 0.0])

        def wrap(original: Callable[..., Any], totals: list[float]) -> Callable[..., Any]:
            if inspect.iscoroutinefunction(original):
                async def timed_async(*args: Any, **kwargs: Any) -> Any:
                    began = time.perf_counter()
                    try:
                        return await original(*args, **kwargs)
                    finally:
                        totals[0] += 1
                        totals[1] += time.perf_counter() - began
                return timed_async

            def timed(*args: Any, **kwargs: Any) -> Any:
                began = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    totals[0] += 1
                    totals[1] += time.perf_counter() - began
            return timed

        setattr(module, name, wrap(original, totals))


async def enqueue_worker(url: str, now: datetime, mode: str,
                         path: str | None) -> dict[str, Any]:
    """Build the app, tick once when nothing is due, then time the tick. ``mode``:
    ``plain``, ``parts`` (time_parts) or ``cprofile`` (stats written to ``path``)."""
    from bot.app import build
    from bot.config import Settings
    from storage.tables import DUE, OUTBOX, TIP_SENT

    env = {k: v for k, v in os.environ.items() if not k.startswith(("KISS_", "TELEGRAM_"))}
    env.update(KISS_DATABASE_URL=url, KISS_LOG_LEVEL="WARNING")
    app = await build(Settings.load(environ=env), clock=lambda: now)
    held = _Held()
    app.nudges.sender = held
    try:
        assert await app.nudges.tick(now - timedelta(minutes=30)) == 0  # nothing due yet
        parts: dict[str, list[float]] = {}
        if mode == "parts":
            time_parts(parts)
        profiler = cProfile.Profile() if mode == "cprofile" else None
        cpu, began = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        recorded = await app.nudges.tick(now)
        if profiler is not None:
            profiler.disable()
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
        if profiler is not None and path:
            profiler.dump_stats(path)
        async with app.db.transaction() as tx:
            def count(table: sa.Table, *where: sa.ColumnElement[bool]) -> sa.Select[Any]:
                return sa.select(sa.func.count()).select_from(table).where(*where)

            outbox = (await tx.execute(count(OUTBOX, OUTBOX.c.kind == "bulk",
                                             OUTBOX.c.status == "queued"))).scalar_one()
            tips = (await tx.execute(count(TIP_SENT, TIP_SENT.c.sent_at == now))).scalar_one()
            distinct = (await tx.execute(sa.select(sa.func.count(sa.distinct(
                TIP_SENT.c.tip_id))).where(TIP_SENT.c.sent_at == now))).scalar_one()
            moved = (await tx.execute(count(DUE, DUE.c.due_at > now))).scalar_one()
    finally:
        await app.close()
    return {"seconds": seconds, "cpu": cpu, "recorded": recorded, "outbox": outbox,
            "tip_sent": tips, "distinct": distinct, "moved": moved, "woken": held.woken,
            "rss_mb": peak_rss_mb(os.getpid()), "cores": sorted(os.sched_getaffinity(0)),
            "parts": parts}


@dataclass
class Enqueued:
    seconds: float
    cpu: float
    recorded: int
    outbox: int
    tip_sent: int
    distinct: int
    moved: int
    woken: int
    rss_mb: float
    cores: list[int]
    parts: dict[str, list[float]] = field(default_factory=dict)  # label: [calls, seconds]

    @property
    def per_second(self) -> float:
        return self.recorded / self.seconds if self.seconds else 0.0


def run_enqueue(url: str, now: datetime, mode: str = "plain",
                path: str | None = None) -> Enqueued:
    """The enqueue worker in a fresh process on the bot's core; its figures."""
    command = [*Pinning.prefix(BOT_CPU), PYTHON, __file__, "--role", "enqueue",
               "--database-url", url, "--now", now.isoformat(), "--profile-mode", mode]
    if path:
        command += ["--profile-file", path]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the enqueue worker failed ({done.returncode}):\n"
                           f"{done.stderr[-3000:]}")
    return Enqueued(**json.loads(lines[-1]))


# -- the emulator, with Telegram's overall limit (runs in its own process) ----------------

async def serve_emulator(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from aiohttp import web
    from bot_api.params import ApiError, Params
    from bot_api.server import BotAPIEmulator
    from bot_api.state import Chat

    class LimitedEmulator(BotAPIEmulator):
        """Refuses with 429 a message call beyond ``limit`` in any ``window`` seconds, and
        times every message to the tip chats."""

        def __init__(self, limit: int, window: float, tip_chats: range) -> None:
            super().__init__(TOKEN)
            self.limit, self.window, self.tip_chats = limit, window, tip_chats
            self.recent: collections.deque[float] = collections.deque()
            self.per_chat: dict[int, collections.deque[float]] = {}
            self.peak = self.chat_peak = self.limited = self.into_window = 0
            self.closed_until = 0.0
            self.limited_at: list[float] = []  # when each 429 was answered
            self.tip_times: list[float] = []
            self.tips_to: collections.Counter[int] = collections.Counter()

        def _check_injected(self, method: str, name: str, params: Params) -> None:
            if method in MESSAGE_CALLS:
                now = time.monotonic()
                if now < self.closed_until:
                    self.into_window += 1  # sent although a 429 said to wait
                self._slide(self.recent, now)
                if len(self.recent) >= self.limit:
                    self.limited += 1
                    self.limited_at.append(now)
                    self.closed_until = max(self.closed_until, now + 1)
                    raise ApiError(429, "Too Many Requests: retry after 1", {"retry_after": 1})
            super()._check_injected(method, name, params)

        def _slide(self, times: collections.deque[float], now: float) -> None:
            while times and times[0] <= now - self.window:
                times.popleft()

        def _store(self, chat: Chat, record: dict[str, Any]) -> dict[str, Any]:
            message: dict[str, Any] = super()._store(chat, record)
            if record["method"].lower() in MESSAGE_CALLS:
                now = time.monotonic()
                self._slide(self.recent, now)
                self.recent.append(now)
                self.peak = max(self.peak, len(self.recent))
                mine = self.per_chat.setdefault(chat.id, collections.deque())
                self._slide(mine, now)
                mine.append(now)
                self.chat_peak = max(self.chat_peak, len(mine))
                if len(self.per_chat) > 5000:
                    self.per_chat = {k: v for k, v in self.per_chat.items()
                                     if v and v[-1] > now - self.window}
                if record["method"].startswith("send") and chat.id in self.tip_chats:
                    self.tip_times.append(now)
                    self.tips_to[chat.id] += 1
            return message

        async def _control(self, request: web.Request, action: str) -> web.Response:
            if action != "bench":
                response: web.Response = await super()._control(request, action)
                return response
            brief = request.query.get("brief") == "1"
            result: dict[str, Any] = {"tips": len(self.tip_times)}
            if not brief:
                result.update(
                    tip_times=self.tip_times, limited=self.limited,
                    limited_at=self.limited_at,
                    into_window=self.into_window, peak=self.peak, chat_peak=self.chat_peak,
                    twice=sum(1 for n in self.tips_to.values() if n > 1),
                    duplicates=len(self.duplicates()),
                    errors=[e for e in self.errors if e["status"] != 429][:5],
                    error_count=sum(1 for e in self.errors if e["status"] != 429))
            return web.json_response({"ok": True, "result": result})

    emulator = LimitedEmulator(args.limit, args.window,
                               range(CHAT_BASE + 1, CHAT_BASE + args.people + 1))
    for chat_id in range(CHAT_BASE + 1, CHAT_BASE + args.people + 2):
        emulator.register_chat(chat_id)
    await emulator.start(0)
    print(f"listening on 127.0.0.1:{emulator.port}", flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await emulator.stop()


class LimitedEmulatorProcess(Emulator):
    """telegram_load's emulator handle, on the limited emulator above."""

    def __init__(self, people: int, limit: int, window: float) -> None:
        self.options = ["--people", str(people), "--limit", str(limit), "--window", str(window)]

    async def __aenter__(self) -> LimitedEmulatorProcess:
        import aiohttp

        self.process = await asyncio.create_subprocess_exec(
            *Pinning.prefix(HARNESS_CPU), PYTHON, __file__, "--role", "emulator",
            *self.options, stdout=asyncio.subprocess.PIPE)
        assert self.process.stdout is not None
        line = (await self.process.stdout.readline()).decode()
        self.port = int(line.rsplit(":", 1)[1])
        self.base_url = f"http://127.0.0.1:{self.port}/bot"
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=self.request_timeout))
        return self

    async def bench(self, *, brief: bool = False) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}/_emulator/bench?brief={int(brief)}"
        async with self.http.get(url) as response:
            result: dict[str, Any] = (await response.json())["result"]
            return result


# -- the delivery phase --------------------------------------------------------------------

@dataclass
class Delivered:
    target: int
    tips: int = 0
    startup: float = 0.0  # bot started → first tip arrived
    seconds: float = 0.0  # first tip → the target-th
    per_second: list[int] = field(default_factory=list)  # tips in each whole second
    limited: int = 0  # 429s answered
    limited_at: list[float] = field(default_factory=list)  # s after the first tip
    into_window: int = 0  # message calls made while a 429's retry_after was running
    peak: int = 0  # most message calls in any sliding window
    chat_peak: int = 0  # most message calls to one chat in any window
    twice: int = 0  # chats that got more than one tip
    duplicates: int = 0  # emulator: the same message twice in a row to a chat
    errors: list[dict[str, Any]] = field(default_factory=list)  # other refusals (first 5)
    error_count: int = 0
    rss_mb: float = 0.0
    cpu_ms: float = 0.0  # bot CPU per tip while delivering (start-up left out)
    replies: list[tuple[float, float]] = field(default_factory=list)  # (first, last) s
    outbox: dict[str, int] = field(default_factory=dict)
    stalled: bool = False
    stop: tuple[float, int] = (0.0, 0)  # SIGTERM → exit: seconds, exit code
    log_errors: list[str] = field(default_factory=list)  # the bot's first ERROR lines

    @property
    def steady(self) -> float:
        """Median tips per whole second, the first (the limiter's burst) left out."""
        counts = self.per_second[1:] or self.per_second
        return statistics.median(counts) if counts else 0.0


def bot_env(url: str, base_url: str, folder: str) -> dict[str, str]:
    """The shipped configuration (rates included); only the addresses are the bench's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KISS_", "TELEGRAM_"))}
    env.update(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=base_url,
               KISS_DATABASE_URL=url, KISS_LOG_LEVEL="WARNING",
               KISS_CHARTS_DIR=str(Path(folder) / "charts"))
    return env


async def chat_probe(emulator: LimitedEmulatorProcess, chat_id: int) -> tuple[float, float]:
    """A coached shopkeeper sends /tips: seconds to the first and the last reply message
    (the reply is three messages)."""
    before = len(await emulator.control("messages_to", chat_id=chat_id))
    began = time.perf_counter()
    await emulator.control("user_sends_text", chat_id=chat_id, text="/tips")
    await emulator.control("wait_for_chat", chat_id=chat_id, sends=before + 1, since=10**6)
    first = time.perf_counter() - began
    await emulator.control("wait_for_chat", chat_id=chat_id, sends=before + 3, since=10**6)
    return first, time.perf_counter() - began


async def deliver(url: str, folder: str, args: argparse.Namespace) -> Delivered:
    figures = Delivered(target=min(args.deliver or args.people, args.people))
    async with LimitedEmulatorProcess(args.people, args.limit, args.window) as emulator:
        log_path = Path(folder) / "bot.log"
        with log_path.open("wb") as log:
            started = time.monotonic()
            bot = await asyncio.create_subprocess_exec(
                *Pinning.prefix(BOT_CPU), PYTHON, "-m", "bot", "run", cwd=ROOT,
                env=bot_env(url, emulator.base_url, folder), stderr=log)
        try:
            await wait_ready(emulator)
            print(f"[deliver] bot(pid {bot.pid})=cpu {Pinning.cores(bot.pid)}, "
                  f"emulator(pid {emulator.process.pid})=cpu "
                  f"{Pinning.cores(emulator.process.pid)}, driver=cpu {Pinning.cores(0)}",
                  file=sys.stderr, flush=True)
            marks = [round(figures.target * f) for f in (0.25, 0.5, 0.75)] if args.with_chat \
                else []
            probes: list[asyncio.Task[tuple[float, float]]] = []
            last, moved = 0, time.monotonic()
            first_cpu: tuple[int, float] | None = None  # (tips, bot CPU s) at the first tip
            while True:
                tips = (await emulator.bench(brief=True))["tips"]
                if tips and first_cpu is None:
                    first_cpu = (tips, cpu_seconds(bot.pid))
                if tips >= figures.target:
                    break
                if tips != last:
                    last, moved = tips, time.monotonic()
                elif time.monotonic() - moved > args.stall:
                    figures.stalled = True
                    break
                if bot.returncode is not None:
                    raise RuntimeError(f"the bot stopped:\n{log_path.read_text()[-3000:]}")
                while marks and tips >= marks[0]:
                    marks.pop(0)
                    probes.append(asyncio.create_task(
                        chat_probe(emulator, CHAT_BASE + args.people + 1)))
                await asyncio.sleep(0.2)
            figures.replies = list(await asyncio.wait_for(asyncio.gather(*probes), 60))
            figures.rss_mb = peak_rss_mb(bot.pid)
            if first_cpu is not None and tips > first_cpu[0]:
                figures.cpu_ms = ((cpu_seconds(bot.pid) - first_cpu[1])
                                  / (tips - first_cpu[0]) * 1000)
        finally:
            if bot.returncode is None:
                stopping = time.monotonic()
                bot.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(bot.wait(), 60)
                except TimeoutError:
                    bot.kill()
                    await bot.wait()
                figures.stop = (time.monotonic() - stopping, bot.returncode or 0)
        stats = await emulator.bench()
        figures.log_errors = log_errors(log_path.read_text(errors="replace"))
    times = sorted(stats["tip_times"])
    figures.tips = len(times)
    if times:
        reached = times[min(figures.target, len(times)) - 1]
        figures.startup = times[0] - started
        figures.seconds = reached - times[0]
        counts = collections.Counter(int(t - times[0]) for t in times if t <= reached)
        figures.per_second = [counts[s] for s in range(int(figures.seconds))]
    if times:
        figures.limited_at = [round(t - times[0], 1) for t in stats["limited_at"]]
    for name in ("limited", "into_window", "peak", "chat_peak", "twice", "duplicates",
                 "errors", "error_count"):
        setattr(figures, name, stats[name])
    figures.outbox = await outbox_statuses(url)
    return figures


def log_errors(text: str) -> list[str]:
    """The bot's ERROR records, each as its first line and (for a traceback) its last."""
    records: list[list[str]] = []
    for line in text.splitlines():
        if line[:4].isdigit() or not records:  # "2026-…": a new record
            records.append([line])
        else:
            records[-1].append(line)
    return [" … ".join(dict.fromkeys((r[0], r[-1]))) for r in records
            if " ERROR " in r[0] or " CRITICAL " in r[0]][:5]


async def outbox_statuses(url: str) -> dict[str, int]:
    from storage.database import Database
    from storage.tables import OUTBOX

    db = Database(url)
    try:
        async with db.transaction() as tx:
            rows = await tx.execute(sa.select(OUTBOX.c.status, sa.func.count())
                                    .where(OUTBOX.c.kind == "bulk").group_by(OUTBOX.c.status))
            return {str(status): int(n) for status, n in rows}
    finally:
        await db.close()


# -- runs and the report -------------------------------------------------------------------

@dataclass
class Run:
    enqueued: Enqueued
    delivered: Delivered | None = None


async def one_run(args: argparse.Namespace, now: datetime, mode: str = "plain",
                  path: str | None = None) -> Run:
    with scratch(args.database_url) as (url, folder):
        began = time.perf_counter()
        await seed(url, args.people, now, random.Random(args.seed))
        print(f"seeded {args.people} people in {time.perf_counter() - began:.1f} s",
              file=sys.stderr, flush=True)
        run = Run(run_enqueue(url, now, mode, path))
        if args.phase != "enqueue" and mode == "plain":
            run.delivered = await deliver(url, folder, args)
        return run


def show(name: str, values: list[float], unit: str = "", digits: int = 2) -> None:
    """One measure: its median, then every run."""
    runs = ", ".join(f"{v:.{digits}f}" for v in values)
    median = statistics.median(values) if values else float("nan")
    print(f"  {name:<44} {median:>10.{digits}f} {unit:<7} (runs: {runs})")


def report(args: argparse.Namespace, runs: list[Run], now: datetime, rate: float,
           load: tuple[float, float]) -> None:
    from flows.timing import BRUSSELS

    where = args.database_url.split("@")[-1] if args.database_url else "SQLite"
    print(f"tips: {args.people} people with a tip due in the minute before the tick at "
          f"{now.astimezone(BRUSSELS):%a %Y-%m-%d %H:%M} Brussels, {where}, "
          f"{os.cpu_count()} cores, pinned: {Pinning.enabled}, medians of {len(runs)} run(s); "
          f"load average (1 min) before/after: {load[0]:.2f}/{load[1]:.2f}")
    enqueued = [r.enqueued for r in runs]
    from handlers.nudges import BATCH, POSTGRES_BATCH

    batch = BATCH if not args.database_url else POSTGRES_BATCH
    print(f"enqueue (one tick, batches of {batch}; worker on cpu "
          f"{','.join(map(str, enqueued[0].cores))}; goal ≤ 2 s)")
    show("tick wall time", [e.seconds for e in enqueued], "s", 3)
    show("tick CPU time (worker process)", [e.cpu for e in enqueued], "s", 3)
    show("outbox rows recorded per second", [e.per_second for e in enqueued], "rows/s", 0)
    show("outbox rows recorded (tick's count)", [float(e.recorded) for e in enqueued], "", 0)
    show("queued bulk rows in the outbox", [float(e.outbox) for e in enqueued], "", 0)
    show("tip_sent rows recorded", [float(e.tip_sent) for e in enqueued], "", 0)
    show("due rows moved to their next tip", [float(e.moved) for e in enqueued], "", 0)
    show("different tips chosen", [float(e.distinct) for e in enqueued], "", 0)
    show("worker peak RSS (build + tick)", [e.rss_mb for e in enqueued], "MB", 0)
    complete = all(e.recorded == e.outbox == e.tip_sent == e.moved == args.people
                   for e in enqueued)
    goal = statistics.median([e.seconds for e in enqueued]) <= 2.0
    print(f"  every person enqueued exactly once: {'yes' if complete else 'NO'}; "
          f"goal ≤ 2 s: {'met' if goal else 'NOT met'}")
    delivered = [r.delivered for r in runs if r.delivered is not None]
    if not delivered:
        return
    d0 = delivered[0]
    print(f"deliver ({d0.target} of {args.people} tips; bot rate {rate:g}/s as shipped; "
          f"emulator refuses > {args.limit} message calls per {args.window:g} s)")
    show("tips per second, steady (median of seconds)", [d.steady for d in delivered], "/s", 1)
    show("tips per second, slowest whole second",
         [float(min(d.per_second[1:] or d.per_second or [0])) for d in delivered], "/s", 0)
    show("tips per second, overall (first tip to last)",
         [(d.target - 1) / d.seconds if d.seconds else 0.0 for d in delivered], "/s", 1)
    show(f"time from first tip to tip {d0.target}", [d.seconds for d in delivered], "s", 1)
    show("bot start to first tip", [d.startup for d in delivered], "s", 1)
    show("429 answers", [float(d.limited) for d in delivered], "", 0)
    show("calls into a running retry_after", [float(d.into_window) for d in delivered], "", 0)
    show(f"most message calls in {args.window:g} s (limit {args.limit})",
         [float(d.peak) for d in delivered], "", 0)
    show(f"most message calls to one chat in {args.window:g} s",
         [float(d.chat_peak) for d in delivered], "", 0)
    show("chats that got a tip twice", [float(d.twice) for d in delivered], "", 0)
    show("emulator duplicates (same message twice)", [float(d.duplicates) for d in delivered],
         "", 0)
    show("bot peak RSS (VmHWM)", [d.rss_mb for d in delivered], "MB", 0)
    show("bot CPU per tip (while delivering)", [d.cpu_ms for d in delivered], "ms", 2)
    if any(d.replies for d in delivered):
        show("/tips mid-broadcast: first reply message",
             [max(first for first, _ in d.replies) * 1000 for d in delivered if d.replies],
             "ms max", 0)
        show("/tips mid-broadcast: last of its 3 messages",
             [max(last for _, last in d.replies) * 1000 for d in delivered if d.replies],
             "ms max", 0)
    for n, d in enumerate(delivered, 1):
        seconds = collections.Counter(d.per_second)
        print(f"  run {n}: {d.tips} tips arrived in all{'; STALLED' if d.stalled else ''}; "
              f"outbox after the bot stopped: {d.outbox}; other refusals: {d.error_count} "
              f"{d.errors or ''}")
        slow = [f"{second}s: {count}" for second, count in enumerate(d.per_second)
                if second and count < 20]
        print(f"  run {n}: bot stopped {d.stop[0]:.1f} s after SIGTERM, exit code {d.stop[1]}"
              f"; seconds with fewer than 20 tips (s after the first tip: tips): "
              f"{', '.join(slow) or 'none'}")
        if d.log_errors:
            print(f"  run {n}: bot log errors: {d.log_errors}")
        if d.limited_at:
            print(f"  run {n}: 429s at (s after the first tip): "
                  + ", ".join(map(str, d.limited_at)))
        print(f"  run {n}: whole seconds by tips sent in them: " + ", ".join(
            f"{count}/s ×{times}" for count, times in sorted(seconds.items(), reverse=True)))


def print_parts(enqueued: Enqueued) -> None:
    print(f"where one tick's time goes (timers around each part, {enqueued.seconds:.2f} s "
          f"in all, {enqueued.recorded} rows; a fresh seed):")
    timed = 0.0
    for label, (calls, seconds) in sorted(enqueued.parts.items(), key=lambda p: -p[1][1]):
        timed += seconds
        print(f"  {label:<44} {seconds:>7.3f} s {seconds / enqueued.seconds:>5.0%} "
              f"({calls:.0f} calls)")
    rest = enqueued.seconds - timed
    print(f"  {'the rest (loop, BEGIN/COMMIT, next_tip, …)':<44} {rest:>7.3f} s "
          f"{rest / enqueued.seconds:>5.0%}")


def print_profile(path: str, enqueued: Enqueued) -> None:
    print(f"profile of one tick ({enqueued.seconds:.2f} s under cProfile, "
          f"{enqueued.recorded} rows): top by cumulative time, then by own time")
    for order, count in (("cumulative", 30), ("tottime", 15)):
        out = io.StringIO()
        stats = pstats.Stats(path, stream=out)
        stats.sort_stats(order).print_stats(count)
        body = out.getvalue()
        print(body[body.find("   ncalls"):].rstrip())


async def main(args: argparse.Namespace) -> None:
    from bot.config import Settings

    Pinning.enabled = Pinning.enabled and not args.no_pin
    Pinning.pin_driver()
    now = tick_time(args.date)
    rate = Settings.load(environ={}).telegram_rate
    load = os.getloadavg()[0]
    runs: list[Run] = []
    for n in range(args.repeat):
        runs.append(await one_run(args, now))
        print(f"run {n + 1}/{args.repeat} done: tick {runs[-1].enqueued.seconds:.2f} s",
              file=sys.stderr, flush=True)
    report(args, runs, now, rate, (load, os.getloadavg()[0]))
    if args.profile:
        print_parts((await one_run(args, now, "parts")).enqueued)
        with tempfile.TemporaryDirectory() as folder:
            path = str(Path(folder) / "tick.prof")
            print_profile(path, (await one_run(args, now, "cprofile", path)).enqueued)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--phase", choices=("enqueue", "deliver", "all"), default="all",
                        help="enqueue: the tick only; deliver/all: the tick, then delivery")
    parser.add_argument("--deliver", type=int, default=None,
                        help="stop once this many tips arrived (default: all)")
    parser.add_argument("--with-chat", action="store_true",
                        help="a shopkeeper sends /tips at 25, 50 and 75%% of the broadcast")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server: each run gets a scratch database on it")
    parser.add_argument("--limit", type=int, default=30,
                        help="the emulator's overall limit: message calls per window")
    parser.add_argument("--window", type=float, default=1.0, help="its window, seconds")
    parser.add_argument("--stall", type=float, default=60.0,
                        help="end delivery when no tip arrived for this long (seconds)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--date", type=date.fromisoformat, default=None,
                        help="tick at 10:00 Brussels on this day, YYYY-MM-DD (default: the "
                             "next Tuesday); tip choice follows the retail calendar")
    parser.add_argument("--profile", action="store_true",
                        help="then time one tick part by part, and one under cProfile")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    # internal: this file also runs as the enqueue worker and as the emulator
    parser.add_argument("--role", choices=("driver", "enqueue", "emulator"), default="driver",
                        help=argparse.SUPPRESS)
    parser.add_argument("--now", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--profile-mode", default="plain", help=argparse.SUPPRESS)
    parser.add_argument("--profile-file", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def entry() -> None:
    args = parse()
    roles: dict[str, Callable[[], Any]] = {
        "driver": lambda: main(args),
        "emulator": lambda: serve_emulator(args),
        "enqueue": lambda: _enqueue_role(args),
    }
    asyncio.run(roles[args.role]())


async def _enqueue_role(args: argparse.Namespace) -> None:
    figures = await enqueue_worker(args.database_url, datetime.fromisoformat(args.now),
                                   args.profile_mode, args.profile_file)
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    entry()
