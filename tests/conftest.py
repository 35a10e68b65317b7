"""Shared fixtures: the shipped flows, and a fresh database per test (SQLite always,
PostgreSQL too when ``KISS_TEST_POSTGRES_URL`` names a server)."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from graph_emulator import GraphEmulator
from telegram_emulator import BotAPIEmulator

from bot.app import App, build
from bot.config import Settings
from bot.delivery.sender import DeliverySettings
from flows.definition import Flow
from flows.engine import Engine
from flows.loader import load_library
from flows.texts import Texts
from storage.database import Database

ROOT = Path(__file__).resolve().parent.parent
FLOWS = ROOT / "flows"
POSTGRES_URL = os.environ.get("KISS_TEST_POSTGRES_URL")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/*.out from the current behaviour")


@pytest.fixture(scope="session")
def library() -> dict[str, Flow]:
    return load_library(FLOWS)


@pytest.fixture(scope="session")
def texts() -> Texts:
    return Texts.load(FLOWS / "texts")


@pytest.fixture(scope="session")
def engine(texts: Texts) -> Engine:
    return Engine(texts)


def _backends() -> list[str]:
    return ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of a database that exists for this test only: a copy of one migrated once per
    session, an SQLite file or a PostgreSQL database (migrating each test's database took
    most of the suite's time; the bot's own ``upgrade`` then finds nothing to do).
    ``postgres_url`` gives a truly empty PostgreSQL database, ``tmp_path`` an empty file."""
    if request.param == "sqlite":
        path = tmp_path / "kiss.sqlite3"
        shutil.copyfile(_migrated_sqlite(), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    yield from _postgres_database(template=_migrated_template())


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """An empty PostgreSQL database for this test (for what SQLite cannot do)."""
    if POSTGRES_URL is None:
        pytest.skip("needs PostgreSQL: set KISS_TEST_POSTGRES_URL (.ci/run does)")
    yield from _postgres_database()


_TEMPLATE: list[str] = []  # the session's migrated PostgreSQL database, once made
_SQLITE_TEMPLATE: list[Path] = []  # and SQLite file


def _migrated_sqlite() -> Path:
    """An SQLite file with every migration applied, made on first use (one per worker)."""
    if not _SQLITE_TEMPLATE:
        path = Path(tempfile.mkdtemp(prefix="kiss-template-")) / "migrated.sqlite3"

        async def migrate() -> None:
            db = Database(f"sqlite+aiosqlite:///{path}")
            try:
                await db.upgrade()
            finally:
                await db.close()  # checkpoints the WAL: the file alone is the database

        asyncio.run(migrate())
        _SQLITE_TEMPLATE.append(path)
    return _SQLITE_TEMPLATE[0]


def _admin() -> sa.Engine:
    assert POSTGRES_URL is not None
    return sa.create_engine(sa.make_url(POSTGRES_URL).set(drivername="postgresql+psycopg"),
                            isolation_level="AUTOCOMMIT")


def _url_of(name: str) -> str:
    assert POSTGRES_URL is not None
    return sa.make_url(POSTGRES_URL).set(drivername="postgresql+psycopg",
                                         database=name).render_as_string(hide_password=False)


def _migrated_template() -> str:
    """A database with every migration applied, made on first use and dropped when the
    session ends (``pytest_sessionfinish``)."""
    if not _TEMPLATE:
        name = f"kiss_template_{uuid.uuid4().hex[:12]}"
        admin = _admin()
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        _TEMPLATE.append(name)

        async def migrate() -> None:
            db = Database(_url_of(name))
            try:
                await db.upgrade()
            finally:
                await db.close()

        asyncio.run(migrate())
    return _TEMPLATE[0]


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _SQLITE_TEMPLATE:
        shutil.rmtree(_SQLITE_TEMPLATE[0].parent, ignore_errors=True)
    if _TEMPLATE:
        admin = _admin()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{_TEMPLATE[0]}" WITH (FORCE)'))
        admin.dispose()


def _postgres_database(template: str | None = None) -> Iterator[str]:
    admin = _admin()
    name = f"kiss_test_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"{copy}'))
    try:
        yield _url_of(name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Telegram's rate limits off (tests tap faster than a person; the limiter has its own
    tests) and retries within milliseconds, so nothing waits on a wall clock."""
    return Settings(database_url=database_url, charts_dir=tmp_path / "charts",
                    telegram_api_base_url="http://127.0.0.1:9/bot", log_level="INFO",
                    telegram_rate=1e5, chat_rate=1e5, chat_burst=1000,
                    delivery=DeliverySettings(backoff_base=0.01, backoff_max=0.05,
                                              poll_seconds=0.05))


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[App]:
    app = await build(settings)
    yield app
    await app.close()


@pytest.fixture
async def db(app: App) -> Database:
    return app.db


@pytest.fixture
async def graph() -> AsyncIterator[GraphEmulator]:
    """The Graph API emulator (WhatsApp); at the end, no call refused that the test did not
    provoke (131047, the window, is the bot's to find out)."""
    async with GraphEmulator() as emulator:
        yield emulator
        refused = [e for e in emulator.errors if not e.get("injected")
                   and e["code"] != 131047]
        assert refused == [], "the emulator refused calls that WhatsApp would refuse too"


@pytest.fixture
async def emulator() -> AsyncIterator[BotAPIEmulator]:
    """The Bot API emulator (Telegram); at the end, no call refused that the test did not
    provoke. Modules that need more (every button press answered) define their own."""
    async with BotAPIEmulator() as emu:
        yield emu
        refused = [e for e in emu.errors if not e.get("injected")]
        assert refused == [], "the emulator refused calls that Telegram would refuse too"
