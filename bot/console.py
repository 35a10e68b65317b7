"""The terminal chat: a real channel on the same engine and database as Telegram.

Buttons show as numbered lines and can be answered by number or by text. It reads stdin
line by line, so a script can pipe answers in (one per line); it stops at end of input.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TextIO

from bot.app import App
from bot.delivery.limiter import RateLimiter
from bot.delivery.outcomes import Media, Pace
from flows.messages import BACK, Button, Outbound, Reply
from flows.rich_text import parse as parse_rich_text
from handlers.inbound import Inbound

CHANNEL = "console"


class ConsoleChat:
    """Talks to one person on a terminal (or a pipe)."""

    def __init__(self, app: App, *, user: str, stdin: TextIO | None = None,
                 stdout: TextIO | None = None, lang: str | None = None) -> None:
        self.app = app
        self.user = user
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.lang = lang
        self._prompt: Outbound | None = None  # the last message with buttons
        self._shown = 0
        # A terminal has no rate limits worth the name.
        app.sender.add_channel(CHANNEL, self, RateLimiter(rate=1e6, burst=1000,
                                                          chat_rate=1e6, chat_burst=1000))

    async def run(self) -> None:
        """Greet (or resume), then answer each line until end of input."""
        await self.app.start()
        self.stdout.write(self.app.texts.get(self.lang or "nl", "console_hint") + "\n\n")
        await self._send(Inbound(CHANNEL, self.user, command="start", language_hint=self.lang))
        while True:
            line = await asyncio.to_thread(self.stdin.readline)
            if not line:
                return
            text = line.strip()
            if text:
                await self._send(self._inbound(text))

    def _inbound(self, text: str) -> Inbound:
        if text.startswith("/"):
            command, _, argument = text[1:].partition(" ")
            return Inbound(CHANNEL, self.user, command=command.lower(), argument=argument)
        prompt = self._prompt
        answers = self._answers(prompt) if prompt is not None else []
        if prompt is not None and text.isdigit() and 1 <= int(text) <= len(answers):
            button = answers[int(text) - 1]
            return Inbound(CHANNEL, self.user, reply=Reply(choice=button.id, ref=prompt.ref))
        return Inbound(CHANNEL, self.user, reply=Reply(text=text))

    async def _send(self, inbound: Inbound) -> None:
        await self.app.dispatcher.handle(inbound)

    async def send(self, to: str, message: Outbound, *, lang: str, done: int,
                   pace: Pace, media: Media | None = None) -> None:
        """The outbox sender's call: show one message (the channel protocol)."""
        await pace()
        out = self.stdout
        if message.image is not None:
            path = self._save_image(message)
            out.write(self.app.texts.get(lang, "chart_saved",
                                         path=path) + "\n\n")
            return
        # A broadcast is formatted (HTML): a terminal shows its plain words.
        out.write((parse_rich_text(message.text).plain() if message.html else message.text)
                  + "\n")
        if message.buttons:
            self._prompt = message
            for number, button in enumerate(self._answers(message), start=1):
                out.write(f"  {number}. {button.label}\n")
            steering = [f"{b.label} ({self._word_for(b, lang)})"
                        for b in message.buttons if b.steers]
            if steering:
                out.write("  " + "   ".join(steering) + "\n")
        out.write("\n")
        out.flush()

    @staticmethod
    def _answers(message: Outbound) -> list[Button]:
        """The buttons that answer; steering ones (back, later) are typed as words here."""
        return [b for b in message.buttons if not b.steers]

    def _word_for(self, button: Button, lang: str) -> str:
        key = "back_words" if button.id == BACK else "pause_words"
        return self.app.texts.words(lang, key)[0]

    def _save_image(self, message: Outbound) -> Path:
        assert message.image is not None
        folder = self.app.settings.charts_dir
        folder.mkdir(parents=True, exist_ok=True)
        stem = "".join(ch if ch.isalnum() else "-" for ch in self.user)
        self._shown += 1
        path = folder / f"{stem}-{self._shown}.png"
        path.write_bytes(message.image.data)
        return path.resolve()
