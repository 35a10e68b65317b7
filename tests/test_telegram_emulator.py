"""The Bot API emulator, driven by the real python-telegram-bot client over loopback HTTP."""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
import re
import struct
import sys
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MessageEntity,
    Update,
)
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes
from telegram_emulator import BotAPIEmulator, EntityParseError, parse_formatted_text

from bot.telegram.request import AiohttpRequest


def png(width: int, height: int) -> bytes:
    """A real (red) PNG image of that size."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(d.title(), callback_data=d)
                                  for d in data]])


@pytest.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    async with BotAPIEmulator() as emulator:
        yield emulator


@pytest.fixture
async def bot(emu: BotAPIEmulator) -> AsyncIterator[Bot]:
    async with Bot(emu.token, base_url=emu.base_url) as client:
        yield client


async def test_get_me_describes_the_bot(emu: BotAPIEmulator, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (123456, True, "kiss_coach_test_bot")
    assert me.can_join_groups is True
    assert emu.calls["getMe"] == 2  # once by `async with bot`, once here


async def test_send_message_returns_a_message_and_is_recorded(emu: BotAPIEmulator,
                                                              bot: Bot) -> None:
    emu.user_sends_text(42, "/start")
    message = await bot.send_message(42, "Hallo!", reply_markup=keyboard("ja", "nee"))
    assert message.message_id == 2  # the user's /start was message 1 of this chat
    assert (message.chat.id, message.chat.type, message.text) == (42, "private", "Hallo!")
    assert message.from_user is not None and message.from_user.username == "kiss_coach_test_bot"
    assert message.reply_markup == keyboard("ja", "nee")
    [record] = emu.messages_to(42)
    assert record["method"] == "sendMessage" and record["text"] == "Hallo!"
    assert record["reply_markup"]["inline_keyboard"][0][1]["callback_data"] == "nee"
    assert emu.sent == [record] and emu.errors == []
    assert [r["method"] for r in emu.messages_to(42, include_user=True)] == ["user",
                                                                            "sendMessage"]


async def test_a_message_to_a_chat_that_never_wrote_is_refused(emu: BotAPIEmulator,
                                                               bot: Bot) -> None:
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(999, "Hallo?")
    assert emu.errors == [{"method": "sendMessage", "status": 400,
                           "description": "Bad Request: chat not found", "injected": False}]


async def test_text_length_is_counted_in_utf16_after_markup(emu: BotAPIEmulator,
                                                            bot: Bot) -> None:
    emu.register_chat(7)
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(7, "a" * 4097)
    await bot.send_message(7, "😀" * 2048)  # 2048 characters, 4096 UTF-16 code units
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(7, "😀" * 2048 + "!")
    await bot.send_message(7, "<b>" + "a" * 4096 + "</b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(7, "<b> </b>", parse_mode="HTML")
    assert [e["description"] for e in emu.errors] == [
        "Bad Request: message is too long", "Bad Request: message is too long",
        "Bad Request: message text is empty"]
    assert len(emu.messages_to(7)) == 2


async def test_callback_data_is_limited_to_64_bytes(emu: BotAPIEmulator, bot: Bot) -> None:
    emu.register_chat(8)
    too_long = "€" * 21 + "ab"  # 23 characters, but 65 bytes in UTF-8
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(8, "Kies", reply_markup=keyboard(too_long))
    assert emu.errors[-1]["description"] == "Bad Request: BUTTON_DATA_INVALID"
    await bot.send_message(8, "Kies", reply_markup=keyboard(too_long[:-1]))
    assert len(emu.sent) == 1


async def test_inline_buttons_need_text_and_exactly_one_action(emu: BotAPIEmulator,
                                                               bot: Bot) -> None:
    emu.register_chat(8)
    with pytest.raises(BadRequest, match=r"(?i)text buttons are unallowed"):
        await bot.send_message(8, "Kies", reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton("Niets")]]))
    with pytest.raises(BadRequest, match=r"(?i)reply markup is too long"):
        await bot.send_message(8, "Kies", reply_markup=keyboard(*map(str, range(101))))
    assert emu.sent == []


@pytest.mark.parametrize(("html", "reason"), [
    ("<p>Hallo</p>", 'Unsupported start tag "p" at byte offset 0'),
    ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
    ("<b>vet", 'Can\'t find end tag corresponding to start tag "b"'),
    ("<b>vet</i>", 'Unmatched end tag at byte offset 6, expected "</b>", found "</i>"'),
    ("Tom & Jerry", "Unescaped '&' at byte offset 4"),
    ("5 > 3", "Unescaped '>' at byte offset 2"),
])
async def test_html_telegram_cannot_parse_is_refused(emu: BotAPIEmulator, bot: Bot, html: str,
                                                     reason: str) -> None:
    emu.register_chat(9)
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(9, html, parse_mode="HTML")
    assert emu.errors[-1]["description"].startswith(f"Bad Request: can't parse entities: {reason}")


async def test_valid_html_is_sent_as_text_with_entities(emu: BotAPIEmulator, bot: Bot) -> None:
    emu.register_chat(9)
    html = '<b>Welkom</b> in <a href="https://example.be/?a=1&b=2">Kortrijk</a> &amp; 3 &lt; 4'
    message = await bot.send_message(9, html, parse_mode="HTML")
    assert message.text == "Welkom in Kortrijk & 3 < 4"
    assert message.entities == (
        MessageEntity(MessageEntity.BOLD, 0, 6),
        MessageEntity(MessageEntity.TEXT_LINK, 10, 8, url="https://example.be/?a=1&b=2"))
    assert emu.messages_to(9)[0]["source"] == html
    assert emu.messages_to(9)[0]["parse_mode"] == "HTML"


async def test_only_html_is_known_as_a_parse_mode(emu: BotAPIEmulator, bot: Bot) -> None:
    emu.register_chat(10)
    with pytest.raises(BadRequest, match="Unsupported parse_mode"):
        await bot.send_message(10, "*vet*", parse_mode="MarkdownV2")
    assert emu.errors[-1]["description"].startswith("Bad Request: unsupported parse_mode")
    assert (await bot.send_message(10, "*vet*")).text == "*vet*"  # plain text: as it is


async def test_get_updates_returns_queued_updates_and_honours_the_offset(
        emu: BotAPIEmulator, bot: Bot) -> None:
    first = emu.user_sends_text(11, "/start@kiss_coach_test_bot nu", language_code="fr")
    second = emu.user_sends_text(11, "hallo /start")
    updates = await bot.get_updates(timeout=5)
    assert [u.update_id for u in updates] == [first, second]
    start = updates[0].message
    assert start is not None and start.from_user is not None
    assert start.from_user.language_code == "fr"
    assert start.entities == (MessageEntity(MessageEntity.BOT_COMMAND, 0, 26),)
    assert updates[1].message is not None and updates[1].message.entities == ()
    assert await bot.get_updates(offset=second + 1) == ()
    assert emu.pending_updates == 0


async def test_long_poll_returns_as_soon_as_the_user_writes(emu: BotAPIEmulator,
                                                           bot: Bot) -> None:
    loop = asyncio.get_running_loop()

    async def user_writes_once_the_bot_polls() -> int:
        await emu.wait_for_long_poll()
        return emu.user_sends_text(12, "ben je daar?")

    user = asyncio.create_task(user_writes_once_the_bot_polls())
    started = loop.time()
    async with asyncio.timeout(25):
        updates = await bot.get_updates(timeout=20)
    elapsed = loop.time() - started
    assert [u.update_id for u in updates] == [await user]
    assert elapsed < 10, f"the long poll took {elapsed:.1f}s to notice the update"


async def test_a_newer_get_updates_terminates_a_waiting_one(emu: BotAPIEmulator,
                                                           bot: Bot) -> None:
    waiting = asyncio.create_task(bot.get_updates(timeout=20))
    async with asyncio.timeout(10):
        await emu.wait_for_long_poll()
        async with ClientSession() as http, http.post(
                f"{emu.base_url}{emu.token}/getUpdates", json={"timeout": 0}) as response:
            assert (await response.json()) == {"ok": True, "result": []}
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await waiting


async def test_a_raw_update_is_delivered_again_with_the_same_id(emu: BotAPIEmulator,
                                                               bot: Bot) -> None:
    update_id = emu.user_sends_text(13, "eenmaal")
    [update] = await bot.get_updates()
    assert await bot.get_updates(offset=update_id + 1) == ()
    assert emu.enqueue_raw_update(update.to_dict()) == update_id
    later = emu.user_sends_text(13, "andermaal")
    again = await bot.get_updates(offset=update_id + 1)
    assert [u.update_id for u in again] == [update_id, later]
    assert again[0].message is not None and again[0].message.text == "eenmaal"
    assert await bot.get_updates(offset=later + 1) == ()


async def test_edit_message_text_and_message_is_not_modified(emu: BotAPIEmulator,
                                                            bot: Bot) -> None:
    emu.user_sends_text(14, "/start")
    sent = await bot.send_message(14, "Vraag 1", reply_markup=keyboard("a", "b"))
    edited = await bot.edit_message_text("Vraag 1: beantwoord", chat_id=14,
                                         message_id=sent.message_id)
    assert not isinstance(edited, bool)
    assert edited.text == "Vraag 1: beantwoord" and edited.reply_markup is None
    assert edited.edit_date is not None
    [state] = emu.messages_to(14)
    assert (state["text"], state["reply_markup"]) == ("Vraag 1: beantwoord", None)
    assert [r["method"] for r in emu.sent] == ["sendMessage", "editMessageText"]
    assert emu.sent[0]["text"] == "Vraag 1"  # the log keeps what was sent at the time

    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("Vraag 1: beantwoord", chat_id=14,
                                    message_id=sent.message_id)
    assert emu.errors[-1]["description"].startswith(
        "Bad Request: message is not modified: specified new message content and reply markup")
    await bot.edit_message_text("Vraag 1: beantwoord", chat_id=14, message_id=sent.message_id,
                                reply_markup=keyboard("c"))
    assert emu.messages_to(14)[0]["reply_markup"] == keyboard("c").to_dict()
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("Nee", chat_id=14, message_id=999)


async def test_a_callback_query_can_be_answered_once(emu: BotAPIEmulator, bot: Bot) -> None:
    emu.user_sends_text(15, "/start")
    sent = await bot.send_message(15, "Klaar?", reply_markup=keyboard("ja", "nee"))
    update_id, query_id = emu.user_presses(15, sent.message_id, "ja")
    updates = await bot.get_updates()
    assert updates[-1].update_id == update_id
    query = updates[-1].callback_query
    assert query is not None and (query.id, query.data) == (query_id, "ja")
    assert query.message is not None and query.message.text == "Klaar?"
    assert query.message.reply_markup == keyboard("ja", "nee")
    assert emu.unanswered_callbacks() == [query_id]

    assert await bot.answer_callback_query(query_id, text="Genoteerd") is True
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query(query_id)
    assert emu.answered_callbacks[query_id]["text"] == "Genoteerd"
    assert emu.answered_callbacks[query_id]["show_alert"] is False
    assert emu.unanswered_callbacks() == []
    with pytest.raises(ValueError, match="no button"):
        emu.user_presses(15, sent.message_id, "misschien")


async def test_send_photo_uploads_png_bytes(emu: BotAPIEmulator, bot: Bot) -> None:
    emu.register_chat(16)
    image = png(300, 200)
    message = await bot.send_photo(16, photo=image, caption="<b>Jouw score</b> &gt; 60%",
                                   parse_mode="HTML")
    assert [(p.width, p.height) for p in message.photo] == [(90, 60), (300, 200)]
    assert message.caption == "Jouw score > 60%"
    record = emu.messages_to(16)[0]
    assert (record["method"], record["photo"], record["caption"]) == ("sendPhoto", image,
                                                                     "Jouw score > 60%")
    again = await bot.send_photo(16, photo=message.photo[-1].file_id)  # resend by file_id
    assert again.photo[-1].width == 300

    with pytest.raises(BadRequest, match=r"(?i)image_process_failed"):
        await bot.send_photo(16, photo=b"GIF89a not a png or jpeg")
    with pytest.raises(BadRequest, match="Message caption is too long"):
        await bot.send_photo(16, photo=image, caption="x" * 1025)
    # Counted after entity parsing: tags are free, a file_id the emulator never issued is not.
    tagged = await bot.send_photo(16, photo=message.photo[-1].file_id, parse_mode="HTML",
                                  caption="<b>" + "x" * 1000 + "</b><i>" + "y" * 24 + "</i>")
    assert tagged.caption is not None and len(tagged.caption) == 1024
    with pytest.raises(BadRequest, match=r"(?i)wrong file identifier"):
        await bot.send_photo(16, photo="AgACAgQAAxkBAAIBnever-issued")


async def test_a_received_photo_is_downloaded_by_get_file_for_an_hour(
        emu: BotAPIEmulator) -> None:
    image = png(64, 48)
    emu.user_sends_photo(17, image, caption="affiche")
    (update,) = emu._queue  # what getUpdates would give the bot
    file_id = update.update["message"]["photo"][-1]["file_id"]
    base_file_url = emu.base_url.removesuffix("/bot") + "/file/bot"
    async with Bot(emu.token, base_url=emu.base_url, base_file_url=base_file_url,
                   request=AiohttpRequest()) as bot:
        found = await bot.get_file(file_id)
        assert found.file_size == len(image) and found.file_path is not None
        assert bytes(await found.download_as_bytearray()) == image
        with pytest.raises(BadRequest, match=r"(?i)invalid file_id"):
            await bot.get_file("AgACAgQAAxkBAAIBnever-issued")
        emu.advance_clock(3601)  # a file_path serves the file for an hour; then 404
        with pytest.raises(InvalidToken):
            await found.download_as_bytearray()
    path = found.file_path.removeprefix(base_file_url + "/" + emu.token + "/")
    assert emu.download_file("123:wrong-token", path) is None
    assert len(emu.downloads) == 1


async def test_send_document_keeps_the_bytes_and_name(emu: BotAPIEmulator, bot: Bot) -> None:
    emu.register_chat(17)
    message = await bot.send_document(17, document=b"a;b\n1;2\n", filename="score.csv")
    assert message.document is not None and message.document.file_name == "score.csv"
    assert emu.sent[-1]["document"] == b"a;b\n1;2\n"
    assert emu.sent[-1]["filename"] == "score.csv"
    # The caption counts after entity parsing: 1024 visible characters pass with their tags.
    fits = await bot.send_document(17, document=b"x", filename="x.txt",
                                   caption="<b>" + "é" * 1024 + "</b>", parse_mode="HTML")
    assert fits.caption == "é" * 1024
    with pytest.raises(BadRequest, match="Message caption is too long"):
        await bot.send_document(17, document=b"x", filename="x.txt", caption="🙂" * 513)
    with pytest.raises(NetworkError, match="Request Entity Too Large"):  # 50 MB uploads
        await bot.send_document(17, document=b"x" * (50 * 1024 * 1024 + 1), filename="big")
    assert [e["status"] for e in emu.errors] == [400, 413]


async def test_a_bot_deletes_its_own_messages_within_48_hours(emu: BotAPIEmulator,
                                                               bot: Bot) -> None:
    emu.register_chat(18)
    sent = [(await bot.send_message(18, f"bericht {i}")).message_id for i in range(4)]
    assert await bot.delete_message(18, sent[0]) is True
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(18, sent[0])
    assert await bot.delete_messages(18, [sent[0], sent[1]]) is True  # a gone id is skipped
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_messages(18, [sent[0], sent[1]])
    with pytest.raises(BadRequest, match="Too many messages to delete"):
        await bot.delete_messages(18, list(range(1, 102)))
    emu.advance_clock(48 * 3600 - 5)
    assert await bot.delete_messages(18, [sent[2]]) is True  # just within the 48 hours
    emu.advance_clock(10)
    with pytest.raises(BadRequest, match="Message can't be deleted"):
        await bot.delete_message(18, sent[3])
    young = await bot.send_message(18, "nieuw")  # dated on the emulator's clock
    assert await bot.delete_message(18, young.message_id) is True
    assert emu.messages_to(18) == [emu.sent[3]]
    assert emu.deleted == [(18, sent[0]), (18, sent[1]), (18, sent[2]), (18, young.message_id)]


async def test_set_my_commands_validates_and_stores_per_scope_and_language(
        emu: BotAPIEmulator, bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Start", "Begin")])
    assert emu.commands == {}
    await bot.set_my_commands([BotCommand("start", "Begin opnieuw")], language_code="nl")
    await bot.set_my_commands([("score", "Je score")], scope=BotCommandScopeChat(42))
    assert emu.commands == {
        ("default", "nl"): [{"command": "start", "description": "Begin opnieuw"}],
        ('{"chat_id": 42, "type": "chat"}', ""): [{"command": "score",
                                                  "description": "Je score"}],
    }
    assert await bot.get_my_commands(language_code="nl") == (BotCommand("start",
                                                                        "Begin opnieuw"),)
    assert await bot.get_my_commands() == ()
    await bot.delete_my_commands(language_code="nl")
    assert ("default", "nl") not in emu.commands


async def test_a_429_surfaces_as_retry_after(emu: BotAPIEmulator, bot: Bot,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # RetryAfter.retry_after as a timedelta
    emu.register_chat(18)
    emu.fail_next("sendMessage", status=429, retry_after=3)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(18, "Te snel")
    assert caught.value.retry_after == dtm.timedelta(seconds=3)
    assert emu.errors == [{"method": "sendMessage", "status": 429, "injected": True,
                           "description": "Too Many Requests: retry after 3"}]
    await bot.send_message(18, "Nu wel")  # one fault only
    assert [r["text"] for r in emu.sent] == ["Nu wel"]


async def test_server_errors_can_be_injected_for_any_method(emu: BotAPIEmulator,
                                                           bot: Bot) -> None:
    emu.register_chat(19)
    emu.fail_next("*", status=502, times=2)
    for _ in range(2):
        with pytest.raises(NetworkError, match="Bad Gateway"):
            await bot.send_chat_action(19, "typing")
    assert await bot.send_chat_action(19, "typing") is True
    assert emu.chat_actions == [(19, "typing")]
    with pytest.raises(BadRequest, match="Wrong parameter action"):
        await bot.send_chat_action(19, "dancing")


async def test_a_blocked_chat_answers_forbidden(emu: BotAPIEmulator, bot: Bot) -> None:
    emu.user_sends_text(20, "hoi")
    blocked = emu.user_blocks_bot(20)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(20, "Hallo?")
    updates = await bot.get_updates()
    assert updates[-1].update_id == blocked
    member = updates[-1].my_chat_member
    assert member is not None and member.new_chat_member.status == "kicked"
    emu.user_unblocks_bot(20)
    assert (await bot.send_message(20, "Welkom terug")).text == "Welkom terug"

    emu.user_blocks_bot(20)
    restart = emu.user_sends_text(20, "/start")  # writing again unblocks, as on Telegram
    updates = await bot.get_updates(offset=blocked + 1)
    assert [u.update_id for u in updates][-1] == restart
    member = updates[-2].my_chat_member
    assert member is not None and member.new_chat_member.status == "member"
    assert (await bot.send_message(20, "Daar ben je weer")).text == "Daar ben je weer"


async def test_webhook_delivery_posts_updates_with_the_secret_header(emu: BotAPIEmulator,
                                                                    bot: Bot) -> None:
    received: list[tuple[str | None, dict[str, object]]] = []
    answers = [500, 200, 200]

    async def hook(request: web.Request) -> web.Response:
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"),
                         await request.json()))
        return web.Response(status=answers.pop(0))

    app = web.Application()
    app.router.add_post("/telegram", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/telegram"
        emu.set_webhook_target(url, "geheim_Token-1")
        first = emu.user_sends_text(21, "via webhook")
        second = emu.user_sends_text(21, "nog een")
        assert await emu.deliver_pending_webhooks() == [500]  # Telegram would retry later
        assert emu.pending_updates == 2
        assert await emu.deliver_pending_webhooks() == [200, 200]
        assert [(secret, body["update_id"]) for secret, body in received] == [
            ("geheim_Token-1", first), ("geheim_Token-1", first), ("geheim_Token-1", second)]
        assert received[1][1]["message"]["text"] == "via webhook"  # type: ignore[index]
        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates()
        info = await bot.get_webhook_info()
        assert (info.url, info.pending_update_count) == (url, 0)
    finally:
        await runner.cleanup()
    emu.set_webhook_target(None, None)
    assert await bot.get_updates() == ()


async def test_set_webhook_checks_the_secret_token(emu: BotAPIEmulator, bot: Bot) -> None:
    with pytest.raises(BadRequest, match="Secret token contains unallowed characters"):
        await bot.set_webhook("https://example.be/hook", secret_token="bot:token")
    assert await bot.set_webhook("https://example.be/hook", secret_token="A-b_9") is True
    assert (await bot.get_webhook_info()).url == "https://example.be/hook"
    assert await bot.delete_webhook(drop_pending_updates=True) is True
    assert (await bot.get_webhook_info()).url == ""


async def test_raw_http_forms_json_case_and_refusals(emu: BotAPIEmulator) -> None:
    emu.register_chat(22)
    api = f"{emu.base_url}{emu.token}"
    markup = json.dumps({"inline_keyboard": [[{"text": "Ok", "callback_data": "ok"}]]})
    async with ClientSession() as http:
        async with http.post(f"{api}/SENDMESSAGE", json={"chat_id": 22, "text": "json"}) as r:
            assert r.status == 200 and (await r.json())["result"]["text"] == "json"
        async with http.post(f"{api}/sendMessage", data={
                "chat_id": "22", "text": "form", "reply_markup": markup}) as r:
            body = await r.json()
            assert body["result"]["reply_markup"] == json.loads(markup)
        async with http.get(f"{api}/getMe") as r:
            assert (await r.json())["result"]["username"] == "kiss_coach_test_bot"
        async with http.post(f"{emu.base_url}123456:WRONG/getMe") as r:
            assert r.status == 401
            assert await r.json() == {"ok": False, "error_code": 401,
                                      "description": "Unauthorized"}
        async with http.post(f"{api}/sendTelepathy") as r:
            assert r.status == 404
            assert (await r.json())["description"] == "Not Found"
    assert emu.calls["sendMessage"] == 2
    assert [m["text"] for m in emu.messages_to(22)] == ["json", "form"]


async def test_a_polling_application_answers_commands_and_buttons(emu: BotAPIEmulator) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text("Welkom!", reply_markup=keyboard("go"))

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.callback_query is not None
        await update.callback_query.answer("Top")
        await update.callback_query.edit_message_text("We zijn vertrokken")

    app = Application.builder().token(emu.token).base_url(emu.base_url).build()
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(pressed))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=10)
        try:
            emu.user_sends_text(50, "/start")
            async with asyncio.timeout(10):
                [welcome] = await emu.wait_for_sent(1, chat_id=50)
            _, query_id = emu.user_presses(50, welcome["message_id"], "go")
            async with asyncio.timeout(10):
                await emu.wait_for_sent(2, chat_id=50)
        finally:
            await app.updater.stop()
            await app.stop()
    assert [(m["text"], m["reply_markup"]) for m in emu.messages_to(50)] == [
        ("We zijn vertrokken", None)]
    assert emu.answered_callbacks[query_id]["text"] == "Top"
    assert emu.pending_updates == 0  # the updater confirmed what it handled
    assert emu.errors == []


def test_the_html_parser_reproduces_tdlib_results() -> None:
    assert parse_formatted_text("🏟 🏟&lt;<i>🏟 &lt🏟</i>", "HTML") == (
        "🏟 🏟<🏟 <🏟", [{"type": "italic", "offset": 6, "length": 6}])
    assert parse_formatted_text('<pre><code class="language-python">x</code></pre>',
                                "HTML") == ("x", [{"type": "pre", "offset": 0, "length": 1,
                                                    "language": "python"}])
    assert parse_formatted_text("Tom & Jerry", "HTML") == ("Tom & Jerry", [])  # not strict
    with pytest.raises(EntityParseError, match=re.escape("Unclosed start tag at byte offset 13")):
        parse_formatted_text("🏟 🏟&lt;<abacaba", "HTML")


async def test_runs_as_a_separate_process() -> None:
    script = Path(__file__).with_name("telegram_emulator.py")
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), "--port", "0", stdout=asyncio.subprocess.PIPE)
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            line = (await process.stdout.readline()).decode()
        match = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
        assert match is not None, line
        base = f"http://127.0.0.1:{match[1]}"
        async with ClientSession() as http, http.post(
                f"{base}/_emulator/user_sends_text", json={"chat_id": 5, "text": "hoi"}) as r:
            update_id = (await r.json())["result"]
        async with Bot("123456:TEST-TOKEN", base_url=f"{base}/bot") as bot:
            [update] = await bot.get_updates()
            assert update.update_id == update_id
            assert (await bot.send_message(5, "dag")).text == "dag"
        async with ClientSession() as http, http.get(f"{base}/_emulator/state") as r:
            state = (await r.json())["result"]
        assert state["calls"]["sendMessage"] == 1 and state["errors"] == []
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
    assert process.returncode == 0


# ---- faults for the delivery path ---------------------------------------------------------

@pytest.fixture
async def aiobot(emu: BotAPIEmulator) -> AsyncIterator[Bot]:
    """python-telegram-bot on the bot's own aiohttp transport (bot/telegram/request.py)."""
    async with Bot(emu.token, base_url=emu.base_url, request=AiohttpRequest(),
                   get_updates_request=AiohttpRequest(connection_pool_size=1)) as client:
        yield client


