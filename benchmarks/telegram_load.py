"""Load on the Telegram path: simulated shopkeepers against the Bot API emulator.

Three processes share the machine: the emulator (``tests/telegram_emulator.py``), the bot
under test, and this driver, which plays the users through the emulator's control API. Each
is pinned to a core so that the harness does not compete with the bot: the bot (and the echo
bot, and the bot's chart process) on cpu 0, the emulator and this driver on cpu 1 (``taskset``
for the subprocesses, ``os.sched_setaffinity`` for the driver; ``--no-pin`` turns it off).

Phases, each with a fresh emulator:
  baseline  a bare python-telegram-bot echo bot (httpx transport): N users, K texts each
  full      ``kiss-coach run``: N users do onboarding + the whole assessment, closed loop,
            with 10,000 shopkeepers already stored; peak RSS of the bot is reported
  paced     the full stack at a fixed offered rate (default 100 updates/s): p95 latency

Latency is from the moment an update is queued at the emulator to the bot's first new
message in that chat. ``--repeat 3`` runs everything three times and prints medians.

CPU is reported per update for all three processes; the figure to watch is the bot's CPU per
update of the full stack against the bare echo bot's in the same run (printed as a ratio).
The emulator's column also shows how fast the machine is that day (its code does not change
between runs, so when it costs more, everything else does too).

``--database-url postgresql+psycopg://…`` runs the full phase on PostgreSQL, in a scratch
database the benchmark creates on that server and drops afterwards. With ``--bots 2`` as
well, two bot processes serve it in webhook mode behind the emulator's round-robin
``set_webhook_targets`` (a load balancer in front of two replicas): the report shows how the
updates were shared and how many messages were sent twice in a row (``emu.duplicates()``).

    .venv/bin/python benchmarks/telegram_load.py --users 500 --repeat 3
    .venv/bin/python benchmarks/telegram_load.py --full-only --bots 2 \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
TOKEN = "123456:BENCH-TOKEN"
WEBHOOK_SECRET = "bench-webhook-secret"
BOT_CPU, HARNESS_CPU = 0, 1


class Pinning:
    """Which core each process runs on: the bot alone on one, the harness on the other."""

    enabled = (os.cpu_count() or 1) >= 2

    @classmethod
    def prefix(cls, cpu: int) -> list[str]:
        """The ``taskset`` prefix that starts a subprocess on ``cpu`` (nothing if unpinned)."""
        return ["taskset", "-c", str(cpu)] if cls.enabled else []

    @classmethod
    def pin_driver(cls) -> None:
        if cls.enabled:
            os.sched_setaffinity(0, {HARNESS_CPU})

    @staticmethod
    def cores(pid: int) -> str:
        """The cores ``pid`` may run on, as a taskset list ("0", "0-1")."""
        cpus = sorted(os.sched_getaffinity(pid))
        return ",".join(map(str, cpus)) if len(cpus) < 3 else f"{cpus[0]}-{cpus[-1]}"


def report_cores(phase: str, bot_pids: list[int], emulator_pid: int) -> None:
    """Print, once per phase and kind, where the processes really run."""
    key = (phase, len(bot_pids))
    if key in _REPORTED:
        return
    _REPORTED.add(key)
    bots = " ".join(f"bot{n + 1}(pid {pid})=cpu {Pinning.cores(pid)}"
                    for n, pid in enumerate(bot_pids))
    print(f"[{phase}] {bots}, emulator(pid {emulator_pid})=cpu {Pinning.cores(emulator_pid)}, "
          f"driver(pid {os.getpid()})=cpu {Pinning.cores(0)}", file=sys.stderr, flush=True)


_REPORTED: set[tuple[str, int]] = set()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server of ``server_url``, dropped after."""
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"kiss_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Figures:
    updates: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    bot_cpu_seconds: float = 0.0  # user + system time of the bot process(es)
    emulator_cpu_seconds: float = 0.0  # the same for the emulator (Telegram's stand-in)
    driver_cpu_seconds: float = 0.0  # and for this driver (the simulated users)
    per_bot: list[int] = field(default_factory=list)  # updates each replica took (--bots)
    duplicates: int = 0  # messages sent twice in a row (emu.duplicates())
    retaps: int = 0  # answers tapped again because the next question never came (retap)

    @property
    def cpu_ms_per_update(self) -> float:
        return self.per_update(self.bot_cpu_seconds)

    def per_update(self, seconds: float) -> float:
        return seconds / self.updates * 1000 if self.updates else 0.0

    @property
    def per_second(self) -> float:
        return self.updates / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


