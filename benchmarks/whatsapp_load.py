"""Load on the WhatsApp path: simulated shopkeepers post signed webhooks to ``kiss-coach run``.

The bot runs as its own process on cpu 0 (``taskset``); this driver, which holds the Graph API
emulator (``tests/graph_emulator.py``) and plays the users, runs on cpu 1 (``--no-pin``
turns that off). Each user goes through onboarding and the first questions of the check,
``--steps`` updates in all, open loop: step n is posted at start + n * interval, whatever the
bot did, so that ``--users`` people offer ``--rate`` updates per second in total.

Figures:
  ack       how long the bot took to answer a webhook post (stored in the inbox, 200):
            p50/p95/p99; the goal is p95 ≤ 20 ms at 100/s offered
  reply     from the post to the bot's next message to that person, at the emulator
  cpu/upd   the bot process's user + system CPU per update handled

``--compare-telegram`` runs the same users, steps and rate on the Telegram path
(``benchmarks/telegram_load.py``'s paced phase: the Bot API emulator, long polling) and
prints the ratio of CPU per update (goal: within ±25%). ``--repeat 3`` prints medians.

    .venv/bin/python benchmarks/whatsapp_load.py --users 500 --rate 100 --repeat 3 \\
        --compare-telegram
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "benchmarks")]

import telegram_load as tg  # noqa: E402  (the shared harness: pinning, CPU meters)
from graph_emulator import GraphEmulator, Sent  # noqa: E402

SCRIPT: list[tuple[str, str]] = [
    ("text", "hallo"), ("press", "Nederlands"), ("press", "Ja, dat is oké"),
    ("text", "Winkel {n}"), ("text", "Kortrijk"), ("press", "Voeding"),
    ("press", "2 tot 4"), *[("press", "*")] * 26,
]


@dataclass
class Figures:
    updates: int = 0
    seconds: float = 0.0
    acks: list[float] = field(default_factory=list)
    replies: list[float] = field(default_factory=list)
    bot_cpu_seconds: float = 0.0
    refused: int = 0

    @property
    def cpu_ms_per_update(self) -> float:
        return self.bot_cpu_seconds / self.updates * 1000 if self.updates else 0.0

    @staticmethod
    def percentile(values: list[float], p: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def bot_env(folder: str, graph: GraphEmulator, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KISS_", "TELEGRAM_", "WHATSAPP_"))
           or k == "KISS_CONCURRENT_UPDATES"}
    # WhatsApp's throughput limit is lifted: what is measured is the bot's cost.
    env.update(WHATSAPP_ACCESS_TOKEN=graph.token, WHATSAPP_APP_SECRET=graph.app_secret,
               WHATSAPP_VERIFY_TOKEN="bench-verify-token",
               WHATSAPP_PHONE_NUMBER_ID=graph.phone_number_id,
               WHATSAPP_API_BASE_URL=graph.base_url, KISS_WHATSAPP_RATE="1000000",
               KISS_HTTP_LISTEN=f"127.0.0.1:{port}", KISS_LOG_LEVEL="WARNING",
               KISS_DATABASE_URL=f"sqlite+aiosqlite:///{Path(folder) / 'bench.sqlite3'}")
    return env


async def wait_listening(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(1200):
            try:
                async with http.get(url, params={"hub.mode": "subscribe",
                                                 "hub.verify_token": "bench-verify-token",
                                                 "hub.challenge": "up"}) as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("the bot did not start listening")


def prompt_of(seen: list[Sent]) -> Sent:
    return next(m for m in reversed(seen) if m.choices)


async def shopkeeper(graph: GraphEmulator, n: int, figures: Figures, rng: random.Random,
                     steps: int, interval: float) -> None:
    wa = f"3247{n:07d}"
    began = time.perf_counter()
    for number, (kind, what) in enumerate(SCRIPT[:steps]):
        delay = began + number * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        seen = graph.messages_to(wa)
        if kind == "text":
            _, body = graph.message(wa, "text", {"body": what.format(n=n)})
        else:
            prompt = prompt_of(seen)
            labels = [title for _, title in prompt.choices
                      if not title.startswith(("⬅", "⏸"))]
            label = rng.choice(labels) if what == "*" else what
            reply = ({"type": "button_reply", "button_reply": dict(
                zip(("id", "title"), next(c for c in prompt.choices if c[1] == label),
                    strict=True))}
                     if prompt.body["interactive"]["type"] == "button" else
                     {"type": "list_reply", "list_reply": {
                         "id": next(i for i, t in prompt.choices if t == label),
                         "title": label}})
            _, body = graph.message(wa, "interactive", reply, context=prompt.wamid)
        start = time.perf_counter()
        status = await graph.deliver(body)
        figures.acks.append(time.perf_counter() - start)
        if status != 200:
            figures.refused += 1
            continue
        # the next step needs the turn's last prompt (a turn may say several things)
        follows = number + 1 < steps and SCRIPT[number + 1][0] == "press"
        count = len(seen)
        await graph.settle(wa, lambda ms, count=count, follows=follows: len(ms) > count and (
            not follows or bool(ms[-1].choices)), within=120)
        figures.replies.append(time.perf_counter() - start)
        figures.updates += 1


async def whatsapp_run(users: int, steps: int, rate: float, seed: int = 7) -> Figures:
    interval = users / rate  # each user's steps this far apart: users/interval = rate
    with tempfile.TemporaryDirectory() as folder:
        async with GraphEmulator() as graph:
            port = tg.free_port()
            graph.webhook_url = f"http://127.0.0.1:{port}/whatsapp/webhook"
            process = await asyncio.create_subprocess_exec(
                *tg.Pinning.prefix(tg.BOT_CPU), tg.PYTHON, "-m", "bot", "run", cwd=folder,
                env=bot_env(folder, graph, port))
            try:
                await wait_listening(graph.webhook_url)
                print(f"[whatsapp] bot(pid {process.pid})=cpu "
                      f"{tg.Pinning.cores(process.pid)}, emulator+driver(pid {os.getpid()})="
                      f"cpu {tg.Pinning.cores(0)}", file=sys.stderr, flush=True)
                figures = Figures()
                rng = random.Random(seed)
                before = tg.cpu_seconds(process.pid)
                began = time.perf_counter()

                async def one(i: int) -> None:
                    await asyncio.sleep(interval * i / users)  # spread over one interval
                    await shopkeeper(graph, i, figures, rng, steps, interval)

                await asyncio.gather(*(one(i) for i in range(users)))
                figures.seconds = time.perf_counter() - began
                figures.bot_cpu_seconds = tg.cpu_seconds(process.pid) - before
                refused = [e for e in graph.errors if not e.get("injected")]
                if refused:
                    raise RuntimeError(f"the emulator refused calls: {refused[:3]}")
                return figures
            finally:
                process.terminate()
                await process.wait()


async def telegram_run(users: int, steps: int, rate: float) -> tg.Figures:
    """The same load on the Telegram path (polling; updates at the same offered rate)."""
    return await tg.full_stack(users, 0, pace=users / rate, steps=steps)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--steps", type=int, default=10,
                        help="updates per user: onboarding is 7, then questions")
    parser.add_argument("--rate", type=float, default=100.0, help="updates/s offered")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--compare-telegram", action="store_true")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--concurrent", type=int, default=None,
                        help="KISS_CONCURRENT_UPDATES for both bots (default: the config's)")
    args = parser.parse_args()
    if args.concurrent is not None:
        os.environ["KISS_CONCURRENT_UPDATES"] = str(args.concurrent)
    if args.no_pin:
        tg.Pinning.enabled = False
    tg.Pinning.pin_driver()
    runs: list[Figures] = []
    telegram: list[tg.Figures] = []
    for attempt in range(args.repeat):
        runs.append(await whatsapp_run(args.users, args.steps, args.rate))
        last = runs[-1]
        print(f"run {attempt + 1}: whatsapp {last.updates} updates in {last.seconds:.1f} s, "
              f"ack p95 {Figures.percentile(last.acks, 95):.1f} ms, "
              f"{last.cpu_ms_per_update:.2f} ms CPU/update", flush=True)
        if args.compare_telegram:
            telegram.append(await telegram_run(args.users, args.steps, args.rate))
            print(f"run {attempt + 1}: telegram {telegram[-1].updates} updates, "
                  f"{telegram[-1].cpu_ms_per_update:.2f} ms CPU/update", flush=True)

    def median(values: list[float]) -> float:
        return statistics.median(values)

    load = os.getloadavg()
    print(f"\n{args.users} users x {args.steps} updates at {args.rate:g}/s offered, "
          f"concurrent updates {os.environ.get('KISS_CONCURRENT_UPDATES', 'default')}, "
          f"median of {args.repeat}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'path':<10} {'upd/s':>7} {'ack p50':>8} {'ack p95':>8} {'ack p99':>8} "
          f"{'reply p50':>9} {'reply p95':>9} {'cpu/upd ms':>10}")
    print(f"{'whatsapp':<10} {median([r.updates / r.seconds for r in runs]):>7.0f} "
          f"{median([Figures.percentile(r.acks, 50) for r in runs]):>8.1f} "
          f"{median([Figures.percentile(r.acks, 95) for r in runs]):>8.1f} "
          f"{median([Figures.percentile(r.acks, 99) for r in runs]):>8.1f} "
          f"{median([Figures.percentile(r.replies, 50) for r in runs]):>9.1f} "
          f"{median([Figures.percentile(r.replies, 95) for r in runs]):>9.1f} "
          f"{median([r.cpu_ms_per_update for r in runs]):>10.2f}")
    if telegram:
        print(f"{'telegram':<10} {median([r.per_second for r in telegram]):>7.0f} "
              f"{'-':>8} {'-':>8} {'-':>8} "
              f"{median([r.percentile(50) for r in telegram]):>9.1f} "
              f"{median([r.percentile(95) for r in telegram]):>9.1f} "
              f"{median([r.cpu_ms_per_update for r in telegram]):>10.2f}")
        ratio = median([r.cpu_ms_per_update for r in runs]) / median(
            [r.cpu_ms_per_update for r in telegram])
        print(f"bot CPU per update, WhatsApp / Telegram: {ratio:.2f} (goal 0.75–1.25)")
    print(f"webhook ack p95 goal ≤ 20 ms: "
          f"{'met' if median([Figures.percentile(r.acks, 95) for r in runs]) <= 20 else 'NOT met'}")


if __name__ == "__main__":
    asyncio.run(main())