async def refusals(bot: Bot, chat_id: int, count: int) -> list[int]:
    """Send ``count`` messages; the numbers of those refused with a network error."""
    refused = []
    for n in range(count):
        try:
            await bot.send_message(chat_id, f"bericht {n}")
        except NetworkError:
            refused.append(n)
    return refused


async def test_fail_fraction_refuses_the_same_seeded_share_every_run(emu: BotAPIEmulator,
                                                                    bot: Bot) -> None:
    emu.register_chat(30)
    emu.fail_fraction("*", 0.25, seed=3)
    refused = await refusals(bot, 30, 40)
    assert 4 <= len(refused) <= 16
    assert len(emu.sent) == 40 - len(refused)
    assert {(e["method"], e["status"], e["description"], e["injected"]) for e in emu.errors} == {
        ("sendMessage", 502, "Bad Gateway", True)}
    await bot.set_my_commands([("start", "Begin")])  # not send-like: never refused
    assert await bot.get_me()

    async with BotAPIEmulator() as other, Bot(other.token, base_url=other.base_url) as again:
        other.register_chat(30)
        other.fail_fraction("*", 0.25, seed=3)
        assert await refusals(again, 30, 40) == refused  # deterministic with the seed

    emu.fail_fraction("*", 0)
    assert await refusals(bot, 30, 10) == []


