"""Handled updates keep their key (the dedupe) and nothing of what they said: a first name
or a typed text is personal data, also of someone who never consents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import sqlalchemy as sa
from recording import CHAT, reading, update

from bot.app import App, build
from bot.config import Settings
from storage.tables import INBOX


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[App]:
    app = await build(settings)
    yield app
    await app.close()


async def stored(app: App) -> list[tuple[str, str, object]]:
    async with app.db.transaction() as tx:
        rows = await tx.execute(sa.select(INBOX.c.key, INBOX.c.status, INBOX.c.payload)
                                .order_by(INBOX.c.id))
        return [(key, status, payload) for key, status, payload in rows]


async def test_a_handled_update_keeps_its_key_and_not_what_it_said(app: App) -> None:
    channel = reading(app)
    secret = "Mijn naam is Els Vandamme, 0470 12 34 56"
    await app.inbox.receive(CHAT, [update(1, "u1", "/start"), update(2, "u1", secret),
                                   replace(update(3, "u1", "/help"), payload={"oops": 1})])
    await app.inbox.idle()
    assert channel.to("u1")  # handled: the bot answered
    rows = await stored(app)
    assert [(key, status) for key, status, _ in rows] == [("1", "done"), ("2", "done"),
                                                         ("3", "poison")]
    assert [payload for _, _, payload in rows[:2]] == [{}, {}]
    assert rows[2][2] == {"oops": 1}  # poison stays as it came, for a look (7 days)
    assert not any(secret in str(payload) for _, _, payload in rows)

    before = len(channel.to("u1"))
    await app.inbox.receive(CHAT, [update(2, "u1", secret)])  # a redelivery
    await app.inbox.idle()
    assert len(channel.to("u1")) == before and len(await stored(app)) == 3
