"""One serving process per SQLite file.

SQLite is the embedded, single-process default: the per-user order of turns, the outbox
sender and the pool of one connection all assume that one bot process owns the file. A
second bot on the same file would interleave turns and send messages twice, so it is
refused at start with a message that points to PostgreSQL.

The lock is ``flock(LOCK_EX | LOCK_NB)`` on ``<database>.lock`` next to the file (never
deleted: deleting it would let two processes lock two different files). The kernel
releases it when the process ends, however it ends, so a SIGKILLed bot never blocks the
next start. Short jobs on the same file (``kiss-coach db upgrade``, an export, ``roles``)
do not take it: they only wait for the write lock, which the driver does without holding
up the event loop.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa


class AlreadyServingError(RuntimeError):
    """Another process serves this SQLite file; the message says what to do instead."""


class ServingLock:
    """Held while the process serves the file; :meth:`release` (or exit) gives it up."""

    def __init__(self, lock_path: Path, fd: int) -> None:
        self.path = lock_path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None


def database_file(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for an in-memory database."""
    parsed = sa.make_url(url)
    database = parsed.database or ""
    if database.startswith("file:"):  # a URI filename: file:path?mode=…
        if parsed.query.get("mode") == "memory":
            return None
        database = urlsplit(database).path
    if database in ("", ":memory:"):
        return None
    return Path(database)


def hold(url: str) -> ServingLock | None:
    """Take the serving lock for the SQLite file of ``url`` (None for :memory:), or raise
    :class:`AlreadyServingError` at once, naming the process that holds it."""
    database = database_file(url)
    if database is None:
        return None
    lock_path = database.with_name(database.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise AlreadyServingError(
            f"another process (pid {holder}) is already serving {database}. SQLite allows "
            f"one bot process per database file; to run more, use PostgreSQL: set "
            f"KISS_DATABASE_URL=postgresql+psycopg://user:password@host/dbname") from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return ServingLock(lock_path, fd)
