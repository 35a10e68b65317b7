"""Files, photos, platform message ids and deletions through the outbox, end to end: the
sender, the Telegram channel and python-telegram-bot over HTTP against the emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from telegram import Bot
from telegram_emulator import BotAPIEmulator

from bot.app import App
from bot.config import Settings
from bot.telegram import TelegramBot
from flows.messages import Document, Outbound
from storage import media, outbox, shopkeepers
from storage.tables import OUTBOX, OutboxKind, utcnow

CHAT = 5151


@pytest.fixture
async def emulator() -> AsyncIterator[BotAPIEmulator]:
    async with BotAPIEmulator() as emu:
        yield emu


@pytest.fixture
async def bot(app: App, settings: Settings,
              emulator: BotAPIEmulator) -> AsyncIterator[TelegramBot]:
    on_telegram = replace(settings, telegram_token=emulator.token,
                          telegram_api_base_url=emulator.base_url)
    async with TelegramBot(on_telegram, app) as running:
        yield running


def refused(emu: BotAPIEmulator) -> list[dict[str, Any]]:
    """What the emulator refused that a test did not ask for."""
    return [e for e in emu.errors if not e.get("injected")]


async def person(app: App, emu: BotAPIEmulator, chat: int = CHAT) -> int:
    emu.register_chat(chat)
    async with app.db.transaction() as tx:
        found, _ = await shopkeepers.find_or_create(tx, channel="telegram",
                                                    external_id=str(chat), language="nl")
        await shopkeepers.update(tx, shopkeeper=found, consent_at=utcnow())
        return found.id


async def queue(app: App, owner: int, *payloads: dict[str, Any], chat: int = CHAT) -> list[int]:
    async with app.db.transaction() as tx:
        return await outbox.record(tx, shopkeeper_id=owner, channel="telegram",
                                   external_id=str(chat), payloads=list(payloads),
                                   kind=OutboxKind.BULK)


async def delivered(app: App) -> dict[int, tuple[str, str | None, Any]]:
    """Poll until nothing is due; every row's (status, error, platform ids)."""
    while await app.sender.poll():  # a chat's next row waits for the next poll
        pass
    await app.sender.settled()
    async with app.db.transaction() as tx:
        rows = await tx.execute(sa.select(OUTBOX.c.id, OUTBOX.c.status, OUTBOX.c.error,
                                          OUTBOX.c.platform_ids))
        return {row_id: (status, error, ids) for row_id, status, error, ids in rows}


def with_bytes(message: Outbound, lang: str = "nl") -> dict[str, Any]:
    """The payload of a message with a document, its bytes included (as callers record
    it: ``to_data()`` leaves them out)."""
    assert message.document is not None
    data = message.to_data()
    data["document"]["data"] = message.document.data
    data["lang"] = lang
    return data


# -- documents -----------------------------------------------------------------------------

async def test_a_document_goes_out_with_its_text_as_caption(
        bot: TelegramBot, app: App, emulator: BotAPIEmulator) -> None:
    owner = await person(app, emulator)
    csv = b"thema;score\nbeleving;72\n" * 100
    [row_id] = await queue(app, owner, with_bytes(Outbound(
        "Je gegevens, zoals gevraagd", document=Document("gegevens.csv", "text/csv", csv))))
    async with app.db.transaction() as tx:  # the bytes are in the row, not in the JSON
        stored, payload = (await tx.execute(sa.select(OUTBOX.c.image, OUTBOX.c.payload)
                                            .where(OUTBOX.c.id == row_id))).one()
    assert stored == csv and "data" not in payload["document"]
    rows = await delivered(app)
    assert rows[row_id][:2] == ("sent", None)
    [sent] = emulator.messages_to(CHAT)
    assert (sent["method"], sent["document"], sent["filename"], sent["caption"]) == (
        "sendDocument", csv, "gegevens.csv", "Je gegevens, zoals gevraagd")
    assert sent["message"]["document"]["mime_type"] == "text/csv"
    assert refused(emulator) == []


