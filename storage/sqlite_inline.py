"""SQLite for the async engine without a thread: aiosqlite's interface, run inline.

aiosqlite runs every call on a worker thread and hands the result back through the event
loop: four thread round trips per statement (cursor, execute, fetch, close). SQLite itself
answers the bot's indexed lookups and small writes in microseconds, so those round trips,
and the GIL hand-overs they cause under load, cost far more than the queries. Here each
call simply runs on the calling thread.

The one thing that may take long is waiting for the write lock while another process (a
migration, an export, ``roles grant``) writes. SQLite's own wait (``busy_timeout``) would
sleep on the event loop, so it is cut to :data:`BUSY_TIMEOUT_MS`, and the rest of the wait
is an ``await asyncio.sleep`` between attempts, bounded by ``lock_wait`` seconds, after
which the last "database is locked" error is raised. Other tasks run meanwhile.

Retrying a statement is only correct when no transaction is open (``BEGIN IMMEDIATE``
itself, or a statement outside a transaction) or for ``COMMIT`` (SQLite keeps the
transaction and documents that COMMIT may be retried). Inside a transaction a busy error
means a deferred reader could not become a writer, and in WAL mode its snapshot may be
stale (``SQLITE_BUSY_SNAPSHOT``): only the whole transaction could be retried. So every
transaction is begun by :class:`Dialect` with ``BEGIN IMMEDIATE``, which takes the write
lock up front: the wait happens at ``BEGIN``, and no later statement in the transaction
waits for a lock. sqlite3's own implicit BEGIN (before an INSERT/UPDATE/DELETE outside a
transaction) thus never fires.

:data:`CHECKED_AGAINST_SQLALCHEMY` is the SQLAlchemy release whose aiosqlite dialect this
imitates; ``tests/test_sqlite_driver.py`` fails when another one is installed.

Plug it in with ``create_async_engine("sqlite+kiss_inline:///…", async_creator=…)``; see
:class:`Dialect` and :func:`connector`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, NoReturn

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.pool import PoolProxiedConnection

#: The SQLAlchemy version whose aiosqlite dialect (sqlalchemy/dialects/sqlite/aiosqlite.py,
#: sqlalchemy/connectors/asyncio.py) this module was checked against.
CHECKED_AGAINST_SQLALCHEMY = "2.1.9"
#: How long SQLite itself may wait for a lock, on the event loop (milliseconds).
BUSY_TIMEOUT_MS = 2
#: How long a statement waits for another process's write lock in all (seconds).
LOCK_WAIT_SECONDS = 10.0
_FIRST_PAUSE = 0.001
_LONGEST_PAUSE = 0.02


class Dialect(SQLiteDialect_aiosqlite):
    """SQLAlchemy's aiosqlite dialect, but every transaction begins ``BEGIN IMMEDIATE``.

    The bot's transactions nearly all write; beginning them as writers makes the lock wait
    a retryable ``BEGIN`` instead of a failed upgrade halfway through (see the module).
    ``do_begin`` is the dialect's hook for exactly this; SQLAlchemy's documented alternative,
    a ``begin`` event listener, costs 15 % more CPU per turn because any connection event
    sends every statement through the event dispatch. Under ``isolation_level="AUTOCOMMIT"``
    SQLAlchemy sets the driver's ``isolation_level`` to None and never commits, so no BEGIN
    is emitted then. Registered as ``sqlite+kiss_inline`` (see :data:`DRIVERNAME`)."""

    supports_statement_cache = True

    def do_begin(self, dbapi_connection: PoolProxiedConnection) -> None:
        if dbapi_connection.isolation_level is not None:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
            finally:
                cursor.close()


#: The URL driver name of :class:`Dialect`: ``create_async_engine("sqlite+kiss_inline:///…",
#: async_creator=connector(…))``.
DRIVERNAME = "sqlite+kiss_inline"
registry.register("sqlite.kiss_inline", __name__, "Dialect")


def _is_busy(error: sqlite3.OperationalError) -> bool:
    return (getattr(error, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_BUSY


class _Waiter:
    """Waits for another process's write lock with pauses on the event loop (growing from
    1 to 20 ms, so the statement goes through soon after the lock is released), for at most
    ``lock_wait`` seconds."""

    __slots__ = ("_connection", "lock_wait")

    def __init__(self, connection: sqlite3.Connection, lock_wait: float) -> None:
        self._connection = connection
        self.lock_wait = lock_wait

    async def retry(self, error: sqlite3.OperationalError, call: Callable[[], object], *,
                    commit: bool = False) -> None:
        """Called with the first attempt's error: raises it unless it is another process's
        lock and a retry is correct, else retries ``call`` until it succeeds or time is up."""
        if not (_is_busy(error) and (commit or not self._connection.in_transaction)):
            raise error
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.lock_wait
        pause = _FIRST_PAUSE
        while True:
            await asyncio.sleep(min(pause, max(0.0, deadline - loop.time())))
            pause = min(pause * 2, _LONGEST_PAUSE)
            try:
                call()
                return
            except sqlite3.OperationalError as again:
                if not _is_busy(again) or loop.time() >= deadline:
                    if _is_busy(again):
                        again.add_note(f"another process held the write lock for more "
                                       f"than {self.lock_wait:g} s")
                    raise


class Cursor:
    """An ``aiosqlite.Cursor`` look-alike over a :class:`sqlite3.Cursor`."""

    __slots__ = ("_cursor", "_waiter")

    def __init__(self, cursor: sqlite3.Cursor, waiter: _Waiter) -> None:
        self._cursor = cursor
        self._waiter = waiter

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Cursor:
        try:
            self._cursor.execute(sql, parameters)
        except sqlite3.OperationalError as error:
            await self._waiter.retry(error, lambda: self._cursor.execute(sql, parameters))
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> Cursor:
        # A retry needs the parameters again; a generator would be spent by the first try.
        rows = parameters if isinstance(parameters, Sequence) else list(parameters)
        try:
            self._cursor.executemany(sql, rows)
        except sqlite3.OperationalError as error:
            await self._waiter.retry(error, lambda: self._cursor.executemany(sql, rows))
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def __aiter__(self) -> AsyncIterator[Any]:
        for row in self._cursor:
            yield row

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


class _NoCursor:
    """What :meth:`Connection.cursor` gives once the connection is closed."""

    async def __aenter__(self) -> NoReturn:
        raise ValueError("no active connection")


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

    def __init__(self, connection: sqlite3.Connection, lock_wait: float) -> None:
        self._connection: sqlite3.Connection | None = connection
        self._tx = _RunNow(connection)
        self._waiter = _Waiter(connection, lock_wait)

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    def cursor(self) -> Cursor | _NoCursor:
        """A cursor, entered with ``async with`` (how SQLAlchemy opens aiosqlite's). On a
        closed connection the error comes from ``__aenter__``, as with aiosqlite, where
        SQLAlchemy turns it into a disconnect."""
        if self._connection is None:
            return _NoCursor()
        return Cursor(self._connection.cursor(), self._waiter)

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Cursor:
        cursor = Cursor(self._conn.cursor(), self._waiter)
        return await cursor.execute(sql, parameters)

    async def commit(self) -> None:
        try:
            self._conn.commit()
        except sqlite3.OperationalError as error:
            await self._waiter.retry(error, self._conn.commit, commit=True)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self._close()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's forced "terminate")."""
        self._close()

    def _close(self) -> None:
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


def connector(path: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS,
              lock_wait: float = LOCK_WAIT_SECONDS) -> Callable[[], Awaitable[Connection]]:
    """The ``async_creator`` for a SQLite file (or ``:memory:``), for an engine on
    :data:`DRIVERNAME` (whose dialect begins the transactions)."""

    async def connect() -> Connection:
        uri = path.startswith("file:")
        # check_same_thread=False: the pool may hand the connection to whichever thread
        # the loop runs on; it is only ever used by one task at a time.
        raw = sqlite3.connect(path, uri=uri, check_same_thread=False,
                              timeout=busy_timeout_ms / 1000)
        return Connection(raw, lock_wait)

    return connect
