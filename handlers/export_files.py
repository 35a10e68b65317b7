"""An export as a file: CSV, JSON Lines or XLSX, written while the rows stream in.

:func:`produce` reads on its own connection (see :mod:`storage.exports`) and writes each row
as it comes, so memory stays flat: the CSV and JSON writers hold one row, the XLSX writer
a buffer of rows. It is synchronous on purpose: the
command line runs it as its own process, the chat in a worker thread, never on the bot's
event loop.

- CSV: UTF-8 with a byte-order mark by default (Belgian Excel then reads the accents right),
  any one-character separator (``;`` for Excel with a Belgian locale); a text cell that
  Excel would take for a formula gets a leading ``'``.
- JSON Lines: one object per row; times as ISO 8601 with their offset.
- XLSX (:mod:`handlers.workbook`): a sheet per table and a data dictionary explaining every
  column; dates as dates, numbers as numbers, the header frozen, filters on.

Times are Brussels time (what an admin in Kortrijk means by "9 o'clock").
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from flows.timing import BRUSSELS
from handlers.export_columns import Column, Kind, Row
from handlers.export_tables import TABLES, Pseudonyms, Sources, shaped
from handlers.workbook import Workbook
from storage import exports
from storage.exports import Filters

FORMATS = ("csv", "xlsx", "jsonl")
CONTENT_TYPES = {
    "csv": "text/csv",
    "jsonl": "application/jsonl",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
#: What a spreadsheet would read as a formula (CSV injection): such text gets a leading '.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: A spreadsheet's column width, in characters, per kind.
_WIDTHS = {Kind.TEXT: 18, Kind.INTEGER: 10, Kind.NUMBER: 10, Kind.MOMENT: 18, Kind.FLAG: 8}

#: Rows gathered before they are written out.
_ROWS_PER_WRITE = 500

Progress = Callable[[int, int], None]
"""Called with (units done, units in all) as the export goes; 0 in all: unknown."""


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What to export and how. ``tables``: one or more of :data:`TABLES` (several only
    as sheets of one XLSX file)."""

    tables: tuple[str, ...]
    format: str
    filters: Filters = field(default_factory=Filters)
    pseudonyms: Pseudonyms | None = None
    separator: str = ","
    bom: bool = True

    def __post_init__(self) -> None:
        unknown = [t for t in self.tables if t not in TABLES]
        if not self.tables or unknown:
            raise ValueError(f"export what? one of {', '.join(TABLES)}")
        if self.format not in FORMATS:
            raise ValueError(f"format {self.format!r}: one of {', '.join(FORMATS)}")
        if len(self.tables) > 1 and self.format != "xlsx":
            raise ValueError("several tables go in one XLSX file (a sheet each); "
                             f"{self.format} holds one")
        if len(self.separator) != 1 or self.separator in "\"\r\n":
            raise ValueError(f"separator {self.separator!r}: one character, like ; or ,")

    def file_name(self, now: datetime) -> str:
        """``kiss-answers-20261127-1730.csv`` (``-pseudonymized`` when it is)."""
        suffix = "-pseudonymized" if self.pseudonyms is not None else ""
        return (f"kiss-{'-'.join(self.tables)}-{now.astimezone(BRUSSELS):%Y%m%d-%H%M}"
                f"{suffix}.{self.format}")

    def describe(self) -> dict[str, Any]:
        """What the audit trail keeps of it: what, how, and every filter."""
        found = self.filters
        return {"what": list(self.tables), "format": self.format,
                "since": found.since.isoformat() if found.since else None,
                "until": found.until.isoformat() if found.until else None,
                "municipality": found.municipality,
                "pseudonymized": self.pseudonyms is not None}


@dataclass(frozen=True, slots=True)
class Sheet:
    name: str
    columns: tuple[Column, ...]
    rows: Iterator[Row]
    moment: str


def produce(url: str, request: ExportRequest, out: IO[bytes],
            progress: Progress | None = None) -> int:
    """Write the export to ``out``; the number of rows written (over all tables)."""
    with exports.reading(url) as conn:
        sources = Sources(conn)
        sizes = {name: TABLES[name].size(conn, request.filters) for name in request.tables}
        total = sum(sizes.values())
        done = 0

        def step() -> None:
            nonlocal done
            done += 1
            if progress is not None and (done % 100 == 0 or done == total):
                progress(done, total)

        sheets = []
        for name in request.tables:
            table = TABLES[name]
            columns, rows = shaped(table.columns(sources),
                                   table.rows(conn, request.filters, sources, step),
                                   request.pseudonyms)
            sheets.append(Sheet(name, columns, rows, table.moment))
        if request.format == "xlsx":
            return _xlsx(sheets, out)
        [sheet] = sheets
        if request.format == "csv":
            return _csv(sheet, out, request.separator, request.bom)
        return _jsonl(sheet, out)


