"""A loopback Telegram Bot API emulator for end-to-end tests (and the benchmarks).

The real python-telegram-bot client talks to it over HTTP through ``base_url``; the emulator
answers the way the Bot API does, including its refusals (text too long, HTML it cannot parse,
unknown chats, blocked users), so that tests catch what production would reject. It keeps
what the bot uses and what the coming issues will: plain text and HTML (strictly checked),
inline keyboards, photos and documents (sent again by file_id), deleting messages (within
48 hours of the emulator's clock, which ``advance_clock`` moves on), chat actions, commands
per scope, polling and webhooks. Anything else is refused, so that a first use shows up in
a test. Error wording follows the Bot API (and, for HTML, tdlib's ``MessageEntity.cpp``).

Faults, for tests of the delivery path (each refusal is marked ``injected`` in ``errors``):
``fail_next`` (the next calls fail), ``fail_fraction`` (a seeded share of calls fails),
``drop_next`` (the connection closes after the request was read: the "uncertain" case, with
or without the call having taken effect), ``flood`` (a 429 window; calls sent into it after
the first 429 land in ``flood_violations``). ``duplicates()`` lists messages sent twice in a
row. ``set_webhook_targets`` posts updates round-robin to several bot replicas.

In a test::

    async with BotAPIEmulator() as emu, Bot(emu.token, base_url=emu.base_url) as bot:
        emu.user_sends_text(42, "/start")
        ...

As a separate process (for the benchmarks)::

    python tests/telegram_emulator.py --port 8081

prints ``listening on 127.0.0.1:8081`` once it serves, and runs until killed. That process is
driven over HTTP: ``POST /_emulator/<action>`` with a JSON body naming the arguments of the
method of the same name (``user_sends_text``, ``user_presses``, ``user_blocks_bot``,
``user_unblocks_bot``, ``enqueue_raw_update``, ``register_chat``, ``set_webhook_target``,
``set_webhook_targets``, ``deliver_pending_webhooks``, ``fail_next``, ``fail_fraction``,
``drop_next``, ``flood``, ``duplicates``, ``webhook_counts``, ``advance_clock``,
``wait_for_chat``,
``wait_for_sent`` (answers the count)),
``GET /_emulator/state`` and ``GET /_emulator/messages_to?chat_id=N`` (bytes are given as
``{"bytes": length}``).

The emulator itself is the package ``tests/bot_api`` (BotAPIEmulator in ``server.py``); this
module re-exports its public names and runs it as a process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from bot_api.entities import EntityParseError, utf16_len
from bot_api.formatting import parse_formatted_text
from bot_api.server import BotAPIEmulator

__all__ = ["BotAPIEmulator", "EntityParseError", "parse_formatted_text", "utf16_len"]


async def _serve(port: int, token: str, bot_username: str) -> None:
    emulator = BotAPIEmulator(token, bot_username=bot_username)
    await emulator.start(port)
    print(f"listening on 127.0.0.1:{emulator.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await emulator.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Loopback Telegram Bot API emulator")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--token", default="123456:TEST-TOKEN")
    parser.add_argument("--bot-username", default="kiss_coach_test_bot")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, args.token, args.bot_username))


if __name__ == "__main__":
    main()
