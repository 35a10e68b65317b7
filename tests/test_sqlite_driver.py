"""The inline SQLite driver: the aiosqlite surface SQLAlchemy's dialect uses (a contract,
pinned to the SQLAlchemy release it was checked against), and waiting for another
process's write lock without holding up the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storage import sqlite_inline
from storage.database import Database

METADATA = sa.MetaData()
ITEMS = sa.Table("items", METADATA,
                 sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("name", sa.String, nullable=False, unique=True),
                 sa.Column("size", sa.Integer, nullable=False))

# Holds the write lock: prints "locked", then holds it until stdin closes (or for the
# number of seconds given), inserting a row named "holder" inside its transaction.
HOLDER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
connection.execute("INSERT INTO items (name, size) VALUES ('holder', 0)")
print("locked", flush=True)
if len(sys.argv) > 2:
    time.sleep(float(sys.argv[2]))
else:
    sys.stdin.read()
connection.execute("COMMIT")
"""


def test_pinned_to_the_sqlalchemy_release_it_imitates() -> None:
    assert sa.__version__ == sqlite_inline.CHECKED_AGAINST_SQLALCHEMY, (
        f"storage/sqlite_inline.py imitates aiosqlite as SQLAlchemy "
        f"{sqlite_inline.CHECKED_AGAINST_SQLALCHEMY} uses it, but {sa.__version__} is "
        f"installed. Read what sqlalchemy/dialects/sqlite/aiosqlite.py and "
        f"sqlalchemy/connectors/asyncio.py now call on the driver, run "
        f"tests/test_sqlite_driver.py, and when it passes set CHECKED_AGAINST_SQLALCHEMY "
        f"= {sa.__version__!r}.")


def inline_engine(path: Path, *, lock_wait: float = sqlite_inline.LOCK_WAIT_SECONDS,
                  **options: Any) -> AsyncEngine:
    """The driver as ``Database`` plugs it in, without the rest of Database."""
    return create_async_engine(
        f"{sqlite_inline.DRIVERNAME}:///{path}", pool_size=1, max_overflow=0,
        async_creator=sqlite_inline.connector(str(path), lock_wait=lock_wait), **options)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = inline_engine(tmp_path / "contract.sqlite3")
    async with engine.begin() as connection:
        await connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        await connection.run_sync(METADATA.create_all)
    yield engine
    await engine.dispose()


