"""Delivery under faults: whole journeys while the Bot API fails and the bot is killed.

``--users`` simulated shopkeepers (500) go through onboarding and the whole assessment, as in
``telegram_load.py``'s full phase (its driver is imported, not copied), while the emulator
answers a share of the send-like calls (``--fail``, 5%) with 502, and the bot process is
SIGKILLed once, when ``--kill-at`` (40%) of the expected updates are done, and restarted at
once on the same SQLite database. Processes are pinned as in telegram_load (bot on cpu 0,
emulator and driver on cpu 1).

A journey is complete when the user got the result message (detected as telegram_load does).
A user whose reply never comes stalls; the run ends once nothing has moved for ``--stall``
seconds (longer than the 30 s in which a restarted bot must resume its queue), and stalled
users count as incomplete. Afterwards the outbox table tells what the sender did: retries
(``attempts - 1`` of sent rows), ``uncertain``, ``failed``, and rows still not final.

    .venv/bin/python benchmarks/delivery_faults.py --users 500
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from telegram_load import (
    SCRIPT,
    Emulator,
    Figures,
    Pinning,
    bot_env,
    report_cores,
    shopkeeper,
    start_bot,
    stop_bots,
    wait_ready,
)


class PatientEmulator(Emulator):
    """Users wait as long as it takes: a stall is judged by the whole run (``--stall``), not
    by one reply that comes late behind the retries and the bot's rate limit."""

    request_timeout = None


#: Outbox statuses after which the sender does nothing more with a row.
FINAL = ("sent", "failed", "uncertain")
#: Seconds after which a simulated person taps their answer again when no next question came
#: (a reply whose fate the SIGKILL left uncertain is not resent by default).
RETAP = 10.0


class WatchedFigures(Figures):
    """Figures that set ``reached`` once ``updates`` reaches ``mark`` (when to kill the bot)."""

    def __init__(self, mark: int) -> None:
        self.mark = mark
        self.reached = asyncio.Event()
        super().__init__()

    def __setattr__(self, name: str, value: object) -> None:
        super().__setattr__(name, value)
        if name == "updates" and isinstance(value, int) and value >= self.mark:
            self.reached.set()


@dataclass
class Run:
    """What one run measured."""

    users: int
    figures: WatchedFigures
    completed: int = 0
    broken: collections.Counter[str] = field(default_factory=collections.Counter)
    killed_at_update: int | None = None
    restart_to_first_send: float | None = None
    active_seconds: float = 0.0  # until the last progress
    wall_seconds: float = 0.0  # including the final wait for stalled users
    duplicates: collections.Counter[str] = field(default_factory=collections.Counter)
    injected: int = 0
    refused: list[dict[str, object]] = field(default_factory=list)
    outbox: dict[str, tuple[int, int]] = field(default_factory=dict)  # status: (rows, retries)


async def journey(emulator: Emulator, chat_id: int, run: Run, rng: random.Random) -> None:
    """One shopkeeper's whole journey; a step that can no longer be taken breaks it."""
    try:
        await shopkeeper(emulator, chat_id, run.figures, rng, len(SCRIPT), retap=RETAP)
    except asyncio.CancelledError:
        raise
    except Exception as error:  # e.g. the button to press never arrived
        run.broken[f"{type(error).__name__}: {str(error)[:80]}"] += 1
    else:
        run.completed += 1


async def kill_and_restart(emulator: Emulator, bots: list[asyncio.subprocess.Process],
                           folder: str, env: dict[str, str], run: Run, log: BinaryIO) -> None:
    """SIGKILL the bot once the mark of updates is reached, restart it at once, and time the
    first message sent (or edited) after the restart."""
    await run.figures.reached.wait()
    run.killed_at_update = run.figures.updates
    bots[0].kill()
    await bots[0].wait()
    before = (await emulator.control("state"))["sent_count"]
    restarted = time.perf_counter()
    bots[0] = await start_bot(folder, env, log=log)
    await emulator.control("wait_for_sent", count=before + 1)
    run.restart_to_first_send = time.perf_counter() - restarted


async def until_settled(run: Run, tasks: list[asyncio.Task[None]], stall: float) -> float:
    """Wait until every journey ended, or nothing moved for ``stall`` seconds; returns the
    moment of the last progress."""
    last, progress = time.perf_counter(), (-1, -1)
    while not all(task.done() for task in tasks):
        now_progress = (run.figures.updates, run.completed + sum(run.broken.values()))
        if now_progress != progress:
            last, progress = time.perf_counter(), now_progress
        elif time.perf_counter() - last > stall:
            break
        await asyncio.sleep(0.2)
    else:
        last = time.perf_counter()
    return last


