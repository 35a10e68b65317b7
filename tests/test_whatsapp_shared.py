"""Two processes serving one WhatsApp number behave as one: two ``WhatsAppChannel``\\ s (and
two broadcast reporters), each with its own connection to the same database, share the
pair rate, the daily tier and "the coach was told the rest goes tomorrow". On SQLite and,
with ``KISS_TEST_POSTGRES_URL``, on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from graph_emulator import GraphEmulator
from recording import CHAT, Clock, handle, recorder
from sqlalchemy.ext.asyncio import AsyncConnection
from test_whatsapp import whatsapp_settings

from bot.app import App
from bot.delivery.outcomes import Held, Refused
from bot.whatsapp.channel import WhatsAppChannel
from bot.whatsapp.graph import Graph
from flows.messages import Button, Outbound, Reply
from flows.places import gazetteer
from flows.texts import Texts
from flows.timing import SendingHours
from handlers.broadcasts import Broadcasts
from handlers.coaching import payload
from handlers.inbound import Inbound
from storage import broadcasts, erasure, outbox, shopkeepers, whatsapp
from storage.broadcasts import NEXT_DAY
from storage.database import Database
from storage.records import OutboxRecord
from storage.tables import OUTBOX, OutboxKind, OutboxStatus, utcnow

TIP = Outbound("💡 Zet je openingsuren juist op Google.", (Button("done", "✅ Gedaan"),),
               ref="tip.gbp")
BROADCAST = Outbound("<b>Koopavond</b> vrijdag", html=True)
PAIR = timedelta(seconds=6)


@dataclass
class Process:
    """What one bot process has of its own: a connection pool and a channel."""

    db: Database
    channel: WhatsAppChannel
    graph: Graph


@pytest.fixture
def clock() -> Clock:
    return Clock(utcnow())


@pytest.fixture
async def processes(database_url: str, texts: Texts, graph: GraphEmulator,
                    clock: Clock) -> AsyncIterator[tuple[Process, Process]]:
    made = []
    for _ in range(2):
        db = Database(database_url)
        client = Graph(graph.base_url, graph.phone_number_id, graph.token)
        channel = WhatsAppChannel(client, texts, whatsapp_settings(
            graph, pair_seconds=PAIR.total_seconds(), daily_tier=2), db, clock=clock)
        made.append(Process(db, channel, client))
    yield made[0], made[1]
    for process in made:
        await process.graph.close()
        await process.db.close()


async def nothing() -> None:
    """The sender's pace: no rate limit here (the limiter has its own tests)."""


async def person(db: Database, number: str, *, wrote: datetime | None = None) -> int:
    async with db.transaction() as tx:
        found, _ = await shopkeepers.find_or_create(tx, channel="whatsapp",
                                                    external_id=number, language="nl")
        if wrote is not None:  # their 24-hour window is open
            await whatsapp.wrote(tx, at={number: wrote})
    return found.id


def row(owner: int, number: str, message: Outbound, row_id: int = 1) -> OutboxRecord:
    return OutboxRecord(row_id, owner, "whatsapp", number, payload(message, "nl"),
                        OutboxKind.BULK, 0, 0, utcnow())


async def send(process: Process, record: OutboxRecord) -> list[str] | Held:
    """What the channel did with the row: the message ids, or why it waits."""
    try:
        return await process.channel.send_row(record, Outbound.from_data(record.payload),
                                              lang="nl", pace=nothing)
    except Held as held:
        return held


async def test_the_pair_rate_holds_across_processes(
        processes: tuple[Process, Process], graph: GraphEmulator, clock: Clock) -> None:
    first, second = processes
    number = "32470000001"
    graph.last_inbound[number] = graph.now()
    owner = await person(first.db, number, wrote=clock.now)
    assert isinstance(await send(first, row(owner, number, TIP)), list)
    # The other process, a second later: within the pair interval, so it waits.
    clock.now += timedelta(seconds=1)
    held = await send(second, row(owner, number, BROADCAST, 2))
    assert isinstance(held, Held) and "pair rate" in held.reason
    assert held.until is not None
    assert timedelta(seconds=4) < held.until - utcnow() <= timedelta(seconds=5)
    assert len(graph.messages_to(number)) == 1
    # Once the interval has passed, it goes.
    clock.now += PAIR
    assert isinstance(await send(second, row(owner, number, BROADCAST, 2)), list)
    assert len(graph.messages_to(number)) == 2


