"""The dashboard's overview at scale: 10,000 shopkeepers and about 250,000 answers.

The goal (issue 14): the overview renders in ≤ 300 ms (median, server time) on SQLite and
PostgreSQL while the bot serves a paced Telegram load whose p95 stays ≤ 100 ms.

Each run seeds a scratch database (not timed) with ``benchmarks/export.py``'s seeder
(consented shopkeepers over the 62 municipalities with completed assessments on the shipped
flow; ``--again`` of them did it twice), adds an admin and a one-time login link, then
starts ``kiss-coach run`` on it: the real bot process, serving Telegram (the emulator of
``benchmarks/telegram_load.py``, by long polling) and the dashboard on its one web server.
The driver logs in through the link and asks for the overview ``--views`` times:

  alone    the overview with nothing else going on;
  loaded   the same while ``--load-users`` paced shopkeepers chat with the bot (its
           ``shopkeeper`` script) at about ``--rate`` updates per second.

The dashboard keeps the overview's figures while the data is unchanged (a few numbers read
per view tell it); the first view computes them (``first``), and under load the paced
shopkeepers finishing the check change the data, so views there mix computed and kept
(the page's ``Server-Timing`` says which: the views that computed are reported apart).
``--fresh`` makes every view compute them.

Server time is the page's own ``Server-Timing`` (from the dashboard's middleware: session,
role check, the figures, the template); the time the driver waited is printed beside it.
Bot on cpu 0, emulator and driver on cpu 1 (``taskset``), as in telegram_load.py.

    .venv/bin/python benchmarks/dashboard.py
    .venv/bin/python benchmarks/dashboard.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import aiohttp
from export import seed
from telegram_load import (
    BOT_CPU,
    ROOT,
    SCRIPT,
    Emulator,
    Figures,
    Pinning,
    bot_env,
    free_port,
    scratch_database,
    shopkeeper,
    start_bot,
    stop_bots,
    wait_ready,
)

ADMIN_CHAT = "999999999"


@dataclass
class Views:
    server_ms: list[float] = field(default_factory=list)
    waited_ms: list[float] = field(default_factory=list)
    #: The server time of the views whose figures were computed (not kept).
    computed_ms: list[float] = field(default_factory=list)

    def line(self, name: str) -> str:
        computed = (f"median {statistics.median(self.computed_ms):6.1f} ms  max "
                    f"{max(self.computed_ms):6.1f} ms" if self.computed_ms else "-")
        return (f"  {name:<7} overview: server median {statistics.median(self.server_ms):6.1f} ms"
                f"  p95 {_p95(self.server_ms):6.1f} ms  max {max(self.server_ms):6.1f} ms  "
                f"first {self.server_ms[0]:6.1f} ms  (waited median "
                f"{statistics.median(self.waited_ms):6.1f} ms)  n={len(self.server_ms)}\n"
                f"          figures computed in {len(self.computed_ms)} of them: {computed}")


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


async def admin_link(url: str) -> str:
    """An admin and a login link for them (before the bot starts: it owns SQLite then)."""
    from storage import dashboard, roles, shopkeepers
    from storage.database import Database
    from storage.tables import Role, utcnow

    db = Database(url)
    try:
        async with db.transaction() as tx:
            admin, _ = await shopkeepers.find_or_create(tx, channel="telegram",
                                                        external_id=ADMIN_CHAT, language="nl")
            await roles.grant(tx, shopkeeper_id=admin.id, role=Role.ADMIN, by="benchmark")
            return await dashboard.create_login(tx, shopkeeper_id=admin.id, now=utcnow())
    finally:
        await db.close()


async def view(http: aiohttp.ClientSession, base: str, views: Views,
               fresh: bool = False) -> None:
    """One overview. ``fresh``: with a period that starts before any check, a day earlier
    each time (the same figures, but not the kept ones: they are computed every time)."""
    query = ""
    if fresh:
        query = f"?since={date(2000, 1, 1) - timedelta(days=len(views.server_ms))}"
    began = time.perf_counter()
    async with http.get(f"{base}/dashboard/{query}") as response:
        body = await response.text()
        timing = response.headers.get("Server-Timing", "")
    views.waited_ms.append((time.perf_counter() - began) * 1000)
    if response.status != 200 or "Per gemeente" not in body:
        raise RuntimeError(f"overview: {response.status} {body[:300]}")
    found = re.search(r"app;dur=([0-9.]+)", timing)
    figures = re.search(r'figures;dur=[0-9.]+;desc="(\w+)"', timing)
    assert found is not None and figures is not None, timing
    views.server_ms.append(float(found[1]))
    if figures[1] == "computed":
        views.computed_ms.append(float(found[1]))


async def one_run(url: str, args: argparse.Namespace) -> tuple[Views, Views, Figures]:
    answers = await seed(url, args.people, args.again, random.Random(7))
    token = await admin_link(url)
    print(f"  seeded {args.people} shopkeepers, {answers} answers", flush=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as folder:
        async with Emulator() as emulator:
            env = {**bot_env(Path(folder) / "unused.sqlite3", emulator.base_url, url),
                   "KISS_HTTP_LISTEN": f"127.0.0.1:{port}"}
            bot = await start_bot(folder, env)
            try:
                await wait_ready(emulator)
                jar = aiohttp.CookieJar(unsafe=True)  # a cookie for 127.0.0.1
                async with aiohttp.ClientSession(cookie_jar=jar) as http:
                    async with http.post(f"{base}/dashboard/login", data={"token": token},
                                         allow_redirects=False) as response:
                        if response.status != 303:  # on to the overview: not followed
                            raise RuntimeError(f"login: {response.status}")
                    alone = Views()
                    for _ in range(args.views):
                        await view(http, base, alone, args.fresh)
                    print(alone.line("alone"), flush=True)
                    loaded, figures = await under_load(emulator, http, base, args)
                    print(loaded.line("loaded"), flush=True)
                    print(f"  load: {figures.updates} updates, p50 "
                          f"{figures.percentile(50):.1f} ms, p95 {figures.percentile(95):.1f} ms",
                          flush=True)
                    return alone, loaded, figures
            finally:
                await stop_bots([bot])


async def under_load(emulator: Emulator, http: aiohttp.ClientSession, base: str,
                     args: argparse.Namespace) -> tuple[Views, Figures]:
    """The paced shopkeepers, and the overview asked for again and again meanwhile."""
    figures = Figures()
    rng = random.Random(11)
    pace = args.load_users / args.rate
    done = asyncio.Event()
    views = Views()

    async def one(i: int) -> None:
        await asyncio.sleep(pace * i / args.load_users)  # spread over one step interval
        await shopkeeper(emulator, 30_000 + i, figures, rng, len(SCRIPT), pace)

    async def overviews() -> None:
        await asyncio.sleep(2.0)  # the load is under way
        while not done.is_set():
            await view(http, base, views, args.fresh)
            await asyncio.sleep(args.every)

    side = asyncio.create_task(overviews())
    began = time.perf_counter()
    try:
        await asyncio.gather(*(one(i) for i in range(args.load_users)))
    finally:
        done.set()
    figures.seconds = time.perf_counter() - began
    await side
    return views, figures


@contextlib.contextmanager
def scratch(server_url: str | None) -> Iterator[str]:
    if server_url is None:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite+aiosqlite:///{Path(folder) / 'dashboard.sqlite3'}"
        return
    with scratch_database(server_url) as url:
        yield url


async def main(args: argparse.Namespace) -> None:
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"{os.getloadavg()[2]:.2f}; bot on cpu {BOT_CPU}", flush=True)
    with scratch(args.database_url) as url:
        print(("PostgreSQL" if url.startswith("postgresql") else "SQLite"), flush=True)
        _alone, loaded, figures = await one_run(url, args)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"{os.getloadavg()[2]:.2f}", flush=True)
    verdict = statistics.median(loaded.server_ms) <= 300 and figures.percentile(95) <= 100
    print(f"goal (overview median ≤ 300 ms under load, load p95 ≤ 100 ms): "
          f"{'met' if verdict else 'NOT met'}")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--again", type=float, default=0.05,
                        help="share of people with a second assessment (T1)")
    parser.add_argument("--views", type=int, default=20, help="overviews without load")
    parser.add_argument("--every", type=float, default=1.0,
                        help="seconds between overviews under load (a busy team of coaches)")
    parser.add_argument("--fresh", action="store_true",
                        help="every view computes its figures (a period a day longer each "
                             "time), as when the data changes between any two views")
    parser.add_argument("--database-url", help="a PostgreSQL server (scratch database)")
    parser.add_argument("--load-users", type=int, default=100)
    parser.add_argument("--rate", type=float, default=50.0, help="load: updates/s offered")
    parser.add_argument("--no-pin", action="store_true")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    if arguments.no_pin:
        Pinning.enabled = False
    sys.path.insert(0, str(ROOT))
    asyncio.run(main(arguments))