async def test_statements_rows_and_cursor_attributes(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        inserted = await connection.execute(ITEMS.insert().values(name="a", size=1))
        assert inserted.inserted_primary_key == (1,)  # cursor.lastrowid
        assert inserted.rowcount == 1
        many = await connection.execute(ITEMS.insert(), [{"name": f"n{i}", "size": i}
                                                         for i in range(2, 6)])  # executemany
        assert many.rowcount == 4
        updated = await connection.execute(
            ITEMS.update().where(ITEMS.c.size > 3).values(size=ITEMS.c.size * 10))
        assert updated.rowcount == 2
        result = await connection.execute(sa.select(ITEMS.c.name, ITEMS.c.size)
                                          .order_by(ITEMS.c.id))
        assert list(result.keys()) == ["name", "size"]  # cursor.description
        assert [tuple(r) for r in result] == [("a", 1), ("n2", 2), ("n3", 3), ("n4", 40),
                                              ("n5", 50)]
        assert (await connection.exec_driver_sql("SELECT count(*) FROM items")).scalar() == 5


async def test_server_side_cursor_fetches_one_many_and_all(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(ITEMS.insert(), [{"name": f"n{i}", "size": i}
                                                  for i in range(10)])
        stream = await connection.stream(sa.select(ITEMS.c.size).order_by(ITEMS.c.size))
        assert (await stream.fetchone()) == (0,)
        assert [tuple(r) for r in await stream.fetchmany(3)] == [(1,), (2,), (3,)]
        assert [r.size async for r in stream] == [4, 5, 6, 7, 8, 9]
        stream = await connection.stream(sa.select(ITEMS.c.size).order_by(ITEMS.c.size))
        assert len(await stream.all()) == 10


async def test_commit_and_rollback(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(ITEMS.insert().values(name="kept", size=1))
    with pytest.raises(ZeroDivisionError):
        async with engine.begin() as connection:
            await connection.execute(ITEMS.insert().values(name="dropped", size=1))
            raise ZeroDivisionError
    async with engine.connect() as connection:
        await connection.execute(ITEMS.insert().values(name="not committed", size=1))
        await connection.rollback()
    async with engine.connect() as connection:
        names = (await connection.execute(sa.select(ITEMS.c.name))).scalars().all()
    assert names == ["kept"]


async def test_a_transaction_takes_the_write_lock_when_it_begins(
        engine: AsyncEngine, tmp_path: Path) -> None:
    other = sqlite3.connect(tmp_path / "contract.sqlite3", isolation_level=None, timeout=0)
    try:
        async with engine.begin() as connection:
            await connection.execute(sa.select(ITEMS.c.id))  # a read only, so far
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # released by the commit
        other.execute("ROLLBACK")
    finally:
        other.close()


async def test_isolation_level_and_autocommit(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        assert await connection.get_isolation_level() == "SERIALIZABLE"
        raw = await connection.get_raw_connection()
        assert raw.driver_connection is not None
        assert raw.driver_connection.isolation_level == ""  # the default; inert (see driver)
        auto = await connection.execution_options(isolation_level="AUTOCOMMIT")
        assert await auto.get_isolation_level() == "SERIALIZABLE"  # what SQLite reports
        assert raw.driver_connection.isolation_level is None
        await auto.execute(ITEMS.insert().values(name="auto", size=1))
    async with engine.connect() as connection:  # committed although no COMMIT was sent
        count = (await connection.execute(sa.select(sa.func.count()).select_from(ITEMS)))
        assert count.scalar() == 1
        raw = await connection.get_raw_connection()
        assert raw.driver_connection is not None
        assert raw.driver_connection.isolation_level == ""  # reset by the pool


async def test_functions_registered_on_connect(engine: AsyncEngine) -> None:
    # SQLAlchemy's pysqlite on_connect registers floor() and regexp() (create_function).
    async with engine.connect() as connection:
        assert (await connection.execute(sa.select(sa.func.floor(2.5)))).scalar() == 2
        match = sa.literal("bakkerij").regexp_match("^bak")
        assert (await connection.execute(sa.select(match))).scalar() == 1


async def test_errors_surface_as_sqlalchemy_errors(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(ITEMS.insert().values(name="a", size=1))
    with pytest.raises(sa.exc.IntegrityError) as integrity:
        async with engine.begin() as connection:
            await connection.execute(ITEMS.insert().values(name="a", size=2))
    assert isinstance(integrity.value.orig, sqlite3.IntegrityError)
    with pytest.raises(sa.exc.OperationalError) as operational:
        async with engine.begin() as connection:
            await connection.exec_driver_sql("SELECT * FROM missing")
    assert isinstance(operational.value.orig, sqlite3.OperationalError)
    async with engine.connect() as connection:  # the connection survived both
        assert (await connection.execute(sa.select(sa.func.count()).select_from(ITEMS))
                ).scalar() == 1


async def test_closed_connection_is_a_disconnect_and_is_replaced(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        assert isinstance(raw.driver_connection, sqlite_inline.Connection)
        raw.driver_connection.stop()  # SQLAlchemy's forced terminate
        with pytest.raises(sa.exc.OperationalError) as closed:
            await connection.execute(sa.select(1))
        assert closed.value.connection_invalidated
    async with engine.connect() as connection:  # the pool opened a new one
        assert (await connection.execute(sa.select(1))).scalar() == 1
        await connection.invalidate()  # terminate: the graceful close
    async with engine.connect() as connection:
        assert (await connection.execute(sa.select(1))).scalar() == 1


async def test_the_bots_database_uses_this_driver(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'bot.sqlite3'}")
    assert isinstance(db.engine.dialect, sqlite_inline.Dialect)
    try:
        async with db.transaction() as tx:
            raw = await tx.get_raw_connection()
            assert isinstance(raw.driver_connection, sqlite_inline.Connection)
            assert (await tx.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
            assert (await tx.exec_driver_sql("PRAGMA busy_timeout")).scalar() == (
                sqlite_inline.BUSY_TIMEOUT_MS)
    finally:
        await db.close()


async def test_the_contract_covers_every_driver_call_sqlalchemy_makes(
        engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Records which driver methods SQLAlchemy calls over a workload like the tests above:
    a new call in a new SQLAlchemy release shows up here (and needs a test above)."""
    called: set[str] = set()
    for cls in (sqlite_inline.Connection, sqlite_inline.Cursor):
        for name in ("cursor", "execute", "executemany", "fetchone", "fetchmany",
                     "fetchall", "close", "commit", "rollback", "stop", "create_function",
                     "__aenter__", "__aexit__"):
            method = getattr(cls, name, None)
            if method is not None:
                def record(*args: Any, _m: Any = method, _n: str = f"{cls.__name__}.{name}",
                           **kwargs: Any) -> Any:
                    called.add(_n)
                    return _m(*args, **kwargs)
                monkeypatch.setattr(cls, name, record)
    async with engine.begin() as connection:
        await connection.execute(ITEMS.insert(), [{"name": "a", "size": 1},
                                                  {"name": "b", "size": 2}])
        await connection.execute(sa.select(ITEMS))
        stream = await connection.stream(sa.select(ITEMS))
        await stream.fetchone()
        await stream.fetchmany(1)
        await stream.all()
    async with engine.connect() as connection:
        await connection.execute(sa.select(ITEMS))
        await connection.rollback()
        await connection.invalidate()  # terminate: closes the connection
    async with engine.connect() as connection:  # a new connection: create_function
        await connection.execute(sa.select(ITEMS))
    await engine.dispose()
    # Not called here, but part of the surface: Cursor.fetchone and __aiter__ (server-side
    # cursors), Connection.stop (terminate outside a greenlet, i.e. at garbage collection),
    # the isolation_level attribute (set through _tx and _conn, see test above).
    assert called == {
        "Connection.cursor", "Connection.commit", "Connection.rollback", "Connection.close",
        "Connection.create_function", "Cursor.__aenter__",
        "Cursor.execute", "Cursor.executemany", "Cursor.fetchmany", "Cursor.fetchall",
        "Cursor.close"}


async def test_cursor_reads_row_by_row_like_aiosqlite(tmp_path: Path) -> None:
    connection = await sqlite_inline.connector(str(tmp_path / "rows.sqlite3"))()
    try:
        async with connection.cursor() as cursor:
            await cursor.execute("SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3")
            assert await cursor.fetchone() == (1,)
            assert [row async for row in cursor] == [(2,), (3,)]
            assert await cursor.fetchone() is None
    finally:
        await connection.close()


# Waiting for another process's write lock


async def start_holder(path: Path, *args: str) -> asyncio.subprocess.Process:
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, str(path), *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert holder.stdout is not None
    assert await holder.stdout.readline() == b"locked\n"
    return holder


async def release(holder: asyncio.subprocess.Process) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    assert await holder.wait() == 0


class Ticker:
    """A task that wakes every millisecond and records the longest gap between wake-ups:
    how long the event loop was held up at once."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            self.longest, last = max(self.longest, now - last), now

    async def stop(self) -> float:
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task
        return self.longest


async def test_a_turn_waits_for_another_process_without_holding_up_the_loop(
        engine: AsyncEngine, tmp_path: Path) -> None:
    holder = await start_holder(tmp_path / "contract.sqlite3", "1.0")
    ticker = Ticker()
    async with engine.begin() as connection:
        await connection.execute(sa.select(ITEMS.c.id))
        await connection.execute(ITEMS.insert().values(name="bot", size=1))
    longest = await ticker.stop()
    assert await holder.wait() == 0
    async with engine.connect() as connection:
        names = (await connection.execute(sa.select(ITEMS.c.name).order_by(ITEMS.c.id))
                 ).scalars().all()
    assert names == ["holder", "bot"]  # the turn went through after the holder committed
    # A correctness bound, not a timing: SQLite's own wait was 5 s on the loop before.
    assert longest < 0.1, f"the event loop stood still for {longest * 1000:.0f} ms"


async def test_the_wait_is_bounded_and_then_says_so(tmp_path: Path) -> None:
    path = tmp_path / "bounded.sqlite3"
    engine = inline_engine(path, lock_wait=0.2)
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql("PRAGMA journal_mode=WAL")
            await connection.run_sync(METADATA.create_all)
        holder = await start_holder(path)
        try:
            with pytest.raises(sa.exc.OperationalError, match="database is locked") as locked:
                async with engine.begin() as connection:
                    await connection.execute(ITEMS.insert().values(name="bot", size=1))
            assert "held the write lock for more than 0.2 s" in str(locked.value.orig.__notes__)
        finally:
            await release(holder)
        async with engine.begin() as connection:  # and works again once it is free
            await connection.execute(ITEMS.insert().values(name="bot", size=1))
    finally:
        await engine.dispose()


async def test_a_reader_that_cannot_become_a_writer_fails_at_once(tmp_path: Path) -> None:
    """Inside a deferred transaction that has read, retrying the write cannot help (its
    snapshot may be stale): the driver raises instead of waiting."""
    path = tmp_path / "deferred.sqlite3"
    connection = await sqlite_inline.connector(str(path), lock_wait=30)()
    try:
        cursor = connection.cursor()
        await cursor.execute("PRAGMA journal_mode=WAL")
        await cursor.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, "
                             "size INTEGER)")
        await cursor.execute("BEGIN")  # deferred, not how the engine begins
        await cursor.execute("SELECT count(*) FROM items")
        holder = await start_holder(path)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked") as busy:
                await cursor.execute("INSERT INTO items (name, size) VALUES ('bot', 1)")
            assert not getattr(busy.value, "__notes__", None)  # no retries were made
        finally:
            await release(holder)
        await connection.rollback()
    finally:
        await connection.close()