async def test_two_processes_racing_for_one_person_send_once(
        processes: tuple[Process, Process], graph: GraphEmulator, clock: Clock) -> None:
    first, second = processes
    number = "32470000002"
    graph.last_inbound[number] = graph.now()
    owner = await person(first.db, number, wrote=clock.now)
    results = await asyncio.gather(send(first, row(owner, number, TIP)),
                                   send(second, row(owner, number, BROADCAST, 2)))
    assert sorted(type(r).__name__ for r in results) == ["Held", "list"]
    assert len(graph.messages_to(number)) == 1


async def outside(db: Database, *numbers: str) -> list[int]:
    """People whose window is closed (they never wrote): a broadcast is a template."""
    return [await person(db, number) for number in numbers]


async def test_two_processes_racing_for_the_last_tier_slot_send_once(
        processes: tuple[Process, Process], graph: GraphEmulator, clock: Clock) -> None:
    first, second = processes
    numbers = ["32470000011", "32470000012", "32470000013"]
    owners = await outside(first.db, *numbers)
    assert isinstance(await send(first, row(owners[0], numbers[0], BROADCAST)), list)
    # One slot of two is left; both processes go for it at once.
    results = await asyncio.gather(send(first, row(owners[1], numbers[1], BROADCAST, 2)),
                                   send(second, row(owners[2], numbers[2], BROADCAST, 3)))
    sent = [r for r in results if isinstance(r, list)]
    held = [r for r in results if isinstance(r, Held)]
    assert len(sent) == 1 and len(held) == 1
    assert held[0].reason.startswith(f"{NEXT_DAY} of 2 people reached; continues on ")
    assert len([m for m in graph.sent if m.type == "template"]) == 2
    async with first.db.transaction() as tx:
        assert await whatsapp.slots_used(tx, day=clock.now.date().isoformat()) == 2


async def test_a_person_counts_once_a_day_and_erasing_them_frees_no_slot(
        processes: tuple[Process, Process], graph: GraphEmulator, clock: Clock) -> None:
    first, second = processes
    numbers = ["32470000021", "32470000022", "32470000023"]
    owners = await outside(first.db, *numbers)
    day = clock.now.date().isoformat()
    for index in (0, 1):
        assert isinstance(await send(first, row(owners[index], numbers[index], BROADCAST)),
                          list)
    # The tier is full, yet someone reached today may get another template: no new slot.
    assert isinstance(await send(second, row(owners[0], numbers[0], TIP, 2)), list)
    async with first.db.transaction() as tx:
        assert await whatsapp.slots_used(tx, day=day) == 2
        await erasure.erase(tx, shopkeeper_id=owners[0], actor="self", reason="test")
        assert await whatsapp.slots_used(tx, day=day) == 2  # Meta counted them today
        reach = (await tx.execute(sa.text("SELECT count(*) FROM whatsapp_reach"))).scalar()
    assert reach == 1  # their own row went with them
    held = await send(second, row(owners[2], numbers[2], BROADCAST, 3))
    assert isinstance(held, Held) and held.reason.startswith(NEXT_DAY)
    # The next day (UTC) has its own slots.
    clock.now += timedelta(days=1)
    assert isinstance(await send(second, row(owners[2], numbers[2], BROADCAST, 3)), list)


async def test_a_refused_template_gives_its_slot_back(
        processes: tuple[Process, Process], graph: GraphEmulator, clock: Clock) -> None:
    first, _ = processes
    (owner,) = await outside(first.db, "32470000031")
    graph.fail_next(132001)  # the template is not approved (yet): nobody was reached
    with pytest.raises(Refused):
        await send(first, row(owner, "32470000031", BROADCAST))
    async with first.db.transaction() as tx:
        assert await whatsapp.slots_used(tx, day=clock.now.date().isoformat()) == 0


async def delivered(tx: AsyncConnection, ids: list[int]) -> None:
    """The sender delivered these rows (it is not running here)."""
    await tx.execute(sa.update(OUTBOX).where(OUTBOX.c.id.in_(ids)).values(
        status=OutboxStatus.SENT, error=None, sent_at=utcnow()))


class Waker:
    def wake(self) -> None:
        """The sender is not running here: rows are read from the table."""


