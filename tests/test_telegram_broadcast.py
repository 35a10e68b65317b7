"""A coach composes a broadcast with a photo on Telegram, it reaches a shopkeeper, and the
coach deletes it from the chats: the whole path through the Bot API emulator."""

from __future__ import annotations

import struct
import zlib

from telegram_emulator import BotAPIEmulator
from test_telegram import (  # noqa: F401  (fixtures)
    CHAT,
    asks,
    bot,
    emulator,
    onboard,
    press,
    settle,
    says,
)

from bot.app import App
from bot.telegram import TelegramBot
from storage import roles, shopkeepers
from storage.tables import Role

COACH = 7777


def png(width: int = 40, height: int = 30) -> bytes:
    """A small valid PNG (Telegram reads its size)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xff\x80\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                               0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


async def test_a_photo_broadcast_composed_in_chat_arrives_and_can_be_deleted(
        bot: TelegramBot, app: App, emulator: BotAPIEmulator) -> None:
    await onboard(emulator)  # the shopkeeper: in the middle of the check, so "unfinished"
    async with app.db.transaction() as tx:
        coach, _ = await shopkeepers.find_or_create(tx, channel="telegram",
                                                    external_id=str(COACH), language="nl")
        await roles.grant(tx, shopkeeper_id=coach.id, role=Role.COACH, by="test")

    emulator.user_sends_text(COACH, "/broadcast")
    await settle(emulator, asks("✍️ Schrijf je bericht"), COACH)
    caption = "Proefdag zaterdag in de Rijselsestraat!"
    emulator.user_sends_photo(COACH, png(), caption=caption, caption_entities=[
        {"type": "bold", "offset": 9, "length": 8}])
    shown = await settle(emulator, asks("👍 Je bericht staat klaar, met foto"), COACH)
    press(emulator, shown[-1], "Verder ›", COACH)
    shown = await settle(emulator, asks("👥 Wie krijgt het?"), COACH)
    assert "→ 1 winkeliers" in shown[-1]["text"]
    press(emulator, shown[-1], "Voorbeeld ›", COACH)
    shown = await settle(emulator, asks("👆 Zo zien de winkeliers"), COACH)
    [preview] = [m for m in shown if m["photo"] is not None and m["method"] == "sendPhoto"]
    assert preview["caption"] == caption
    assert [(e["type"], e["offset"], e["length"]) for e in preview["entities"]] == [
        ("bold", 9, 8)]
    press(emulator, shown[-1], "🚀 Nu versturen", COACH)
    shown = await settle(emulator, asks("📣 Klaar om te versturen?"), COACH)
    labels = [b["text"] for row in shown[-1]["reply_markup"]["inline_keyboard"] for b in row]
    # Outside the sending hours (the real clock) the coach may send it right away anyway.
    press(emulator, shown[-1], "⚡ Dringend: meteen" if "⚡ Dringend: meteen" in labels
          else "✅ Versturen", COACH)
    await settle(emulator, says("is ingepland"), COACH)

    assert await app.broadcasts.tick() == 1
    received = await settle(emulator, lambda ms: any(m["photo"] for m in ms))
    [photo] = [m for m in received if m["photo"]]
    assert photo["caption"] == caption and photo["photo"] == preview["photo"]
    assert [e["type"] for e in photo["entities"]] == ["bold"]

    await app.sender.settled()  # the "sent" mark, with the message id, is written
    emulator.user_sends_text(COACH, "/broadcasts")
    listing = await settle(emulator, asks("📣 Laatste berichten"), COACH)
    press(emulator, listing[-1], "🗑️ #1 uit de chats wissen", COACH)
    sure = await settle(emulator, asks("🗑️ Bericht #1 wissen"), COACH)
    press(emulator, sure[-1], "🗑️ Ja, wissen", COACH)
    await settle(emulator, says("wordt uit 1 chats gewist"), COACH)
    await app.sender.poll()
    assert (CHAT, photo["message_id"]) in emulator.deleted
    assert not any(m["photo"] for m in emulator.messages_to(CHAT))
