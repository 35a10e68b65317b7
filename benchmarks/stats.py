"""How long a stats view takes on a programme-sized database: ~4,000 assessments
(``--people 10000 --again 500`` for the dashboard's scale).

Seeds a scratch database (not timed) with ``--people`` consented shopkeepers spread over the
62 municipalities (a few large, many small), shop types and team sizes, one completed
assessment each and a second one for ``--again`` of them, a coaching plan with a tip due
for half of them. Then times :meth:`handlers.stats.StatsView.gather` (the two reads, the
k-anonymous figures and the audit entry, in one transaction) and the text for chat and
terminal, ``--repeat`` times, and prints the median and the slowest.

    .venv/bin/python benchmarks/stats.py
    .venv/bin/python benchmarks/stats.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from telegram_load import scratch_database

from flows.places import gazetteer
from flows.texts import Texts
from handlers.stats import StatsView
from storage.database import Database
from storage.tables import (
    COACHING_PLAN,
    DUE,
    IDENTITY,
    RESULT,
    RUN,
    SHOPKEEPER,
    utcnow,
)

THEMES = ("beleving", "vakkennis", "innovatie", "toekomst", "digitalisering", "anders_denken")
SHOP_TYPES = ("food", "fashion", "health", "garden", "home", "diy_electro", "leisure",
              "second_hand", "horeca_services", "other")
TEAM_SIZES = ("solo", "2_4", "5_9", "10_plus")


async def seed(db: Database, people: int, again: int) -> int:
    rng = random.Random(7)
    municipalities = gazetteer().municipalities
    weights = [40 if m in ("Brugge", "Kortrijk", "Oostende", "Roeselare") else
               rng.choice([1, 2, 5, 10]) for m in municipalities]
    now = utcnow()
    shops, identities, runs, results, plans, due = [], [], [], [], [], []
    run_id = 0
    for person in range(1, people + 1):
        shops.append({"id": person, "language": "nl", "language_chosen": True,
                      "consent_at": now, "consent_version": "bench",
                      "shop_name": f"shop {person}",
                      "municipality": rng.choices(municipalities, weights)[0],
                      "shop_type": rng.choice(SHOP_TYPES), "team_size": rng.choice(TEAM_SIZES),
                      "created_at": now, "updated_at": now})
        identities.append({"channel": "telegram", "external_id": str(10_000 + person),
                           "shopkeeper_id": person, "created_at": now})
        for _ in range(2 if person <= again else 1):
            run_id += 1
            at = now - timedelta(weeks=rng.randint(1, 40))
            runs.append({"id": run_id, "shopkeeper_id": person, "flow_id": "assessment",
                         "flow_key": "assessment@bench", "status": "completed", "state": {},
                         "started_at": at, "updated_at": at, "completed_at": at})
            scores = {theme: rng.randint(0, 100) for theme in THEMES}
            results.append({"shopkeeper_id": person, "run_id": run_id,
                            "flow_key": "assessment@bench", "scores": scores,
                            "overall": round(sum(scores.values()) / len(scores)),
                            "focus": [], "created_at": at})
        if person % 2:
            plans.append({"shopkeeper_id": person, "cadence": "weekly", "moment": "morning",
                          "updated_at": now})
            due.append({"shopkeeper_id": person, "kind": "tip", "subject": "",
                        "due_at": now + timedelta(days=2), "count": 0})
    async with db.transaction() as tx:
        for table, rows in ((SHOPKEEPER, shops), (IDENTITY, identities), (RUN, runs),
                            (RESULT, results), (COACHING_PLAN, plans), (DUE, due)):
            for start in range(0, len(rows), 1000):
                await tx.execute(sa.insert(table), rows[start:start + 1000])
    return len(results)


async def measure(url: str, people: int, again: int, repeat: int) -> None:
    db = Database(url)
    await db.upgrade()
    assessments = await seed(db, people, again)
    if url.startswith("postgresql"):
        async with db.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(sa.text("VACUUM ANALYZE"))
    view = StatsView(Texts.load())
    gather, cpu, say = [], [], []
    for _ in range(repeat):
        started, used = time.perf_counter(), time.process_time()
        async with db.transaction() as tx:
            report = await view.gather(tx, actor="bench", via="bench")
        gather.append(time.perf_counter() - started)
        cpu.append(time.process_time() - used)
        started = time.perf_counter()
        view.messages(report, "nl")
        view.table(report, "nl")
        say.append(time.perf_counter() - started)
    await db.close()
    shown = report.insight.breakdowns[0]
    print(f"{db.url.split(':')[0]}: {people} shops, {assessments} assessments; "
          f"{len(shown.groups)} municipalities shown, {shown.folded} folded into other")
    print(f"  gather (reads + figures + audit): median {statistics.median(gather) * 1000:.1f} "
          f"ms, slowest {max(gather) * 1000:.1f} ms")
    # What the bot's own process spends (on SQLite that includes the database's work).
    print(f"  this process's CPU per gather:    median {statistics.median(cpu) * 1000:.1f} ms")
    print(f"  text for chat and terminal:       median {statistics.median(say) * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=3000)
    parser.add_argument("--again", type=int, default=1000,
                        help="how many of them did the check twice")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    if args.database_url is None:
        with tempfile.TemporaryDirectory() as scratch:
            url = f"sqlite+aiosqlite:///{scratch}/bench.sqlite3"
            asyncio.run(measure(url, args.people, args.again, args.repeat))
        return
    with scratch_database(args.database_url) as url:
        asyncio.run(measure(url, args.people, args.again, args.repeat))


if __name__ == "__main__":
    main()