async def test_fail_fraction_of_one_method_with_its_own_status(emu: BotAPIEmulator,
                                                              bot: Bot) -> None:
    emu.register_chat(31)
    emu.fail_fraction("sendChatAction", 1.0, status=429, retry_after=7)
    with pytest.raises(RetryAfter):
        await bot.send_chat_action(31, "typing")
    assert emu.errors[-1]["description"] == "Too Many Requests: retry after 7"
    assert (await bot.send_message(31, "tekst")).text == "tekst"  # other methods: untouched
    emu.fail_fraction("*", 1.0, status=500, description="Internal Server Error")
    with pytest.raises(NetworkError, match="Internal Server Error"):
        await bot.send_message(31, "weg")
    with pytest.raises(RetryAfter):  # the method's own setting comes before "*"
        await bot.send_chat_action(31, "typing")
    assert all(e["injected"] for e in emu.errors)
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        emu.fail_fraction("*", 1.5)


async def test_drop_next_disconnects_after_the_request_was_written(emu: BotAPIEmulator,
                                                                  aiobot: Bot) -> None:
    emu.register_chat(32)
    emu.drop_next("sendMessage")
    async with asyncio.timeout(2):  # a disconnect, not a wait for the client's read timeout
        with pytest.raises(NetworkError, match=r"aiohttp\.ServerDisconnectedError"):
            await aiobot.send_message(32, "verloren?")
    assert emu.sent == [] and emu.errors == []
    assert emu.dropped == [{"method": "sendMessage", "processed": False, "chat_id": 32}]
    assert (await aiobot.send_message(32, "opnieuw")).text == "opnieuw"  # once only


