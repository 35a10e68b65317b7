"""``kiss-coach export`` and ``kiss-coach audit``: exports for admins, and who exported what.

    kiss-coach export --what answers --format xlsx --since 2026-01-01 --municipality Kortrijk
    kiss-coach export --what users --format csv --separator ';' --pseudonymize
    kiss-coach audit --since 2026-11-01

The export is this command's own process (at a lower CPU priority), reading on its own
connection: the running bot is not slowed. The file is written next to its final name and
renamed when complete, and the export is added to the audit trail only then.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any, TextIO

from bot.config import Settings
from flows.places import gazetteer, normalize
from flows.timing import BRUSSELS
from handlers.export_files import FORMATS, ExportRequest, produce
from handlers.export_tables import TABLES, Pseudonyms
from storage import audit
from storage.database import Database, head_revision
from storage.exports import Filters
from storage.tables import utcnow

#: Where ``--pseudonymize`` takes its key from (environment only: it is a secret).
KEY_VARIABLE = "KISS_PSEUDONYM_KEY"
#: A shorter key could be guessed by trying every key on a known id.
KEY_MIN_LENGTH = 16
#: How much lower than the bot an export's CPU priority is.
NICENESS = 10

Actor = Callable[[], str]


def add_commands(commands: Any, actor: Actor) -> None:
    """Add ``export`` and ``audit`` to the CLI's subcommands; ``actor`` names who runs them
    (``cli:<login>``) in the audit trail."""
    export = commands.add_parser(
        "export", help="export answers, assessments, users, tips, broadcasts, tickets or "
             "questions",
        description="Dates are Brussels days: --since 2026-01-01 --until 2026-03-31 is the "
                    "first quarter, both days included.")
    export.add_argument("--what", required=True, type=_tables, metavar="|".join(TABLES),
                        help="what to export (several, comma-separated: sheets of one XLSX)")
    export.add_argument("--format", default="csv", choices=FORMATS)
    export.add_argument("--output", type=Path, help="the file (default: kiss-<what>-<time>."
                                                    "<format> here; - for standard output)")
    export.add_argument("--since", type=_day, metavar="DATE", help="from this day on")
    export.add_argument("--until", type=_day, metavar="DATE", help="up to and including "
                                                                   "this day")
    export.add_argument("--municipality", type=_municipality, metavar="NAME",
                        help="only people of this municipality")
    export.add_argument("--pseudonymize", action="store_true",
                        help=f"ids as keyed codes (key: ${KEY_VARIABLE}), without names, "
                             "chat ids or free text")
    export.add_argument("--separator", default=",", help="CSV separator, e.g. ';' for Excel "
                                                         "with a Belgian locale")
    export.add_argument("--no-bom", action="store_true",
                        help="CSV without the UTF-8 byte-order mark Excel needs")
    export.set_defaults(func=lambda args, settings: run_export(args, settings, actor()))

    trail = commands.add_parser("audit", help="who exported, looked at or changed what")
    trail.add_argument("--since", type=_day, metavar="DATE", help="from this day on")
    trail.set_defaults(func=lambda args, settings: list_audit(args, settings))


def run_export(args: argparse.Namespace, settings: Settings, actor: str) -> int:
    """The ``export`` command: 0 when the file is written and audited, 2 when refused."""
    try:
        request = _request(args)
    except ValueError as exc:
        print(f"kiss-coach: {exc}", file=sys.stderr)
        return 2
    _lower_priority()
    asyncio.run(_upgraded(settings.database_url))
    now = utcnow()
    to_stdout = str(args.output) == "-"
    target = args.output or Path(request.file_name(now))
    bar = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    started = time.monotonic()
    if to_stdout:
        rows = produce(settings.database_url, request, sys.stdout.buffer,
                       bar.update if bar else None)
        sys.stdout.buffer.flush()
    else:
        partial = target.with_name(target.name + ".partial")
        try:
            with partial.open("wb") as out:
                rows = produce(settings.database_url, request, out,
                               bar.update if bar else None)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
    if bar is not None:
        bar.finish()
    detail = {**request.describe(), "rows": rows, "via": "cli"}
    asyncio.run(_audited(settings.database_url, actor, detail))
    where = "standard output" if to_stdout else str(target)
    print(f"{rows} rows to {where} in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0


def list_audit(args: argparse.Namespace, settings: Settings) -> int:
    """The ``audit`` command: every entry from ``--since`` on, oldest first."""
    async def listing() -> list[audit.AuditRecord]:
        db = Database(settings.database_url)
        try:
            await db.upgrade()
            async with db.transaction() as tx:
                return await audit.entries(tx, since=start_of(args.since))
        finally:
            await db.close()

    found = asyncio.run(listing())
    for entry in found:
        detail = "  ".join(f"{k}={_shown(v)}" for k, v in entry.detail.items()
                           if v not in (None, [], ""))
        print(f"{entry.at.astimezone(BRUSSELS):%Y-%m-%d %H:%M:%S}  {entry.actor:24} "
              f"{entry.action:12} {detail}")
    if not found:
        print("nothing in the audit trail" + (" since then" if args.since else ""))
    return 0


class ProgressBar:
    """``[#####     ] 2,000/4,000 assessments``, redrawn at most ten times a second."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self._drawn = 0.0

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._drawn < 0.1 and done != total:
            return
        self._drawn = now
        filled = self.width * done // total if total else 0
        self.stream.write(f"\r[{'#' * filled:<{self.width}}] {done:,}/{total:,}")
        self.stream.flush()

    def finish(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def pseudonyms_from_environment() -> Pseudonyms:
    """The keyed hashes for ``--pseudonymize``; ValueError saying what to set without a
    usable key."""
    key = os.environ.get(KEY_VARIABLE, "")
    if len(key) < KEY_MIN_LENGTH:
        state = "is not set" if not key else f"is shorter than {KEY_MIN_LENGTH} characters"
        raise ValueError(f"--pseudonymize needs a secret key: ${KEY_VARIABLE} {state}. Set "
                         f"it to a long random text (e.g. `openssl rand -hex 32`) and keep "
                         "it: the same key gives the same codes in every export")
    return Pseudonyms(key.encode())


def _request(args: argparse.Namespace) -> ExportRequest:
    until = start_of(args.until + timedelta(days=1)) if args.until else None
    return ExportRequest(
        tables=args.what, format=args.format,
        filters=Filters(since=start_of(args.since), until=until,
                        municipality=args.municipality),
        pseudonyms=pseudonyms_from_environment() if args.pseudonymize else None,
        separator=args.separator, bom=not args.no_bom)


def _lower_priority() -> None:
    with contextlib.suppress(OSError):  # not allowed here: it still runs apart
        os.nice(NICENESS)


async def _upgraded(url: str) -> None:
    """The schema the export reads, brought up to date only when it is behind. Upgrading
    holds the write lock (on SQLite the only one) while Alembic reads its scripts, which
    held up every turn of the running bot for a second per export; the running bot keeps
    the schema current, so reading its revision (a moment) is all an export usually
    does."""
    newest = head_revision()  # reads the migration scripts, outside any transaction
    db = Database(url)
    try:
        if await db.revision() != newest:
            await db.upgrade()
    finally:
        await db.close()


async def _audited(url: str, actor: str, detail: dict[str, Any]) -> None:
    db = Database(url)
    try:
        async with db.transaction() as tx:
            await audit.record(tx, actor=actor, action="export", detail=detail)
    finally:
        await db.close()


def _tables(text: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(t.strip().lower() for t in text.split(",") if t.strip()))
    unknown = [t for t in chosen if t not in TABLES]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(TABLES)}")
    return chosen


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-01-31") from None


def start_of(day: date | None) -> datetime | None:
    """The start of ``day`` in Brussels, as UTC (None stays None)."""
    if day is None:
        return None
    return datetime.combine(day, clock_time(0), BRUSSELS).astimezone(UTC)


def _municipality(text: str) -> str:
    names = {normalize(m): m for m in gazetteer().municipalities}
    found = names.get(normalize(text))
    if found is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of the 62 municipalities of "
                                         "West Flanders (e.g. Kortrijk)")
    return found


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)