def read_outbox(db_path: Path) -> dict[str, tuple[int, int]]:
    """Rows and retries (attempts beyond the first) per outbox status."""
    with sqlite3.connect(db_path) as db:
        rows = db.execute(
            "SELECT status, COUNT(*), COALESCE(SUM(MAX(attempts - 1, 0)), 0)"
            " FROM outbox GROUP BY status").fetchall()
    return {status: (count, retries) for status, count, retries in rows}


async def faulty_run(users: int, fail: float, kill_fraction: float, stall: float,
                     seed: int, log: BinaryIO) -> Run:
    run = Run(users, WatchedFigures(int(kill_fraction * users * len(SCRIPT))))
    with tempfile.TemporaryDirectory() as folder:
        db_path = Path(folder) / "faults.sqlite3"
        async with PatientEmulator() as emulator:
            env = bot_env(db_path, emulator.base_url)
            bots = [await start_bot(folder, env, log=log)]
            try:
                await wait_ready(emulator)
                report_cores("faults", [bots[0].pid], emulator.process.pid)
                await emulator.control("fail_fraction", method="*", fraction=fail, seed=seed)
                rng = random.Random(seed)
                began = time.perf_counter()
                tasks = [asyncio.create_task(journey(emulator, 30_000 + i, run, rng))
                         for i in range(users)]
                killer = asyncio.create_task(kill_and_restart(emulator, bots, folder, env, run,
                                                              log))
                last = await until_settled(run, tasks, stall)
                run.active_seconds = last - began
                run.wall_seconds = time.perf_counter() - began
                for task in (*tasks, killer):
                    task.cancel()
                await asyncio.gather(*tasks, killer, return_exceptions=True)
                state = await emulator.control("state")
                run.duplicates = collections.Counter(
                    (d["text"] or d["caption"] or "(photo)")[:40]
                    for d in await emulator.control("duplicates"))
                run.injected = sum(1 for e in state["errors"] if e.get("injected"))
                run.refused = [e for e in state["errors"] if not e.get("injected")]
            finally:
                await stop_bots(bots)
        run.outbox = read_outbox(db_path)
    return run


def report(run: Run, fail: float, kill_fraction: float) -> None:
    expected = run.users * len(SCRIPT)
    outbox = run.outbox
    not_final = {s: n for s, (n, _) in outbox.items() if s not in FINAL}
    restart = (f"{run.restart_to_first_send:.2f} s" if run.restart_to_first_send is not None
               else "never")
    print(f"delivery_faults: {run.users} users, {fail:.0%} of send-like calls answered 502, "
          f"SIGKILL at {kill_fraction:.0%} of {expected} expected updates "
          f"(at update {run.killed_at_update}), SQLite, pinned: {Pinning.enabled}")
    for name, value in [
            ("journeys completed", f"{run.completed} / {run.users}"),
            ("journeys broken", f"{sum(run.broken.values())} {dict(run.broken.most_common(3))}"),
            ("updates", f"{run.figures.updates} of {expected}"),
            ("retries (outbox)", outbox.get("sent", (0, 0))[1]),
            ("sent rows", outbox.get("sent", (0, 0))[0]),
            ("uncertain rows", outbox.get("uncertain", (0, 0))[0]),
            ("taps again (people)", run.figures.retaps),
            ("failed rows", outbox.get("failed", (0, 0))[0]),
            ("rows not final", f"{sum(not_final.values())} {not_final}"),
            ("duplicates", f"{run.duplicates.total()} {dict(run.duplicates.most_common(3))}"),
            ("restart → first send", restart),
            ("wall time", f"{run.active_seconds:.1f} s to the last progress, "
                          f"{run.wall_seconds:.1f} s in all"),
            ("injected refusals", run.injected),
            ("other refusals", f"{len(run.refused)} {run.refused[:2]}")]:
        print(f"  {name:<22} {value}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--fail", type=float, default=0.05,
                        help="share of send-like calls answered 502")
    parser.add_argument("--kill-at", type=float, default=0.4,
                        help="SIGKILL the bot when this share of the expected updates is done")
    parser.add_argument("--stall", type=float, default=45.0,
                        help="end the run when nothing moved for this many seconds")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    parser.add_argument("--bot-log", type=Path,
                        default=Path(tempfile.gettempdir()) / "delivery_faults_bot.log",
                        help="where the bot's log (warnings and errors) goes")
    args = parser.parse_args()
    Pinning.enabled = Pinning.enabled and not args.no_pin
    Pinning.pin_driver()
    with args.bot_log.open("wb") as log:
        run = await faulty_run(args.users, args.fail, args.kill_at, args.stall, args.seed, log)
    report(run, args.fail, args.kill_at)
    errors = args.bot_log.read_text(errors="replace").count("Traceback")
    print(f"  {'bot log':<22} {args.bot_log} ({errors} tracebacks)")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