async def test_drop_next_processed_delivers_but_loses_the_answer(emu: BotAPIEmulator,
                                                                aiobot: Bot, bot: Bot) -> None:
    emu.user_sends_text(33, "/start")
    emu.drop_next("*", times=2, processed=True)
    for client in (aiobot, bot):  # the bot's aiohttp transport, and PTB's default (httpx)
        async with asyncio.timeout(2):
            with pytest.raises(NetworkError, match=r"(?i)disconnected"):
                await client.send_message(33, "Vraag 1", reply_markup=keyboard("a"))
    assert [m["text"] for m in emu.messages_to(33)] == ["Vraag 1", "Vraag 1"]
    [second] = emu.duplicates()  # the resend after the lost answer shows as a duplicate
    assert (second["chat_id"], second["message_id"]) == (33, 3)
    assert [d["processed"] for d in emu.dropped] == [True, True]


async def test_duplicates_are_identical_sends_in_a_row(emu: BotAPIEmulator, bot: Bot) -> None:
    emu.user_sends_text(34, "/start")
    emu.user_sends_text(35, "/start")
    await bot.send_message(34, "Welkom")
    await bot.send_message(35, "Welkom")  # another chat: not a duplicate
    await bot.send_message(34, "Welkom", reply_markup=keyboard("ok"))  # other buttons
    emu.user_sends_text(34, "/help")
    await bot.send_message(34, "Welkom", reply_markup=keyboard("ok"))  # the user asked again
    assert emu.duplicates() == []
    sent = await bot.send_message(34, "Welkom", reply_markup=keyboard("ok"))
    [duplicate] = emu.duplicates(34)
    assert duplicate["message_id"] == sent.message_id
    assert emu.duplicates(35) == []
    await bot.edit_message_text("Welkom!", chat_id=34, message_id=sent.message_id)
    assert len(emu.duplicates()) == 1  # an edit is no send


