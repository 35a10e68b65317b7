"""Two bot processes on one PostgreSQL database: two complete apps (engines, inboxes,
dispatchers, senders) sharing nothing but the database, as two replicas behind a webhook."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import sqlalchemy as sa
from recording import CHAT, Recorder, reading, update
from recording import inbound as recording_inbound

from bot.app import App, build
from bot.config import Settings
from storage import inbox, shopkeepers
from storage.database import Database, head_revision
from storage.tables import INBOX, RUN, SHOPKEEPER


@pytest.fixture
def pg_settings(settings: Settings, postgres_url: str) -> Settings:
    return replace(settings, database_url=postgres_url)


@pytest.fixture
async def replicas(pg_settings: Settings) -> AsyncIterator[tuple[App, App]]:
    settings = pg_settings
    first = await build(settings)
    second = await build(replace(settings))
    yield first, second
    await first.close()
    await second.close()


async def quiet(*apps: App) -> None:
    """Until both replicas have nothing left: handled, delivered, nothing queued."""
    while True:
        await asyncio.gather(*(app.inbox.idle() for app in apps))
        polled = await asyncio.gather(*(app.sender.poll() for app in apps))
        await asyncio.gather(*(app.sender.settled() for app in apps))
        if not any(polled):
            return


def sent_to(channels: tuple[Recorder, Recorder], user: str) -> list[str]:
    return [m.text for c in channels for m in c.to(user)]


async def test_a_strangers_first_two_messages_on_two_replicas_make_one_person(
        replicas: tuple[App, App]) -> None:
    first, second = replicas
    channels = (reading(first), reading(second))
    await asyncio.gather(first.inbox.receive(CHAT, [update(1, "new", "/start")]),
                         second.inbox.receive(CHAT, [update(2, "new", "hallo")]))
    await quiet(first, second)
    async with first.db.transaction() as tx:
        people = (await tx.execute(sa.select(sa.func.count()).select_from(SHOPKEEPER)))
        assert people.scalar_one() == 1
        statuses = set((await tx.execute(sa.select(INBOX.c.status))).scalars())
    assert statuses == {"done"}
    assert sum("In welke taal" in text for text in sent_to(channels, "new")) >= 1


async def test_five_fast_taps_over_two_replicas_are_each_applied_once_in_order(
        replicas: tuple[App, App]) -> None:
    first, second = replicas
    channels = (reading(first), reading(second))
    script = ["/start", "Nederlands", "ja", "Bakkerij Dewitte", "Kortrijk", "voeding", "2"]
    for seq, text in enumerate(script, start=1):
        await first.inbox.receive(CHAT, [update(seq, "tapper", text)])
        await first.inbox.idle()
    # Five answers arrive at once, alternately at each replica (a load balancer).
    taps = ["1", "2", "3", "1", "2"]
    await asyncio.gather(*(
        (first if n % 2 == 0 else second).inbox.receive(
            CHAT, [update(100 + n, "tapper", answer)]) for n, answer in enumerate(taps)))
    await quiet(first, second)
    async with first.db.transaction() as tx:
        person, run = await shopkeepers.find_with_open_run(tx, channel=CHAT,
                                                           external_id="tapper")
        pending = (await tx.execute(sa.select(sa.func.count()).select_from(INBOX).where(
            INBOX.c.status != "done"))).scalar_one()
    assert person is not None and run is not None and pending == 0
    answered = list(run.state["answers"].values())
    assert len(answered) == 5  # none lost, none applied twice
    questions = [t.split("\n")[0] for t in sent_to(channels, "tapper") if t.startswith("Vraag")]
    assert sorted(questions, key=lambda q: int(q.split()[1])) == [
        f"Vraag {n} van 26" for n in range(1, 7)]  # each question asked exactly once


async def test_migrations_started_together_take_turns(postgres_url: str) -> None:
    databases = [Database(postgres_url) for _ in range(3)]
    try:
        await asyncio.gather(*(db.upgrade() for db in databases))
        assert {await db.revision() for db in databases} == {head_revision()}
    finally:
        for db in databases:
            await db.close()


async def test_one_update_delivered_to_both_replicas_is_one_turn(
        replicas: tuple[App, App]) -> None:
    """A webhook retry can reach the other replica while the first is still at it."""
    first, second = replicas
    channels = (reading(first), reading(second))
    await asyncio.gather(first.inbox.receive(CHAT, [update(1, "twice", "/start")]),
                         second.inbox.receive(CHAT, [update(1, "twice", "/start")]))
    await quiet(first, second)
    async with first.db.transaction() as tx:
        stored = (await tx.execute(sa.select(sa.func.count()).select_from(INBOX))).scalar_one()
        run_count = (await tx.execute(sa.select(sa.func.count()).select_from(RUN))).scalar_one()
    assert (stored, run_count) == (1, 1)
    assert sum("In welke taal" in text for text in sent_to(channels, "twice")) == 1


async def test_only_the_replica_that_handled_an_update_makes_its_cosmetic_calls(
        replicas: tuple[App, App]) -> None:
    """The other replica may read the same pending update; it must not answer the press
    again (Telegram refuses a second answer)."""
    first, second = replicas
    reading(first), reading(second)
    calls: list[str] = []
    inbound = recording_inbound("/start", "one")

    async def after(handled: object) -> None:
        calls.append("after")

    async with first.db.transaction() as tx:
        [row_id] = await inbox.store(tx, channel=CHAT, updates=[update(1, "one", "/start")])
    assert row_id is not None
    await asyncio.gather(first.dispatcher.handle(inbound, inbox_row=row_id, after=after),
                         second.dispatcher.handle(inbound, inbox_row=row_id, after=after))
    assert calls == ["after"]