class Emulator:
    """The emulator in its own process, driven over HTTP.

    ``request_timeout``: how long one control call (a user waiting for a reply) may take.
    """

    request_timeout: float | None = 120.0

    async def __aenter__(self) -> Emulator:
        self.process = await asyncio.create_subprocess_exec(
            *Pinning.prefix(HARNESS_CPU), PYTHON, str(ROOT / "tests" / "telegram_emulator.py"),
            "--port", "0", "--token", TOKEN, stdout=asyncio.subprocess.PIPE)
        assert self.process.stdout is not None
        line = (await self.process.stdout.readline()).decode()
        self.port = int(line.rsplit(":", 1)[1])
        self.base_url = f"http://127.0.0.1:{self.port}/bot"
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=self.request_timeout))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.close()
        self.process.terminate()
        await self.process.wait()

    async def control(self, action: str, **args: Any) -> Any:
        url = f"http://127.0.0.1:{self.port}/_emulator/{action}"
        async with self.http.post(url, json=args) as response:
            body = await response.json()
            if response.status != 200:
                raise RuntimeError(f"{action}: {body}")
            return body.get("result", body)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """Wall time and the CPU time of the bot(s), emulator and driver since creation."""

    def __init__(self, bot_pids: list[int], emulator_pid: int) -> None:
        self.bot_pids = bot_pids
        self.emulator_pid = emulator_pid
        self.began = time.perf_counter()
        self.start = self._now()

    def _now(self) -> tuple[float, float, float]:
        return (sum(map(cpu_seconds, self.bot_pids)), cpu_seconds(self.emulator_pid),
                time.process_time())

    def read_into(self, figures: Figures) -> None:
        now = self._now()
        figures.seconds = time.perf_counter() - self.began
        figures.bot_cpu_seconds, figures.emulator_cpu_seconds, figures.driver_cpu_seconds = (
            after - before for after, before in zip(now, self.start, strict=True))


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def wait_ready(emulator: Emulator, method: str = "getUpdates", count: int = 1) -> None:
    """The bot is up once it has made a getUpdates call (a webhook bot: setWebhook)."""
    for _ in range(1200):
        state = await emulator.control("state")
        if state["calls"].get(method, 0) >= count:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the bot did not call {method}")


# -- the baseline --------------------------------------------------------------------------

async def baseline(users: int, texts: int) -> Figures:
    async with Emulator() as emulator:
        bot = await asyncio.create_subprocess_exec(
            *Pinning.prefix(BOT_CPU), PYTHON, str(ROOT / "benchmarks" / "echo_bot.py"),
            emulator.base_url, TOKEN, stdout=subprocess.DEVNULL)
        try:
            await wait_ready(emulator)
            report_cores("baseline", [bot.pid], emulator.process.pid)
            figures = Figures()

            async def user(chat_id: int) -> None:
                await emulator.control("register_chat", chat_id=chat_id)
                for n in range(texts):
                    start = time.perf_counter()
                    await emulator.control("user_sends_text", chat_id=chat_id, text=f"hallo {n}")
                    await emulator.control("wait_for_chat", chat_id=chat_id, sends=n + 1,
                                           since=10**6)
                    figures.latencies.append(time.perf_counter() - start)
                    figures.updates += 1

            meter = CpuMeter([bot.pid], emulator.process.pid)
            await asyncio.gather(*(user(10_000 + i) for i in range(users)))
            meter.read_into(figures)
            figures.peak_rss_mb = peak_rss_mb(bot.pid)
            return figures
        finally:
            bot.terminate()
            await bot.wait()


# -- the full stack ------------------------------------------------------------------------

