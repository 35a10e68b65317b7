"""Retention with the injectable clock: a notice after the inactive period (within the
sending hours), erasure 30 days later unless the person answers; people who never
consented go after 30 days; coaches and admins stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from recording import (
    CHAT,
    Clock,
    handle,
    local,
    recorded_app,  # noqa: F401 (the app fixture, on the clock)
    recorder,
    say,
)

from bot.app import App
from flows.messages import Outbound, Reply
from flows.timing import BRUSSELS
from handlers.inbound import Inbound
from handlers.privacy import KEEP_REF
from storage import audit, roles, shopkeepers
from storage.tables import SHOPKEEPER, Role

INACTIVE = timedelta(days=730)
GRACE = timedelta(days=30)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC))


async def consented(app: App, user: str = "u1") -> None:
    for answer in ("/start", "Nederlands", "ja", "Bakkerij Dewitte", "Kortrijk", "voeding",
                   "2"):
        await say(app, answer, user)


async def known(app: App, user: str = "u1") -> bool:
    async with app.db.transaction() as tx:
        return await shopkeepers.find_by_identity(
            tx, channel=CHAT, external_id=user) is not None


def allowed(app: App, at: datetime) -> datetime:
    """The first moment from ``at`` on when a non-urgent message may go out."""
    return app.settings.schedule.hours.next_slot(at)


async def delivered_by_tick(app: App, at: datetime) -> list[tuple[str, Outbound]]:
    channel = recorder(app)
    before = len(channel.sent)
    await app.retention.tick(at)
    await app.sender.poll()
    return [(to, message) for to, message, _ in channel.sent[before:]]


async def test_silent_for_24_months_means_a_notice_and_erasure_30_days_later(
        app: App, clock: Clock) -> None:
    await consented(app)
    await consented(app, "u2")
    clock.now += timedelta(days=400)
    await say(app, "/results", "u2")  # u2 was here more recently
    told_at = allowed(app, clock.now - timedelta(days=400) + INACTIVE + timedelta(hours=1))

    assert await delivered_by_tick(app, told_at - timedelta(days=2)) == []  # not yet
    [(to, notice)] = await delivered_by_tick(app, told_at)

    assert to == "u1"
    assert "24 maanden" in notice.text and "over 30 dagen" in notice.text
    assert [b.label for b in notice.buttons] == ["Hou mijn gegevens"]
    assert await delivered_by_tick(app, told_at + timedelta(hours=2)) == []  # told once
    swept = await app.retention.tick(told_at + GRACE - timedelta(minutes=1))
    assert swept.erased == 0 and await known(app)
    swept = await app.retention.tick(told_at + GRACE + timedelta(minutes=1))
    assert swept.erased == 1
    assert not await known(app) and await known(app, "u2")
    async with app.db.transaction() as tx:
        [entry] = [e for e in await audit.entries(tx) if e.action == "erase"]
        left = (await tx.execute(sa.select(sa.func.count()).select_from(SHOPKEEPER))).scalar()
    assert entry.actor == "retention" and entry.detail["reason"] == "notified"
    assert "u1" not in str(entry.detail)
    assert left == 1


@pytest.mark.parametrize("answer", ["a message", "the keep button", "a command"])
async def test_anything_the_person_sends_after_the_notice_keeps_them(
        app: App, clock: Clock, answer: str) -> None:
    await consented(app)
    told_at = allowed(app, clock.now + INACTIVE + timedelta(hours=1))
    assert len(await delivered_by_tick(app, told_at)) == 1
    clock.now = told_at + timedelta(days=29)
    if answer == "a message":
        await say(app, "hallo")
    elif answer == "a command":
        await say(app, "/help")
    else:
        [kept] = await handle(app, Inbound(CHAT, "u1", reply=Reply(choice="keep",
                                                                    ref=KEEP_REF)))
        assert kept.text.startswith("Top, je gegevens blijven bewaard")
    swept = await app.retention.tick(told_at + GRACE + timedelta(days=1))
    assert swept.erased == 0 and swept.notified == 0
    assert await known(app)


async def test_the_notice_waits_for_the_sending_hours(app: App, clock: Clock) -> None:
    await consented(app)
    day = allowed(app, clock.now + INACTIVE + timedelta(days=1)).astimezone(BRUSSELS)
    night = local(day.year, day.month, day.day, 22)
    assert await delivered_by_tick(app, night) == []
    assert len(await delivered_by_tick(app, allowed(app, night))) == 1


async def test_someone_who_never_consented_is_gone_after_30_days(app: App,
                                                                 clock: Clock) -> None:
    await say(app, "/start", "passer-by")  # chose nothing, consented to nothing
    await consented(app)
    swept = await app.retention.tick(clock.now + GRACE - timedelta(hours=1))
    assert swept.never_consented == 0 and await known(app, "passer-by")
    swept = await app.retention.tick(clock.now + GRACE + timedelta(hours=1))
    assert swept.never_consented == 1
    assert not await known(app, "passer-by") and await known(app)


async def test_a_stopped_person_gets_no_notice_but_the_same_term(app: App,
                                                                 clock: Clock) -> None:
    await consented(app)
    await say(app, "/stop")
    told_at = allowed(app, clock.now + INACTIVE + timedelta(hours=1))
    assert await delivered_by_tick(app, told_at) == []
    assert (await app.retention.tick(told_at + GRACE + timedelta(minutes=1))).erased == 1
    assert not await known(app)


async def test_coaches_and_admins_are_not_erased_for_inactivity(app: App,
                                                                clock: Clock) -> None:
    await consented(app)
    await say(app, "/start", "admin-never-onboarded")
    async with app.db.transaction() as tx:
        for user, role in (("u1", Role.COACH), ("admin-never-onboarded", Role.ADMIN)):
            person = await shopkeepers.find_by_identity(tx, channel=CHAT, external_id=user)
            assert person is not None
            await roles.grant(tx, shopkeeper_id=person.id, role=role, by="cli:test")
    later = allowed(app, clock.now + INACTIVE + GRACE * 3)
    assert await delivered_by_tick(app, later) == []
    swept = await app.retention.tick(later + GRACE * 2)
    assert (swept.never_consented, swept.erased, swept.notified) == (0, 0, 0)
    assert await known(app) and await known(app, "admin-never-onboarded")


async def test_keep_pressed_after_the_erasure_keeps_nothing(app: App, clock: Clock) -> None:
    await consented(app)
    told_at = allowed(app, clock.now + INACTIVE + timedelta(hours=1))
    await delivered_by_tick(app, told_at)
    assert (await app.retention.tick(told_at + GRACE + timedelta(minutes=1))).erased == 1
    clock.now = told_at + GRACE + timedelta(hours=1)
    [answer] = await handle(app, Inbound(CHAT, "u1", reply=Reply(choice="keep", ref=KEEP_REF)))
    assert "blijven bewaard" not in answer.text