async def test_a_long_text_follows_the_document_and_html_counts_without_its_tags(
        bot: TelegramBot, app: App, emulator: BotAPIEmulator) -> None:
    owner = await person(app, emulator)
    long_text = " ".join(["Uitleg bij je export."] * 100)  # too long for a caption
    fits = "<b>" + "x" * 1000 + "</b> " + "<i>" + "y" * 20 + "</i>"  # 1,021 visible
    ids = await queue(
        app, owner,
        with_bytes(Outbound(long_text, document=Document("a.txt", "text/plain", b"A"))),
        with_bytes(Outbound(fits, html=True,
                            document=Document("b.txt", "text/plain", b"B"))),
        with_bytes(Outbound("Hier is het bestand", document=Document(
            "c.txt", "text/plain", b"C", caption="c" * 2000))))
    rows = await delivered(app)
    assert [rows[i][0] for i in ids] == ["sent"] * 3
    sent = emulator.messages_to(CHAT)
    assert [(m["method"], m["caption"] is not None) for m in sent] == [
        ("sendDocument", False), ("sendMessage", False),  # the text after the file
        ("sendDocument", True),
        ("sendDocument", True), ("sendMessage", False)]
    assert sent[1]["text"] == long_text
    assert sent[2]["caption"] == "x" * 1000 + " " + "y" * 20
    assert {e["type"] for e in sent[2]["entities"]} == {"bold", "italic"}
    assert len(sent[3]["caption"]) == 1024 and sent[3]["caption"].endswith("…")
    assert sent[4]["text"] == "Hier is het bestand"
    assert refused(emulator) == []


async def test_a_document_row_without_bytes_fails_with_the_reason(
        bot: TelegramBot, app: App, emulator: BotAPIEmulator) -> None:
    owner = await person(app, emulator)
    payload = Outbound("Export", document=Document("x.csv", "text/csv")).to_data()
    [row_id] = await queue(app, owner, payload)
    rows = await delivered(app)
    assert rows[row_id][:2] == ("failed", "the document's bytes are missing")
    assert emulator.messages_to(CHAT) == []


# -- platform message ids ------------------------------------------------------------------

def patient(app: App) -> None:
    """Retries wait an hour (unless :func:`retry_now`): the errored state can be looked at."""
    app.sender.settings = replace(app.sender.settings, backoff_base=3600, backoff_max=3600)


async def retry_now(app: App) -> None:
    async with app.db.transaction() as tx:
        await tx.execute(sa.update(OUTBOX).where(OUTBOX.c.status == "errored")
                         .values(next_attempt_at=utcnow()))


async def test_each_row_keeps_the_message_ids_of_its_calls(
        bot: TelegramBot, app: App, emulator: BotAPIEmulator) -> None:
    owner = await person(app, emulator)
    emulator.register_chat(CHAT + 1)
    paragraphs = "\n\n".join(f"Alinea {i}: " + "woord " * 150 for i in range(8))
    ids = await queue(app, owner, {"text": "Eén", "lang": "nl"},
                      {"text": paragraphs, "lang": "nl"})
    rows = await delivered(app)
    sent = emulator.messages_to(CHAT)
    assert len(sent) == 3  # one, then the long text in two
    assert rows[ids[0]] == ("sent", None, [str(sent[0]["message_id"])])
    assert rows[ids[1]] == ("sent", None, [str(m["message_id"]) for m in sent[1:]])
    assert refused(emulator) == []


async def test_a_retried_message_keeps_the_ids_of_the_calls_that_went_out_before(
        bot: TelegramBot, app: App, emulator: BotAPIEmulator) -> None:
    owner = await person(app, emulator)
    long_text = " ".join(["Uitleg bij je export."] * 100)
    [row_id] = await queue(app, owner, with_bytes(Outbound(
        long_text, document=Document("a.txt", "text/plain", b"A"))))
    patient(app)
    emulator.fail_next("sendMessage", status=502)  # the file goes, the text after it not
    rows = await delivered(app)
    [document] = emulator.messages_to(CHAT)
    assert rows[row_id] == ("errored", "Bad Gateway", [str(document["message_id"])])
    await retry_now(app)
    rows = await delivered(app)
    first, text = emulator.messages_to(CHAT)
    assert first is not None and text["text"] == long_text  # the file was not sent again
    assert rows[row_id] == ("sent", None, [str(document["message_id"]),
                                           str(text["message_id"])])


# -- photos --------------------------------------------------------------------------------

async def stored_picture(app: App) -> int:
    from test_telegram_emulator import png

    async with app.db.transaction() as tx:
        return await media.put(tx, data=png(640, 480), content_type="image/png",
                               name="affiche.png")


async def test_a_broadcast_photo_is_uploaded_once_and_sent_by_its_file_id_after(
        bot: TelegramBot, app: App, emulator: BotAPIEmulator) -> None:
    picture = await stored_picture(app)
    chats = range(CHAT, CHAT + 6)
    rows = []
    for chat in chats:
        owner = await person(app, emulator, chat)
        rows += await queue(app, owner, {"text": "<b>Koopavond</b> vrijdag", "html": True,
                                         "photo": picture, "lang": "nl"}, chat=chat)
    statuses = await delivered(app)
    assert {statuses[r][0] for r in rows} == {"sent"}
    sent = [m for chat in chats for m in emulator.messages_to(chat)]
    assert [m["method"] for m in sent] == ["sendPhoto"] * 6
    assert {m["message"]["photo"][-1]["file_id"] for m in sent} == {  # one upload
        sent[0]["message"]["photo"][-1]["file_id"]}
    assert all(m["caption"] == "Koopavond vrijdag" and m["entities"][0]["type"] == "bold"
               for m in sent)
    async with app.db.transaction() as tx:
        record = await media.get(tx, media_id=picture)
    assert record is not None
    assert record.platform_ids == {"telegram": sent[0]["message"]["photo"][-1]["file_id"]}
    assert refused(emulator) == []


