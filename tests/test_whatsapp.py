"""End to end on WhatsApp: signed webhooks from the Graph API emulator to the bot's web server,
and the bot's Cloud API calls back to the emulator, over HTTP on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from graph_emulator import GraphEmulator, Sent

from bot.app import App
from bot.config import Settings
from bot.inbox import Interpreted
from bot.web import WebServer
from bot.whatsapp.serve import WhatsAppBot
from bot.whatsapp.settings import Template, WhatsAppSettings
from flows.messages import BACK, PAUSE, Button, Outbound
from handlers.coaching import payload
from storage import due, outbox, shopkeepers, whatsapp
from storage.tables import OUTBOX, DueKind, OutboxStatus, utcnow

WA = "32470123456"
Messages = list[Sent]


def whatsapp_settings(graph: GraphEmulator, **extra: Any) -> WhatsAppSettings:
    templates = {kind: Template(f"kiss_{kind}", {"nl": "nl", "en": "en", "fr": "fr"})
                 for kind in ("tip", "reminder", "broadcast", "check_in")}
    return replace(WhatsAppSettings(
        access_token=graph.token, app_secret=graph.app_secret, verify_token="verify-me-please",
        phone_number_id=graph.phone_number_id, api_base_url=graph.base_url, rate=1e5,
        pair_seconds=6.0, daily_tier=250, templates=templates,
        outside_window={"tip": "template", "reminder": "template", "broadcast": "template",
                        "check_in": "wait", "other": "wait"}), **extra)


class Running:
    """The bot on WhatsApp with its web server, and the emulator posting to it."""

    def __init__(self, app: App, graph: GraphEmulator, bot: WhatsAppBot, web: WebServer,
                 clock: list[timedelta]) -> None:
        self.app = app
        self.graph = graph
        self.bot = bot
        self.web = web
        self.shift = clock

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web.port}/whatsapp/webhook"

    def advance(self, delta: timedelta) -> None:
        """Time passes for the bot and for Meta alike."""
        self.shift[0] += delta
        self.graph.advance(delta.total_seconds())


async def start(app: App, settings: Settings, graph: GraphEmulator,
                **extra: Any) -> AsyncIterator[Running]:
    shift = [timedelta(0)]

    def clock() -> datetime:
        return utcnow() + shift[0]

    web = WebServer("127.0.0.1:0")
    bot = WhatsAppBot(whatsapp_settings(graph, **extra), app, web, clock=clock)
    async with bot:
        await web.start()
        graph.webhook_url = f"http://127.0.0.1:{web.port}/whatsapp/webhook"
        try:
            yield Running(app, graph, bot, web, shift)
        finally:
            await web.stop()


@pytest.fixture
async def running(app: App, settings: Settings,
                  graph: GraphEmulator) -> AsyncIterator[Running]:
    async for value in start(app, settings, graph):
        yield value


def asks(fragment: str) -> Callable[[Messages], bool]:
    """The last message holds ``fragment`` and offers choices."""
    return lambda ms: bool(ms) and fragment in ms[-1].text and bool(ms[-1].choices)


def says(fragment: str) -> Callable[[Messages], bool]:
    return lambda ms: any(fragment in m.text for m in ms)


async def choose(graph: GraphEmulator, label: str, wa: str = WA) -> None:
    """Answer the last question with ``label``, paging through "Meer…" when needed."""
    question = graph.messages_to(wa)[-1]
    while label not in [title for _, title in question.choices]:
        assert "Meer…" in [t for _, t in question.choices], f"{label!r} not offered"
        count = len(graph.messages_to(wa))
        await graph.user_picks(wa, question, "Meer…")
        await graph.wait_for_sent(count + 1, to=wa)
        question = graph.messages_to(wa)[-1]
    await graph.answer(wa, question, label)


async def onboard(graph: GraphEmulator, wa: str = WA) -> Messages:
    await graph.user_sends_text(wa, "hallo")
    await graph.settle(wa, asks("In welke taal"))
    await choose(graph, "Nederlands", wa)
    await graph.settle(wa, asks("Om je tips"))
    await choose(graph, "Ja, dat is oké", wa)
    await graph.settle(wa, says("Hoe heet je zaak?"))
    await graph.user_sends_text(wa, "Bakkerij Dewitte")
    await graph.settle(wa, says("In welke gemeente"))
    await graph.user_sends_text(wa, "kortrijk")
    await graph.settle(wa, asks("Wat voor zaak"))
    await choose(graph, "Voeding", wa)
    await graph.settle(wa, asks("Met hoeveel"))
    await choose(graph, "2 tot 4", wa)
    return await graph.settle(wa, asks("Vraag 1 van 26"))


async def test_the_whole_journey_in_dutch(running: Running, graph: GraphEmulator) -> None:
    messages = await onboard(graph)
    for number in range(1, 27):
        question = messages[-1]
        assert f"Vraag {number} van 26" in question.text
        # three answers plus "back" and "later": a list, all within WhatsApp's limits
        assert question.body["interactive"]["type"] == "list"
        first = question.choices[0][1]
        await graph.answer(WA, question, first)
        messages = await graph.settle(WA, asks(f"Vraag {number + 1} van 26") if number < 26
                                      else says("Typ /results"))
        # WhatsApp cannot edit the question: the next message confirms the answer
        after = [m for m in messages if m.at >= question.at and m is not question]
        assert after[0].text.startswith(f"✅ {first}")
    assert says("Je resultaat: 100/100")(messages)
    images = [m for m in messages if m.type == "image"]
    assert len(images) == 1
    data, content_type, _ = graph.media[images[0].body["image"]["id"]]
    assert data.startswith(b"\x89PNG") and content_type == "image/png"
    assert images[0].body["image"]["caption"] == "Jouw KI:SS-profiel: 100/100"
    # then the tips: a plan, a moment, and the first tip when it is due
    await graph.settle(WA, asks("Wil je elke week één tip"))
    await choose(graph, "Ja, elke week")
    await graph.settle(WA, asks("Wanneer lees je"))
    await choose(graph, "'s Avonds")
    await graph.settle(WA, says("Je eerste tip komt"))
    async with running.app.db.transaction() as tx:
        person = await shopkeepers.find_by_identity(tx, channel="whatsapp", external_id=WA)
        assert person is not None
        due_at = await due.when(tx, shopkeeper_id=person.id, kind=DueKind.TIP)
    assert due_at is not None
    await running.app.nudges.tick(due_at)  # the app's scheduler would, at that time
    *_, tip = await graph.settle(WA, asks("💡 Tip · "))
    assert [title for _, title in tip.choices] == [
        "✅ Gedaan", "⏰ Later", "🚫 Niet voor mij", "📌 Deze week"]
    await graph.answer(WA, tip, "✅ Gedaan")
    *_, noted = await graph.settle(WA, says("Goed bezig"))
    assert noted.text == "✅ Gedaan\n\n✅ Goed bezig! Genoteerd."


async def test_a_long_pick_list_pages_with_more(running: Running, graph: GraphEmulator) -> None:
    await graph.user_sends_text(WA, "hallo")
    await graph.settle(WA, asks("In welke taal"))
    # A question with twelve answers (longer than a row title) and "back"/"later".
    labels = [f"Deelgemeente nummer {n} van de stad" for n in range(1, 13)]
    question = Outbound("Waar ligt je zaak?", (
        *(Button(f"m{n}", label) for n, label in enumerate(labels, 1)),
        Button(BACK, "⬅️ Terug"), Button(PAUSE, "⏸ Later")), ref="where")
    async with running.app.db.transaction() as tx:
        person = await shopkeepers.find_by_identity(tx, channel="whatsapp", external_id=WA)
        assert person is not None
        await outbox.record(tx, shopkeeper_id=person.id, channel="whatsapp", external_id=WA,
                            payloads=[payload(question, "nl")])
    running.app.sender.wake()
    first = (await graph.settle(WA, asks("Waar ligt je zaak?")))[-1]
    rows = first.body["interactive"]["action"]["sections"][0]["rows"]
    titles = [row["title"] for row in rows]
    # 7 answers, back, later and "Meer…": ten rows, the most a list holds
    assert len(titles) == 10 and titles[-1] == "Meer…" and "⬅️ Terug" in titles
    assert rows[0]["title"] == "Deelgemeente nummer 1…"
    assert rows[0]["description"] == labels[0]  # the whole label, under the short title
    await running.app.sender.settled()  # its message id is kept (a person takes a second)
    count = len(graph.messages_to(WA))
    _, body = graph.message(WA, "interactive", {"type": "list_reply", "list_reply": {
        "id": rows[-1]["id"], "title": "Meer…"}}, context=first.wamid)
    assert await graph.deliver(body) == 200
    second = (await graph.wait_for_sent(count + 1, to=WA))[-1]
    assert [row["title"] for row in second.body["interactive"]["action"]["sections"][0][
        "rows"]] == [f"Deelgemeente nummer {n}…" for n in range(8, 13)] + [
        "⬅️ Terug", "⏸ Later"]
    # Meta redelivers the pick: no second copy of the page
    assert await graph.deliver(body) == 200
    await running.app.sender.settled()
    assert len(graph.messages_to(WA)) == count + 1
    # What the pick means to the bot (a handled update's stored payload is cleared).
    reader, picked = running.app.inbox.readers["whatsapp"], []

    class Reading:
        def interpret(self, data: dict[str, Any]) -> Interpreted | None:
            meaning = reader.interpret(data)
            if meaning is not None and meaning.inbound.reply is not None:
                picked.append((meaning.inbound.reply.ref, meaning.inbound.reply.choice))
            return meaning

    running.app.inbox.add_reader("whatsapp", Reading())
    await graph.user_picks(WA, second, "Deelgemeente nummer 9…")
    await running.app.inbox.idle()
    assert picked == [("where", "m9")]


async def test_signatures_are_checked(running: Running, graph: GraphEmulator) -> None:
    _, body = graph.message(WA, "text", {"body": "hallo"})
    assert await graph.post(body, None) == 401
    assert await graph.post(body, "sha256=" + "0" * 64) == 401
    assert await graph.post(body, graph.sign(body + b" ")) == 401
    tampered = body.replace(b"hallo", b"stop!")
    assert await graph.post(tampered, graph.sign(body)) == 401
    async with running.app.db.transaction() as tx:
        stored = (await tx.execute(sa.text("SELECT count(*) FROM inbox"))).scalar_one()
    assert stored == 0
    assert graph.sent == []
    assert await graph.post(body, graph.sign(body)) == 200
    await graph.settle(WA, asks("In welke taal"))


async def test_a_body_over_the_limit_gets_413(app: App, settings: Settings,
                                              graph: GraphEmulator) -> None:
    async for _ in start(app, settings, graph, max_body=2048):
        _, body = graph.message(WA, "text", {"body": "x" * 4000})
        assert await graph.post(body, graph.sign(body)) == 413
        assert graph.sent == []


async def test_subscription_is_verified(running: Running) -> None:
    async with aiohttp.ClientSession() as session:
        good = {"hub.mode": "subscribe", "hub.verify_token": "verify-me-please",
                "hub.challenge": "1158201444"}
        async with session.get(running.url, params=good) as answer:
            assert answer.status == 200 and await answer.text() == "1158201444"
        async with session.get(running.url, params={**good, "hub.verify_token": "no"}) as answer:
            assert answer.status == 403


async def test_a_replayed_webhook_is_processed_once(running: Running,
                                                    graph: GraphEmulator) -> None:
    _, body = graph.message(WA, "text", {"body": "hallo"})
    assert await graph.deliver(body) == 200
    answered = await graph.settle(WA, asks("In welke taal"))
    for _ in range(3):  # Meta redelivers for days
        assert await graph.deliver(body) == 200
    await running.app.inbox.idle()
    await running.app.sender.settled()
    assert graph.messages_to(WA) == answered
    async with running.app.db.transaction() as tx:
        assert (await tx.execute(sa.text("SELECT count(*) FROM inbox"))).scalar_one() == 1


async def test_typed_words_are_commands(running: Running, graph: GraphEmulator) -> None:
    await onboard(graph)
    await graph.user_sends_text(WA, "Hulp")
    await graph.settle(WA, says("Dit kan ik voor je doen"))
    await graph.user_sends_text(WA, "stop")
    await graph.settle(WA, says("Je bent afgemeld"))
    await graph.user_sends_text(WA, "/start")
    await graph.settle(WA, says("Welkom terug"))


async def test_statuses_update_the_outbox(running: Running, graph: GraphEmulator) -> None:
    await graph.user_sends_text(WA, "hallo")
    *_, first = await graph.settle(WA, asks("In welke taal"))
    await running.app.sender.settled()
    async with running.app.db.transaction() as tx:
        row = (await tx.execute(sa.select(OUTBOX.c.id, OUTBOX.c.platform_ids)
                                .order_by(OUTBOX.c.id.desc()).limit(1))).one()
    assert row.platform_ids == [first.wamid]
    for status in ("sent", "delivered", "read", "delivered"):  # a late "delivered" too
        assert await graph.status(first.wamid, status) == 200
    async with running.app.db.transaction() as tx:
        assert await whatsapp.receipt(tx, outbox_id=row.id) == ("read", None)
    await graph.status(first.wamid, "failed", code=131026)
    async with running.app.db.transaction() as tx:
        assert await whatsapp.receipt(tx, outbox_id=row.id) == (
            "failed", "whatsapp 131026: Message undeliverable")
        status, error = (await tx.execute(sa.select(OUTBOX.c.status, OUTBOX.c.error).where(
            OUTBOX.c.id == row.id))).one()
    assert status == OutboxStatus.FAILED and "131026" in error


async def test_an_undeliverable_number_is_unreachable(running: Running,
                                                      graph: GraphEmulator) -> None:
    graph.fail_next(131026)
    await graph.user_sends_text(WA, "hallo")
    async with asyncio.timeout(10):
        while True:  # the outbox row has no event to wait on
            async with running.app.db.transaction() as tx:
                rows = (await tx.execute(sa.select(OUTBOX.c.status, OUTBOX.c.error))).all()
            if rows and rows[0].status == OutboxStatus.FAILED:
                break
            await asyncio.sleep(0.02)
    assert "131026" in rows[0].error


async def test_a_server_error_is_retried(running: Running, graph: GraphEmulator) -> None:
    graph.fail_next(503)
    await graph.user_sends_text(WA, "hallo")
    await graph.settle(WA, asks("In welke taal"))
    assert [e["code"] for e in graph.errors] == [503]


def _settle_rows(running: Running) -> Callable[[], Any]:
    async def rows() -> list[Any]:
        async with running.app.db.transaction() as tx:
            return list((await tx.execute(
                sa.select(OUTBOX.c.id, OUTBOX.c.status, OUTBOX.c.error, OUTBOX.c.payload)
                .order_by(OUTBOX.c.id))).all())
    return rows


async def test_my_data_is_a_document_and_delete_erases_the_whatsapp_rows(
        running: Running, graph: GraphEmulator) -> None:
    await onboard(graph)
    await graph.user_sends_text(WA, "Mijn gegevens")
    messages = await graph.settle(WA, lambda ms: any(m.type == "document" for m in ms))
    (document,) = [m for m in messages if m.type == "document"]
    data, _, name = graph.media[document.body["document"]["id"]]
    assert b"Bakkerij Dewitte" in data and name == document.body["document"]["filename"]
    await graph.user_sends_text(WA, "verwijder mijn gegevens")
    await graph.settle(WA, asks("Wil je echt al je gegevens laten wissen?"))
    await choose(graph, "Ja, wis alles")
    await graph.settle(WA, says("ik heb al je gegevens gewist"))
    await running.app.sender.settled()
    async with running.app.db.transaction() as tx:
        for table in ("whatsapp_window", "whatsapp_reach", "shopkeeper", "identity"):
            count = (await tx.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one()
            assert count == 0, table


async def test_a_sticker_gets_a_pointer_and_a_reaction_nothing(running: Running,
                                                               graph: GraphEmulator) -> None:
    *_, question = await onboard(graph)
    _, reaction = graph.message(WA, "reaction", {"message_id": question.wamid, "emoji": "👍"})
    assert await graph.deliver(reaction) == 200
    _, sticker = graph.message(WA, "sticker", {"id": "5551", "mime_type": "image/webp"})
    assert await graph.deliver(sticker) == 200
    messages = await graph.settle(WA, lambda ms: "enkel tekst lezen" in ms[-2].text
                                  and asks("Vraag 1 van 26")(ms))  # the pointer, the question
    assert sum("enkel tekst lezen" in m.text for m in messages) == 1
    await graph.user_sends_text(WA, "hmm, geen idee 🤔")
    await graph.settle(WA, says("Kies een van de antwoorden"))
