"""What the operator's view costs: a /healthz check and a /metrics scrape on a large outbox,
and the hooks on every turn, send and log line.

Seeds a scratch database (not timed) with ``--rows`` outbox rows (mostly sent, some queued,
errored, failed and uncertain, as after months of use) and ``--due`` due rows, then times:

  healthz  :meth:`bot.health.Health.check` (the schema's revision and the backlog query)
  metrics  :meth:`bot.metrics.Metrics.exposition` (outbox rows by status, tips due, tokens
           this month, and the text format)
  hooks    one turn's :meth:`Metrics.turn_handled` plus one :meth:`Metrics.sent`
  logs     one log record, from its creation to a formatted line (JSON and plain), in a turn

SQLite runs statements on the event loop thread (``storage/sqlite_inline``), so the healthz
and metrics times are also how long they hold the loop there.

    .venv/bin/python benchmarks/operator.py
    .venv/bin/python benchmarks/operator.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from telegram_load import scratch_database

from bot import logs
from bot.health import Health
from bot.metrics import Metrics
from handlers import turn_ids
from storage.database import Database
from storage.tables import DUE, OUTBOX, SHOPKEEPER, utcnow

STATUSES = (["sent"] * 96 + ["queued"] * 1 + ["errored"] * 1 + ["failed"] * 1
            + ["uncertain"] * 1)


async def seed(db: Database, rows: int, due: int) -> None:
    rng = random.Random(7)
    now = utcnow()
    people = max(1, due)
    shops = [{"id": i, "language": "nl", "language_chosen": True, "created_at": now,
              "updated_at": now} for i in range(1, people + 1)]
    messages = []
    for i in range(rows):
        status = rng.choice(STATUSES)
        at = now - timedelta(minutes=rng.randint(0, 60 * 24 * 90))
        messages.append({"shopkeeper_id": rng.randint(1, people), "channel": "telegram",
                         "external_id": str(10_000 + i % people), "payload": {"text": "x"},
                         "kind": "bulk", "status": status, "ordered": True, "attempts": 0,
                         "progress": 0, "created_at": at,
                         # what waits is due within the last minute: a healthy backlog
                         "next_attempt_at": now - timedelta(seconds=rng.randint(0, 60))
                         if status in ("queued", "errored") else at})
    dues = [{"shopkeeper_id": i, "kind": "tip", "subject": "", "count": 0,
             "due_at": now + timedelta(hours=rng.randint(-48, 24 * 14))}
            for i in range(1, due + 1)]
    async with db.transaction() as tx:
        for table, batch in ((SHOPKEEPER, shops), (OUTBOX, messages), (DUE, dues)):
            for start in range(0, len(batch), 2000):
                await tx.execute(sa.insert(table), batch[start:start + 2000])


async def timed(work: Callable[[], Awaitable[object]], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await work()
        times.append(time.perf_counter() - started)
    return times


def per_call(work: Callable[[], object], calls: int) -> float:
    """Microseconds per call of ``work``."""
    started = time.perf_counter()
    for _ in range(calls):
        work()
    return (time.perf_counter() - started) / calls * 1e6


async def measure(url: str, rows: int, due: int, repeat: int) -> None:
    db = Database(url)
    await db.upgrade()
    await seed(db, rows, due)
    if url.startswith("postgresql"):
        async with db.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(sa.text("VACUUM ANALYZE"))
    metrics = Metrics(db)
    health = Health(db, channels=lambda: ["telegram"], last_success=metrics.last_success,
                    backlog_limit=timedelta(minutes=5), timeout=timedelta(seconds=10))
    checks = await timed(health.check, repeat)
    scrapes = await timed(metrics.exposition, repeat)
    healthy, report = await health.check()
    await db.close()

    def hooks() -> None:
        metrics.turn_handled("telegram", 0.012)
        metrics.sent("telegram")

    hook_us = per_call(hooks, 100_000)
    logs.hide("123456:BENCH-TOKEN-not-in-any-line")
    log = logging.getLogger("bench.operator")
    json_line, plain_line = logs.JsonFormatter(), logs.PlainFormatter(logs.PLAIN)

    def line(formatter: logging.Formatter) -> Callable[[], object]:
        return lambda: formatter.format(log.makeRecord(
            log.name, logging.INFO, __file__, 1, "sent %s of %s", (3, "telegram:77"), None))

    with turn_ids.turn("telegram:912345678"):
        turn_ids.person(4242)
        json_us = per_call(line(json_line), 20_000)
        plain_us = per_call(line(plain_line), 20_000)

    print(f"{db.url.split(':')[0]}: {rows} outbox rows, {due} due rows; healthz says "
          f"{'ok' if healthy else 'failing'} ({report['backlog']['waiting']} waiting)")
    for name, times in (("healthz check", checks), ("metrics scrape", scrapes)):
        print(f"  {name:<15} median {statistics.median(times) * 1000:7.2f} ms, "
              f"slowest {max(times) * 1000:7.2f} ms  ({repeat} runs)")
    print(f"  hooks per turn   {hook_us:7.2f} µs (turn_handled + sent)")
    print(f"  log line, JSON   {json_us:7.2f} µs;  plain {plain_us:7.2f} µs "
          "(record made and formatted, in a turn, with one secret to hide)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000, help="outbox rows")
    parser.add_argument("--due", type=int, default=10_000, help="due rows (tips)")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    if args.database_url is None:
        with tempfile.TemporaryDirectory() as scratch:
            url = f"sqlite+aiosqlite:///{scratch}/bench.sqlite3"
            asyncio.run(measure(url, args.rows, args.due, args.repeat))
        return
    with scratch_database(args.database_url) as url:
        asyncio.run(measure(url, args.rows, args.due, args.repeat))


if __name__ == "__main__":
    main()
