"""``/export`` for admins: choose what and the format with buttons, get the file.

``/export`` asks what (answers, assessments, users, tips, broadcasts, tickets, questions),
then the format (XLSX, CSV, JSON Lines); ``/export answers xlsx`` does both at once.

The turn only says "coming up" and leaves the export for after its commit
(:attr:`Turn.afterwards`): outside the admin's lock and off the bot's connection, so a large
export never holds up anyone's turn (on SQLite the bot has one connection: an export in the
turn held it for about a second per 10,000 answers). The file is made in a worker thread on
a reader connection of its own (see :mod:`storage.exports`), streamed into a temporary file;
then one short transaction records it in the audit trail and queues it as a document in the
outbox, so the export is audited exactly when the file is on its way.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, ClassVar

from flows.messages import Button, Document, Outbound, Reply
from flows.texts import Texts
from handlers.coaching import payload
from handlers.export_files import CONTENT_TYPES, FORMATS, ExportRequest, produce
from handlers.export_tables import TABLES
from handlers.nudges import Waker
from handlers.turn import Turn
from storage import audit, exports, outbox, shopkeepers
from storage.database import Database
from storage.tables import utcnow

log = logging.getLogger(__name__)

#: The ``ref`` of the question "what?"; "which format?" is ``export.<what>``.
REF = "export"
#: Telegram takes documents up to 50 MB from a bot; a larger export is for the command line.
LARGEST_DOCUMENT = 49 * 1024 * 1024
#: The formats in the order offered (XLSX first: what most admins open).
OFFERED = ("xlsx", "csv", "jsonl")
#: An export smaller than this stays in memory while it is made; a larger one goes to disk.
_IN_MEMORY = 8 * 1024 * 1024

Maker = Callable[[str, ExportRequest, IO[bytes]], int]
"""Writes an export to a file and says how many rows (:func:`produce`; tests wrap it)."""


@dataclass(frozen=True, slots=True)
class _Recipient:
    """Who asked, and where the file goes (read in the turn, used after it)."""

    shopkeeper_id: int
    channel: str
    external_id: str
    lang: str
    actor: str


class ChatExports:
    """The ``/export`` conversation: its command and its button presses.

    Args:
        texts: What the bot says.
        db: For the short transaction that audits the file and queues it.
        sender: Woken once the file is queued.
        make: Writes the export (in a worker thread).
    """

    COMMAND: ClassVar[str] = "export"

    def __init__(self, texts: Texts, db: Database, sender: Waker, *,
                 make: Maker = produce) -> None:
        self.texts = texts
        self.db = db
        self.sender = sender
        self.make = make

    @staticmethod
    def owns(ref: str) -> bool:
        """Whether a button press with ``ref`` is one of this conversation's."""
        return ref == REF or ref.startswith(REF + ".")

    async def command(self, turn: Turn, argument: str) -> list[Outbound]:
        """``/export`` (asks what), ``/export users`` (asks the format) or
        ``/export users csv`` (the file)."""
        words = argument.lower().split()
        chosen = [w for w in words if w in TABLES]
        formats = [w for w in words if w in FORMATS]
        if len(chosen) > 1 or len(formats) > 1 or len(chosen) + len(formats) != len(words):
            return [Outbound(self.texts.get(turn.lang, "export_usage"))]
        if not chosen:
            return [self._what(turn.lang)]
        if not formats:
            return [self._format(turn.lang, chosen[0])]
        return [await self._export(turn, chosen[0], formats[0])]

    async def press(self, turn: Turn, reply: Reply) -> list[Outbound]:
        """A tap on "what?" or on "which format?"."""
        choice = reply.choice or ""
        if reply.ref == REF and choice in TABLES:
            return [self._format(turn.lang, choice)]
        what = (reply.ref or "").removeprefix(REF + ".")
        if what in TABLES and choice in FORMATS:
            return [await self._export(turn, what, choice)]
        return [Outbound(self.texts.get(turn.lang, "export_usage"))]

    def _what(self, lang: str) -> Outbound:
        buttons = tuple(Button(t, self.texts.get(lang, f"export_table_{t}")) for t in TABLES)
        return Outbound(self.texts.get(lang, "export_what"), buttons, ref=REF)

    def _format(self, lang: str, what: str) -> Outbound:
        buttons = tuple(Button(f, self.texts.get(lang, f"export_format_{f}")) for f in OFFERED)
        return Outbound(self.texts.get(lang, "export_format",
                                       table=self.texts.get(lang, f"export_table_{what}")),
                        buttons, ref=f"{REF}.{what}")

    async def _export(self, turn: Turn, what: str, fmt: str) -> Outbound:
        """Say it is coming; make, audit and queue the file after the turn."""
        assert turn.shopkeeper is not None
        request = ExportRequest((what,), fmt)
        address = await shopkeepers.address_of(turn.tx, shopkeeper_id=turn.shopkeeper.id)
        if address is None:  # a channel always names the person; nowhere to send it else
            return Outbound(self.texts.get(turn.lang, "export_failed"))
        channel, external_id, _ = address
        recipient = _Recipient(turn.shopkeeper.id, channel, external_id, turn.lang,
                               actor=f"{channel}:{external_id}")
        url = exports.reader_url(turn.tx)

        async def export_later() -> None:
            await self._deliver(url, request, recipient)

        turn.afterwards.append(export_later)
        return Outbound(self.texts.get(turn.lang, "export_started",
                                       table=self.texts.get(turn.lang, f"export_table_{what}")))

    async def _deliver(self, url: str, request: ExportRequest, to: _Recipient) -> None:
        """After the turn: make the file, then audit it and queue it in one transaction."""
        say = self.texts.get
        what, fmt = request.tables[0], request.format
        try:
            data, rows, size = await asyncio.to_thread(self._file, url, request)
        except Exception:
            log.exception("the chat export of %s for %s failed", what, to.actor)
            message = Outbound(say(to.lang, "export_failed"))
        else:
            if data is None:
                message = Outbound(say(to.lang, "export_too_big", size=size // 2**20,
                                       command=f"kiss-coach export --what {what} "
                                               f"--format {fmt}"))
            else:
                caption = say(to.lang, "export_ready", rows=rows,
                              table=say(to.lang, f"export_table_{what}"))
                message = Outbound(caption, document=Document(
                    request.file_name(utcnow()), CONTENT_TYPES[fmt], data, caption))
        async with self.db.transaction() as tx:
            if message.document is not None:
                await audit.record(tx, actor=to.actor, action="export",
                                   detail={**request.describe(), "rows": rows, "via": "chat"})
            await outbox.record(tx, shopkeeper_id=to.shopkeeper_id, channel=to.channel,
                                external_id=to.external_id,
                                payloads=[payload(message, to.lang)])
        self.sender.wake()

    def _file(self, url: str, request: ExportRequest) -> tuple[bytes | None, int, int]:
        """The export's bytes (None when too large to send), rows and size in bytes.
        Runs in a worker thread; the file is streamed to disk past a few megabytes."""
        with tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY) as out:
            rows = self.make(url, request, out)
            size = out.tell()
            if size > LARGEST_DOCUMENT:
                return None, rows, size
            out.seek(0)
            return out.read(), rows, size
