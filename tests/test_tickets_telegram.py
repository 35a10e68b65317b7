"""A ticket's whole life on Telegram, between a shopkeeper and two coaches: the real
python-telegram-bot against the Bot API emulator. Each coach in their private chat (the
claim race, the reply to a ticket's message, /reply, /close, 7 silent days), and the coaches'
group (claims there, strangers refused kindly, the rest of a group ignored)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from recording import TUESDAY, Clock
from telegram_emulator import GroupsEmulator
from test_broadcasts import SCORES
from test_telegram import says, settle

from bot.app import App, build
from bot.config import Settings
from bot.telegram import TelegramBot
from storage import roles, runs, shopkeepers, tickets
from storage.tables import IDENTITY, RUN, Role, RunStatus, TicketStatus

SHOP, AN, BO, STRANGER = 4242, 5001, 5002, 6001
GROUP = -1001234567890
Messages = list[dict[str, Any]]


@pytest.fixture
def clock() -> Clock:
    return Clock(TUESDAY)


@pytest.fixture
async def emulator() -> AsyncIterator[GroupsEmulator]:
    async with GroupsEmulator() as emu:
        yield emu
        refused = [e for e in emu.errors if not e.get("injected")]
        assert refused == [], "the emulator refused calls that Telegram would refuse too"
        assert emu.unanswered_callbacks() == [], "every button press must be answered"


async def running(settings: Settings, emulator: GroupsEmulator, clock: Clock,
                  **extra: Any) -> tuple[App, TelegramBot]:
    configured = replace(settings, telegram_token=emulator.token,
                         telegram_api_base_url=emulator.base_url, **extra)
    app = await build(configured, clock=clock)
    await people(app, emulator)
    return app, TelegramBot(configured, app)


async def people(app: App, emulator: GroupsEmulator) -> None:
    """Coaches An and Bo, and a shopkeeper who finished the check (their chats exist)."""
    async with app.db.transaction() as tx:
        for user, name in ((AN, "An"), (BO, "Bo")):
            coach, _ = await shopkeepers.find_or_create(tx, channel="telegram",
                                                        external_id=str(user), language="nl")
            await roles.grant(tx, shopkeeper_id=coach.id, role=Role.COACH, by="test")
            emulator.register_chat(user, first_name=name)
        shop, _ = await shopkeepers.find_or_create(tx, channel="telegram",
                                                   external_id=str(SHOP), language="nl")
        await shopkeepers.update(tx, shopkeeper=shop, shop_name="Bakkerij Dewitte",
                                 municipality="Kortrijk", shop_type="food",
                                 consent_at=TUESDAY)
        run = await runs.start_run(tx, shopkeeper_id=shop.id, flow_id="assessment",
                                   flow_key="assessment@test", state={})
        await runs.add_result(tx, shopkeeper_id=shop.id, run_id=run.id,
                              flow_key="assessment@test", scores=SCORES, overall=44,
                              focus=["digitalisering"])
        await tx.execute(sa.update(RUN).where(RUN.c.id == run.id)
                         .values(status=RunStatus.COMPLETED))  # no question step open
    emulator.register_chat(SHOP, first_name="Els")


def last(fragment: str) -> Callable[[Messages], bool]:
    return lambda ms: bool(ms) and fragment in (ms[-1]["text"] or "")


def request_in(emulator: GroupsEmulator, chat: int, ticket: int) -> dict[str, Any]:
    [found] = [m for m in emulator.messages_to(chat) if f"Vraag #{ticket}\n" in (m["text"] or "")]
    return found


def pop_up(emulator: GroupsEmulator, query: str) -> str:
    return str(emulator.answered_callbacks[query]["text"] or "")


async def answered(emulator: GroupsEmulator, query: str) -> str:
    async with asyncio.timeout(15):
        while query not in emulator.answered_callbacks:  # noqa: ASYNC110 (no event for it)
            await asyncio.sleep(0.01)
    return pop_up(emulator, query)


async def marked(app: App, chat: int, message: dict[str, Any]) -> None:
    """Wait until the bot recorded ``message`` as sent, with its Telegram id (the mark is
    written just after the send; a person cannot reply within those milliseconds)."""
    async with asyncio.timeout(10):
        while True:
            async with app.db.transaction() as tx:
                if await tickets.replied_to(tx, channel="telegram", chat=str(chat),
                                            message_id=str(message["message_id"])):
                    return
            await asyncio.sleep(0.01)


async def ticket(app: App, number: int) -> Any:
    async with app.db.transaction() as tx:
        return await tickets.get(tx, ticket_id=number)


async def test_a_ticket_between_a_shopkeeper_and_two_coaches_in_their_private_chats(
        settings: Settings, emulator: GroupsEmulator, clock: Clock) -> None:
    app, bot = await running(settings, emulator, clock)
    try:
        async with bot:
            emulator.user_sends_text(SHOP, "/coach Hoe krijg ik meer Google-reviews?",
                                     first_name="Els")
            await settle(emulator, says("Doorgegeven!"), SHOP)
            for coach in (AN, BO):
                await settle(emulator, says("Vraag #1\n"), coach)
            assert emulator.messages_to(GROUP) == []

            # The claim race: both press at once; exactly one owns it.
            presses = {}
            for coach in (AN, BO):
                message = request_in(emulator, coach, 1)
                claim = message["reply_markup"]["inline_keyboard"][0][0]
                assert claim["text"] == "✋ Ik neem dit op"
                _, presses[coach] = emulator.user_presses(coach, message["message_id"],
                                                          claim["callback_data"])
            for query in presses.values():
                await answered(emulator, query)
            found = await ticket(app, 1)
            assert found.status == TicketStatus.CLAIMED
            owner, other = (AN, BO) if found.coach_name == "An" else (BO, AN)
            names = {AN: "An", BO: "Bo"}
            assert found.coach_name == names[owner]
            await settle(emulator, says("#1 is van jou"), owner)
            assert f"{names[owner]} had #1 al opgenomen" in pop_up(emulator, presses[other])
            await settle(emulator, says(f"Vraag #1 is opgenomen door {names[owner]}"), other)
            await settle(emulator, says(f"Coach {names[owner]} van KERNpunt heeft je vraag "
                                        "opgenomen"), SHOP)

            # The shopkeeper's next messages go to the owner only.
            emulator.user_sends_text(SHOP, "We hebben al 12 reviews", first_name="Els")
            relayed = await settle(emulator, last("We hebben al 12 reviews"), owner)
            assert not says("We hebben al 12 reviews")(emulator.messages_to(other))

            # The owner answers by replying to the relayed message; then with /reply.
            await marked(app, owner, relayed[-1])
            emulator.user_replies(owner, relayed[-1]["message_id"],
                                  "Zet een QR-code aan de kassa.", first_name=names[owner])
            await settle(emulator, says(f"Coach {names[owner]}: Zet een QR-code aan de kassa."),
                         SHOP)
            emulator.user_replies(owner, request_in(emulator, owner, 1)["message_id"],
                                  "En vraag het aan vaste klanten.", first_name=names[owner])
            await settle(emulator, says("En vraag het aan vaste klanten."), SHOP)
            emulator.user_replies(other, request_in(emulator, other, 1)["message_id"],
                                  "Ik wil ook iets zeggen", first_name=names[other])
            await settle(emulator, last("Vraag #1 is niet van jou"), other)
            emulator.user_sends_text(owner, "/reply 1 Succes!", first_name=names[owner])
            await settle(emulator, says(f"Coach {names[owner]}: Succes!"), SHOP)
            assert not says("Ik wil ook iets zeggen")(emulator.messages_to(SHOP))

            # /close ends it: the shopkeeper's next message is theirs again.
            emulator.user_sends_text(owner, "/close 1", first_name=names[owner])
            await settle(emulator, says("heeft jullie gesprek afgesloten"), SHOP)
            async with app.db.transaction() as tx:
                conversation = await tickets.messages(tx, ticket_id=1)
            assert [(coach, text) for coach, text, _ in conversation] == [
                (False, "We hebben al 12 reviews"), (True, "Zet een QR-code aan de kassa."),
                (True, "En vraag het aan vaste klanten."), (True, "Succes!")]

            # A second request, claimed, then 7 days of silence close it.
            emulator.user_sends_text(SHOP, "/coach Nog iets over mijn etalage",
                                     first_name="Els")
            await settle(emulator, says("Vraag #2\n"), owner)
            message = request_in(emulator, owner, 2)
            _, query = emulator.user_presses(owner, message["message_id"],
                                             message["reply_markup"]["inline_keyboard"][0][0]
                                             ["callback_data"])
            await answered(emulator, query)
            await settle(emulator, lambda ms: sum("heeft je vraag opgenomen" in (m["text"] or "")
                                                  for m in ms) == 2, SHOP)
            clock.now = TUESDAY + timedelta(days=7, minutes=1)
            before, answers = len(emulator.messages_to(owner)), len(emulator.messages_to(SHOP))
            emulator.user_sends_text(SHOP, "Hallo?", first_name="Els")
            await settle(emulator, lambda ms: len(ms) > answers, SHOP)  # the bot answers
            assert (await ticket(app, 2)).status == TicketStatus.CLOSED
            assert not says("Hallo?")(emulator.messages_to(owner)[before:])
    finally:
        await app.close()


async def test_the_coaches_group_gets_the_request_and_only_coaches_can_take_it(
        settings: Settings, emulator: GroupsEmulator, clock: Clock) -> None:
    emulator.create_group(GROUP)
    app, bot = await running(settings, emulator, clock, coaches_chat=str(GROUP))
    try:
        async with bot:
            emulator.user_sends_text(SHOP, "/coach Is er subsidie voor een nieuwe kassa?",
                                     first_name="Els")
            await settle(emulator, says("Vraag #1\n"), GROUP)
            request = request_in(emulator, GROUP, 1)
            assert "Bakkerij Dewitte" in request["text"] and "nieuwe kassa" in request["text"]
            claim = request["reply_markup"]["inline_keyboard"][0][0]
            assert claim["text"] == "✋ Ik neem dit op"
            assert not says("Vraag #1")(emulator.messages_to(AN))  # not in private chats

            # Group talk that is not for the bot, and a stranger's press, store nobody.
            emulator.member_sends(GROUP, STRANGER, "/start", first_name="Piet")
            emulator.member_sends(GROUP, STRANGER, "Goeiemorgen allemaal", first_name="Piet")
            emulator.member_sends(GROUP, STRANGER, "Ik kan helpen",
                                  reply_to=request["message_id"], first_name="Piet")
            _, query = emulator.member_presses(GROUP, STRANGER, request["message_id"],
                                               claim["callback_data"], first_name="Piet")
            assert "enkel zij kunnen een vraag opnemen" in await answered(emulator, query)
            assert (await ticket(app, 1)).status == TicketStatus.OPEN

            _, mine = emulator.member_presses(GROUP, AN, request["message_id"],
                                              claim["callback_data"], first_name="An")
            assert "#1 is van jou" in await answered(emulator, mine)
            await settle(emulator, says("Vraag #1 is opgenomen door An"), GROUP)
            _, late = emulator.member_presses(GROUP, BO, request["message_id"],
                                              claim["callback_data"], first_name="Bo")
            assert "An had #1 al opgenomen" in await answered(emulator, late)
            await settle(emulator, says("Coach An van KERNpunt heeft je vraag opgenomen"), SHOP)

            # The owner answers in the group, replying to the request.
            await marked(app, GROUP, request)
            emulator.member_sends(GROUP, AN, "Kijk eens bij de kmo-portefeuille van VLAIO.",
                                  reply_to=request["message_id"], first_name="An")
            await settle(emulator, says("Coach An: Kijk eens bij de kmo-portefeuille"), SHOP)
            # The shopkeeper's answer goes to the owner's own chat.
            emulator.user_sends_text(SHOP, "Dank je!", first_name="Els")
            await settle(emulator, says("Dank je!"), AN)
            emulator.member_sends(GROUP, AN, "/close 1", first_name="An")
            await settle(emulator, says("heeft jullie gesprek afgesloten"), SHOP)
            await settle(emulator, says("#1 is afgesloten"), GROUP)
            async with app.db.transaction() as tx:
                strangers = (await tx.execute(sa.select(IDENTITY.c.id).where(
                    IDENTITY.c.external_id == str(STRANGER)))).all()
            assert strangers == []  # nobody is made from a group
    finally:
        await app.close()
    texts = [m["text"] or "" for m in emulator.messages_to(GROUP)]
    assert not any("taal" in t or "Welkom" in t for t in texts)  # no onboarding in a group
    assert not any("Ik kan helpen" in (m["text"] or "") for m in emulator.messages_to(SHOP))
