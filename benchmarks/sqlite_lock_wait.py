"""SQLite drivers compared: the cost of a turn, and the event loop while another process writes.

Two questions decide which SQLite driver the bot keeps:

1. **Cost**: CPU and wall time per turn-like transaction (SELECT one row by an index, UPDATE
   it, INSERT a log row, COMMIT), run back to back and by 20 concurrent tasks on the one
   pooled connection. CPU is ``time.process_time()``, so aiosqlite's worker thread counts.
2. **Stall**: another process holds the write lock (``BEGIN IMMEDIATE``) for ``--hold``
   seconds while the bot runs one turn. A ticker task sleeping 1 ms records the longest
   gap between its wake-ups from then until the lock is released: how long the event loop
   was held up at once (about 1 ms when nothing holds it up).

Drivers (all with WAL, synchronous=NORMAL, pool_size=1, as ``Database`` configures):

- ``aiosqlite``: stock aiosqlite (a worker thread), SQLAlchemy's default transactions
  (sqlite3 begins before the first write), busy_timeout 5 s.
- ``aiosqlite-immediate``: the same, transactions begun with ``BEGIN IMMEDIATE``.
- ``inline-before``: the inline driver as it was: busy_timeout 5 s on the event loop,
  sqlite3's own transactions.
- ``inline``: the inline driver now: ``BEGIN IMMEDIATE``, busy_timeout 2 ms, then async
  pauses (``storage.sqlite_inline``).

    .venv/bin/python benchmarks/sqlite_lock_wait.py [--turns 5000] [--hold 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storage import sqlite_inline

METADATA = sa.MetaData()
SHOPS = sa.Table("shops", METADATA,
                 sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("key", sa.String, nullable=False, unique=True),
                 sa.Column("turns", sa.Integer, nullable=False))
LOG = sa.Table("log", METADATA,
               sa.Column("id", sa.Integer, primary_key=True),
               sa.Column("shop_id", sa.Integer, sa.ForeignKey("shops.id"), nullable=False),
               sa.Column("at", sa.Float, nullable=False))
ROWS = 10_000

FIND = sa.select(SHOPS.c.id, SHOPS.c.turns).where(SHOPS.c.key == sa.bindparam("key"))
BUMP = SHOPS.update().where(SHOPS.c.id == sa.bindparam("shop")).values(
    turns=sa.bindparam("turns"))
NOTE = LOG.insert()

HOLDER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""


def pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in ("foreign_keys=ON", "journal_mode=WAL", "synchronous=NORMAL"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def engine_for(driver: str, path: Path) -> AsyncEngine:
    # sqlite+aiosqlite: SQLAlchemy's dialect, sqlite3 begins before the first write;
    # sqlite+kiss_inline: the same with BEGIN IMMEDIATE (storage.sqlite_inline.Dialect).
    immediate = driver in ("aiosqlite-immediate", "inline")
    url = f"{sqlite_inline.DRIVERNAME if immediate else 'sqlite+aiosqlite'}:///{path}"
    options: dict[str, Any] = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 60}
    if driver.startswith("aiosqlite"):
        options["connect_args"] = {"timeout": 5.0}
    elif driver == "inline-before":
        options["async_creator"] = sqlite_inline.connector(str(path), busy_timeout_ms=5000)
    elif driver == "inline":
        options["async_creator"] = sqlite_inline.connector(str(path))
    else:
        raise ValueError(driver)
    engine = create_async_engine(url, **options)
    sa.event.listen(engine.sync_engine, "connect", pragmas)
    return engine


async def turn(engine: AsyncEngine, n: int) -> None:
    async with engine.begin() as connection:
        shop_id, turns = (await connection.execute(FIND, {"key": f"shop-{n % ROWS}"})).one()
        await connection.execute(BUMP, {"shop": shop_id, "turns": turns + 1})
        await connection.execute(NOTE, {"shop_id": shop_id, "at": time.time()})


async def prepare(path: Path) -> None:
    engine = engine_for("inline", path)
    async with engine.begin() as connection:
        await connection.run_sync(METADATA.create_all)
        await connection.execute(SHOPS.insert(), [{"key": f"shop-{i}", "turns": 0}
                                                  for i in range(ROWS)])
    await engine.dispose()


@dataclass
class Cost:
    wall_us: float
    cpu_us: float


async def cost(driver: str, path: Path, turns: int, concurrency: int) -> Cost:
    engine = engine_for(driver, path)
    await turn(engine, 0)  # connect and warm the statement cache
    per_task = turns // concurrency

    async def worker(k: int) -> None:
        for n in range(per_task):
            await turn(engine, k * per_task + n)

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await engine.dispose()
    done = per_task * concurrency
    return Cost(wall / done * 1e6, cpu / done * 1e6)


@dataclass
class Stall:
    longest_gap_ms: float
    turn_ms: float
    outcome: str


async def stall(driver: str, path: Path, hold: float) -> Stall:
    engine = engine_for(driver, path)
    await turn(engine, 0)
    longest = 0.0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            longest = max(longest, now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, str(path), str(hold), stdout=asyncio.subprocess.PIPE)
    assert holder.stdout is not None
    assert await holder.stdout.readline() == b"locked\n"
    longest = 0.0  # from here: starting the holder process is not the driver's doing
    began = time.perf_counter()
    try:
        await turn(engine, 1)
        outcome = "ok"
    except sa.exc.OperationalError as error:
        outcome = f"failed: {error.orig}"
    took = time.perf_counter() - began
    await holder.wait()
    stop.set()
    await ticking
    await engine.dispose()
    return Stall(longest * 1000, took * 1000, outcome)


async def idle_gap(seconds: float) -> float:
    """The longest gap of the same ticker with nothing else running: the noise floor."""
    longest, last, end = 0.0, time.perf_counter(), time.perf_counter() + seconds
    while last < end:
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    return longest * 1000


def median(values: list[float]) -> float:
    return statistics.median(values)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=5000)
    parser.add_argument("--hold", type=float, default=2.0, help="seconds the lock is held")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--drivers", default="aiosqlite,aiosqlite-immediate,inline-before,inline")
    args = parser.parse_args()
    drivers = args.drivers.split(",")
    print(f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, "
          f"SQLAlchemy {sa.__version__}; medians of {args.repeat} runs")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.sqlite3"
        await prepare(path)
        print(f"\n1. Cost per turn (SELECT by index, UPDATE, INSERT, COMMIT), {args.turns} turns")
        print(f"{'driver':<22}{'tasks':>6}{'wall µs/turn':>14}{'CPU µs/turn':>13}{'turns/s':>10}")
        for concurrency in (1, 20):
            for driver in drivers:
                runs = [await cost(driver, path, args.turns, concurrency)
                        for _ in range(args.repeat)]
                wall = median([r.wall_us for r in runs])
                cpu = median([r.cpu_us for r in runs])
                print(f"{driver:<22}{concurrency:>6}{wall:>14.0f}{cpu:>13.0f}{1e6 / wall:>10.0f}")
        print(f"\n2. Another process holds the write lock for {args.hold:g} s during one turn")
        print(f"{'driver':<22}{'longest loop stall ms':>22}{'turn ms':>10}  outcome")
        floor = median([await idle_gap(args.hold) for _ in range(args.repeat)])
        print(f"{'(ticker alone)':<22}{floor:>22.1f}")
        for driver in drivers:
            stalls = [await stall(driver, path, args.hold) for _ in range(args.repeat)]
            gap = median([s.longest_gap_ms for s in stalls])
            took = median([s.turn_ms for s in stalls])
            outcomes = ", ".join(sorted({s.outcome for s in stalls}))
            print(f"{driver:<22}{gap:>22.1f}{took:>10.0f}  {outcomes}")


if __name__ == "__main__":
    asyncio.run(main())
