"""End to end on Telegram: the real python-telegram-bot, over HTTP, against the emulator."""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from telegram_emulator import BotAPIEmulator

from bot.app import App, build
from bot.config import Settings
from bot.telegram import TelegramBot
from bot.telegram.serve import WebhookInUse
from storage import due, inbox, roles, shopkeepers
from storage.tables import DueKind, OutboxMessage, Role, Shopkeeper

CHAT = 4242
Messages = list[dict[str, Any]]


@pytest.fixture
async def emulator() -> AsyncIterator[BotAPIEmulator]:
    async with BotAPIEmulator() as emu:
        yield emu
        refused = [e for e in emu.errors if not e.get("injected")]
        assert refused == [], "the emulator refused calls that Telegram would refuse too"
        assert emu.unanswered_callbacks() == [], "every button press must be answered"


def telegram_settings(settings: Settings, emu: BotAPIEmulator, **extra: Any) -> Settings:
    return replace(settings, telegram_token=emu.token, telegram_api_base_url=emu.base_url,
                   **extra)


@pytest.fixture
async def bot(app: App, settings: Settings,
              emulator: BotAPIEmulator) -> AsyncIterator[TelegramBot]:
    async with TelegramBot(telegram_settings(settings, emulator), app) as running:
        yield running


@pytest.fixture
async def one_at_a_time(app: App, settings: Settings,
                        emulator: BotAPIEmulator) -> AsyncIterator[TelegramBot]:
    """Updates strictly in arrival order, so one user's update can mark another's as done."""
    serial = telegram_settings(settings, emulator, concurrent_updates=1)
    async with TelegramBot(serial, app) as running:
        yield running


async def settle(emu: BotAPIEmulator, predicate: Callable[[Messages], bool],
                 chat_id: int = CHAT) -> Messages:
    """Wait (event-driven, no sleeping) until the chat shows what ``predicate`` wants."""
    async with asyncio.timeout(15):
        while True:
            messages = emu.messages_to(chat_id)
            if predicate(messages):
                return messages
            done = len([r for r in emu.sent if r["chat_id"] == chat_id])
            await emu.wait_for_sent(done + 1, chat_id=chat_id)


