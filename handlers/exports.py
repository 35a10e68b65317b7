"""``/export`` for admins: choose what and the format with buttons, get the file.

``/export`` asks what (answers, assessments, users, tips, broadcasts), then the format (XLSX,
CSV, JSON Lines); ``/export answers xlsx`` does both at once. The file comes back as a
document, and the export is written to the audit trail in the same transaction, so it
exists exactly when the file does.

The file is made in a worker thread on a reader connection of its own (see
:mod:`storage.exports`): the event loop stays free for everyone else's turns. On SQLite the
admin's turn still holds the bot's one connection while it waits, so other turns queue for
that long (about a second per 10,000 answers); the command line (``kiss-coach export``) is
the way for large exports.
"""

from __future__ import annotations

import asyncio
import io
from typing import ClassVar

from flows.messages import Button, Document, Outbound, Reply
from flows.texts import Texts
from handlers.export_files import CONTENT_TYPES, FORMATS, ExportRequest, produce
from handlers.export_tables import TABLES
from handlers.turn import Turn
from storage import audit, exports, shopkeepers
from storage.tables import utcnow

#: The ``ref`` of the question "what?"; "which format?" is ``export.<what>``.
REF = "export"
#: Telegram takes documents up to 50 MB from a bot; a larger export is for the command line.
LARGEST_DOCUMENT = 49 * 1024 * 1024
#: The formats in the order offered (XLSX first: what most admins open).
OFFERED = ("xlsx", "csv", "jsonl")


class ChatExports:
    """The ``/export`` conversation: its command and its button presses."""

    COMMAND: ClassVar[str] = "export"

    def __init__(self, texts: Texts) -> None:
        self.texts = texts

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
        assert turn.shopkeeper is not None
        request = ExportRequest((what,), fmt)
        data, rows = await asyncio.to_thread(_file, exports.reader_url(turn.tx), request)
        say = self.texts.get
        if len(data) > LARGEST_DOCUMENT:
            return Outbound(say(turn.lang, "export_too_big", size=len(data) // 2**20,
                                command=f"kiss-coach export --what {what} --format {fmt}"))
        address = await shopkeepers.address_of(turn.tx, shopkeeper_id=turn.shopkeeper.id)
        actor = (f"{address[0]}:{address[1]}" if address is not None
                 else f"shopkeeper:{turn.shopkeeper.id}")
        await audit.record(turn.tx, actor=actor, action="export",
                           detail={**request.describe(), "rows": rows, "via": "chat"})
        caption = say(turn.lang, "export_ready", table=say(turn.lang, f"export_table_{what}"),
                      rows=rows)
        return Outbound(caption, document=Document(request.file_name(utcnow()),
                                                   CONTENT_TYPES[fmt], data, caption))


def _file(url: str, request: ExportRequest) -> tuple[bytes, int]:
    """The export's bytes and rows (runs in a worker thread)."""
    buffer = io.BytesIO()
    rows = produce(url, request, buffer)
    return buffer.getvalue(), rows
