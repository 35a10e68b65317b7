"""The database: an async SQLAlchemy engine, sessions, and migrations on start.

SQLite (a file) is the default; any SQLAlchemy URL works, PostgreSQL through psycopg 3 in
production. ``Database.upgrade()`` runs the Alembic migrations, so an empty database is
brought up to date the first time the bot starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage import sqlite_guard, sqlite_inline

MIGRATIONS = Path(__file__).parent / "migrations"


def async_url(url: str) -> str:
    """Pick the async driver for a plain URL (``sqlite:///x`` → ``sqlite+aiosqlite:///x``)."""
    for plain, driver in (("sqlite://", "sqlite+aiosqlite://"),
                          ("postgresql://", "postgresql+psycopg://"),
                          ("postgres://", "postgresql+psycopg://")):
        if url.startswith(plain):
            return driver + url[len(plain):]
    return url


class Database:
    """Owns the engine. ``async with db.transaction() as tx`` is one transaction for the
    storage functions (Core statements); :meth:`session` is an ORM session, for ad-hoc
    queries and tests."""

    def __init__(self, url: str, *, echo: bool = False, exclusive: bool = False) -> None:
        """``exclusive``: this process serves the database (the bot); on SQLite a second
        such process on the same file raises :class:`sqlite_guard.AlreadyServingError`. Short
        jobs (migrations, exports, the CLI) leave it False. No effect on PostgreSQL."""
        self.url = async_url(url)
        options: dict[str, Any] = {"echo": echo}
        self._serving: sqlite_guard.ServingLock | None = None
        engine_url: str | sa.URL = self.url
        if self.url.startswith("sqlite"):
            _make_parent_dir(self.url)
            if exclusive:
                self._serving = sqlite_guard.hold(self.url)
            # SQLite has one writer at a time. One shared connection queues this process's
            # transactions in the pool instead of letting them fail with "database is locked".
            options.update(pool_size=1, max_overflow=0, pool_timeout=60)
            # Statements run inline; every transaction takes the write lock at BEGIN, where
            # the driver waits for it without holding up the event loop (see sqlite_inline).
            engine_url = sa.make_url(self.url).set(drivername=sqlite_inline.DRIVERNAME)
            options["async_creator"] = sqlite_inline.connector(_sqlite_path(self.url))
        else:
            options.update(pool_pre_ping=True, pool_size=10, max_overflow=10)
        self.engine: AsyncEngine = create_async_engine(engine_url, **options)
        if self.url.startswith("sqlite"):
            sa.event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite: this process's one connection, kept open, and its transactions in turn.
        # Checking a connection out of the pool and back cost more than the transaction.
        self._sqlite = self.url.startswith("sqlite")
        self._connection: AsyncConnection | None = None
        self._turns = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One transaction on one connection: committed on success, rolled back on error.
        A quarter cheaper per turn than an ORM session, whose machinery storage never uses.
        Transactions never nest: storage functions take the one they are given."""
        if not self._sqlite:
            async with self.engine.begin() as connection:
                yield connection
            return
        async with self._turns:
            connection = await self._kept()
            try:
                async with connection.begin():
                    yield connection
            except BaseException:
                if connection.invalidated:  # broken: open a fresh one next time
                    await connection.close()
                    self._connection = None
                raise

    async def _kept(self) -> AsyncConnection:
        if self._connection is None or self._connection.closed:
            self._connection = await self.engine.connect()
        return self._connection

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose work is committed on success and rolled back on error."""
        if not self._sqlite:
            async with self._sessions() as session, session.begin():
                yield session
            return
        async with self.transaction() as connection, AsyncSession(
                bind=connection, expire_on_commit=False,
                join_transaction_mode="create_savepoint") as session:
            yield session
            await session.flush()

    async def upgrade(self) -> None:
        """Apply every pending migration (idempotent). On PostgreSQL under an advisory
        lock, held until the migrations' transaction ends: processes starting together take
        turns, and the later ones find nothing left to do."""
        async with self.transaction() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(_MIGRATION_LOCK)
            await conn.run_sync(_upgrade)

    async def revision(self) -> str | None:
        """The migration the database is at, or None when it is empty."""
        async with self.transaction() as conn:
            return await conn.run_sync(
                lambda c: MigrationContext.configure(c).get_current_revision())

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
        await self.engine.dispose()
        if self._serving is not None:
            self._serving.release()


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


# A fixed number: every KI:SS Coach process agrees on it ("kiss" in ASCII).
_MIGRATION_LOCK = sa.text("SELECT pg_advisory_xact_lock(1802072947)")


def _upgrade(connection: sa.Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _sqlite_path(url: str) -> str:
    """What sqlite3.connect opens; a URI filename keeps its parameters (``mode=memory``)."""
    parsed = sa.make_url(url)
    database = parsed.database or ":memory:"
    if database.startswith("file:"):
        query = urlencode([(k, v) for k, v in parsed.query.items() if k != "uri"], doseq=True)
        database += f"?{query}" if query else ""
    return database


def _make_parent_dir(url: str) -> None:
    path = sa.make_url(url).database
    if path and path != ":memory:" and not path.startswith("file:"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Foreign keys make "delete a shopkeeper" delete everything about them; WAL lets other
    # processes (an export, a migration) read while the bot writes. In WAL mode
    # synchronous=NORMAL never corrupts the file; a power cut may lose the last commits.
    # No busy_timeout here: the driver sets a few ms and awaits longer lock waits.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
