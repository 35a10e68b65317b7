"""A coach's broadcast to 10,000 shopkeepers: throughput, Telegram's limit, chat latency,
and crashes.

The goal (issue): 10,000 broadcast recipients, emulator unthrottled, limiter at 1,000/s
(paid broadcasts): at least 900 msg/s sustained including all bookkeeping, next to the raw
send rate of python-telegram-bot on its default transport as the baseline; with the
emulator enforcing 30/s: at least 24 msg/s sustained, at most 1% 429 answers, no
duplicates, and p95 reply latency at most 1 s for a shopkeeper chatting meanwhile; five
SIGKILLs at random points: no duplicates, at most the sender's concurrency uncertain per
crash, sending again within 30 s of each restart.

Each run seeds a scratch database (not timed): ``--people`` consented shopkeepers with a
Telegram identity, and one broadcast to all of them queued by ``Broadcasts.create`` and
``tick`` (one bulk outbox row each), before the bot starts. The bot is ``python -m bot run``
on cpu 0; the emulator (``tips.py``'s, with its optional sliding-window limit) and this
driver on cpu 1, as in ``telegram_load.py`` and ``tips.py``, whose helpers this reuses.

Phases (``--phases``, default all):
  baseline   python-telegram-bot alone, in a process on cpu 0: ``bot.send_message`` to
             every recipient with ``--concurrency`` at once, on its default transport
             (HTTPXRequest; its pool raised to the concurrency, or it would send one at a
             time), then the same on this bot's aiohttp transport. Messages per second.
  fast       the broadcast with the limiter at 1,000/s (``KISS_TELEGRAM_RATE``) and the
             emulator unthrottled. Sustained rate: the median of the whole seconds
             between the first message and the last, the first and last left out; the
             overall rate; the bot's CPU per message; the outbox statuses after SIGTERM.
  throttled  the shipped rates (25/s) against an emulator that answers 429 to any message
             call beyond 30 in a sliding second; a shopkeeper sends /help every
             ``--chat-every`` seconds meanwhile (latency to the reply's first message).
             ``--throttled-people`` recipients (10,000 take about 400 s).
  crash      as ``fast``, with five SIGKILLs at random points (seeded): after each, the
             rows left ``sending`` (they become uncertain), and the seconds from the
             restart to the next message; at the end the statuses, chats that got the
             broadcast twice and the emulator's duplicates.

``--repeat 3`` repeats baseline and fast and prints medians (throttled and crash run once).
``--profile`` runs one more fast broadcast with the bot under cProfile and prints the top
functions by own time. ``--database-url postgresql+psycopg://…`` uses a scratch database on
that server per run (the PostgreSQL server itself is not pinned).

    .venv/bin/python benchmarks/broadcast.py --repeat 3
    .venv/bin/python benchmarks/broadcast.py --phases fast,crash \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import pstats
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from telegram_load import PYTHON, ROOT, TOKEN, Pinning, cpu_seconds, scratch_database, wait_ready
from tips import BOT_CPU, CHAT_BASE, LimitedEmulatorProcess, bot_env, log_errors

TEXT = "<b>Wegenwerken</b> in de Leiestraat vanaf maandag: de winkels blijven bereikbaar."
UNLIMITED = 10**9  # the emulator's limit when it enforces none


# -- seeding -------------------------------------------------------------------------------

async def seed(url: str, folder: str, people: int) -> int:
    """``people`` consented shopkeepers, a broadcast to all of them queued (one outbox row
    each), then one more shopkeeper (the chatting one, not a recipient); the broadcast id."""
    sys.path.insert(0, str(ROOT))
    from bot.app import build
    from bot.config import Settings
    from flows.audience import Segment
    from flows.rich_text import parse
    from handlers.broadcasts import Broadcasts
    from storage.tables import IDENTITY, SHOPKEEPER, utcnow

    class Asleep:
        def wake(self) -> None:
            """No sender here: the bot process delivers."""

    app = await build(Settings(database_url=url, charts_dir=Path(folder) / "charts",
                               telegram_api_base_url="http://127.0.0.1:9/bot",
                               log_level="WARNING"))
    try:
        def add(persons: range) -> list[list[dict[str, Any]]]:
            now = utcnow()
            return [[{"id": p, "language": "nl", "language_chosen": True, "consent_at": now,
                      "consent_version": "2026-11", "shop_name": f"Winkel {p}",
                      "municipality": "Kortrijk", "shop_type": "food", "team_size": "2_4",
                      "created_at": now, "updated_at": now} for p in persons],
                    [{"channel": "telegram", "external_id": str(CHAT_BASE + p),
                      "shopkeeper_id": p, "created_at": now} for p in persons]]

        async def store(persons: range) -> None:
            shops, identities = add(persons)
            async with app.db.transaction() as tx:
                await tx.execute(SHOPKEEPER.insert(), shops)
                await tx.execute(IDENTITY.insert(), identities)
                if tx.dialect.name == "postgresql":
                    await tx.execute(sa.text("SELECT setval(pg_get_serial_sequence("
                                             "'shopkeeper', 'id'), (SELECT max(id) FROM "
                                             "shopkeeper))"))

        await store(range(1, people + 1))
        sending = Broadcasts(app.db, app.texts, app.broadcasts.places,
                             app.settings.schedule.hours, Asleep())
        made = await sending.create(texts={"nl": parse(TEXT)}, segment=Segment(),
                                    urgent=True, via="benchmark")
        queued = await sending.tick()
        if queued != people:
            raise RuntimeError(f"the broadcast queued {queued} rows, not {people}")
        await store(range(people + 1, people + 2))
        return made.id
    finally:
        await app.close()


@contextlib.contextmanager
def scratch(server_url: str | None) -> Iterator[tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="kiss-broadcast-") as folder:
        if server_url is None:
            yield f"sqlite+aiosqlite:///{folder}/broadcast.sqlite3", folder
        else:
            with scratch_database(server_url) as url:
                yield url, folder


def outbox_counts(url: str) -> dict[str, int]:
    """Statuses of the bulk rows, read synchronously (also right after a SIGKILL)."""
    engine = sa.create_engine(url.replace("+aiosqlite", ""))
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text(
                "SELECT status, count(*) FROM outbox WHERE kind = 'bulk' GROUP BY status"))
            return {str(status): int(n) for status, n in rows}
    finally:
        engine.dispose()


# -- the bot -------------------------------------------------------------------------------

async def start_bot(url: str, emulator: LimitedEmulatorProcess, folder: str, log: Any, *,
                    rate: float | None, profile: str | None = None,
                    ) -> asyncio.subprocess.Process:
    env = bot_env(url, emulator.base_url, folder)
    if rate is not None:
        env["KISS_TELEGRAM_RATE"] = str(rate)
    command = [PYTHON, "-m", "bot", "run"]
    if profile:
        command = [PYTHON, "-m", "cProfile", "-o", profile, "-m", "bot", "run"]
    return await asyncio.create_subprocess_exec(*Pinning.prefix(BOT_CPU), *command, cwd=ROOT,
                                                env=env, stderr=log)


async def stop_bot(bot: asyncio.subprocess.Process) -> float:
    """SIGTERM, and the seconds it took to exit."""
    if bot.returncode is not None:
        return 0.0
    began = time.monotonic()
    bot.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(bot.wait(), 60)
    except TimeoutError:
        bot.kill()
        await bot.wait()
    return time.monotonic() - began


async def sent_count(emulator: LimitedEmulatorProcess) -> int:
    return int((await emulator.bench(brief=True))["tips"])


async def until_sent(emulator: LimitedEmulatorProcess, bot: asyncio.subprocess.Process,
                     target: int, stall: float, log_path: Path) -> bool:
    """Wait until ``target`` broadcast messages arrived; False when nothing moved for
    ``stall`` seconds."""
    last, moved = -1, time.monotonic()
    while True:
        count = await sent_count(emulator)
        if count >= target:
            return True
        if count != last:
            last, moved = count, time.monotonic()
        elif time.monotonic() - moved > stall:
            return False
        if bot.returncode is not None:
            tail = log_path.read_text()[-3000:]  # noqa: ASYNC240  (it has stopped anyway)
            raise RuntimeError(f"the bot stopped:\n{tail}")
        await asyncio.sleep(0.05)


def rates(times: list[float]) -> tuple[float, float, list[int]]:
    """(sustained: median of the whole seconds, first and last left out; overall; counts
    per second)."""
    times = sorted(times)
    if len(times) < 2:
        return 0.0, 0.0, []
    counts = collections.Counter(int(t - times[0]) for t in times)
    per_second = [counts[s] for s in range(int(times[-1] - times[0]) + 1)]
    inner = per_second[1:-1] or per_second
    return (float(statistics.median(inner)), (len(times) - 1) / (times[-1] - times[0]),
            per_second)


# -- phases --------------------------------------------------------------------------------

@dataclass
class Fast:
    sustained: float = 0.0
    overall: float = 0.0
    cpu_ms: float = 0.0  # bot CPU per message, first to last message
    seconds: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    twice: int = 0
    duplicates: int = 0
    errors: int = 0
    log_errors: list[str] = field(default_factory=list)


async def fast(args: argparse.Namespace, profile: str | None = None) -> Fast:
    figures = Fast()
    with scratch(args.database_url) as (url, folder):
        await seed(url, folder, args.people)
        async with LimitedEmulatorProcess(args.people, UNLIMITED, 1.0) as emulator:
            log_path = Path(folder) / "bot.log"
            with log_path.open("wb") as log:
                bot = await start_bot(url, emulator, folder, log, rate=args.rate,
                                      profile=profile)
            try:
                await wait_ready(emulator)
                first: tuple[int, float] | None = None
                while first is None or first[0] == 0:
                    first = (await sent_count(emulator), cpu_seconds(bot.pid))
                    await asyncio.sleep(0.01)
                if not await until_sent(emulator, bot, args.people, args.stall, log_path):
                    print("  fast: stalled", file=sys.stderr)
                last = (await sent_count(emulator), cpu_seconds(bot.pid))
                if last[0] > first[0]:
                    figures.cpu_ms = (last[1] - first[1]) / (last[0] - first[0]) * 1000
            finally:
                await stop_bot(bot)
            stats = await emulator.bench()
        figures.sustained, figures.overall, _ = rates(stats["tip_times"])
        times = stats["tip_times"]
        figures.seconds = max(times) - min(times) if times else 0.0
        figures.twice, figures.duplicates = stats["twice"], stats["duplicates"]
        figures.errors = stats["error_count"] + stats["limited"]
        figures.statuses = outbox_counts(url)
        figures.log_errors = log_errors(log_path.read_text(errors="replace"))
    return figures


async def baseline_worker(args: argparse.Namespace) -> None:
    """In a process on the bot's core: send_message to every recipient, --concurrency at
    once; prints messages per second as JSON."""
    sys.path.insert(0, str(ROOT))
    from telegram import Bot
    from telegram.request import HTTPXRequest

    from bot.telegram.request import AiohttpRequest

    request: Any = (HTTPXRequest(connection_pool_size=args.concurrency)
                    if args.transport == "httpx"
                    else AiohttpRequest(connection_pool_size=args.concurrency))
    gate = asyncio.Semaphore(args.concurrency)
    async with Bot(TOKEN, base_url=args.base_url, request=request) as bot:
        async def one(chat: int) -> None:
            async with gate:
                await bot.send_message(chat, TEXT, parse_mode="HTML")

        cpu, began = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one(CHAT_BASE + p) for p in range(1, args.people + 1)))
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    print(json.dumps({"per_second": args.people / seconds,
                      "cpu_ms": cpu / args.people * 1000}), flush=True)


async def baseline(args: argparse.Namespace, transport: str) -> dict[str, float]:
    async with LimitedEmulatorProcess(args.people, UNLIMITED, 1.0) as emulator:
        done = await asyncio.create_subprocess_exec(
            *Pinning.prefix(BOT_CPU), PYTHON, __file__, "--role", "baseline",
            "--transport", transport, "--base-url", emulator.base_url,
            "--people", str(args.people), "--concurrency", str(args.concurrency),
            stdout=asyncio.subprocess.PIPE, cwd=ROOT)
        out, _ = await done.communicate()
    figures: dict[str, float] = json.loads(out.decode().strip().splitlines()[-1])
    return figures


@dataclass
class Throttled:
    people: int = 0
    sustained: float = 0.0
    overall: float = 0.0
    limited: int = 0
    calls: int = 0
    into_window: int = 0
    peak: int = 0
    twice: int = 0
    duplicates: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    log_errors: list[str] = field(default_factory=list)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


async def throttled(args: argparse.Namespace) -> Throttled:
    people = args.throttled_people
    figures = Throttled(people=people)
    chatter = CHAT_BASE + people + 1
    with scratch(args.database_url) as (url, folder):
        await seed(url, folder, people)
        async with LimitedEmulatorProcess(people, args.limit, 1.0) as emulator:
            log_path = Path(folder) / "bot.log"
            with log_path.open("wb") as log:
                bot = await start_bot(url, emulator, folder, log, rate=None)
            try:
                await wait_ready(emulator)

                async def chat() -> None:
                    while True:
                        before = len(await emulator.control("messages_to", chat_id=chatter))
                        began = time.perf_counter()
                        await emulator.control("user_sends_text", chat_id=chatter,
                                               text="/help")
                        await emulator.control("wait_for_chat", chat_id=chatter,
                                               sends=before + 1, since=10**6)
                        figures.latencies.append(time.perf_counter() - began)
                        await asyncio.sleep(args.chat_every)

                while await sent_count(emulator) == 0:  # noqa: ASYNC110  (another process)
                    await asyncio.sleep(0.05)
                chatting = asyncio.create_task(chat())
                try:
                    if not await until_sent(emulator, bot, people, args.stall, log_path):
                        print("  throttled: stalled", file=sys.stderr)
                finally:
                    chatting.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await chatting
            finally:
                await stop_bot(bot)
            stats = await emulator.bench()
            state = await emulator.control("state")
        figures.sustained, figures.overall, _ = rates(stats["tip_times"])
        for name in ("limited", "into_window", "peak", "twice", "duplicates"):
            setattr(figures, name, stats[name])
        figures.calls = sum(n for method, n in state["calls"].items()
                            if method.lower() in ("sendmessage", "sendphoto"))
        figures.statuses = outbox_counts(url)
        figures.log_errors = log_errors(log_path.read_text(errors="replace"))
    return figures


@dataclass
class Crash:
    kills: list[int] = field(default_factory=list)  # messages arrived at each kill
    sending: list[int] = field(default_factory=list)  # rows left "sending" by each kill
    resumed: list[float] = field(default_factory=list)  # restart → next message, seconds
    statuses: dict[str, int] = field(default_factory=dict)
    arrived: int = 0
    twice: int = 0
    duplicates: int = 0
    uncertain_arrived: int = 0  # uncertain rows whose message did arrive


async def crash(args: argparse.Namespace) -> Crash:
    figures = Crash()
    rng = random.Random(args.seed)
    points = sorted(rng.sample(range(args.people // 20, args.people * 19 // 20), args.kills))
    with scratch(args.database_url) as (url, folder):
        await seed(url, folder, args.people)
        async with LimitedEmulatorProcess(args.people, UNLIMITED, 1.0) as emulator:
            log_path = Path(folder) / "bot.log"
            with log_path.open("ab") as log:
                bot = await start_bot(url, emulator, folder, log, rate=args.rate)
            try:
                await wait_ready(emulator)
                for point in points:
                    await until_sent(emulator, bot, point, args.stall, log_path)
                    bot.send_signal(signal.SIGKILL)
                    await bot.wait()
                    figures.kills.append(await sent_count(emulator))
                    figures.sending.append(outbox_counts(url).get("sending", 0))
                    before = await sent_count(emulator)
                    began = time.monotonic()
                    with log_path.open("ab") as log:
                        bot = await start_bot(url, emulator, folder, log, rate=args.rate)
                    await until_sent(emulator, bot, before + 1, args.stall, log_path)
                    figures.resumed.append(time.monotonic() - began)

                async def final() -> bool:
                    counts = outbox_counts(url)
                    return sum(counts.get(s, 0) for s in
                               ("queued", "claimed", "sending", "errored")) == 0

                deadline = time.monotonic() + 120
                while not await final() and time.monotonic() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
            finally:
                await stop_bot(bot)
            stats = await emulator.bench()
        figures.arrived, figures.twice = stats["tips"], stats["twice"]
        figures.duplicates = stats["duplicates"]
        figures.statuses = outbox_counts(url)
        figures.uncertain_arrived = figures.arrived - figures.statuses.get("sent", 0)
    return figures


# -- the report ----------------------------------------------------------------------------

def show(name: str, values: list[float], unit: str = "", digits: int = 1) -> None:
    runs = ", ".join(f"{v:.{digits}f}" for v in values)
    median = statistics.median(values) if values else float("nan")
    print(f"  {name:<46} {median:>10.{digits}f} {unit:<6} (runs: {runs})", flush=True)


def print_profile(path: str) -> None:
    stream = pstats.Stats(path)
    stream.sort_stats("tottime").print_stats(25)


async def main(args: argparse.Namespace) -> None:
    Pinning.enabled = Pinning.enabled and not args.no_pin
    Pinning.pin_driver()
    phases = set(args.phases.split(","))
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"broadcast to {args.people} recipients, {backend}, concurrency "
          f"{args.concurrency}, cores: bot cpu {BOT_CPU}, emulator + driver cpu "
          f"{Pinning.cores(0)} (pinning {'on' if Pinning.enabled else 'off'})", flush=True)
    if "baseline" in phases:
        print("baseline: python-telegram-bot send_message, nothing else (msg/s, CPU ms/msg)")
        for transport in ("httpx", "aiohttp"):
            runs = [await baseline(args, transport) for _ in range(args.repeat)]
            show(f"PTB on {transport}", [r["per_second"] for r in runs], "msg/s")
            show(f"PTB on {transport}: CPU per message", [r["cpu_ms"] for r in runs], "ms", 3)
    if "fast" in phases:
        print(f"fast: limiter {args.rate:.0f}/s, emulator unthrottled")
        runs = [await fast(args) for _ in range(args.repeat)]
        show("sustained (median of whole seconds)", [r.sustained for r in runs], "msg/s")
        show("overall (first to last message)", [r.overall for r in runs], "msg/s")
        show("bot CPU per message", [r.cpu_ms for r in runs], "ms", 3)
        show("seconds first to last message", [r.seconds for r in runs], "s")
        for n, r in enumerate(runs, 1):
            print(f"  run {n}: outbox {r.statuses}, chats with 2+: {r.twice}, duplicates: "
                  f"{r.duplicates}, refusals: {r.errors}, log errors: {r.log_errors}")
    if "throttled" in phases:
        print(f"throttled: shipped rates (25/s), emulator 429 beyond {args.limit} a second, "
              f"a shopkeeper sends /help every {args.chat_every:.0f} s")
        t = await throttled(args)
        print(f"  recipients {t.people}: sustained {t.sustained:.1f} msg/s, overall "
              f"{t.overall:.1f} msg/s")
        share = t.limited / t.calls * 100 if t.calls else 0.0
        print(f"  429 answers {t.limited} of {t.calls} message calls ({share:.2f}%), calls "
              f"into a 429 window {t.into_window}, busiest second {t.peak}")
        print(f"  chats with 2+: {t.twice}, duplicates: {t.duplicates}, outbox {t.statuses}")
        print(f"  reply latency over {len(t.latencies)} /help: p50 "
              f"{t.percentile(50) * 1000:.0f} ms, p95 {t.percentile(95) * 1000:.0f} ms, max "
              f"{max(t.latencies, default=0) * 1000:.0f} ms; log errors: {t.log_errors}")
    if "crash" in phases:
        print(f"crash: {args.kills} SIGKILLs at random points, limiter {args.rate:.0f}/s")
        c = await crash(args)
        for n, (killed, sending, resumed) in enumerate(
                zip(c.kills, c.sending, c.resumed, strict=True), 1):
            print(f"  kill {n} at {killed} messages: {sending} rows left sending "
                  f"(≤ {args.concurrency}), next message {resumed:.1f} s after the restart")
        print(f"  end: outbox {c.statuses}; messages arrived {c.arrived}, of which to "
              f"uncertain rows {c.uncertain_arrived}; chats with 2+: {c.twice}, duplicates: "
              f"{c.duplicates}")
    if args.profile:
        with tempfile.TemporaryDirectory() as folder:
            path = str(Path(folder) / "bot.prof")
            await fast(args, profile=path)
            print("profile of the bot during a fast broadcast (own time):")
            print_profile(path)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--throttled-people", type=int, default=10_000)
    parser.add_argument("--phases", default="baseline,fast,throttled,crash")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--rate", type=float, default=1000.0,
                        help="the limiter's overall rate in fast and crash (paid broadcasts)")
    parser.add_argument("--concurrency", type=int, default=64,
                        help="the baseline's; the bot's sender has DeliverySettings' 64")
    parser.add_argument("--limit", type=int, default=30, help="throttled: calls a second")
    parser.add_argument("--chat-every", type=float, default=2.0)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--stall", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default=os.environ.get("KISS_BENCH_POSTGRES_URL"),
                        help="a PostgreSQL server: each run gets a scratch database on it")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--role", choices=("driver", "baseline"), default="driver",
                        help=argparse.SUPPRESS)
    parser.add_argument("--transport", default="httpx", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", default="", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    asyncio.run(baseline_worker(arguments) if arguments.role == "baseline"
                else main(arguments))
