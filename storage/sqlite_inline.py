"""SQLite for the async engine without a thread: aiosqlite's interface, run inline.

aiosqlite runs every call on a worker thread and hands the result back through the event
loop: four thread round trips per statement (cursor, execute, fetch, close). SQLite itself
answers the bot's indexed lookups and small writes in microseconds, so those round trips,
and the GIL hand-overs they cause under load, cost far more than the queries. Here each
call simply runs on the calling thread and returns a finished awaitable.

The price: a slow statement holds up the event loop while it runs, and so does waiting
for the write lock when another process (a migration, an export) writes at the same moment
(up to ``busy_timeout``, 5 s). That is acceptable for what SQLite is used for here (one
bot process, thousands of shopkeepers, WAL with ``synchronous=NORMAL`` so a commit does not
wait for the disk). Large deployments use PostgreSQL, whose driver is natively
asynchronous.

Plug it in with ``create_async_engine("sqlite+aiosqlite:///…", async_creator=…)``; see
:func:`connector`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any


class Cursor:
    """An ``aiosqlite.Cursor`` look-alike over a :class:`sqlite3.Cursor`."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Cursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> Cursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _RunNow:
    """Stands in for aiosqlite's request queue (SQLAlchemy sets the isolation level through
    it): the queued function runs at once and its future is resolved."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except Exception as error:  # handed to the awaiting caller, as aiosqlite does
            if future is not None:
                future.set_exception(error)
            return
        if future is not None:
            future.set_result(result)


class Connection:
    """An ``aiosqlite.Connection`` look-alike whose calls run on the calling thread."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection: sqlite3.Connection | None = connection
        self._tx = _RunNow(connection)

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    def cursor(self) -> Cursor:
        """A cursor, entered with ``async with`` (how SQLAlchemy opens aiosqlite's)."""
        return Cursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Cursor:
        return Cursor(self._conn.execute(sql, parameters))

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def stop(self) -> None:
        """Close at once (SQLAlchemy's "terminate")."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def create_function(self, name: str, num_params: int, func: Callable[..., Any],
                              deterministic: bool = False) -> None:
        self._conn.create_function(name, num_params, func, deterministic=deterministic)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._conn.isolation_level = value  # type: ignore[assignment]  # "" is valid too

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction


def connector(path: str) -> Callable[[], Awaitable[Connection]]:
    """The ``async_creator`` for a SQLite file (or ``:memory:``)."""

    async def connect() -> Connection:
        uri = path.startswith("file:")
        # check_same_thread=False: the pool may hand the connection to whichever thread
        # the loop runs on; it is only ever used by one task at a time.
        return Connection(sqlite3.connect(path, uri=uri, check_same_thread=False))

    return connect