async def test_the_coach_is_told_once_and_the_report_says_some_went_the_next_day(
        processes: tuple[Process, Process], texts: Texts, clock: Clock) -> None:
    reporters = [Broadcasts(p.db, texts, gazetteer(), SendingHours(), Waker(), clock=clock)
                 for p in processes]
    db = processes[0].db
    coach = await person(db, "32470000040")
    people = [await person(db, f"3247000004{n}") for n in (1, 2, 3)]
    now = clock.now
    async with db.transaction() as tx:
        made = await broadcasts.create(tx, created_by=coach, created_via="test",
                                       texts={"nl": BROADCAST.text}, segment={}, urgent=True,
                                       send_at=now, now=now)
        await broadcasts.enqueue(tx, broadcast_id=made.id, rows=[
            {"shopkeeper_id": owner, "channel": "whatsapp", "external_id": f"3247000004{n}",
             "payload": payload(BROADCAST, "nl")} for n, owner in zip((1, 2, 3), people,
                                                                     strict=True)])
        await broadcasts.started(tx, broadcast_id=made.id, recipients=3)
        ids = list((await tx.execute(sa.select(OUTBOX.c.id).where(
            OUTBOX.c.broadcast_id == made.id).order_by(OUTBOX.c.id))).scalars())
        await delivered(tx, ids[:1])
        for waiting in ids[1:]:  # the tier held these two for tomorrow
            await outbox.mark_errored(tx, message_id=waiting, error=f"{NEXT_DAY} of 2 people "
                                      "reached; continues on tomorrow", progress=0,
                                      retry_at=now + timedelta(days=1), counted=False)

    async def told() -> list[str]:
        async with db.transaction() as tx:
            payloads = (await tx.execute(sa.select(OUTBOX.c.payload).where(
                OUTBOX.c.shopkeeper_id == coach).order_by(OUTBOX.c.id))).scalars()
            return [p["text"] for p in payloads]

    await asyncio.gather(*(r.tick(now) for r in reporters))  # both at once
    await reporters[1].tick(now)  # and each again later: still once
    await reporters[0].tick(now)
    assert await told() == [f"📣 Je bericht #{made.id}: 1 al aangekomen. De daglimiet van "
                            "WhatsApp is bereikt: nog 2 gaan morgen vanzelf verder. Je krijgt "
                            "het verslag als alles weg is."]
    async with db.transaction() as tx:
        await delivered(tx, ids[1:])
        stored = await broadcasts.get(tx, broadcast_id=made.id)
    assert stored is not None and stored.next_day_rows == 2
    await reporters[1].tick(now + timedelta(days=1))
    *_, report = await told()
    assert report == (f"📣 Je bericht #{made.id} is verstuurd: 3 aangekomen, 0 mislukt, 0 niet "
                      "bereikbaar (bot geblokkeerd), 0 onzeker (misschien aangekomen).\n"
                      "2 daarvan gingen pas een volgende dag weg, door de daglimiet van "
                      "WhatsApp.")
    assert len(await told()) == 2
    async with db.transaction() as tx:
        status = (await tx.execute(sa.select(OUTBOX.c.status).where(
            OUTBOX.c.id == ids[0]))).scalar_one()
    assert status == OutboxStatus.SENT


async def test_the_answer_is_confirmed_by_whichever_process_sends_the_reply(
        app: App, processes: tuple[Process, Process], graph: GraphEmulator,
        clock: Clock) -> None:
    """The label of the pressed answer travels on the answer's first message, not in a
    process's memory: a restart, or another process sending the row, still confirms it."""
    channel = recorder(app)
    await handle(app, Inbound(CHAT, "u1", command="start"))
    (question,) = [m for m in channel.to("u1") if m.buttons]
    button = question.buttons[0]
    answer = await handle(app, Inbound(CHAT, "u1", reply=Reply(choice=button.id,
                                                                  ref=question.ref),
                                       answered=button.label))
    assert answer[0].answered == button.label
    assert all(m.answered is None for m in answer[1:])
    async with app.db.transaction() as tx:
        stored = (await tx.execute(sa.select(OUTBOX.c.payload).where(
            OUTBOX.c.external_id == "u1").order_by(OUTBOX.c.id.desc())
            .limit(len(answer)))).scalars().all()
    assert [p.get("answered") for p in reversed(stored)] == [
        button.label, *[None] * (len(answer) - 1)]
    # On WhatsApp, a channel that never saw the press (another process) sends that row.
    number = "32470000050"
    graph.last_inbound[number] = graph.now()
    owner = await person(processes[1].db, number, wrote=clock.now)
    reply = OutboxRecord(1, owner, "whatsapp", number, payload(answer[0], "nl"),
                         OutboxKind.REPLY, 0, 0, utcnow())
    await send(processes[1], reply)
    (sent,) = graph.messages_to(number)
    assert sent.text.startswith(f"✅ {button.label}\n\n{answer[0].text[:20]}")
