"""A human coach when it matters: a shopkeeper's request, two coaches, one owner, the
conversation both ways, and its end (closed by the coach, or after 7 silent days)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa
from recording import (
    CHAT,
    TUESDAY,
    Clock,
    handle,
    recorded_app,  # noqa: F401 (the app fixture, on the clock)
    recorder,
    say,
)
from test_broadcasts import SCORES, person

from bot.app import App
from flows.messages import Outbound, Reply
from handlers.inbound import Inbound
from storage import roles, tickets
from storage.tables import RUN, Role, RunStatus


@pytest.fixture
def clock() -> Clock:
    return Clock(TUESDAY)


async def team(app: App) -> int:
    """Two coaches and a shopkeeper with a result; returns the shopkeeper's id."""
    for user in ("coach-an", "coach-bo"):
        found = await person(app, user, shop_type="other")
        async with app.db.transaction() as tx:
            await roles.grant(tx, shopkeeper_id=found, role=Role.COACH, by="test")
    shop = await person(app, "shop", scores=SCORES, focus=("digitalisering", "innovatie"))
    async with app.db.transaction() as tx:  # the check is done: no question step is open
        await tx.execute(sa.update(RUN).values(status=RunStatus.COMPLETED))
    return shop


async def act(app: App, message: Inbound) -> list[Outbound]:
    """What the person got in answer, also when it waited behind earlier messages to the
    same chat (a coach's answer comes after the notices already queued for them)."""
    before = len(recorder(app).to(message.external_id))
    await app.dispatcher.handle(message)
    await app.sender.poll()
    return recorder(app).to(message.external_id)[before:]


async def as_coach(app: App, user: str, name: str, text: str) -> list[Outbound]:
    command, _, argument = text[1:].partition(" ")
    return await act(app, Inbound(CHAT, user, command=command, argument=argument,
                                  display_name=name))


async def claim(app: App, user: str, name: str, ticket: int) -> list[Outbound]:
    return [m for m in await act(app, Inbound(
        CHAT, user, reply=Reply(choice=f"claim.{ticket}", ref="tkc"),
        press=f"p-{user}-{ticket}", display_name=name)) if "opgenomen door" not in m.text]


async def delivered(app: App) -> None:
    await app.sender.poll()


def to(app: App, user: str) -> list[str]:
    return [m.text for m in recorder(app).to(user)]


async def test_a_request_reaches_every_coach_and_the_first_to_claim_owns_it(
        app: App) -> None:
    await team(app)
    opened = await say(app, "/coach Hoe krijg ik meer Google-reviews?", "shop")
    assert "Doorgegeven" in opened[0].text
    await delivered(app)
    for coach in ("coach-an", "coach-bo"):
        [request] = [m for m in recorder(app).to(coach) if "Vraag #1" in m.text]
        assert "Google-reviews" in request.text and "#3 · Voeding · Kortrijk" in request.text
        assert "Digitalisering 10" in request.text and "Focus: Digitalisering" in request.text
        assert [b.id for b in request.buttons] == ["claim.1"] and request.ref == "tkc"

    mine = await claim(app, "coach-an", "An", 1)
    assert "#1 is van jou" in mine[0].text
    late = await claim(app, "coach-bo", "Bo", 1)
    assert late[0].notice and "An had #1 al opgenomen" in late[0].text
    await delivered(app)
    assert any("opgenomen door An" in t for t in to(app, "coach-bo"))
    assert any("Coach An van KERNpunt heeft je vraag opgenomen" in t for t in to(app, "shop"))

    before_an, before_bo = len(to(app, "coach-an")), len(to(app, "coach-bo"))
    assert await say(app, "We hebben al 12 reviews", "shop") == []  # no bot remark
    await delivered(app)
    assert to(app, "coach-an")[before_an:] == ["💬 #1 #3: We hebben al 12 reviews"]
    assert to(app, "coach-bo")[before_bo:] == []  # only the owner

    refused = await as_coach(app, "coach-bo", "Bo", "/reply 1 Probeer dit")
    assert "niet van jou" in refused[0].text
    await as_coach(app, "coach-an", "An", "/reply 1 Zet een QR-code aan de kassa.")
    await delivered(app)
    assert "Coach An: Zet een QR-code aan de kassa." in to(app, "shop")

    closed = await as_coach(app, "coach-an", "An", "/close 1")
    assert "#1 is afgesloten" in closed[0].text
    await delivered(app)
    assert any("heeft jullie gesprek afgesloten" in t for t in to(app, "shop"))
    after = await say(app, "Nog iets", "shop")  # no longer relayed
    assert after and not after[0].text.startswith("Coach")
    async with app.db.transaction() as tx:
        conversation = await tickets.messages(tx, ticket_id=1)
    assert [(coach, text) for coach, text, _ in conversation] == [
        (False, "We hebben al 12 reviews"), (True, "Zet een QR-code aan de kassa.")]


async def test_two_coaches_claiming_at_once_give_exactly_one_owner(app: App) -> None:
    await team(app)
    await say(app, "/coach", "shop")
    answers = await asyncio.gather(claim(app, "coach-an", "An", 1),
                                   claim(app, "coach-bo", "Bo", 1))
    won = [a for a in answers if any("is van jou" in m.text for m in a)]
    assert len(won) == 1
    async with app.db.transaction() as tx:
        ticket = await tickets.get(tx, ticket_id=1)
    assert ticket is not None and ticket.coach_name in ("An", "Bo")


async def test_the_offer_after_a_result_opens_a_ticket_and_silence_closes_it(
        app: App, clock: Clock) -> None:
    await team(app)
    declined = await handle(app, Inbound(CHAT, "shop", reply=Reply(choice="no", ref="tk.ask"),
                                         press="p1"))
    assert declined[0].notice and "/coach" in declined[0].text
    accepted = await handle(app, Inbound(CHAT, "shop", reply=Reply(choice="yes", ref="tk.ask"),
                                         press="p2"))
    assert "Een coach van KERNpunt neemt contact" in accepted[0].text
    passed = await say(app, "Bel me gerust na 18u", "shop")
    assert "Doorgegeven aan de coaches" in passed[0].text  # nobody took it yet
    listing = await as_coach(app, "coach-an", "An", "/tickets")
    assert "#1 #3 · nog niet opgenomen" in listing[-1].text
    clock.now = TUESDAY + timedelta(days=8)
    after = await say(app, "Hallo?", "shop")
    assert not any("Doorgegeven" in m.text for m in after)
    assert "geen open vragen" in (await as_coach(app, "coach-an", "An", "/tickets"))[-1].text


async def test_ticket_commands_are_for_coaches_only(app: App) -> None:
    await team(app)
    for command in ("/tickets", "/reply 1 hallo", "/close 1"):
        answer = await say(app, command, "shop")
        assert "ken ik niet" in answer[0].text
    stale = await claim(app, "shop", "Sam", 1)
    assert stale and "oudere vraag" in stale[0].text


async def test_someone_without_consent_is_asked_to_start_first(app: App) -> None:
    await person(app, "new", consent=False)
    answer = await say(app, "/coach help", "new")
    assert "/start" in answer[0].text
    async with app.db.transaction() as tx:
        assert await tickets.active(tx, now=TUESDAY) == []
