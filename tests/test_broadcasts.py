"""Coach broadcasts: segments, sending when due within the sending hours, one message per
person however often the enqueue runs, cancelling, and the coach's report."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from recording import (
    CHAT,
    TUESDAY,
    Clock,
    local,
    recorded_app,  # noqa: F401 (the app fixture, on the clock)
    recorder,
)

from bot.app import App
from bot.config import Settings
from flows.audience import Segment, SegmentError
from flows.places import gazetteer
from flows.rich_text import parse
from handlers.broadcasts import Broadcasts
from storage import broadcasts, runs, shopkeepers
from storage.database import Database
from storage.tables import utcnow

PLACES = gazetteer()


@pytest.fixture
def clock() -> Clock:
    return Clock(TUESDAY)


async def person(app: App, user: str, *, municipality: str = "Kortrijk",
                 shop_type: str = "food", language: str = "nl",
                 scores: dict[str, int] | None = None, focus: tuple[str, ...] = (),
                 consent: bool = True, opted_out: bool = False) -> int:
    async with app.db.transaction() as tx:
        found, _ = await shopkeepers.find_or_create(tx, channel=CHAT, external_id=user,
                                                    language=language)
        await shopkeepers.update(
            tx, shopkeeper=found, municipality=municipality, shop_type=shop_type,
            consent_at=utcnow() if consent else None,
            opted_out_at=utcnow() if opted_out else None)
        if scores is not None:
            run = await runs.start_run(tx, shopkeeper_id=found.id, flow_id="assessment",
                                       flow_key="assessment@test", state={})
            await runs.add_result(tx, shopkeeper_id=found.id, run_id=run.id,
                                  flow_key="assessment@test", scores=scores,
                                  overall=sum(scores.values()) // len(scores),
                                  focus=list(focus))
        return found.id


SCORES = {"beleving": 60, "vakkennis": 40, "innovatie": 20, "toekomst": 80,
          "digitalisering": 10, "anders_denken": 55}


async def town(app: App) -> None:
    await person(app, "kortrijk-food", scores=SCORES, focus=("digitalisering", "innovatie"))
    await person(app, "kortrijk-fashion", shop_type="fashion", language="fr")
    await person(app, "roeselare-food", municipality="Roeselare",
                 scores={**SCORES, "digitalisering": 90}, focus=("innovatie", "vakkennis"))
    await person(app, "waregem-food", municipality="Waregem", language="en")
    await person(app, "no-consent", consent=False)
    await person(app, "stopped", opted_out=True)


async def reach(app: App, *pairs: str) -> set[str]:
    return {c.external_id for c in await app.broadcasts.audience(Segment.parse(pairs, PLACES))}


async def test_segments_pick_the_right_people_and_never_the_opted_out(app: App) -> None:
    await town(app)
    everyone = {"kortrijk-food", "kortrijk-fashion", "roeselare-food", "waregem-food"}
    assert await reach(app) == everyone
    assert await reach(app, "municipality=kortrijk") == {"kortrijk-food", "kortrijk-fashion"}
    assert await reach(app, "arrondissement=Kortrijk") == {"kortrijk-food", "kortrijk-fashion",
                                                           "waregem-food"}
    assert await reach(app, "arrondissement=Kortrijk", "shop_type=food") == {
        "kortrijk-food", "waregem-food"}
    assert await reach(app, "municipality=Kortrijk", "municipality=Roeselare",
                       "shop_type=food") == {"kortrijk-food", "roeselare-food"}
    assert await reach(app, "focus=digitalisering") == {"kortrijk-food"}
    assert await reach(app, "level=digitalisering:start") == {"kortrijk-food"}
    assert await reach(app, "level=digitalisering:front_runner") == {"roeselare-food"}
    assert await reach(app, "unfinished=yes") == {"kortrijk-fashion", "waregem-food"}
    assert await reach(app, "language=fr") == {"kortrijk-fashion"}


@pytest.mark.parametrize(("pair", "message"), [
    ("municipality=Gent", "not one of the 62"),
    ("shop_type=bakery", "shop_type 'bakery' is not one of"),
    ("level=digitalisering:expert", "level band 'expert'"),
    ("colour=blue", "unknown segment key"),
    ("municipality", "is not KEY=VALUE"),
])
def test_a_segment_with_a_typo_is_refused_not_sent_to_nobody(pair: str, message: str) -> None:
    with pytest.raises(SegmentError, match=message):
        Segment.parse([pair], PLACES)


async def deliver(app: App, now: datetime) -> int:
    queued = await app.broadcasts.tick(now)
    await app.sender.poll()
    await app.sender.marks.flush()  # "sent" is written in batches, off the sending path
    return queued


async def test_a_broadcast_reaches_each_person_once_in_their_language(app: App) -> None:
    await town(app)
    coach = await person(app, "coach", shop_type="other")
    made = await app.broadcasts.create(
        texts={"nl": parse("<b>Koopavond</b> vrijdag!"), "fr": parse("<b>Nocturne</b> vendredi !")},
        segment=Segment.parse(["shop_type=food", "shop_type=fashion"], PLACES),
        created_by=coach, via="test")
    assert await deliver(app, TUESDAY) == 4
    assert await app.broadcasts.tick(TUESDAY) == 0  # started once
    sent = {address: message for address, message, _ in recorder(app).sent}
    assert sent["kortrijk-fashion"].text == "<b>Nocturne</b> vendredi !"
    assert sent["kortrijk-food"].text == "<b>Koopavond</b> vrijdag!"
    assert sent["waregem-food"].text.startswith("<b>Koopavond")  # no English given: Dutch
    assert all(m.html for m in sent.values())
    assert "stopped" not in sent and "no-consent" not in sent
    # Every row is final: the next tick tells the coach how it went.
    await deliver(app, TUESDAY)
    report = [m for m in recorder(app).to("coach") if "#" in m.text]
    assert len(report) == 1 and "4 aangekomen" in report[0].text
    async with app.db.transaction() as tx:
        current = await broadcasts.get(tx, broadcast_id=made.id)
    assert current is not None and current.status == "done" and current.recipients == 4


async def test_enqueueing_twice_or_from_two_processes_never_doubles(
        app: App, settings: Settings) -> None:
    await town(app)
    made = await app.broadcasts.create(texts={"nl": parse("Hallo")}, segment=Segment(),
                                       via="test")
    other_db = Database(settings.database_url)
    other = Broadcasts(other_db, app.texts, PLACES, app.settings.schedule.hours, app.sender)
    try:
        async with app.db.transaction() as tx:
            record = await broadcasts.get(tx, broadcast_id=made.id)
        assert record is not None
        await asyncio.gather(app.broadcasts._start(record, TUESDAY),
                             other._start(record, TUESDAY))
    finally:
        await other_db.close()
    counts = await app.broadcasts.counts(made.id)
    assert counts.total == 4


async def test_outside_the_sending_hours_it_waits_unless_urgent(app: App) -> None:
    await town(app)
    sunday = local(2027, 4, 4, 11)
    calm = await app.broadcasts.create(texts={"nl": parse("Nieuws")}, segment=Segment(),
                                       send_at=sunday, via="test")
    urgent = await app.broadcasts.create(texts={"nl": parse("Straat afgesloten!")},
                                         segment=Segment(), send_at=sunday, urgent=True,
                                         via="test")
    assert await app.broadcasts.tick(sunday - timedelta(minutes=1)) == 0  # not yet due
    assert await app.broadcasts.tick(sunday) == 4  # only the urgent one
    assert (await app.broadcasts.counts(urgent.id)).total == 4
    assert (await app.broadcasts.counts(calm.id)).total == 0
    assert await app.broadcasts.tick(local(2027, 4, 4, 21)) == 0  # still Sunday
    assert await app.broadcasts.tick(local(2027, 4, 5, 9)) == 4  # Monday 09:00: the calm one
    assert (await app.broadcasts.counts(calm.id)).total == 4


async def test_a_cancelled_broadcast_sends_nothing_more(app: App) -> None:
    await town(app)
    made = await app.broadcasts.create(texts={"nl": parse("Oeps")}, segment=Segment(),
                                       via="test")

    class Asleep:
        def wake(self) -> None:
            """The sender is not told: the rows wait in the outbox."""

    quiet = Broadcasts(app.db, app.texts, PLACES, app.settings.schedule.hours, Asleep())
    assert await quiet.tick(TUESDAY) == 4  # queued, not yet delivered
    assert await app.broadcasts.cancel(made.id)
    await app.sender.poll()
    assert not any(m.text == "Oeps" for _, m, _ in recorder(app).sent)
    counts = await app.broadcasts.counts(made.id)
    assert counts.cancelled == 4 and counts.sent == 0
    assert not await app.broadcasts.cancel(made.id)


async def test_a_scheduled_broadcast_waits_for_its_time(app: App) -> None:
    await town(app)
    later = TUESDAY + timedelta(hours=3)
    made = await app.broadcasts.create(texts={"nl": parse("Straks")}, segment=Segment(),
                                       send_at=later, via="test")
    assert await app.broadcasts.tick(TUESDAY) == 0
    assert await app.broadcasts.tick(later) == 4
    assert (await app.broadcasts.counts(made.id)).total == 4


async def test_the_coach_may_resend_the_uncertain_ones(app: App) -> None:
    await town(app)
    made = await app.broadcasts.create(texts={"nl": parse("Opnieuw")}, segment=Segment(),
                                       via="test")
    await deliver(app, TUESDAY)
    async with app.db.transaction() as tx:  # as a crash mid-send would leave one row
        await tx.execute(sa.text(
            "UPDATE outbox SET status = 'uncertain' WHERE broadcast_id = :b AND external_id = "
            "'waregem-food'"), {"b": made.id})
    assert (await app.broadcasts.counts(made.id)).uncertain == 1
    assert await app.broadcasts.resend_uncertain(made.id) == 1
    await app.sender.poll()
    await app.sender.marks.flush()
    counts = await app.broadcasts.counts(made.id)
    assert (counts.sent, counts.uncertain) == (4, 0)
    assert [m.text for m in recorder(app).to("waregem-food")] == ["Opnieuw", "Opnieuw"]
    assert await app.broadcasts.resend_uncertain(made.id) == 0