def store_shopkeepers(db_path: Path, count: int) -> None:
    """Migrate, then store ``count`` onboarded shopkeepers with a result each."""
    env = bot_env(db_path, base_url="http://127.0.0.1:9/bot")
    subprocess.run([PYTHON, "-m", "bot", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    now = "2026-11-01 10:00:00.000000+00:00"
    with sqlite3.connect(db_path) as db:
        db.executemany(
            "INSERT INTO shopkeeper (id, language, language_chosen, consent_at, consent_version,"
            " shop_name, municipality, shop_type, team_size, created_at, updated_at)"
            " VALUES (?, 'nl', 1, ?, '2026-11', ?, 'Kortrijk', 'food', '2_4', ?, ?)",
            [(i, now, f"Winkel {i}", now, now) for i in range(1, count + 1)])
        db.executemany(
            "INSERT INTO identity (channel, external_id, shopkeeper_id, created_at)"
            " VALUES ('telegram', ?, ?, ?)",
            [(str(900_000 + i), i, now) for i in range(1, count + 1)])
        db.executemany(
            "INSERT INTO run (id, shopkeeper_id, flow_id, flow_key, status, state, started_at,"
            " updated_at) VALUES (?, ?, 'assessment', 'assessment@old', 'completed', '{}', ?, ?)",
            [(i, i, now, now) for i in range(1, count + 1)])
        db.executemany(
            "INSERT INTO assessment_result (shopkeeper_id, run_id, flow_key, scores, overall,"
            " created_at) VALUES (?, ?, 'assessment@old', '{}', 50, ?)",
            [(i, i, now) for i in range(1, count + 1)])


def bot_env(db_path: Path, base_url: str, database_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KISS_", "TELEGRAM_")) or k == "KISS_CONCURRENT_UPDATES"}
    # Telegram's own limits (25/s overall, 1/s per chat) are lifted: the emulator is not
    # Telegram, and what is measured here is the bot's cost per update, not the platform's.
    env.update(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=base_url,
               KISS_DATABASE_URL=database_url or f"sqlite+aiosqlite:///{db_path}",
               KISS_LOG_LEVEL="WARNING", KISS_TELEGRAM_RATE="1000000",
               KISS_TELEGRAM_CHAT_RATE="1000000", KISS_TELEGRAM_CHAT_BURST="1000")
    return env


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Answer buttons only (the steering row, back/later, is left alone)."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [row[0] for row in rows if len(row) == 1 and not row[0]["text"].startswith("⏸")]


def assessment_questions() -> int:
    """How many questions the shipped assessment asks; the driver answers them all (none is
    skipped for a food shop of 2 to 4 people)."""
    from flows.loader import load_library
    return len(load_library(ROOT / "flows")["assessment"].questions())


SCRIPT: list[tuple[str, str]] = [
    ("text", "/start"), ("press", "Nederlands"), ("press", "Ja, dat is oké"),
    ("text", "Winkel {chat}"), ("text", "Kortrijk"), ("press", "Voeding"),
    ("press", "2 tot 4"), *[("press", "*")] * assessment_questions(),
]


class NoAnswerError(RuntimeError):
    """A simulated shopkeeper waited a whole control timeout for the bot's answer."""


async def shopkeeper(emulator: Emulator, chat_id: int, figures: Figures, rng: random.Random,
                     steps: int, pace: float | None = None,
                     retap: float | None = None) -> None:
    """One simulated shopkeeper: each step waits for the bot's reply before the next.

    With ``retap``, a person who pressed an answer and saw no next question for that many
    seconds taps the same answer again, as people do (the bot then asks the current
    question again when its last message may not have arrived)."""
    await emulator.control("register_chat", chat_id=chat_id)
    sends = 0
    seen: list[dict[str, Any]] = []
    began = time.perf_counter()
    for number, (kind, what) in enumerate(SCRIPT[:steps]):
        if pace is not None:  # open loop: step n is due at began + n * pace
            delay = began + number * pace - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        start = time.perf_counter()
        if kind == "text":
            await emulator.control("user_sends_text", chat_id=chat_id,
                                   text=what.format(chat=chat_id))
        else:
            prompt = next(m for m in reversed(seen) if m["reply_markup"])
            options = buttons(prompt)
            button = (rng.choice(options) if what == "*"
                      else next(b for b in options if b["text"] == what))
            await emulator.control("user_presses", chat_id=chat_id,
                                   message_id=prompt["message_id"], data=button["callback_data"])
        while True:
            patience = retap if retap is not None and kind == "press" else None
            try:
                seen = await asyncio.wait_for(emulator.control(
                    "wait_for_chat", chat_id=chat_id, sends=sends + 1), patience)
                break
            except TimeoutError:
                if patience is None:  # the control call's own timeout: no answer at all
                    raise NoAnswerError(
                        f"chat {chat_id}: no answer to step {number + 1} ({kind} {what!r}) "
                        f"within {emulator.request_timeout} s; the bot is stuck or "
                        "the machine far too busy") from None
                figures.retaps += 1
                await emulator.control("user_presses", chat_id=chat_id,
                                       message_id=prompt["message_id"],
                                       data=button["callback_data"])
        figures.latencies.append(time.perf_counter() - start)
        figures.updates += 1
        sends = sum(1 for _ in seen)
        # a turn may say several things; the next press needs the turn's last prompt
        while number + 1 < steps and SCRIPT[number + 1][0] == "press" and not seen[-1][
                "reply_markup"]:
            seen = await emulator.control("wait_for_chat", chat_id=chat_id, sends=sends + 1)
            sends = len(seen)
    if steps == len(SCRIPT):  # the result: wait for its last message
        while not any("/results" in (m["text"] or "") for m in seen[-3:]):
            try:
                seen = await asyncio.wait_for(emulator.control(
                    "wait_for_chat", chat_id=chat_id, sends=sends + 1), retap)
            except TimeoutError:  # no result yet: ask for it, as a person would
                figures.retaps += 1
                await emulator.control("user_sends_text", chat_id=chat_id, text="/results")
                continue
            sends = len(seen)


async def start_bot(folder: str, env: dict[str, str],
                    log: BinaryIO | None = None) -> asyncio.subprocess.Process:
    """``kiss-coach run`` on the bot's core (its stderr to ``log``, if given)."""
    return await asyncio.create_subprocess_exec(
        *Pinning.prefix(BOT_CPU), PYTHON, "-m", "bot", "run", cwd=folder, env=env,
        stderr=log)


async def start_bots(folder: str, emulator: Emulator, db_path: Path, database_url: str | None,
                     bots: int) -> tuple[list[asyncio.subprocess.Process], list[str]]:
    """One polling bot, or ``bots`` webhook replicas behind the emulator's round robin.

    Replicas start one after the other (each calls setWebhook itself once it listens), so
    that their migrations do not race; then the emulator is told to spread over all.
    """
    env = bot_env(db_path, emulator.base_url, database_url)
    if bots == 1:
        process = await start_bot(folder, env)
        await wait_ready(emulator)
        return [process], []
    processes, urls = [], []
    for n in range(bots):
        port = free_port()
        url = f"http://127.0.0.1:{port}/telegram"
        processes.append(await start_bot(folder, {
            **env, "KISS_WEBHOOK_URL": url, "KISS_WEBHOOK_LISTEN": f"127.0.0.1:{port}",
            "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET}))
        urls.append(url)
        await wait_ready(emulator, "setWebhook", n + 1)
    await emulator.control("set_webhook_targets", urls=urls, secret=WEBHOOK_SECRET, auto=True)
    return processes, urls


async def stop_bots(processes: list[asyncio.subprocess.Process]) -> None:
    for process in processes:
        if process.returncode is None:
            process.terminate()
    for process in processes:
        await process.wait()


async def full_stack(users: int, stored: int, *, pace: float | None = None,
                     steps: int = len(SCRIPT), seed: int = 7,
                     database_url: str | None = None, bots: int = 1) -> Figures:
    """``database_url``: an empty database to use instead of a fresh SQLite file (nothing
    is pre-stored in it). ``bots`` > 1: that many webhook replicas (PostgreSQL only)."""
    with tempfile.TemporaryDirectory() as folder:
        db_path = Path(folder) / "bench.sqlite3"
        if database_url is None:
            store_shopkeepers(db_path, stored)
        async with Emulator() as emulator:
            processes, urls = await start_bots(folder, emulator, db_path, database_url, bots)
            try:
                report_cores("paced" if pace else "full", [p.pid for p in processes],
                             emulator.process.pid)
                figures = Figures()
                rng = random.Random(seed)
                spread = pace or 0.0
                meter = CpuMeter([p.pid for p in processes], emulator.process.pid)

                async def one(i: int) -> None:
                    if spread:  # start the paced users evenly over one step interval
                        await asyncio.sleep(spread * i / users)
                    await shopkeeper(emulator, 20_000 + i, figures, rng, steps, pace)

                await asyncio.gather(*(one(i) for i in range(users)))
                meter.read_into(figures)
                figures.peak_rss_mb = max(peak_rss_mb(p.pid) for p in processes)
                state = await emulator.control("state")
                counts = state["webhook_counts"]
                figures.per_bot = [counts.get(url, {}).get("200", 0)  # JSON: keys are text
                                   for url in urls]
                figures.duplicates = state["duplicates"]
                refused = [e for e in state["errors"] if not e.get("injected")]
                if refused:
                    raise RuntimeError(f"the emulator refused calls: {refused[:3]}")
                return figures
            finally:
                await stop_bots(processes)


# -- reporting -----------------------------------------------------------------------------

def row(name: str, runs: list[Figures]) -> str:
    def median(values: list[float]) -> float:
        return statistics.median(values)

    return (f"{name:<10} {median([r.per_second for r in runs]):>9.0f} "
            f"{median([r.percentile(50) for r in runs]):>8.1f} "
            f"{median([r.percentile(95) for r in runs]):>8.1f} "
            f"{median([r.percentile(99) for r in runs]):>8.1f} "
            f"{median([r.peak_rss_mb for r in runs]):>8.0f} "
            f"{median([float(r.updates) for r in runs]):>8.0f} "
            f"{median([r.cpu_ms_per_update for r in runs]):>9.2f} "
            f"{median([r.per_update(r.emulator_cpu_seconds) for r in runs]):>9.2f} "
            f"{median([r.per_update(r.driver_cpu_seconds) for r in runs]):>9.2f}")


async def full_phase(args: argparse.Namespace) -> Figures:
    """The full phase, on a scratch PostgreSQL database when --database-url names a server."""
    if args.database_url is None:
        return await full_stack(args.users, args.stored, bots=args.bots)
    with scratch_database(args.database_url) as url:
        return await full_stack(args.users, args.stored, database_url=url, bots=args.bots)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--stored", type=int, default=10_000)
    parser.add_argument("--baseline-texts", type=int, default=len(SCRIPT),
                        help="texts per user for the echo bot (default: one journey's "
                             f"updates, {len(SCRIPT)})")
    parser.add_argument("--rate", type=float, default=100.0, help="paced phase: updates/s")
    parser.add_argument("--rate-users", type=int, default=100)
    parser.add_argument("--rate-steps", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--full-only", action="store_true", help="skip baseline and paced")
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server for the full stack instead of SQLite: each "
                             "run gets a scratch database on it; --stored does not apply")
    parser.add_argument("--bots", type=int, default=1,
                        help="bot processes for the full stack (more than 1: webhook "
                             "replicas, needs --database-url)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    args = parser.parse_args()
    if args.bots > 1 and not (args.database_url or "").startswith("postgresql"):
        parser.error("--bots 2 needs --database-url postgresql+psycopg://…")
    Pinning.enabled = Pinning.enabled and not args.no_pin
    Pinning.pin_driver()
    print(f"pinning: {'bot on cpu 0, emulator and driver on cpu 1' if Pinning.enabled else 'off'}",
          file=sys.stderr, flush=True)

    results: dict[str, list[Figures]] = {"baseline": [], "full": [], "paced": []}
    for run in range(args.repeat):
        if not args.full_only:
            results["baseline"].append(await baseline(args.users, args.baseline_texts))
        results["full"].append(await full_phase(args))
        if not args.full_only:
            pace = args.rate_users / args.rate  # seconds between one user's steps
            results["paced"].append(await full_stack(args.rate_users, args.stored, pace=pace,
                                                     steps=args.rate_steps))
        print(f"run {run + 1}/{args.repeat} done", file=sys.stderr, flush=True)

    where = args.database_url.split("@")[-1] if args.database_url else "SQLite"
    stored = 0 if args.database_url else args.stored
    print(f"telegram_load: {args.users} users, {stored} stored, {where}, {args.bots} bot(s), "
          f"{os.cpu_count()} cores, pinned: {Pinning.enabled}, medians of {args.repeat} run(s)")
    print(f"{'phase':<10} {'updates/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'RSS MB':>8} {'updates':>8} {'CPU ms/u':>9} {'emulator':>9} {'driver':>9}")
    for name, runs in results.items():
        if runs:
            print(row(name, runs))
    if results["baseline"]:
        full = statistics.median([r.per_second for r in results["full"]])
        echo = statistics.median([r.per_second for r in results["baseline"]])
        print(f"full stack / bare echo bot: {full / echo:.2f}x updates/s")
        cpu_full = statistics.median([r.cpu_ms_per_update for r in results["full"]])
        cpu_echo = statistics.median([r.cpu_ms_per_update for r in results["baseline"]])
        print(f"bot CPU per update, full stack / bare echo bot: {cpu_full / cpu_echo:.2f}x "
              f"({cpu_full:.2f} / {cpu_echo:.2f} ms)")
    if args.bots > 1:
        for n, figures in enumerate(results["full"]):
            shares = ", ".join(f"bot{i + 1} {count}" for i, count in enumerate(figures.per_bot))
            print(f"full run {n + 1}: updates delivered per bot: {shares}; "
                  f"duplicates: {figures.duplicates}")


if __name__ == "__main__":
    asyncio.run(main())
