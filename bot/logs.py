"""Logging that never shows a secret, at any level, and says which turn a line belongs to.

python-telegram-bot logs the Bot API URL, token included, at DEBUG; aiohttp errors quote
URLs. :func:`hide` makes every log record redact the secrets as it is created, before any
handler (a file, the console, pytest's capture) can see it.

Every record also carries the update and the person of the turn it was written in
(``record.turn_update``, ``record.turn_person``; None outside a turn; see
:mod:`handlers.turn_ids`). :func:`configure` writes either plain lines (the ids appended
when present) or JSON lines (``KISS_LOG_FORMAT=json``)::

    {"time": "2026-11-27T20:01:02.345Z", "level": "INFO", "logger": "handlers.dispatcher",
     "message": "…", "update": "telegram:912345", "person": 42}
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from handlers import turn_ids

#: The formats :func:`configure` knows.
FORMATS = ("plain", "json")
PLAIN = "%(asctime)s %(levelname)s %(name)s: %(message)s%(turn)s"

_secrets: set[str] = set()
_installed = False


def hide(*secrets: str | None) -> None:
    """From now on, no log record shows any of ``secrets`` (empty ones are ignored)."""
    _secrets.update(s for s in secrets if s and len(s) >= 6)
    _install()


def _install() -> None:
    """One record factory for the process, however often this is called: it adds the
    turn's ids to every record and redacts the secrets."""
    global _installed
    if _installed:
        return
    create = logging.getLogRecordFactory()

    def annotated(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = create(*args, **kwargs)
        record.turn_update, record.turn_person = turn_ids.current()
        if _secrets:
            _redact(record)
        return record

    logging.setLogRecordFactory(annotated)
    _installed = True


def configure(level: str, form: str = "plain") -> None:
    """Log to stderr at ``level`` in ``form`` (``plain`` or ``json``); the secrets given to
    :func:`hide`, before or after, never appear."""
    if form not in FORMATS:
        raise ValueError(f"log format {form!r} is not one of {', '.join(FORMATS)}")
    _install()
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if form == "json" else PlainFormatter(PLAIN))
    logging.basicConfig(level=level, handlers=[handler], force=True)


class PlainFormatter(logging.Formatter):
    """The usual one-line format, with `` [update=… person=…]`` in a turn."""

    def format(self, record: logging.LogRecord) -> str:
        ids = [f"{name}={value}" for name in ("update", "person")
               if (value := getattr(record, f"turn_{name}", None)) is not None]
        record.turn = f" [{' '.join(ids)}]" if ids else ""
        return _scrub(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, the turn's update and
    person, and the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "update": getattr(record, "turn_update", None),
            "person": getattr(record, "turn_person", None),
        }
        if record.exc_info:
            # exc_text is the redacted traceback when the record factory made one
            line["exception"] = record.exc_text or self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return _scrub(json.dumps(line, ensure_ascii=False, default=str))


def _scrub(text: str) -> str:
    """The last line of defence: whatever reached the formatter (a record made before
    :func:`hide` learnt a secret), no secret leaves it."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "<secret>")
    return text


def _redact(record: logging.LogRecord) -> None:
    message = record.getMessage()
    if any(secret in message for secret in _secrets):
        for secret in _secrets:
            message = message.replace(secret, "<secret>")
        record.msg, record.args = message, ()
    if record.exc_info:
        text = logging.Formatter().formatException(record.exc_info)
        for secret in _secrets:
            text = text.replace(secret, "<secret>")
        record.exc_text = text