async def test_a_flood_refuses_sends_and_records_those_sent_into_it(
        emu: BotAPIEmulator, bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    emu.user_sends_text(36, "/start")
    emu.register_chat(37)
    sent = await bot.send_message(36, "Kies", reply_markup=keyboard("ja"))
    _, query_id = emu.user_presses(36, sent.message_id, "ja")
    emu.flood(29.2)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(36, "te snel")
    assert caught.value.retry_after == dtm.timedelta(seconds=30)  # rounded up
    assert emu.flood_violations == []  # the first 429 is no violation: it tells the bot
    with pytest.raises(RetryAfter):
        await bot.answer_callback_query(query_id)
    with pytest.raises(RetryAfter):
        await bot.send_chat_action(37, "typing")
    assert await bot.get_me()  # not send-like
    assert [(v["method"], v["chat_id"]) for v in emu.flood_violations] == [
        ("answerCallbackQuery", 36), ("sendChatAction", 37)]
    assert all(v["at"] >= 0 for v in emu.flood_violations)
    assert {(e["status"], e["injected"]) for e in emu.errors} == {(429, True)}

    emu.flood(0)
    emu.flood(60, chat_id=37)  # one chat only
    assert (await bot.send_message(36, "nu wel")).text == "nu wel"
    for _ in range(2):
        with pytest.raises(RetryAfter):
            await bot.send_message(37, "nog niet")
    assert emu.flood_violations[-1]["chat_id"] == 37 and len(emu.flood_violations) == 3


class Replica:
    """A webhook receiver standing in for one bot process; ``answers`` are its statuses."""

    def __init__(self, *answers: int) -> None:
        self.answers = list(answers)
        self.received: list[tuple[str | None, int]] = []
        self.got = asyncio.Event()
        self.runner: web.AppRunner | None = None

    async def __aenter__(self) -> str:
        async def hook(request: web.Request) -> web.Response:
            update = await request.json()
            self.received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"),
                                  update["update_id"]))
            self.got.set()
            return web.Response(status=self.answers.pop(0) if self.answers else 200)

        app = web.Application()
        app.router.add_post("/telegram", hook)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}/telegram"

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()

    @property
    def ids(self) -> list[int]:
        return [update_id for _, update_id in self.received]


