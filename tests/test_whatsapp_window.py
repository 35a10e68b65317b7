"""WhatsApp's rules for messages nobody asked for just now: the 24-hour window (template or
wait), the daily unique-recipient tier, and the pair rate; with the bot's and Meta's clocks
moved together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from graph_emulator import GraphEmulator
from test_whatsapp import WA, Running, asks, start

from bot.app import App
from bot.config import Settings
from flows.messages import Button, Outbound
from handlers.coaching import payload
from storage import broadcasts, media, outbox, shopkeepers
from storage.tables import OUTBOX, OutboxKind, OutboxStatus, utcnow

TIP = Outbound("💡 Tip van de week\n\nZet je openingsuren    juist op Google.\tDat loont.",
               (Button("done", "✅ Gedaan"), Button("later", "⏰ Later")), ref="tip.gbp")
CHECK_IN = Outbound("Hoe ging je actie van deze week?", (Button("ok", "Gelukt"),),
                    ref="check.7")
BROADCAST = Outbound("<b>Koopavond</b> vrijdag in <i>Kortrijk</i>", html=True)


async def queue(app: App, wa: str | list[str], *messages: Outbound) -> list[int]:
    """Bulk rows for ``wa`` (a tip, a broadcast: what the scheduler queues), or the one
    message to each of several people."""
    people = [wa] if isinstance(wa, str) else wa
    async with app.db.transaction() as tx:
        rows = []
        for number in people:
            person, _ = await shopkeepers.find_or_create(
                tx, channel="whatsapp", external_id=number, language="nl")
            rows += [{"shopkeeper_id": person.id, "channel": "whatsapp",
                      "external_id": number, "payload": payload(m, "nl")} for m in messages]
        await outbox.record_many(tx, rows)
        ids = (await tx.execute(sa.select(OUTBOX.c.id).where(
            OUTBOX.c.external_id.in_(people)).order_by(OUTBOX.c.id))).scalars().all()
    app.sender.wake()
    return list(ids[-len(rows):])


async def rows_when(app: App, ready: Any, within: float = 10.0) -> dict[int, Any]:
    """The outbox rows (by id) once ``ready(rows)`` holds (checked every 20 ms)."""
    async with asyncio.timeout(within):
        while True:
            async with app.db.transaction() as tx:
                rows = {r.id: r for r in (await tx.execute(sa.select(
                    OUTBOX.c.id, OUTBOX.c.status, OUTBOX.c.error, OUTBOX.c.external_id,
                    OUTBOX.c.next_attempt_at))).all()}
            if ready(rows):
                return rows
            await asyncio.sleep(0.02)  # rows have no event to wait on


@pytest.fixture
async def running(app: App, settings: Settings,
                  graph: GraphEmulator) -> AsyncIterator[Running]:
    async for value in start(app, settings, graph):
        yield value


async def test_outside_the_window_a_tip_is_a_template_and_a_check_in_waits(
        running: Running, graph: GraphEmulator) -> None:
    await graph.user_sends_text(WA, "hallo")
    await graph.settle(WA, asks("In welke taal"))
    await running.app.sender.settled()
    running.advance(timedelta(hours=25))  # the window closed
    before = len(graph.messages_to(WA))
    tip, check_in = await queue(running.app, WA, TIP, CHECK_IN)
    rows = await rows_when(running.app, lambda rs: rs[tip].status == OutboxStatus.SENT
                           and rs[check_in].status == OutboxStatus.ERRORED)
    sent = graph.messages_to(WA)[before:]
    assert [m.type for m in sent] == ["template"]
    template = sent[0].body["template"]
    assert template["name"] == "kiss_tip" and template["language"] == {"code": "nl"}
    (parameter,) = template["components"][0]["parameters"]
    assert parameter["text"] == ("💡 Tip van de week Zet je openingsuren juist op Google. "
                                 "Dat loont.")
    assert rows[check_in].error.startswith("whatsapp: waiting for the person to write again")
    assert "check_in" in rows[check_in].error
    # They write again: the check-in goes out, free-form, before the answer to them.
    await graph.user_sends_text(WA, "hallo")
    await rows_when(running.app, lambda rs: rs[check_in].status == OutboxStatus.SENT)
    after = graph.messages_to(WA)[before + 1:]
    assert after[0].type == "interactive" and "Hoe ging je actie" in after[0].text


async def test_when_meta_says_the_window_closed_a_broadcast_takes_the_template(
        running: Running, graph: GraphEmulator) -> None:
    await graph.user_sends_text(WA, "hallo")
    await graph.settle(WA, asks("In welke taal"))
    await running.app.sender.settled()
    graph.advance(25 * 3600)  # Meta's clock only: the bot still thinks it is open
    before = len(graph.messages_to(WA))
    (row,) = await queue(running.app, WA, BROADCAST)
    await rows_when(running.app, lambda rs: rs[row].status == OutboxStatus.SENT)
    assert [e["code"] for e in graph.errors] == [131047]
    (sent,) = graph.messages_to(WA)[before:]
    assert sent.type == "template" and sent.body["template"]["name"] == "kiss_broadcast"
    assert sent.text == "Koopavond vrijdag in Kortrijk"


async def test_inside_the_window_broadcast_html_becomes_whatsapp_markup(
        running: Running, graph: GraphEmulator) -> None:
    await graph.user_sends_text(WA, "hallo")
    await graph.settle(WA, asks("In welke taal"))
    before = len(graph.messages_to(WA))
    await queue(running.app, WA, BROADCAST)
    *_, sent = await graph.wait_for_sent(before + 1, to=WA)
    assert sent.type == "text" and sent.text == "*Koopavond* vrijdag in _Kortrijk_"


@pytest.fixture
async def small_tier(app: App, settings: Settings,
                     graph: GraphEmulator) -> AsyncIterator[Running]:
    async for value in start(app, settings, graph, daily_tier=2):
        yield value


async def test_a_broadcast_over_the_daily_tier_continues_the_next_day(
        small_tier: Running, graph: GraphEmulator) -> None:
    running = small_tier
    app = running.app
    await graph.user_sends_text(WA, "hallo")  # the coach, who gets the report
    await graph.settle(WA, asks("In welke taal"))
    # The bot's day ends in 2 s; none of the three recipients wrote in the last 24 hours.
    now = utcnow()
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(),
                                tzinfo=now.tzinfo)
    running.advance(midnight - now - timedelta(seconds=2))
    people = [f"3247000000{n}" for n in range(3)]
    async with app.db.transaction() as tx:
        coach = await shopkeepers.find_by_identity(tx, channel="whatsapp", external_id=WA)
        assert coach is not None
        made = await broadcasts.create(tx, created_by=coach.id, created_via="test",
                                       texts={"nl": BROADCAST.text}, segment={}, urgent=True,
                                       send_at=now, now=now)
        await broadcasts.started(tx, broadcast_id=made.id, recipients=3)
        rows = []
        for number in people:
            person, _ = await shopkeepers.find_or_create(
                tx, channel="whatsapp", external_id=number, language="nl")
            rows.append({"shopkeeper_id": person.id, "channel": "whatsapp",
                         "external_id": number, "payload": payload(BROADCAST, "nl")})
        await broadcasts.enqueue(tx, broadcast_id=made.id, rows=rows)
        ids = list((await tx.execute(sa.select(OUTBOX.c.id).where(
            OUTBOX.c.broadcast_id == made.id))).scalars())
    app.sender.wake()
    found = await rows_when(app, lambda rs: sum(
        rs[i].status == OutboxStatus.SENT for i in ids) == 2 and any(
        rs[i].status == OutboxStatus.ERRORED for i in ids))
    (waiting,) = [found[i] for i in ids if found[i].status == OutboxStatus.ERRORED]
    tomorrow = midnight.date().isoformat()
    assert waiting.error == f"whatsapp: daily tier of 2 people reached; continues on {tomorrow}"
    assert len([m for m in graph.sent if m.type == "template"]) == 2
    # The coach hears it now, not only tomorrow.
    before = len(graph.messages_to(WA))
    await app.broadcasts.tick()
    *_, report = await graph.wait_for_sent(before + 1, to=WA)
    assert report.text == (f"📣 Je bericht #{made.id}: 2 al aangekomen. De daglimiet van "
                           "WhatsApp is bereikt: nog 1 gaan morgen vanzelf verder. Je krijgt "
                           "het verslag als alles weg is.")
    # A new day: the rest goes out by itself.
    await rows_when(app, lambda rs: all(rs[i].status == OutboxStatus.SENT for i in ids))
    assert sorted(m.to for m in graph.sent if m.type == "template") == sorted(people)


@pytest.fixture
async def pair_rate(app: App, settings: Settings,
                    graph: GraphEmulator) -> AsyncIterator[Running]:
    async for value in start(app, settings, graph, pair_seconds=0.5):
        yield value


async def test_bulk_messages_to_one_person_keep_the_pair_rate(
        pair_rate: Running, graph: GraphEmulator) -> None:
    await graph.user_sends_text(WA, "hallo")
    await graph.settle(WA, asks("In welke taal"))
    before = len(graph.messages_to(WA))
    first, second = await queue(pair_rate.app, WA, TIP, BROADCAST)
    *_, one, two = await graph.wait_for_sent(before + 2, to=WA)
    assert two.at - one.at >= 0.5
    async with pair_rate.app.db.transaction() as tx:
        kinds = (await tx.execute(sa.select(OUTBOX.c.kind).where(
            OUTBOX.c.id.in_([first, second])))).scalars().all()
    assert set(kinds) == {OutboxKind.BULK}


async def test_a_broadcast_picture_is_uploaded_once(running: Running,
                                                    graph: GraphEmulator) -> None:
    people = [WA, "32470000009"]
    for number in people:
        await graph.user_sends_text(number, "hallo")
        await graph.settle(number, asks("In welke taal"))
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    async with running.app.db.transaction() as tx:
        picture = await media.put(tx, data=png, content_type="image/png", name="affiche.png")
    await queue(running.app, people, Outbound("<b>Nieuw!</b> De affiche", html=True,
                                              photo=picture))
    images = []
    for number in people:
        *_, last = await graph.settle(number, lambda ms: ms[-1].type == "image")
        images.append(last)
    assert {m.body["image"]["id"] for m in images} == {next(iter(
        i for i, (data, _, _) in graph.media.items() if data == png))}
    assert [data for data, _, _ in graph.media.values()].count(png) == 1
    assert all(m.body["image"]["caption"] == "*Nieuw!* De affiche" for m in images)
    async with running.app.db.transaction() as tx:
        stored = await media.get(tx, media_id=picture)
    assert stored is not None and stored.platform_ids == {"whatsapp": images[0].body[
        "image"]["id"]}