async def until(condition: Callable[[], bool]) -> None:
    """Wait for something the emulator records without an event (a dropped connection,
    an error answer): checked every 10 ms, for at most 10 s."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110  (no event to wait on)
            await asyncio.sleep(0.01)


def asks(prefix: str) -> Callable[[Messages], bool]:
    """The last message starts with ``prefix`` and carries buttons."""
    return lambda ms: bool(ms) and (ms[-1]["text"] or "").startswith(prefix) and bool(
        ms[-1]["reply_markup"])


def says(fragment: str) -> Callable[[Messages], bool]:
    return lambda ms: any(fragment in (m["text"] or m["caption"] or "") for m in ms)


def press(emu: BotAPIEmulator, message: dict[str, Any], label: str, chat_id: int = CHAT) -> str:
    """Press the button called ``label`` on ``message``; returns the callback query id."""
    for row in message["reply_markup"]["inline_keyboard"]:
        for button in row:
            if button["text"] == label:
                _, query_id = emu.user_presses(chat_id, message["message_id"],
                                               button["callback_data"])
                return query_id
    raise AssertionError(f"no button {label!r} in {message['reply_markup']}")


async def onboard(emu: BotAPIEmulator, chat_id: int = CHAT, start: str = "/start") -> Messages:
    emu.user_sends_text(chat_id, start)
    messages = await settle(emu, asks("In welke taal"), chat_id)
    press(emu, messages[-1], "Nederlands", chat_id)
    messages = await settle(emu, asks("Om je tips"), chat_id)
    press(emu, messages[-1], "Ja, dat is oké", chat_id)
    await settle(emu, says("Hoe heet je zaak?"), chat_id)
    emu.user_sends_text(chat_id, "Bakkerij Dewitte")
    if start == "/start":
        await settle(emu, says("In welke gemeente"), chat_id)
        emu.user_sends_text(chat_id, "kortrijk")
    messages = await settle(emu, asks("Wat voor zaak"), chat_id)
    press(emu, messages[-1], "Voeding", chat_id)
    messages = await settle(emu, asks("Met hoeveel"), chat_id)
    press(emu, messages[-1], "2 tot 4", chat_id)
    return await settle(emu, asks("Vraag 1 van 26"), chat_id)


async def test_the_whole_journey_in_dutch(bot: TelegramBot, emulator: BotAPIEmulator) -> None:
    messages = await onboard(emulator)
    for number in range(1, 27):
        question = messages[-1]
        assert question["text"].startswith(f"Vraag {number} van 26")
        first_label = question["reply_markup"]["inline_keyboard"][0][0]["text"]
        press(emulator, question, first_label)
        messages = await settle(emulator, asks(f"Vraag {number + 1} van 26") if number < 26
                                else says("Typ /results"))
        # the answered question now reads as a record: the choice under it, no keyboard
        await settle(emulator, lambda ms, q=question, label=first_label: any(
            m["message_id"] == q["message_id"] and m["text"].endswith(f"✅ {label}")
            for m in ms))
        answered = next(m for m in emulator.messages_to(CHAT)
                        if m["message_id"] == question["message_id"])
        assert answered["reply_markup"] is None
    assert says("Je resultaat: 100/100")(messages)
    photos = [m for m in messages if m["photo"] is not None]
    assert len(photos) == 1 and photos[0]["photo"].startswith(b"\x89PNG")
    assert photos[0]["caption"] == "Jouw KI:SS-profiel: 100/100"


def descriptions_of(emulator: BotAPIEmulator, lang: str) -> dict[str, str]:
    return {c["command"]: c["description"]
            for (scope, code), commands in emulator.commands.items() if code == lang
            for c in commands}


async def test_commands_are_registered_per_language(bot: TelegramBot,
                                                    emulator: BotAPIEmulator) -> None:
    registered = {lang: [c["command"] for c in commands]
                  for (scope, lang), commands in emulator.commands.items()}
    assert set(registered) == {"", "nl", "en", "fr"}
    assert registered["fr"] == ["start", "help", "results", "tips", "progress", "restart",
                                "ask", "coach", "language", "privacy", "mydata", "delete",
                                "stop"]
    assert descriptions_of(emulator, "nl")["delete"] == "Wis al mijn gegevens"
    descriptions = {(lang, c["command"]): c["description"]
                    for (scope, lang), commands in emulator.commands.items() for c in commands}
    assert descriptions[("fr", "results")] == "Votre dernier résultat"
    assert all("all_private_chats" in scope for scope, _ in emulator.commands)


async def test_an_old_button_changes_nothing(bot: TelegramBot, emulator: BotAPIEmulator) -> None:
    messages = await onboard(emulator)
    first = messages[-1]
    press(emulator, first, first["reply_markup"]["inline_keyboard"][0][0]["text"])
    await settle(emulator, asks("Vraag 2 van 26"))
    # the keyboard of question 1 is gone, but an old client may still show it
    data = first["reply_markup"]["inline_keyboard"][1][0]["callback_data"]
    _, query_id = emulator.user_presses(CHAT, first["message_id"], data, require_button=False)
    emulator.user_sends_text(CHAT, "/help")  # one user's updates are handled in order
    await settle(emulator, says("Dit kan ik voor je doen"))
    assert "oudere vraag" in emulator.answered_callbacks[query_id]["text"]
    assert emulator.messages_to(CHAT)[-2]["text"].startswith("Vraag 2 van 26")


async def test_a_deep_link_prefills_the_municipality(bot: TelegramBot, app: App,
                                                     emulator: BotAPIEmulator) -> None:
    await onboard(emulator, start="/start kortrijk")
    assert not says("In welke gemeente")(emulator.messages_to(CHAT))
    async with app.db.session() as session:
        person = (await session.execute(sa.select(Shopkeeper))).scalar_one()
    assert person.municipality == "Kortrijk"


async def test_an_unknown_deep_link_is_ignored(bot: TelegramBot,
                                               emulator: BotAPIEmulator) -> None:
    emulator.user_sends_text(CHAT, "/start poster_42_xyz")
    messages = await settle(emulator, asks("In welke taal"))
    assert "Dag!" in messages[0]["text"]


async def test_stop_opts_out_and_start_resumes(bot: TelegramBot, app: App,
                                               emulator: BotAPIEmulator) -> None:
    await onboard(emulator)
    emulator.user_sends_text(CHAT, "/stop")
    await settle(emulator, says("Je bent afgemeld"))
    emulator.user_sends_text(CHAT, "/start")
    await settle(emulator, asks("Vraag 1 van 26"))
    assert says("Welkom terug")(emulator.messages_to(CHAT))


async def test_free_text_and_stickers_get_a_pointer(bot: TelegramBot,
                                                    emulator: BotAPIEmulator) -> None:
    await onboard(emulator)
    emulator.user_sends_text(CHAT, "hmm, geen idee 🤔")
    await settle(emulator, says("Kies een van de antwoorden"))
    emulator.user_sends_text(CHAT, "/doesnotexist")
    await settle(emulator, says("Het commando /doesnotexist ken ik niet"))
    sticker = {"file_id": "st1", "file_unique_id": "st1u", "type": "regular", "width": 512,
               "height": 512, "is_animated": False, "is_video": False}
    emulator.enqueue_raw_update({
        "update_id": 10**6, "message": {
            "message_id": 10**5, "date": 0, "sticker": sticker,
            "chat": {"id": CHAT, "type": "private", "first_name": "Test"},
            "from": {"id": CHAT, "is_bot": False, "first_name": "Test"}}})
    messages = await settle(emulator, lambda ms: "enkel tekst lezen" in (ms[-2]["text"] or "")
                            and asks("Vraag 1 van 26")(ms))  # the pointer, then the question
    assert sum("enkel tekst lezen" in (m["text"] or "") for m in messages) == 1


async def test_a_duplicated_update_is_processed_once(bot: TelegramBot, app: App,
                                                     emulator: BotAPIEmulator) -> None:
    await onboard(emulator)
    update_id = emulator.user_sends_text(CHAT, "1")
    await settle(emulator, asks("Vraag 2 van 26"))
    before = len(emulator.messages_to(CHAT))
    emulator.enqueue_raw_update(emulator.updates[update_id])
    emulator.user_sends_text(CHAT, "/help")  # a marker: once this is answered, all is done
    messages = await settle(emulator, says("Dit kan ik voor je doen"))
    assert len(messages) == before + 1, [m["text"][:40] for m in messages[before - 2:]]
    assert not says("Vraag 3 van 26")(messages)


async def test_a_blocked_bot_stops_sending_and_unblocking_resumes(
        one_at_a_time: TelegramBot, app: App, emulator: BotAPIEmulator) -> None:
    await onboard(emulator)
    await app.inbox.idle()  # the last answer is marked on its question before the block
    emulator.user_blocks_bot(CHAT)
    emulator.user_sends_text(CHAT + 1, "/start")  # another user's turn proves we moved on
    await settle(emulator, asks("In welke taal"), CHAT + 1)

    async def unreachable() -> bool:
        async with app.db.session() as session:
            person = (await session.execute(
                sa.select(Shopkeeper).where(Shopkeeper.shop_name == "Bakkerij Dewitte"))
            ).scalar_one()
            return person.unreachable_since is not None

    assert await unreachable()
    emulator.user_unblocks_bot(CHAT)
    emulator.user_sends_text(CHAT + 1, "/help")
    await settle(emulator, says("Dit kan ik voor je doen"), CHAT + 1)
    assert not await unreachable()


async def test_a_403_while_sending_marks_the_user_and_keeps_the_message(
        one_at_a_time: TelegramBot, app: App, emulator: BotAPIEmulator) -> None:
    await onboard(emulator)
    emulator.fail_next("sendMessage", status=403,
                       description="Forbidden: bot was blocked by the user")
    emulator.user_sends_text(CHAT, "/help")
    await until(lambda: bool(emulator.errors))  # the /help answer met the 403
    emulator.user_sends_text(CHAT + 1, "/start")
    await settle(emulator, asks("In welke taal"), CHAT + 1)
    async with app.db.session() as session:
        failed = (await session.execute(
            sa.select(OutboxMessage).where(OutboxMessage.status == "failed"))).scalars().all()
        person = (await session.execute(
            sa.select(Shopkeeper).where(Shopkeeper.shop_name == "Bakkerij Dewitte"))).scalar_one()
    assert [m.payload["text"][:13] for m in failed] == ["Dit kan ik vo"]
    assert "blocked" in (failed[0].error or "")
    assert person.unreachable_since is not None and person.opted_out_at is None


async def test_429_pauses_sending_and_the_message_still_arrives(
        bot: TelegramBot, app: App, emulator: BotAPIEmulator) -> None:
    emulator.fail_next("sendMessage", status=429, retry_after=1)
    started = asyncio.get_running_loop().time()
    emulator.user_sends_text(CHAT, "/help")
    await settle(emulator, says("Dit kan ik voor je doen"))
    assert [e["status"] for e in emulator.errors] == [429]
    assert asyncio.get_running_loop().time() - started >= 1.0  # it waited as told
    await app.sender.settled()
    async with app.db.session() as session:
        row = (await session.execute(sa.select(OutboxMessage))).scalars().all()[-1]
    assert row.attempts == 1  # the 429 is not counted against the message


async def test_a_5xx_on_a_reply_is_retried_and_the_conversation_goes_on(
        bot: TelegramBot, app: App, emulator: BotAPIEmulator) -> None:
    messages = await onboard(emulator)
    emulator.fail_next("sendMessage", status=502, description="Bad Gateway")
    press(emulator, messages[-1], messages[-1]["reply_markup"]["inline_keyboard"][0][0]["text"])
    await settle(emulator, asks("Vraag 2 van 26"))
    assert [e["status"] for e in emulator.errors] == [502]
    assert not says("Oei")(emulator.messages_to(CHAT))
    await app.sender.settled()
    async with app.db.session() as session:
        statuses = set((await session.execute(sa.select(OutboxMessage.status))).scalars())
    assert statuses == {"sent"}


async def test_a_restart_mid_assessment_resumes_at_the_same_question(
        settings: Settings, emulator: BotAPIEmulator) -> None:
    first_app = await build(settings)
    async with TelegramBot(telegram_settings(settings, emulator), first_app):
        messages = await onboard(emulator)
        press(emulator, messages[-1], messages[-1]["reply_markup"]["inline_keyboard"][0][0]["text"])
        messages = await settle(emulator, asks("Vraag 2 van 26"))
    await first_app.close()

    second_app = await build(settings)
    try:
        async with TelegramBot(telegram_settings(settings, emulator), second_app):
            # a button from before the restart still works: it is the current question
            press(emulator, messages[-1],
                  messages[-1]["reply_markup"]["inline_keyboard"][0][0]["text"])
            await settle(emulator, asks("Vraag 3 van 26"))
    finally:
        await second_app.close()


async def test_webhook_mode_checks_the_secret(settings: Settings, app: App,
                                             emulator: BotAPIEmulator,
                                             unused_tcp_port: int) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/telegram"
    hooked = telegram_settings(settings, emulator, webhook_url=url,
                               http_listen=f"127.0.0.1:{unused_tcp_port}",
                               webhook_secret="s3cret-Token_1")
    async with TelegramBot(hooked, app):
        emulator.set_webhook_target(url, "s3cret-Token_1")
        emulator.user_sends_text(CHAT, "/start")
        assert await emulator.deliver_pending_webhooks() == [200]
        await settle(emulator, asks("In welke taal"))

        update = {"update_id": 999, "message": {"message_id": 1, "date": 0, "text": "/help",
                                                 "chat": {"id": CHAT, "type": "private"}}}
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
                async with http.post(url, json=update, headers=headers) as response:
                    assert response.status == 401
    assert not says("Dit kan ik voor je doen")(emulator.messages_to(CHAT))


async def test_a_turn_that_keeps_failing_gets_a_kind_reply_and_a_note_to_the_admins(
        settings: Settings, emulator: BotAPIEmulator, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    admin = 777
    emulator.register_chat(admin)
    caplog.set_level("DEBUG")
    app = await build(replace(settings, admin_ids=frozenset({f"telegram:{admin}"})))
    calls = 0

    async def broken(*args: Any) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("a bug in /help")

    monkeypatch.setattr(app.dispatcher.shopkeeper, "command", broken)
    try:
        async with TelegramBot(telegram_settings(settings, emulator), app):
            emulator.user_sends_text(CHAT, "/help", language_code="en")
            messages = await settle(emulator, says("something went wrong on my side"))
            notes = await settle(emulator, says("a bug in /help"), admin)
    finally:
        await app.close()
    assert calls == 3  # tried three times, then skipped as poison
    assert "Traceback" not in messages[-1]["text"]
    assert "telegram:4242" in notes[-1]["text"]
    assert emulator.token not in caplog.text


async def test_coach_and_admin_commands_follow_the_roles(
        bot: TelegramBot, app: App, emulator: BotAPIEmulator) -> None:
    emulator.user_sends_text(CHAT, "/reach")  # a shopkeeper: as if it did not exist
    await settle(emulator, says("Het commando /reach ken ik niet"))
    async with app.db.transaction() as tx:
        person = await shopkeepers.find_by_identity(tx, channel="telegram",
                                                    external_id=str(CHAT))
        assert person is not None
        await roles.grant(tx, shopkeeper_id=person.id, role=Role.COACH, by="test")
    assert await bot.channel.sync_menus(app.db) == 1
    [menu] = [commands for (scope, _), commands in emulator.commands.items()
              if str(CHAT) in scope]
    assert [c["command"] for c in menu][-7:] == ["broadcast", "broadcasts", "reach", "tickets",
                                                 "reply", "close", "dashboard"]
    emulator.user_sends_text(CHAT, "/reach")
    await settle(emulator, says("een bericht er nu"))
    emulator.user_sends_text(CHAT, "/delivery")  # an admin's command: not for a coach
    await settle(emulator, says("Het commando /delivery ken ik niet"))

    async with app.db.transaction() as tx:
        await roles.revoke(tx, shopkeeper_id=person.id, role=Role.COACH)
    assert await bot.channel.sync_menus(app.db) == 1
    assert not [scope for scope, _ in emulator.commands if str(CHAT) in scope]


async def test_an_admin_sees_roles_and_delivery(
        settings: Settings, emulator: BotAPIEmulator) -> None:
    app = await build(replace(settings, admin_ids=frozenset({f"telegram:{CHAT}"})))
    try:
        async with TelegramBot(telegram_settings(settings, emulator), app):
            emulator.user_sends_text(CHAT, "/roles")
            await settle(emulator, says(f"admin: telegram:{CHAT} (toegekend door env)"))
            emulator.user_sends_text(CHAT, "/delivery")
            await settle(emulator, says("Mislukt: 0"))
            emulator.user_sends_text(CHAT, "/help")
            await settle(emulator, says("Als admin kan je ook"))
            emulator.user_sends_text(CHAT, "/invite coach")  # the bot's name from getMe
            await settle(emulator, says("https://t.me/kiss_coach_test_bot?start=invite_"))
    finally:
        await app.close()


async def test_the_webhook_refuses_what_is_not_an_update(
        settings: Settings, app: App, emulator: BotAPIEmulator, unused_tcp_port: int) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/telegram"
    hooked = telegram_settings(settings, emulator, webhook_url=url,
                               http_listen=f"127.0.0.1:{unused_tcp_port}",
                               webhook_secret="s3cret-Token_1")
    headers = {"X-Telegram-Bot-Api-Secret-Token": "s3cret-Token_1"}
    emulator.register_chat(CHAT)
    async with TelegramBot(hooked, app), aiohttp.ClientSession() as http:
        for body in (b"[]", b"null", b"{}", b"not json", b'{"update_id": "7"}'):
            async with http.post(url, data=body, headers=headers) as response:
                assert response.status == 400, body
        update = {"update_id": 5, "message": {"message_id": 1, "date": 0, "text": "/start",
                                               "chat": {"id": CHAT, "type": "private"}}}
        async with http.post(url, json=update, headers=headers) as response:
            assert response.status == 200  # stored before this answer
        await settle(emulator, asks("In welke taal"))


async def test_polling_does_not_take_over_a_webhook(
        settings: Settings, app: App, emulator: BotAPIEmulator) -> None:
    emulator.set_webhook_target("http://127.0.0.1:9/telegram", "other-secret")  # elsewhere
    with pytest.raises(WebhookInUse, match="--replace-webhook"):
        async with TelegramBot(telegram_settings(settings, emulator), app):
            pass
    async with TelegramBot(telegram_settings(settings, emulator), app, replace_webhook=True):
        emulator.user_sends_text(CHAT, "/start")
        await settle(emulator, asks("In welke taal"))


async def test_an_update_the_library_cannot_parse_blocks_nobody(
        bot: TelegramBot, app: App, emulator: BotAPIEmulator) -> None:
    emulator.enqueue_raw_update({"update_id": 10**6, "callback_query": {"id": "x"}})
    emulator.user_sends_text(CHAT, "/start")
    await settle(emulator, asks("In welke taal"))
    async with app.db.transaction() as tx:
        counts = await inbox.counts(tx)
    assert counts == {"poison": 1, "done": 1}


async def test_a_global_flood_sends_nothing_in_the_window_and_everything_after_in_order(
        bot: TelegramBot, emulator: BotAPIEmulator) -> None:
    chats = [CHAT, CHAT + 1, CHAT + 2]
    emulator.flood(1.5)
    started = asyncio.get_running_loop().time()
    for chat in chats:
        emulator.user_sends_text(chat, "/start")  # two messages each: greeting, language
    for chat in chats:
        messages = await settle(emulator, asks("In welke taal"), chat)
        assert [m["text"][:4] for m in messages] == ["Dag!", "In w"]  # in order per chat
    assert asyncio.get_running_loop().time() - started >= 1.5
    # Calls already on the wire when the first 429 came back arrive just after it (the
    # other chats' first messages); once the bot knows, nothing more until the window ends.
    late = [v for v in emulator.flood_violations if v["at"] > 0.05]
    assert late == [] and len(emulator.flood_violations) < len(chats)


async def test_a_reply_lost_on_the_way_back_is_not_resent_and_the_old_button_asks_again(
        bot: TelegramBot, app: App, emulator: BotAPIEmulator) -> None:
    messages = await onboard(emulator)
    question_1 = messages[-1]
    emulator.drop_next("sendMessage", processed=False)  # written, then the connection broke
    press(emulator, question_1, question_1["reply_markup"]["inline_keyboard"][0][0]["text"])
    await until(lambda: bool(emulator.dropped))  # the reply was written and went nowhere
    await app.inbox.idle()
    await app.sender.settled()
    async with app.db.session() as session:
        last = (await session.execute(
            sa.select(OutboxMessage).order_by(OutboxMessage.id.desc())  # type: ignore[union-attr]
            .where(OutboxMessage.external_id == str(CHAT)))).scalars().first()
    assert last is not None and last.status == "uncertain"
    # The question kept its buttons; tapping it again brings the next question back.
    assert emulator.messages_to(CHAT)[-1]["reply_markup"] is not None
    press(emulator, question_1, question_1["reply_markup"]["inline_keyboard"][0][0]["text"])
    await settle(emulator, asks("Vraag 2 van 26"))


async def test_a_nul_byte_is_cleaned_at_the_edge(bot: TelegramBot, app: App,
                                                 emulator: BotAPIEmulator) -> None:
    """PostgreSQL cannot store NUL in text: it never gets past the channel."""
    emulator.user_sends_text(CHAT, "/start")
    messages = await settle(emulator, asks("In welke taal"))
    press(emulator, messages[-1], "Nederlands")
    messages = await settle(emulator, asks("Om je tips"))
    press(emulator, messages[-1], "Ja, dat is oké")
    await settle(emulator, says("Hoe heet je zaak?"))
    emulator.user_sends_text(CHAT, "Bakkerij\x00 De\x07witte")
    await settle(emulator, says("In welke gemeente"))
    async with app.db.session() as session:
        person = (await session.execute(sa.select(Shopkeeper))).scalar_one()
    assert person.shop_name == "Bakkerij Dewitte"


async def test_a_tip_arrives_with_its_buttons_and_a_press_answers_as_a_pop_up(
        bot: TelegramBot, app: App, emulator: BotAPIEmulator) -> None:
    messages = await onboard(emulator)
    for number in range(1, 27):
        first_label = messages[-1]["reply_markup"]["inline_keyboard"][0][0]["text"]
        press(emulator, messages[-1], first_label)
        messages = await settle(emulator, asks(f"Vraag {number + 1} van 26") if number < 26
                                else asks("Wil je elke week één tip"))
    press(emulator, messages[-1], "Ja, elke week")
    messages = await settle(emulator, asks("Wanneer lees je"))
    press(emulator, messages[-1], "'s Avonds")
    await settle(emulator, says("Je eerste tip komt"))
    async with app.db.transaction() as tx:
        person = await shopkeepers.find_by_identity(tx, channel="telegram",
                                                    external_id=str(CHAT))
        assert person is not None
        due_at = await due.when(tx, shopkeeper_id=person.id, kind=DueKind.TIP)
    assert due_at is not None
    await app.nudges.tick(due_at)  # the app's scheduler would, at that time
    messages = await settle(emulator, asks("💡 Tip · "))
    tip = messages[-1]
    labels = [b["text"] for row in tip["reply_markup"]["inline_keyboard"] for b in row]
    assert labels == ["✅ Gedaan", "⏰ Later", "🚫 Niet voor mij", "📌 Deze week"]
    query = press(emulator, tip, "✅ Gedaan")
    emulator.user_sends_text(CHAT, "/progress")  # one user's updates are handled in order
    messages = await settle(emulator, says("Je vooruitgang"))
    assert emulator.answered_callbacks[query]["text"] == "✅ Goed bezig! Genoteerd."
    kept = next(m for m in emulator.messages_to(CHAT) if m["message_id"] == tip["message_id"])
    assert kept["reply_markup"] is not None  # a tip keeps its buttons (later, this week)
    assert [m for m in messages if m["photo"] is not None][-1]["photo"].startswith(b"\x89PNG")


async def test_a_broadcast_goes_out_formatted_and_only_coaches_see_broadcasts(
        bot: TelegramBot, app: App, emulator: BotAPIEmulator) -> None:
    from flows.audience import Segment
    from flows.rich_text import parse

    await onboard(emulator)
    made = await app.broadcasts.create(
        texts={"nl": parse('<b>Koopavond</b> vrijdag: <a href="https://www.kortrijk.be">info</a>'
                           " & meer")}, segment=Segment(), urgent=True, via="test")
    assert await app.broadcasts.tick() == 1
    messages = await settle(emulator, says("Koopavond vrijdag"))
    sent = next(m for m in messages if "Koopavond" in (m["text"] or ""))
    assert sent["text"] == "Koopavond vrijdag: info & meer"  # parsed by the emulator as HTML
    assert {e["type"] for e in sent["entities"]} == {"bold", "text_link"}
    emulator.user_sends_text(CHAT, "/broadcasts")  # a shopkeeper: no such command
    await settle(emulator, says("ken ik niet"))
    async with app.db.transaction() as tx:
        person = await shopkeepers.find_by_identity(tx, channel="telegram",
                                                    external_id=str(CHAT))
        assert person is not None
        await roles.grant(tx, shopkeeper_id=person.id, role=Role.COACH, by="test")
    await app.sender.marks.flush()  # "sent" is written in batches, off the sending path
    emulator.user_sends_text(CHAT, "/broadcasts")
    listed = await settle(emulator, says("Laatste berichten"))
    assert f"#{made.id} " in listed[-1]["text"] and "Aangekomen: 1" in listed[-1]["text"]


# -- a coach's broadcast with a photo, composed in chat --------------------------------------

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
