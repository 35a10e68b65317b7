"""SIGKILL a real bot process in the middle of a due tick, then tick again in a fresh one:
every person gets exactly one tip, no due row is lost or moved twice, and no tip is
recorded twice ("a restart in the middle of a due tick: no tip lost or sent twice").

The tick handles its due rows in batches of :data:`handlers.nudges.BATCH`, one transaction
each. The child process (a script written by the test) builds the app and ticks; only in
that child, ``storage.due.move`` is wrapped so that in the second batch, after the real
moves ran, it says "mid-tick" and waits forever: it is killed with the first batch
committed and the second one's transaction open. Nothing in the bot changes for this.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from collections import Counter
from collections.abc import Sequence
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bot.app import build
from bot.config import Settings
from flows.timing import BRUSSELS
from flows.tips import SHOP_TYPES, THEMES
from handlers.coaching import TIP_PREFIX
from handlers.nudges import BATCH
from storage.database import Database
from storage.sqlite_guard import database_file
from storage.tables import (
    COACHING_PLAN,
    DUE,
    IDENTITY,
    OUTBOX,
    RESULT,
    RUN,
    SHOPKEEPER,
    TIP_SENT,
    Cadence,
    DueKind,
    OutboxKind,
)

#: Enough people for three batches, the last one partial.
PEOPLE = 2 * BATCH + 200
#: A Wednesday morning in Brussels: inside the sending hours and the "morning" moment.
NOW = datetime(2027, 3, 24, 10, 0, tzinfo=BRUSSELS).astimezone(UTC)
MOMENT = "morning"

CHILD = '''
"""Build the bot and tick; stop for good inside the second batch's transaction."""

import asyncio
import sys
from datetime import datetime

from bot.app import build
from bot.config import Settings
from handlers.nudges import BATCH
from storage import due

NOW = datetime.fromisoformat(sys.argv[1])


async def main() -> None:
    real_move = due.move
    batches = 0

    async def move(tx, moves):
        nonlocal batches
        await real_move(tx, moves)
        batches += 1
        if batches == 2:  # the first batch is committed, this one is not
            print("mid-tick", flush=True)
            await asyncio.Event().wait()  # until SIGKILL

    due.move = move  # the tick looks it up on the module at each call
    app = await build(Settings.load(), clock=lambda: NOW)
    app.nudges.batch = BATCH  # PostgreSQL's larger batches would take everyone at once
    print("tick ended:", await app.nudges.tick(NOW), flush=True)  # must not get here


