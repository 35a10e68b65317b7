"""Storage on both backends: records, explicit writes, transactions; SQLite without threads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage import inbox, outbox, runs, shopkeepers
from storage.database import Database
from storage.inbox import Received
from storage.tables import OUTBOX, Identity, RunStatus, Shopkeeper, utcnow


@pytest.fixture
async def db(database_url: str) -> Database:
    database = Database(database_url)
    await database.upgrade()
    yield database  # type: ignore[misc]
    await database.close()


async def test_a_turns_writes_are_read_back_as_records(db: Database) -> None:
    async with db.transaction() as tx:
        person, _ = await shopkeepers.find_or_create(tx, channel="telegram", external_id="42",
                                                     language="fr")
        run = await runs.start_run(tx, shopkeeper_id=person.id, flow_id="assessment",
                                   flow_key="assessment@1", state={"seq": 1})
        await shopkeepers.update(tx, shopkeeper=person, shop_name="Chez Marie",
                                 opted_out_at=utcnow())
        await runs.save_run(tx, run=run, state={"seq": 2}, status=RunStatus.PAUSED)
    async with db.transaction() as tx:
        found, open_run = await shopkeepers.find_with_open_run(
            tx, channel="telegram", external_id="42")
    assert found is not None and open_run is not None
    assert (found.language, found.shop_name) == ("fr", "Chez Marie")
    assert found.opted_out_at is not None and found.unreachable_since is None
    assert (open_run.id, open_run.state, open_run.status) == (run.id, {"seq": 2}, "paused")
    assert found.updated_at.tzinfo is not None


async def test_a_new_run_abandons_the_open_one(db: Database) -> None:
    async with db.transaction() as tx:
        person, _ = await shopkeepers.find_or_create(tx, channel="telegram", external_id="7",
                                                     language="nl")
        first = await runs.start_run(tx, shopkeeper_id=person.id, flow_id="a", flow_key="a@1",
                                     state={})
        second = await runs.start_run(tx, shopkeeper_id=person.id, flow_id="a", flow_key="a@1",
                                      state={})
        _, open_run = await shopkeepers.find_with_open_run(tx, channel="telegram",
                                                           external_id="7")
        old = await runs.run_by_id(tx, run_id=first.id)
    assert open_run is not None and open_run.id == second.id
    assert old is not None and old.status == "abandoned"


async def test_an_error_rolls_the_whole_transaction_back(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await shopkeepers.find_or_create(tx, channel="telegram", external_id="1",
                                             language="nl")
            await inbox.store(tx, channel="telegram", updates=[Received("1", "1", 1, {})])
            raise RuntimeError("the turn failed half-way")
    async with db.transaction() as tx:
        assert await shopkeepers.find_by_identity(tx, channel="telegram", external_id="1") is None
        assert await inbox.store(tx, channel="telegram", updates=[Received("1", "1", 1, {})])


async def test_finding_or_creating_one_address_twice_gives_one_person(db: Database) -> None:
    async with db.transaction() as tx:
        first, _ = await shopkeepers.find_or_create(tx, channel="telegram", external_id="5",
                                                    language="nl")
    async with db.transaction() as tx:
        again, _ = await shopkeepers.find_or_create(tx, channel="telegram", external_id="5",
                                                    language="fr")
    assert again.id == first.id and again.language == "nl"
    async with db.session() as session:
        for table in (Identity, Shopkeeper):
            count = await session.execute(sa.select(sa.func.count()).select_from(table))
            assert count.scalar_one() == 1, table.__name__


async def test_outbox_rows_keep_their_order_and_can_be_marked(db: Database) -> None:
    async with db.transaction() as tx:
        person, _ = await shopkeepers.find_or_create(tx, channel="telegram", external_id="9",
                                                     language="nl")
        ids = await outbox.record(tx, shopkeeper_id=person.id, channel="telegram",
                                  external_id="9", sending_until=utcnow(),
                                  payloads=[{"text": "één"}, {"text": "twee"}, {"text": "drie"}])
        for message_id in ids:
            assert await outbox.mark_sending(tx, message_id=message_id)
        assert not await outbox.mark_sending(tx, message_id=ids[0])  # only from "claimed"
        await outbox.mark_sent(tx, ids=ids[:2])
        await outbox.mark_failed(tx, message_id=ids[2], error="403: blocked")
    assert ids == sorted(ids) and len(set(ids)) == 3
    async with db.transaction() as tx:
        rows = (await tx.execute(sa.select(OUTBOX.c.status, OUTBOX.c.attempts)
                                 .order_by(OUTBOX.c.id))).all()
    assert [tuple(r) for r in rows] == [("sent", 1), ("sent", 1), ("failed", 1)]


async def test_sqlite_runs_on_the_loops_own_thread(tmp_path: Path) -> None:
    before = threading.active_count()
    db = Database(f"sqlite:///{tmp_path / 'inline.sqlite3'}")
    await db.upgrade()
    async with db.transaction() as tx:
        await shopkeepers.find_or_create(tx, channel="console", external_id="piet",
                                         language="nl")
    assert threading.active_count() == before  # aiosqlite would have started a worker
    await db.close()


async def test_the_migrations_build_exactly_the_tables_the_code_declares(db: Database) -> None:
    """A column added to a table class but forgotten in a migration (or the reverse) would
    only fail in production, on the first query that touches it."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    def differences(connection: sa.Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        return [diff for diff in compare_metadata(context, SQLModel.metadata)
                # SQLite reports partial indexes and server defaults loosely: tables,
                # columns and nullability are what must match.
                if not (isinstance(diff, tuple) and diff[0] in ("add_index", "remove_index"))]

    async with db.transaction() as tx:
        found = await tx.run_sync(differences)
    assert found == []