async def test_webhook_targets_share_updates_round_robin(emu: BotAPIEmulator) -> None:
    first, second = Replica(), Replica(503)
    async with first as url_a, second as url_b:
        emu.set_webhook_targets([url_a, url_b], "geheim")
        ids = [emu.user_sends_text(40 + n, f"hoi {n}") for n in range(4)]
        assert await emu.deliver_pending_webhooks() == [200, 503]  # b refuses: stays pending
        assert emu.pending_updates == 3
        assert await emu.deliver_pending_webhooks() == [200, 200, 200]  # a, b, a
        assert first.ids == [ids[0], ids[1], ids[3]] and second.ids == [ids[1], ids[2]]
        assert {secret for secret, _ in first.received + second.received} == {"geheim"}
        assert emu.webhook_counts() == {url_a: {200: 3}, url_b: {503: 1, 200: 1}}
        assert [p["status"] for p in emu.webhook_posts] == [200, 503, 200, 200, 200]
    emu.set_webhook_targets(["https://example.be/hook"], "geheim")  # may be set, as on Telegram
    with pytest.raises(RuntimeError, match="not a loopback address"):
        await emu.deliver_pending_webhooks()
    with pytest.raises(ValueError, match="not a loopback address"):
        emu.set_webhook_targets(["https://example.be/hook"], "geheim", auto=True)


