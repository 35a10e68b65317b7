"""A shopkeeper who erases themselves takes their tickets along, including the messages
about them in the coaches' chats (their shop, their question, what they wrote)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from recording import (
    TUESDAY,
    Clock,
    recorded_app,  # noqa: F401 (the app fixture, on the clock)
    say,
)
from test_tickets import as_coach, claim, team

from bot.app import App
from storage import erasure
from storage.tables import OUTBOX, TICKET, TICKET_MESSAGE, TICKET_POST


@pytest.fixture
def clock() -> Clock:
    return Clock(TUESDAY)


async def payloads(app: App) -> str:
    async with app.db.transaction() as tx:
        return " ".join(str(p) for p in (await tx.execute(sa.select(OUTBOX.c.payload))).scalars())


async def test_erasure_takes_the_ticket_messages_in_the_coaches_chats(app: App) -> None:
    shop = await team(app)
    await say(app, "/coach Hoe krijg ik meer Google-reviews?", "shop")
    await claim(app, "coach-an", "An", 1)
    await say(app, "Ons adres is Marktplein 3", "shop")
    await as_coach(app, "coach-an", "An", "/reply 1 Zet een QR-code aan de kassa.")
    await app.sender.poll()
    before = await payloads(app)
    assert "Google-reviews" in before and "Marktplein 3" in before  # in the coaches' chats

    async with app.db.transaction() as tx:
        counts = await erasure.erase(tx, shopkeeper_id=shop, actor="self", reason="test")
    assert counts["outbox"] >= 3
    after = await payloads(app)
    for trace in ("Google-reviews", "Marktplein 3", "#3"):
        assert trace not in after, trace
    async with app.db.transaction() as tx:
        for table in (TICKET, TICKET_MESSAGE, TICKET_POST):
            assert (await tx.execute(sa.select(sa.func.count()).select_from(table))
                    ).scalar_one() == 0, table.name


async def test_erasure_takes_a_coachs_ticket_list_that_shows_the_shop(app: App) -> None:
    shop = await team(app)
    await say(app, "/coach Hoe krijg ik meer Google-reviews?", "shop")
    await as_coach(app, "coach-an", "An", "/tickets")
    await app.sender.poll()
    assert "Google-reviews" in await payloads(app)  # the list in An's chat shows it

    async with app.db.transaction() as tx:
        await erasure.erase(tx, shopkeeper_id=shop, actor="self", reason="test")
    assert "Google-reviews" not in await payloads(app)
