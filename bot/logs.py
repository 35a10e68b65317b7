"""Logging that never shows a secret, at any level.

python-telegram-bot logs the Bot API URL, token included, at DEBUG; aiohttp errors quote
URLs. :func:`hide` makes every log record redact the secrets as it is created, before any
handler (a file, the console, pytest's capture) can see it.
"""

from __future__ import annotations

import logging
from typing import Any

_secrets: set[str] = set()
_installed = False


def hide(*secrets: str | None) -> None:
    """From now on, no log record shows any of ``secrets`` (empty ones are ignored)."""
    global _installed  # one record factory for the process, however often this is called
    _secrets.update(s for s in secrets if s and len(s) >= 6)
    if _installed:
        return
    create = logging.getLogRecordFactory()

    def redacting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = create(*args, **kwargs)
        if _secrets:
            _redact(record)
        return record

    logging.setLogRecordFactory(redacting)
    _installed = True


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
