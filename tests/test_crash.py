"""SIGKILL the real bot process mid-journey, twice, and restart it: nobody loses a tap,
everybody gets their result without typing anything more, no message goes out twice, no
row is left half-sent, and the chart process dies with the bot.

The bot runs as ``python -m bot run`` against the loopback Bot API emulator in this test's
process; simulated shopkeepers answer whatever the bot asks last, as a person would.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from telegram_emulator import BotAPIEmulator

ROOT = Path(__file__).resolve().parent.parent
USERS = [5101, 5102, 5103, 5104]
TYPED = {"Hoe heet je zaak": "Bakkerij Dewitte", "In welke gemeente": "Kortrijk"}


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc: no extra dependency)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


async def start_bot(emu: BotAPIEmulator, database: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": emu.token,
           "TELEGRAM_API_BASE_URL": emu.base_url, "KISS_DATABASE_URL": f"sqlite:///{database}",
           "KISS_TELEGRAM_RATE": "100000", "KISS_TELEGRAM_CHAT_RATE": "100000",
           "KISS_TELEGRAM_CHAT_BURST": "1000", "KISS_POLL_SECONDS": "0.2",
           "KISS_RESEND_UNCERTAIN_REPLIES": "true", "KISS_LOG_LEVEL": "WARNING",
           # the web server (dashboard) on a free port: 8080 may be another process's
           "KISS_HTTP_LISTEN": "127.0.0.1:0"}
    with (database.parent / "bot.log").open("ab") as log:  # the child keeps its own copy
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=database.parent, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=log)


async def exited(pid: int) -> None:
    """Wait until process ``pid`` (not our child) exits: its pidfd becomes readable."""
    try:
        descriptor = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    gone = loop.create_future()
    loop.add_reader(descriptor, gone.set_result, None)
    try:
        await gone
    finally:
        loop.remove_reader(descriptor)
        os.close(descriptor)


class Shopkeeper:
    """Answers the bot's last question: the first answer button, or a typed name."""

    def __init__(self, emu: BotAPIEmulator, chat_id: int) -> None:
        self.emu = emu
        self.chat_id = chat_id
        self.answered: set[int] = set()
        self.presses: list[str] = []
        self.inputs = 0

    def done(self) -> bool:
        return any(m["photo"] is not None for m in self.emu.messages_to(self.chat_id))

    def act(self) -> bool:
        """Do what the last message asks, once; False when it asks nothing (yet)."""
        messages = [m for m in self.emu.messages_to(self.chat_id) if m["method"] != "sendPhoto"]
        if not messages or messages[-1]["message_id"] in self.answered or self.done():
            return False
        last = messages[-1]
        markup: Any = last["reply_markup"]
        if markup:
            button = markup["inline_keyboard"][0][0]
            _, press = self.emu.user_presses(self.chat_id, last["message_id"],
                                             button["callback_data"])
            self.presses.append(press)
        else:
            typed = next((t for q, t in TYPED.items() if q in (last["text"] or "")), None)
            if typed is None:
                return False
            self.emu.user_sends_text(self.chat_id, typed)
        self.answered.add(last["message_id"])
        self.inputs += 1
        return True


async def drive(emu: BotAPIEmulator, people: list[Shopkeeper], until_inputs: int) -> None:
    """Let everyone answer until ``until_inputs`` answers were given in all (or all done)."""
    try:
        async with asyncio.timeout(120):  # generous: CI machines may be busy
            while sum(p.inputs for p in people) < until_inputs and not all(
                    p.done() for p in people):
                if not any(p.act() for p in people):
                    await emu.wait_for_sent(len(emu.sent) + 1)
    except TimeoutError:
        stuck = {p.chat_id: [(m["method"], (m["text"] or "")[:30], bool(m["reply_markup"]))
                             for m in emu.messages_to(p.chat_id)[-3:]] for p in people}
        raise AssertionError(f"stuck after {[p.inputs for p in people]} inputs: {stuck}") from None


async def test_sigkill_twice_mid_journey(tmp_path: Path) -> None:
    database = tmp_path / "kiss.sqlite3"
    async with BotAPIEmulator() as emu:
        people = [Shopkeeper(emu, chat) for chat in USERS]
        for chat in USERS:
            emu.user_sends_text(chat, "/start")
        bot = await start_bot(emu, database)
        try:
            for kill_after in (25, 70):
                await drive(emu, people, kill_after)
                painter = children(bot.pid)
                bot.send_signal(signal.SIGKILL)
                await bot.wait()
                assert painter, "the chart process runs beside the bot"
                async with asyncio.timeout(10):  # it notices the bot is gone and exits
                    await asyncio.gather(*(exited(pid) for pid in painter))
                bot = await start_bot(emu, database)
            await drive(emu, people, 10**6)
        finally:
            if bot.returncode is None:
                bot.send_signal(signal.SIGTERM)
                await bot.wait()

    assert all(p.done() for p in people), [p.inputs for p in people]
    with sqlite3.connect(database) as db:
        for p in people:
            # What reached the person: messages, and notices shown as a press's pop-up.
            reached = len([r for r in emu.sent if r["chat_id"] == p.chat_id
                           and r["method"] in ("sendMessage", "sendPhoto")]) + len(
                [q for q in p.presses if (emu.answered_callbacks.get(q) or {}).get("text")])
            rows = Counter(status for (status,) in db.execute(
                "SELECT status FROM outbox WHERE external_id = ?", (str(p.chat_id),)))
            resent = db.execute("SELECT count(*) FROM outbox WHERE external_id = ? AND "
                                "payload LIKE '%\"resent\": true%'",
                                (str(p.chat_id),)).fetchone()[0]
            # Every sent row reached them once; only a resent or uncertain one may be more.
            assert rows["sent"] <= reached <= rows["sent"] + resent + rows["uncertain"], (
                reached, rows, resent)
        left = db.execute("SELECT status, count(*) FROM outbox WHERE status IN "
                          "('queued', 'claimed', 'sending', 'errored') GROUP BY status").fetchall()
        pending = db.execute("SELECT count(*) FROM inbox WHERE status = 'pending'").fetchone()
    assert left == [] and pending == (0,)