asyncio.run(main())
'''


def scores_of(number: int) -> dict[str, int]:
    """Different scores for different people (every level occurs), deterministic."""
    return {theme: 5 + (number * 7 + index * 29) % 95 for index, theme in enumerate(THEMES)}


async def seed(url: str) -> list[int]:
    """Migrate, then add PEOPLE consented people with a result, a weekly morning plan and
    a tip due at NOW. Returns their ids."""
    db = Database(url)
    try:
        await db.upgrade()
        shop_types = sorted(SHOP_TYPES)
        languages = ("nl", "en", "fr")
        async with db.transaction() as tx:
            ids = list((await tx.execute(
                sa.insert(SHOPKEEPER).returning(SHOPKEEPER.c.id, sort_by_parameter_order=True),
                [{"language": languages[n % 3], "language_chosen": True, "consent_at": NOW,
                  "consent_version": "1", "shop_name": f"Winkel {n}", "municipality": "Kortrijk",
                  "shop_type": shop_types[n % len(shop_types)], "team_size": "1",
                  "created_at": NOW, "updated_at": NOW} for n in range(PEOPLE)])).scalars())
            await tx.execute(sa.insert(IDENTITY), [
                {"channel": "telegram", "external_id": str(700000 + n), "shopkeeper_id": person,
                 "created_at": NOW} for n, person in enumerate(ids)])
            runs = list((await tx.execute(
                sa.insert(RUN).returning(RUN.c.id, sort_by_parameter_order=True),
                [{"shopkeeper_id": person, "flow_id": "assessment", "flow_key": "assessment:1",
                  "status": "completed", "state": {}, "started_at": NOW, "updated_at": NOW,
                  "completed_at": NOW} for person in ids])).scalars())
            results = []
            for n, (person, run) in enumerate(zip(ids, runs, strict=True)):
                scores = scores_of(n)
                results.append({
                    "shopkeeper_id": person, "run_id": run, "flow_key": "assessment:1",
                    "scores": scores, "overall": sum(scores.values()) // len(scores),
                    "focus": sorted(scores, key=scores.__getitem__)[:2], "created_at": NOW})
            await tx.execute(sa.insert(RESULT), results)
            await tx.execute(sa.insert(COACHING_PLAN), [
                {"shopkeeper_id": person, "cadence": Cadence.WEEKLY, "moment": MOMENT,
                 "updated_at": NOW} for person in ids])
            await tx.execute(sa.insert(DUE), [
                {"shopkeeper_id": person, "kind": DueKind.TIP, "subject": "", "due_at": NOW,
                 "count": 0, "claimed_by": None} for person in ids])
        return ids
    finally:
        await db.close()


async def tick_until_killed(script: Path, env: dict[str, str], log: Path) -> None:
    """Run the child until it says "mid-tick", then SIGKILL it and wait until it is gone."""
    with log.open("wb") as stderr:  # the child keeps its own copy of the descriptor
        child = await asyncio.create_subprocess_exec(
            sys.executable, str(script), NOW.isoformat(), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=stderr)
    try:
        assert child.stdout is not None
        async with asyncio.timeout(60):  # generous: a busy CI machine imports slowly
            said = await child.stdout.readline()
        assert said == b"mid-tick\n", (said, log.read_text(errors="replace")[-3000:])
        child.send_signal(signal.SIGKILL)
        assert await child.wait() == -signal.SIGKILL
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()


async def snapshot(db: Database) -> dict[str, Sequence[sa.Row[Any]]]:
    """The outbox, the tips had and the due rows, as committed."""
    async with db.transaction() as tx:
        return {
            "outbox": (await tx.execute(sa.select(
                OUTBOX.c.shopkeeper_id, OUTBOX.c.external_id, OUTBOX.c.kind,
                OUTBOX.c.payload))).all(),
            "tips": (await tx.execute(sa.select(TIP_SENT.c.shopkeeper_id,
                                                TIP_SENT.c.tip_id))).all(),
            "due": (await tx.execute(sa.select(
                DUE.c.shopkeeper_id, DUE.c.kind, DUE.c.due_at,
                DUE.c.count.label("times")))).all(),  # not Row.count
        }


async def test_a_tick_killed_between_batches_loses_no_tip_and_sends_none_twice(
        database_url: str, tmp_path: Path) -> None:
    ids = await seed(database_url)
    script = tmp_path / "tick_child.py"
    script.write_text(CHILD, encoding="utf-8")
    env = {**os.environ, "KISS_DATABASE_URL": database_url,
           "KISS_CHARTS_DIR": str(tmp_path / "charts"), "KISS_LOG_LEVEL": "WARNING"}

    await tick_until_killed(script, env, tmp_path / "child.log")

    db = Database(database_url)
    try:
        async with asyncio.timeout(10), db.transaction() as tx:
            # PostgreSQL rolls the killed process's transaction back when it sees the
            # connection close, a moment after the process is gone: waiting for its row
            # locks waits for exactly that. (SQLite's lock went with the process.)
            await tx.execute(sa.select(DUE.c.id).with_for_update())
        crashed = await snapshot(db)
    finally:
        await db.close()
    # The first batch was committed, the second rolled back as a whole.
    assert len(crashed["outbox"]) == len(crashed["tips"]) == BATCH
    assert len(crashed["due"]) == PEOPLE
    assert sum(row.due_at > NOW for row in crashed["due"]) == BATCH

    # The restarted bot (on SQLite it takes the serving lock the killed one held).
    settings = Settings.load(environ=env)
    app = await build(settings, clock=lambda: NOW)
    try:
        assert await app.nudges.tick(NOW) == PEOPLE - BATCH
        assert await app.nudges.tick(NOW) == 0
    finally:
        await app.close()

    db = Database(database_url)
    try:
        after = await snapshot(db)
    finally:
        await db.close()
    everyone_once = Counter(ids)
    # One tip in the outbox for everyone, to their own chat, and the one recorded as had.
    assert Counter(row.shopkeeper_id for row in after["outbox"]) == everyone_once
    assert {row.kind for row in after["outbox"]} == {OutboxKind.BULK}
    assert Counter(row.shopkeeper_id for row in after["tips"]) == everyone_once
    chats = {person: str(700000 + n) for n, person in enumerate(ids)}
    had = {row.shopkeeper_id: row.tip_id for row in after["tips"]}
    for row in after["outbox"]:
        assert row.external_id == chats[row.shopkeeper_id]
        assert row.payload["ref"] == TIP_PREFIX + had[row.shopkeeper_id]
    # Every due tip row is still there, moved once, to the plan's next tip.
    following = settings.schedule.next_tip(NOW, Cadence.WEEKLY, MOMENT, 1)
    assert following > NOW
    assert len(after["due"]) == PEOPLE
    assert Counter(row.shopkeeper_id for row in after["due"]) == everyone_once
    assert {(row.kind, row.due_at, row.times) for row in after["due"]} == {
        (DueKind.TIP, following, 1)}

    sqlite_file = database_file(database_url) if database_url.startswith("sqlite") else None
    if sqlite_file is not None:
        with closing(sqlite3.connect(sqlite_file)) as check:
            assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