async def test_a_text_too_long_for_a_caption_follows_the_photo_and_a_retry_skips_the_photo(
        bot: TelegramBot, app: App, emulator: BotAPIEmulator) -> None:
    picture = await stored_picture(app)
    owner = await person(app, emulator)
    text = "<i>" + "Lang verhaal. " * 80 + "</i>"  # 1,120 visible: over the caption limit
    [row_id] = await queue(app, owner, {"text": text, "html": True, "photo": picture,
                                        "lang": "nl"})
    patient(app)
    emulator.fail_next("sendMessage", status=502)
    assert (await delivered(app))[row_id][0] == "errored"
    await retry_now(app)
    status, _, ids = (await delivered(app))[row_id]
    photo, words = emulator.messages_to(CHAT)
    assert (photo["method"], photo["caption"]) == ("sendPhoto", None)
    assert words["method"] == "sendMessage" and words["text"].startswith("Lang verhaal.")
    assert (status, ids) == ("sent", [str(photo["message_id"]), str(words["message_id"])])
    assert refused(emulator) == []


async def test_an_unknown_file_id_is_refused_and_the_row_fails_with_the_reason(
        bot: TelegramBot, app: App, emulator: BotAPIEmulator) -> None:
    async with app.db.transaction() as tx:
        picture = await media.put_platform(tx, channel="telegram", platform_id="AgACnope",
                                           unique_id="nope")
    owner = await person(app, emulator)
    [row_id] = await queue(app, owner, {"text": "Affiche", "photo": picture, "lang": "nl"})
    status, error, _ = (await delivered(app))[row_id]
    assert status == "failed" and "wrong file identifier" in str(error).lower()
    assert [e["status"] for e in emulator.errors] == [400]


# -- deleting from chats -------------------------------------------------------------------

async def test_a_sent_message_is_deleted_by_its_ids_and_a_refused_delete_fails_at_once(
        bot: TelegramBot, app: App, emulator: BotAPIEmulator) -> None:
    owner = await person(app, emulator)
    first = await queue(app, owner, {"text": "Oeps, verkeerd bericht", "lang": "nl"},
                        {"text": "Nog een", "lang": "nl"}, {"text": "Blijft", "lang": "nl"})
    rows = await delivered(app)
    made = [id_ for row in first[:2] for id_ in rows[row][2]]
    [delete] = await queue(app, owner, {"text": "", "delete": made, "lang": "nl"})
    rows = await delivered(app)
    assert rows[delete] == ("sent", None, [])  # a deletion makes no message
    assert [m["text"] for m in emulator.messages_to(CHAT)] == ["Blijft"]
    assert emulator.deleted == [(CHAT, int(i)) for i in made]
    calls = emulator.calls["deleteMessages"]

    [again] = await queue(app, owner, {"text": "", "delete": made, "lang": "nl"})
    emulator.advance_clock(48 * 3600 + 1)  # "Blijft" is now too old to delete
    [old] = await queue(app, owner, {"text": "", "delete": rows[first[2]][2], "lang": "nl"})
    rows = await delivered(app)
    assert rows[again][:2] == ("failed", "Message to delete not found")
    assert rows[old][:2] == ("failed", "Message can't be deleted")
    assert emulator.calls["deleteMessages"] == calls + 2  # one try each, never retried
    assert [m["text"] for m in emulator.messages_to(CHAT)] == ["Blijft"]


async def test_more_than_a_hundred_ids_take_several_calls(
        bot: TelegramBot, app: App, emulator: BotAPIEmulator) -> None:
    owner = await person(app, emulator)
    emulator.register_chat(CHAT)
    async with Bot(emulator.token, base_url=emulator.base_url) as api:
        made = [str((await api.send_message(CHAT, f"m{i}")).message_id) for i in range(150)]
    [delete] = await queue(app, owner, {"text": "", "delete": made, "lang": "nl"})
    assert (await delivered(app))[delete][0] == "sent"
    assert emulator.calls["deleteMessages"] == 2 and emulator.messages_to(CHAT) == []