async def test_webhook_targets_can_be_delivered_automatically(emu: BotAPIEmulator) -> None:
    first, second = Replica(500), Replica()
    async with first as url_a, second as url_b:
        emu.set_webhook_targets([url_a, url_b], "geheim", auto=True, retry_delay=0)
        ids = [emu.user_sends_text(50, f"tik {n}") for n in range(5)]
        other = emu.user_sends_text(51, "hallo")
        async with asyncio.timeout(10):
            while True:
                first.got.clear()
                second.got.clear()
                if len(first.ids) + len(second.ids) == 7:  # 6 updates, one refused once
                    break
                waits = [asyncio.create_task(r.got.wait()) for r in (first, second)]
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for wait in waits:
                    wait.cancel()
        assert emu.pending_updates == 0
        delivered = [p["update_id"] for p in emu.webhook_posts if p["status"] == 200]
        assert sorted(delivered) == sorted([*ids, other])
        assert [i for i in delivered if i in ids] == ids  # one chat's updates stay in order
        assert first.ids and second.ids  # both replicas got some
        with pytest.raises(RuntimeError, match="automatically"):
            await emu.deliver_pending_webhooks()
        emu.set_webhook_target(None, None)  # stops the pump


async def test_the_control_api_exposes_the_faults(emu: BotAPIEmulator, bot: Bot) -> None:
    emu.register_chat(60)
    control = f"http://127.0.0.1:{emu.port}/_emulator"
    async with ClientSession() as http:
        for action, args in [("fail_fraction", {"method": "*", "fraction": 1, "status": 503,
                                                "description": "Service Unavailable"}),
                             ("drop_next", {"method": "getMe"}), ("flood", {"seconds": 0})]:
            async with http.post(f"{control}/{action}", json=args) as r:
                assert r.status == 200, await r.text()
        with pytest.raises(NetworkError, match="Service Unavailable"):
            await bot.send_message(60, "x")
        with pytest.raises(NetworkError):
            await bot.get_me()
        async with http.post(f"{control}/fail_fraction",
                             json={"method": "*", "fraction": 0}) as r:
            assert r.status == 200
        await bot.send_message(60, "twee")
        await bot.send_message(60, "twee")
        async with http.post(f"{control}/duplicates", json={"chat_id": 60}) as r:
            [duplicate] = (await r.json())["result"]
            assert duplicate["text"] == "twee"
        async with http.post(f"{control}/flood", json={"seconds": 30, "chat_id": 60}) as r:
            assert r.status == 200
        for _ in range(2):
            with pytest.raises(RetryAfter):
                await bot.send_message(60, "drie")
        async with http.get(f"{control}/state") as r:
            state = (await r.json())["result"]
    assert state["duplicates"] == 1 and len(state["flood_violations"]) == 1
    assert state["dropped"] == [{"method": "getMe", "processed": False, "chat_id": None}]
    assert all(e["injected"] for e in state["errors"])