def _cells(columns: tuple[Column, ...], local: Callable[[datetime], Any],
           guard: bool) -> Callable[[Row], Row]:
    """A function that makes a row's values writable in place: times through ``local``
    (the same moment, often repeated, converted once), and with ``guard`` typed text that
    a spreadsheet would run as a formula prefixed with ``'``. Other values pass as they are
    (most of a row)."""
    moments = [i for i, c in enumerate(columns) if c.kind is Kind.MOMENT]
    typed = [i for i, c in enumerate(columns) if guard and c.personal and c.kind is Kind.TEXT]
    last: dict[datetime, Any] = {}

    def convert(row: Row) -> Row:
        for i in moments:
            value = row[i]
            if value is not None:
                shown = last.get(value)
                if shown is None:
                    last.clear()
                    shown = last[value] = local(value)
                row[i] = shown
        for i in typed:
            value = row[i]
            if value and value.startswith(_FORMULA_START):
                row[i] = "'" + value
        return row

    return convert


def _iso(moment: datetime) -> str:
    return moment.astimezone(BRUSSELS).isoformat(timespec="seconds")


def _wall_clock(moment: datetime) -> datetime:
    # Spreadsheets have no time zones: Brussels wall-clock time, as the dictionary says.
    return moment.astimezone(BRUSSELS).replace(tzinfo=None, microsecond=0)


def _csv(sheet: Sheet, out: IO[bytes], separator: str, bom: bool) -> int:
    # The csv module writes to a string buffer that goes out encoded every few hundred
    # rows: a write per row through an encoder costs more than making the row.
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=separator, lineterminator="\r\n")
    if bom:
        out.write(codecs.BOM_UTF8)
    writer.writerow([c.name for c in sheet.columns])
    convert = _cells(sheet.columns, _iso, guard=True)
    flags = [i for i, c in enumerate(sheet.columns) if c.kind is Kind.FLAG]
    count = 0
    for row in sheet.rows:
        convert(row)
        for i in flags:
            if row[i] is not None:
                row[i] = "true" if row[i] else "false"
        writer.writerow(row)  # None is written as an empty cell
        count += 1
        if count % _ROWS_PER_WRITE == 0:
            out.write(buffer.getvalue().encode())
            buffer.seek(0)
            buffer.truncate()
    out.write(buffer.getvalue().encode())
    return count


def _jsonl(sheet: Sheet, out: IO[bytes]) -> int:
    names = [c.name for c in sheet.columns]
    convert = _cells(sheet.columns, _iso, guard=False)
    lines: list[str] = []
    count = 0
    for row in sheet.rows:
        lines.append(json.dumps(dict(zip(names, convert(row), strict=True)),
                                ensure_ascii=False, separators=(",", ":")))
        count += 1
        if len(lines) == _ROWS_PER_WRITE:
            out.write(("\n".join(lines) + "\n").encode())
            lines.clear()
    if lines:
        out.write(("\n".join(lines) + "\n").encode())
    return count


def _xlsx(sheets: list[Sheet], out: IO[bytes]) -> int:
    book = Workbook(out)
    count = 0
    for sheet in sheets:
        convert = _cells(sheet.columns, _wall_clock, guard=False)
        widths = [max(_WIDTHS[c.kind], len(c.name) + 2) for c in sheet.columns]
        count += book.sheet(sheet.name, [c.name for c in sheet.columns],
                            (convert(row) for row in sheet.rows), widths)
    book.sheet("dictionary", ["table", "column", "type", "beschrijving", "description"],
               _dictionary(sheets), [14, 24, 10, 60, 60], wrap=True)
    book.close()
    return count


def _dictionary(sheets: list[Sheet]) -> Iterator[list[str]]:
    """Every column of every table, explained; then what the filters and times mean."""
    for sheet in sheets:
        for column in sheet.columns:
            yield [sheet.name, column.name, column.kind.value, column.nl, column.en]
        yield [sheet.name, "", "", f"--since en --until filteren op {sheet.moment}; alle "
               "tijden in Brusselse tijd", f"--since and --until filter on {sheet.moment}; "
               "all times in Brussels time"]
