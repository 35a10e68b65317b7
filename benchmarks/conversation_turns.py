"""Turns per second through the shopkeeper conversation alone (no Telegram, no HTTP).

N users go through onboarding and the whole assessment concurrently, each turn through
``ShopkeeperChat.handle`` with its database transaction and outbox, delivery a no-op.
Shows what the use case and storage cost, apart from any channel.

    .venv/bin/python benchmarks/conversation_turns.py --users 200 [--url postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bot.app import build
from bot.config import Settings
from flows.messages import Reply
from handlers.inbound import Delivery, Inbound, Report

ANSWERS = ["Nederlands", "ja", "Winkel", "Kortrijk", "voeding", "2 tot 4"] + ["1"] * 24


async def deliver(deliveries: list[Delivery]) -> Report:
    return Report(deliveries)


async def run(url: str, users: int, charts: Path) -> tuple[int, float, list[float]]:
    settings = Settings(database_url=url, charts_dir=charts,
                        telegram_api_base_url="http://127.0.0.1:9/bot", log_level="WARNING")
    app = await build(settings)
    latencies: list[float] = []

    async def user(i: int) -> None:
        steps = [Inbound("bench", str(i), command="start")]
        steps += [Inbound("bench", str(i), reply=Reply(text=a)) for a in ANSWERS]
        for inbound in steps:
            start = time.perf_counter()
            await app.shopkeeper.handle(inbound, deliver=deliver)
            latencies.append(time.perf_counter() - start)

    began = time.perf_counter()
    await asyncio.gather(*(user(i) for i in range(users)))
    seconds = time.perf_counter() - began
    await app.close()
    return users * (len(ANSWERS) + 1), seconds, latencies


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--url", default=None, help="database URL (default: a temp SQLite)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rates, p95s = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as folder:
            url = args.url or f"sqlite+aiosqlite:///{folder}/bench.sqlite3"
            turns, seconds, latencies = await run(url, args.users, Path(folder))
        latencies.sort()
        rates.append(turns / seconds)
        p95s.append(latencies[int(0.95 * len(latencies))] * 1000)
    print(f"conversation_turns: {args.users} users x {len(ANSWERS) + 1} turns, "
          f"medians of {args.repeat}: {statistics.median(rates):.0f} turns/s, "
          f"p95 {statistics.median(p95s):.1f} ms per turn")


if __name__ == "__main__":
    asyncio.run(main())
