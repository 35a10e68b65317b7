"""Turns per second through the shopkeeper conversation alone (no Telegram, no HTTP).

N users go through onboarding and the whole assessment concurrently, each turn through
``Dispatcher.handle`` with its database transaction and outbox, and the outbox sender's
bookkeeping (claimed → sending → sent) around a channel that does nothing. Shows what the use
case, storage and delivery bookkeeping cost, apart from any platform.

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
from bot.delivery.limiter import RateLimiter
from bot.delivery.outcomes import Media, Pace
from flows.messages import Outbound, Reply
from handlers.inbound import Inbound

ANSWERS = ["Nederlands", "ja", "Winkel", "Kortrijk", "voeding", "2 tot 4"] + ["1"] * 26


class Nowhere:
    """A channel that delivers instantly (the sender's channel protocol)."""

    async def send(self, to: str, message: Outbound, *, lang: str, done: int,
                   pace: Pace, media: Media | None = None) -> None:
        await pace()


async def run(url: str, users: int, charts: Path) -> tuple[int, float, list[float]]:
    settings = Settings(database_url=url, charts_dir=charts,
                        telegram_api_base_url="http://127.0.0.1:9/bot", log_level="WARNING")
    app = await build(settings)
    app.sender.add_channel("bench", Nowhere(), RateLimiter(rate=1e9, burst=10**6,
                                                         chat_rate=1e9, chat_burst=10**6))
    latencies: list[float] = []

    async def user(i: int) -> None:
        steps = [Inbound("bench", str(i), command="start")]
        steps += [Inbound("bench", str(i), reply=Reply(text=a)) for a in ANSWERS]
        for inbound in steps:
            start = time.perf_counter()
            await app.dispatcher.handle(inbound)
            latencies.append(time.perf_counter() - start)

    began = time.perf_counter()
    await asyncio.gather(*(user(i) for i in range(users)))
    await app.sender.settled()
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
