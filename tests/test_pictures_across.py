"""A coach's photo reaches shopkeepers on the other channel too: one process serving
Telegram and WhatsApp (each against its emulator), the photo sent in chat, the broadcast
composed with the buttons. A WhatsApp media id from a webhook is only downloaded (never
sent); a Telegram file_id is sent again as is; the bytes are fetched once, whatever the
number of recipients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
import sqlalchemy as sa
from graph_emulator import GraphEmulator, Sent
from sqlalchemy.ext.asyncio import AsyncConnection
from telegram_emulator import BotAPIEmulator
from test_telegram import png, press
from test_telegram import settle as settle_telegram
from test_whatsapp import Running, start

from bot.app import App
from bot.config import Settings
from bot.telegram.serve import TelegramBot
from flows.messages import Outbound
from handlers.coaching import payload
from storage import media, outbox, roles, shopkeepers, whatsapp
from storage.tables import BROADCAST, OUTBOX, OutboxStatus, Role, utcnow

COACH_WA = "32470009999"
COACH_TG = 9999
SHOPS_WA = ["32470000101", "32470000102", "32470000103"]
SHOPS_TG = [501, 502]
CAPTION = "Proefdag zaterdag in de Rijselsestraat!"


@dataclass
class Both:
    """The app on both channels, and the two emulators."""

    app: App
    graph: GraphEmulator
    telegram: BotAPIEmulator
    running: Running


@pytest.fixture
async def both(app: App, settings: Settings,
               graph: GraphEmulator) -> AsyncIterator[Both]:
    async with BotAPIEmulator() as telegram:
        tg = replace(settings, telegram_token=telegram.token,
                     telegram_api_base_url=telegram.base_url)
        async for running in start(app, settings, graph):
            async with TelegramBot(tg, app):
                yield Both(app, graph, telegram, running)
        assert [e for e in telegram.errors if not e.get("injected")] == []


async def shops(app: App, graph: GraphEmulator, telegram: BotAPIEmulator | None) -> None:
    """Consented shopkeepers on both channels; the WhatsApp ones wrote today (their window
    is open, so a broadcast goes free-form, with its photo)."""
    async with app.db.transaction() as tx:
        for channel, number in [*(("whatsapp", n) for n in SHOPS_WA),
                                *(("telegram", str(n)) for n in SHOPS_TG)]:
            person, _ = await shopkeepers.find_or_create(tx, channel=channel,
                                                         external_id=number, language="nl")
            await shopkeepers.update(tx, shopkeeper=person, municipality="Kortrijk",
                                     shop_type="food", consent_at=utcnow())
        await whatsapp.wrote(tx, at=dict.fromkeys(SHOPS_WA, utcnow()))
    for number in SHOPS_WA:
        graph.last_inbound[number] = graph.now()
    for chat in SHOPS_TG if telegram is not None else ():
        telegram.register_chat(chat)


async def coach(app: App, channel: str, external_id: str) -> None:
    async with app.db.transaction() as tx:
        person, _ = await shopkeepers.find_or_create(tx, channel=channel,
                                                     external_id=external_id, language="nl")
        await roles.grant(tx, shopkeeper_id=person.id, role=Role.COACH, by="test")


def last_asks(fragment: str) -> Callable[[list[Sent]], bool]:
    return lambda ms: bool(ms) and fragment in ms[-1].text and bool(ms[-1].choices)


async def tap(graph: GraphEmulator, wa: str, label: str) -> None:
    """Answer the last question on WhatsApp with the choice whose title starts like
    ``label`` (a list shortens long titles)."""
    question = graph.messages_to(wa)[-1]
    titles = [title for _, title in question.choices]
    (title,) = [t for t in titles if t == label or label.startswith(t.rstrip("…"))]
    await graph.answer(wa, question, title)


def says_last(fragment: str) -> Callable[[list[dict[str, Any]]], bool]:
    """Telegram: the last message holds ``fragment``."""
    return lambda ms: bool(ms) and fragment in (ms[-1]["text"] or ms[-1]["caption"] or "")


def asks(fragment: str) -> Callable[[list[dict[str, Any]]], bool]:
    """Telegram: the last message holds ``fragment`` and has buttons."""
    return lambda ms: says_last(fragment)(ms) and bool(ms[-1]["reply_markup"])


async def photos_to(telegram: BotAPIEmulator, chat: int) -> list[dict[str, Any]]:
    sent = await settle_telegram(telegram, lambda ms: any(m["photo"] for m in ms), chat)
    return [m for m in sent if m["photo"]]


async def test_a_photo_a_coach_sends_on_whatsapp_reaches_both_channels(
        both: Both) -> None:
    app, graph, telegram = both.app, both.graph, both.telegram
    await shops(app, graph, telegram)
    await coach(app, "whatsapp", COACH_WA)
    await graph.user_sends_text(COACH_WA, "/broadcast")
    await graph.settle(COACH_WA, lambda ms: bool(ms) and "Schrijf je bericht" in ms[-1].text)
    picture = png(48, 32)
    await graph.user_sends_image(COACH_WA, picture, caption=CAPTION)
    await graph.settle(COACH_WA, last_asks("Je bericht staat klaar, met foto"))
    await tap(graph, COACH_WA, "Verder ›")
    await graph.settle(COACH_WA, last_asks("Wie krijgt het?"))
    await tap(graph, COACH_WA, "Voorbeeld ›")
    shown = await graph.settle(COACH_WA, last_asks("Zo zien de winkeliers"))
    # The preview shows the coach the photo: uploaded, not sent by the id it came with.
    (preview,) = [m for m in shown if m.type == "image"]
    received_id = next(iter(graph.received))
    assert preview.body["image"]["id"] != received_id
    assert graph.media[preview.body["image"]["id"]][0] == picture
    await tap(graph, COACH_WA, "🚀 Nu versturen")
    confirm = await graph.settle(COACH_WA, last_asks("Klaar om te versturen?"))
    titles = [title for _, title in confirm[-1].choices]
    await tap(graph, COACH_WA, "⚡ Dringend: meteen" if "⚡ Dringend: meteen" in titles
              else "✅ Versturen")
    await graph.settle(COACH_WA, lambda ms: bool(ms) and "is ingepland" in ms[-1].text)

    assert await app.broadcasts.tick() == len(SHOPS_WA) + len(SHOPS_TG)
    for number in SHOPS_WA:
        *_, image = await graph.settle(number, lambda ms: any(m.type == "image" for m in ms))
        assert image.body["image"] == {"id": preview.body["image"]["id"], "caption": CAPTION}
    for chat in SHOPS_TG:
        (photo,) = await photos_to(telegram, chat)
        assert photo["photo"] == picture and photo["caption"] == CAPTION
    # Downloaded once for the preview and every recipient; uploaded once per platform.
    assert graph.downloads == [received_id]
    assert [data for data, _, _ in graph.media.values()].count(picture) == 1
    assert telegram.calls["sendPhoto"] == len(SHOPS_TG)
    photo = await _photo_of_last_broadcast(app)
    async with app.db.transaction() as tx:
        stored = await media.get(tx, media_id=photo)
    assert stored is not None and stored.data == picture
    assert stored.origin == ("whatsapp", received_id)
    assert set(stored.platform_ids) == {"whatsapp", "telegram"}


async def test_a_photo_a_coach_sends_on_telegram_reaches_whatsapp(both: Both) -> None:
    app, graph, telegram = both.app, both.graph, both.telegram
    await shops(app, graph, telegram)
    await coach(app, "telegram", str(COACH_TG))
    telegram.user_sends_text(COACH_TG, "/broadcast")
    await settle_telegram(telegram, says_last("Schrijf je bericht"), COACH_TG)
    picture = png(40, 30)
    telegram.user_sends_photo(COACH_TG, picture, caption=CAPTION)

    shown = await settle_telegram(telegram, asks("Je bericht staat klaar, met foto"),
                                  COACH_TG)
    press(telegram, shown[-1], "Verder ›", COACH_TG)
    shown = await settle_telegram(telegram, asks("Wie krijgt het?"), COACH_TG)
    press(telegram, shown[-1], "Voorbeeld ›", COACH_TG)
    shown = await settle_telegram(telegram, asks("Zo zien de winkeliers"), COACH_TG)
    press(telegram, shown[-1], "🚀 Nu versturen", COACH_TG)
    shown = await settle_telegram(telegram, asks("Klaar om te versturen?"), COACH_TG)
    labels = [b["text"] for row in shown[-1]["reply_markup"]["inline_keyboard"] for b in row]
    press(telegram, shown[-1], "⚡ Dringend: meteen" if "⚡ Dringend: meteen" in labels
          else "✅ Versturen", COACH_TG)
    await settle_telegram(telegram, says_last("is ingepland"), COACH_TG)

    assert await app.broadcasts.tick() == len(SHOPS_WA) + len(SHOPS_TG)
    images = []
    for number in SHOPS_WA:
        *_, image = await graph.settle(number, lambda ms: any(m.type == "image" for m in ms))
        images.append(image)
    (uploaded,) = {image.body["image"]["id"] for image in images}
    assert graph.media[uploaded][0] == picture
    for chat in SHOPS_TG:
        (photo,) = await photos_to(telegram, chat)
        assert photo["photo"] == picture
    # One getFile and one download for three WhatsApp recipients; Telegram's own
    # recipients (and the coach's preview) got the file_id as it came.
    assert telegram.calls["getFile"] == 1 and len(telegram.downloads) == 1
    assert graph.downloads == []


async def _photo_of_last_broadcast(app: App) -> int:
    async with app.db.transaction() as tx:
        found = (await tx.execute(sa.select(BROADCAST.c.media_id)
                                  .order_by(BROADCAST.c.id.desc()).limit(1))).scalar_one()
    assert found is not None
    return int(found)


async def test_a_photo_whose_media_id_expired_fails_its_rows_saying_why(
        app: App, settings: Settings) -> None:
    """WhatsApp keeps what a user sent for 7 days: a broadcast after that cannot have the
    photo. Its rows fail with the reason, after one try for all of them."""
    async with GraphEmulator() as graph:
        async for _ in start(app, settings, graph):
            await shops(app, graph, None)
            gone = graph.receive_file(png(20, 20))
            graph.advance(7 * 24 * 3600 + 60)
            for number in SHOPS_WA:  # they wrote just now (by Meta's clock too)
                graph.last_inbound[number] = graph.now()
            async with app.db.transaction() as tx:
                photo = await media.put_platform(tx, channel="whatsapp", platform_id=gone,
                                                 unique_id="expired")
                await outbox.record_many(tx, [
                    {"shopkeeper_id": owner, "channel": "whatsapp", "external_id": number,
                     "payload": payload(Outbound(CAPTION, html=True, photo=photo), "nl")}
                    for owner, number in await _owners(tx, SHOPS_WA)])
            app.sender.wake()
            rows = await _final(app, len(SHOPS_WA))
    assert {status for status, _ in rows} == {OutboxStatus.FAILED}
    assert all(f"whatsapp media {gone}: whatsapp 100: Unsupported get request" in error
               for _, error in rows)
    assert [e["code"] for e in graph.errors] == [100]  # asked once, for all three
    assert graph.sent == []


async def _owners(tx: AsyncConnection, numbers: list[str]) -> list[tuple[int, str]]:
    found = []
    for number in numbers:
        person = await shopkeepers.find_by_identity(tx, channel="whatsapp", external_id=number)
        assert person is not None
        found.append((person.id, number))
    return found


async def _final(app: App, count: int) -> list[tuple[str, str]]:
    """The outbox rows' (status, error) once ``count`` of them are final (rows have no
    event to wait on: checked every 20 ms)."""
    async with asyncio.timeout(10):
        while True:
            async with app.db.transaction() as tx:
                rows = [(str(s), str(e)) for s, e in (await tx.execute(
                    sa.select(OUTBOX.c.status, OUTBOX.c.error).where(
                        OUTBOX.c.status.in_([OutboxStatus.FAILED, OutboxStatus.SENT])))).all()]
            if len(rows) >= count:
                return rows
            await asyncio.sleep(0.02)
