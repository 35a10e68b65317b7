"""One serving process per SQLite file: a second one is refused, pointing to PostgreSQL; a
killed holder never blocks the next start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from storage import sqlite_guard
from storage.database import Database

ROOT = Path(__file__).resolve().parent.parent
HOLDER = """
import sys
from storage import sqlite_guard
lock = sqlite_guard.hold(sys.argv[1])
print("held", flush=True)
sys.stdin.read()
"""


def url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'data' / 'kiss.sqlite3'}"


def start_holder(database_url: str) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, database_url], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    assert holder.stdout.readline() == "held\n"
    return holder


def test_a_second_serving_process_is_refused_until_the_first_is_killed(
        tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    holder = start_holder(url(tmp_path))
    try:
        with pytest.raises(sqlite_guard.AlreadyServingError) as refused:
            sqlite_guard.hold(url(tmp_path))
        message = str(refused.value)
        assert f"pid {holder.pid}" in message
        assert str(tmp_path / "data" / "kiss.sqlite3") in message
        assert "PostgreSQL" in message
        assert "KISS_DATABASE_URL=postgresql+psycopg://" in message
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.close()
        holder.stdout.close()
    lock = sqlite_guard.hold(url(tmp_path))  # the kernel released the dead one's lock
    assert lock is not None
    lock.release()


async def test_database_exclusive_holds_the_file_until_closed(tmp_path: Path) -> None:
    serving = Database(url(tmp_path), exclusive=True)
    try:
        with pytest.raises(sqlite_guard.AlreadyServingError, match=f"pid {os.getpid()}"):
            Database(url(tmp_path), exclusive=True)
        job = Database(url(tmp_path))  # a migration or an export is not refused
        await job.upgrade()
        await job.close()
    finally:
        await serving.close()
    again = Database(url(tmp_path), exclusive=True)
    await again.close()


def test_in_memory_databases_need_no_lock() -> None:
    assert sqlite_guard.hold("sqlite+aiosqlite://") is None
    assert sqlite_guard.hold("sqlite+aiosqlite:///:memory:") is None
    assert sqlite_guard.hold("sqlite+aiosqlite:///file:kiss?mode=memory&uri=true") is None
    assert sqlite_guard.database_file("sqlite+aiosqlite:///file:data/x.db?uri=true") == (
        Path("data/x.db"))
