"""Exports at scale: 100,000 answers (about 4,000 assessments) to CSV and XLSX.

The goal (issue 11): "CSV ≤ 5 s, XLSX ≤ 30 s, peak RSS ≤ 250 MB, on SQLite and PostgreSQL,
while a paced Telegram load on the same database keeps its p95 ≤ 100 ms".

Each run seeds a scratch database (not timed): ``--people`` consented shopkeepers (a
Telegram identity, a profile spread over the 62 municipalities and the shop types), each with
a completed assessment on the shipped flow (random answers, scored by ``flows.scoring``) and
a second one (T1) for ``--again`` of them, so ``--people 2500 --again 0.6`` gives 4,000
assessments and about 100,000 answers; plus a tip history and a commitment for some.

Phases:
  export  ``kiss-coach export --what answers --format csv|xlsx`` as its own process (the way
          an admin runs it), timed from start to exit (and the writing alone, as the command
          reports it: without Python's start-up, imports and the migration check); peak RSS
          from ``wait4``. Rows written are checked (must equal the answers seeded).
  load    first the paced load alone (for comparison), then
          ``kiss-coach run`` on the same database under the paced Telegram load of
          ``benchmarks/telegram_load.py`` (its emulator, driver and ``taskset`` pinning:
          bot on cpu 0, emulator and driver on cpu 1), while exports (CSV, then XLSX,
          again and again) run on cpu 1 beside the harness until the load ends: p50/p95 of
          the load's latencies, how many exports ran meanwhile and their times.
          ``--no-load`` skips it.

``--repeat 3`` reseeds and reruns everything and prints medians (and every run).
``--database-url postgresql+psycopg://…`` uses a scratch database on that server, created
and dropped per run.

    .venv/bin/python benchmarks/export.py --repeat 3
    .venv/bin/python benchmarks/export.py --repeat 3 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from telegram_load import (
    HARNESS_CPU,
    PYTHON,
    ROOT,
    Figures,
    Pinning,
    full_stack,
    scratch_database,
)

CHAT_BASE = 800_000_000
#: The chat ids of the paced load's shopkeepers (``telegram_load.full_stack``).
LOAD_CHATS = 20_000


async def seed(url: str, people: int, again: float, rng: random.Random) -> int:
    """Migrate and store the people, their assessments and tips; the answers stored."""
    from flows.loader import load_library
    from flows.places import gazetteer
    from flows.scoring import score
    from handlers.flow_versions import FlowVersions
    from storage import tables as t
    from storage.database import Database

    flow = load_library(ROOT / "flows")["assessment"]
    municipalities = gazetteer().municipalities
    db = Database(url)
    await db.upgrade()
    rows: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    answers_stored = 0
    now = datetime.now(UTC)
    run_id = 0
    for person in range(1, people + 1):
        joined = now - timedelta(days=rng.randint(120, 400))
        profile = {"shop_type": rng.choice(("food", "fashion", "health", "garden", "home",
                                                "horeca_services", "other")),
                   "team_size": rng.choice(("solo", "2_4", "5_9", "10_plus"))}
        rows["shopkeeper"].append({
            "id": person, "language": "nl", "language_chosen": True, "consent_at": joined,
            "consent_version": "2026-11", "shop_name": f"Winkel {person}",
            "municipality": rng.choice(municipalities), "municipality_input": None,
            **profile, "created_at": joined, "updated_at": joined})
        rows["identity"].append({"channel": "telegram", "external_id": str(CHAT_BASE + person),
                                 "shopkeeper_id": person, "created_at": joined})
        for round_ in range(2 if rng.random() < again else 1):
            run_id += 1
            done_at = joined + timedelta(days=1 + 90 * round_)
            answers = {node.id: rng.choice(node.choices).id for node in flow.questions()
                       if flow.asks(node, profile)}
            answers_stored += len(answers)
            result = score(flow, answers, profile)
            rows["run"].append({
                "id": run_id, "shopkeeper_id": person, "flow_id": "assessment",
                "flow_key": flow.key, "status": "completed",
                "state": {"node_id": None, "answers": answers, "history": list(answers),
                          "seq": len(answers)},
                "started_at": done_at, "updated_at": done_at, "completed_at": done_at})
            rows["assessment_result"].append({
                "shopkeeper_id": person, "run_id": run_id, "flow_key": flow.key,
                "scores": result.scores, "overall": result.overall,
                "focus": list(result.focus), "created_at": done_at})
        if rng.random() < 0.4:
            sent_at = joined + timedelta(days=10)
            rows["tip_sent"].append({
                "shopkeeper_id": person, "tip_id": f"tip{rng.randint(1, 60)}",
                "theme": "beleving", "kind": "etalage", "sent_at": sent_at,
                "outcome": rng.choice((None, "done", "later")), "outcome_at": None})
    tables = {"shopkeeper": t.SHOPKEEPER, "identity": t.IDENTITY, "run": t.RUN,
              "assessment_result": t.RESULT, "tip_sent": t.TIP_SENT}
    try:
        async with db.transaction() as tx:
            await FlowVersions({"assessment": flow}).remember_current(tx)
            for name, table in tables.items():
                for start in range(0, len(rows[name]), 5000):
                    await tx.execute(table.insert(), rows[name][start:start + 5000])
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
    return answers_stored


@dataclass
class Exported:
    format: str
    seconds: float
    peak_rss_mb: float
    rows: int
    writing: float  # the export itself, as the command reports it (without Python's start)


def export(url: str, folder: str, fmt: str, cpu: int | None = None) -> Exported:
    """``kiss-coach export --what answers`` as its own process: wall time, peak RSS, rows."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KISS_", "TELEGRAM_"))}
    env.update(KISS_DATABASE_URL=url, KISS_LOG_LEVEL="WARNING")
    output = Path(folder) / f"answers.{fmt}"
    prefix = Pinning.prefix(cpu) if cpu is not None else []
    began = time.perf_counter()
    process = subprocess.Popen(
        [*prefix, PYTHON, "-m", "bot", "export", "--what", "answers", "--format", fmt,
         "--output", str(output)], cwd=folder, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - began
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.stderr is not None
    said = process.stderr.read().decode()
    if process.returncode != 0:
        raise RuntimeError(f"export failed: {said}")
    last = said.strip().splitlines()[-1].split()  # "N rows to PATH in S s"
    output.unlink()
    return Exported(fmt, seconds, usage.ru_maxrss / 1024, int(last[0]), float(last[-2]))


@dataclass
class Run:
    answers: int
    exports: list[Exported] = field(default_factory=list)
    alone: Figures | None = None  # the same load without exports, for comparison
    load: Figures | None = None
    during_load: list[Exported] = field(default_factory=list)


async def under_load(url: str, folder: str, args: argparse.Namespace) -> tuple[Figures,
                                                                              list[Exported]]:
    """The paced Telegram load on ``url`` with exports running beside it until it ends."""
    done = asyncio.Event()
    exported: list[Exported] = []

    async def exports_meanwhile() -> None:
        await asyncio.sleep(args.export_after)  # the bot starts and the load settles
        formats = ("csv", "xlsx")
        while not done.is_set():
            fmt = formats[len(exported) % 2]
            exported.append(await asyncio.to_thread(export, url, folder, fmt, HARNESS_CPU))

    side = asyncio.create_task(exports_meanwhile())
    try:
        figures = await full_stack(args.load_users, 0, pace=args.load_users / args.rate,
                                   database_url=url)
    finally:
        done.set()
    await side
    return figures, exported


async def forget_load(url: str, users: int) -> None:
    """Undo the first load, so the second meets the same: new shopkeepers (the script is
    an onboarding and a whole check; people who did it already are greeted differently),
    and update ids never seen (the next phase's fresh emulator counts from 1 again, which
    Telegram never does: the bot would take every update for a redelivery and answer
    none)."""
    from storage.database import Database
    from storage.tables import IDENTITY, INBOX, SHOPKEEPER

    chats = [str(LOAD_CHATS + i) for i in range(users)]
    db = Database(url)
    try:
        async with db.transaction() as tx:
            await tx.execute(sa.delete(INBOX))
            await tx.execute(sa.delete(SHOPKEEPER).where(SHOPKEEPER.c.id.in_(
                sa.select(IDENTITY.c.shopkeeper_id).where(
                    IDENTITY.c.channel == "telegram", IDENTITY.c.external_id.in_(chats)))))
    finally:
        await db.close()


@contextlib.contextmanager
def scratch(server_url: str | None) -> Iterator[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as folder:
        if server_url is None:
            yield f"sqlite+aiosqlite:///{Path(folder) / 'export.sqlite3'}", folder
            return
        with scratch_database(server_url) as url:
            yield url, folder


async def one_run(args: argparse.Namespace, seed_number: int) -> Run:
    with scratch(args.database_url) as (url, folder):
        answers = await seed(url, args.people, args.again, random.Random(seed_number))
        run = Run(answers)
        for fmt in ("csv", "xlsx"):
            made = export(url, folder, fmt)
            if made.rows != answers:
                raise RuntimeError(f"{fmt}: {made.rows} rows written, {answers} answers stored")
            run.exports.append(made)
            print(f"  {fmt:5} {made.seconds:6.2f} s (writing {made.writing:.1f} s)  "
                  f"{made.peak_rss_mb:6.0f} MB  {made.rows} rows", flush=True)
        if not args.no_load:
            run.alone = await full_stack(args.load_users, 0,
                                         pace=args.load_users / args.rate, database_url=url)
            print(f"  load alone  p50 {run.alone.percentile(50):.1f} ms  p95 "
                  f"{run.alone.percentile(95):.1f} ms  {run.alone.updates} updates", flush=True)
            await forget_load(url, args.load_users)
            run.load, run.during_load = await under_load(url, folder, args)
            print(f"  with exports  p50 {run.load.percentile(50):.1f} ms  p95 "
                  f"{run.load.percentile(95):.1f} ms  {run.load.updates} updates, "
                  f"{len(run.during_load)} exports meanwhile: "
                  + ", ".join(f"{e.format} {e.seconds:.1f} s" for e in run.during_load),
                  flush=True)
        return run


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(args: argparse.Namespace, runs: list[Run]) -> None:
    where = "PostgreSQL" if args.database_url else "SQLite"
    print(f"\n{where}: {runs[0].answers:,} answers, medians over {len(runs)} runs")
    for fmt, limit in (("csv", 5.0), ("xlsx", 30.0)):
        seconds = [e.seconds for r in runs for e in r.exports if e.format == fmt]
        rss = [e.peak_rss_mb for r in runs for e in r.exports if e.format == fmt]
        writing = [e.writing for r in runs for e in r.exports if e.format == fmt]
        print(f"  {fmt:5} {median(seconds):6.2f} s (goal ≤ {limit:.0f} s; of which writing "
              f"{median(writing):.1f} s)  peak RSS "
              f"{median(rss):5.0f} MB (goal ≤ 250)   runs: "
              + ", ".join(f"{s:.2f}" for s in seconds))
    alone = [r.alone for r in runs if r.alone is not None]
    if alone:
        p95 = [f.percentile(95) for f in alone]
        print(f"  paced load {args.rate:.0f} updates/s alone: p50 "
              f"{median([f.percentile(50) for f in alone]):.1f} ms, p95 {median(p95):.1f} ms"
              "   runs: " + ", ".join(f"{p:.1f}" for p in p95))
    loads = [r.load for r in runs if r.load is not None]
    if loads:
        p95 = [f.percentile(95) for f in loads]
        print(f"  paced load {args.rate:.0f} updates/s with exports beside it: p50 "
              f"{median([f.percentile(50) for f in loads]):.1f} ms, p95 {median(p95):.1f} ms "
              "(goal ≤ 100)   runs: " + ", ".join(f"{p:.1f}" for p in p95))
        for fmt in ("csv", "xlsx"):
            during = [e.seconds for r in runs for e in r.during_load if e.format == fmt]
            print(f"  {fmt} exports during the load: {len(during)}, median "
                  f"{median(during):.2f} s")


async def main(args: argparse.Namespace) -> None:
    Pinning.pin_driver()
    runs = []
    for number in range(args.repeat):
        print(f"run {number + 1} of {args.repeat}", flush=True)
        runs.append(await one_run(args, seed_number=number + 1))
    report(args, runs)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=2500)
    parser.add_argument("--again", type=float, default=0.6,
                        help="share of people with a second assessment (T1)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--database-url", help="a PostgreSQL server (scratch database)")
    parser.add_argument("--no-load", action="store_true", help="the export figures only")
    parser.add_argument("--load-users", type=int, default=100)
    parser.add_argument("--rate", type=float, default=50.0, help="load: updates/s offered")
    parser.add_argument("--export-after", type=float, default=4.0,
                        help="seconds into the load before the first export")
    parser.add_argument("--no-pin", action="store_true")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    if arguments.no_pin:
        Pinning.enabled = False
    sys.path.insert(0, str(ROOT))
    asyncio.run(main(arguments))
