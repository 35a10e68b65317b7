"""The coaching plan end to end: the offer after the result, tips at the person's moment
within sending hours, their buttons, this week's action and its check-in, reminders, /stop,
and the re-assessment that shows progress. Time is a clock the test moves; ticks are called
directly (the app's scheduler only calls the same method)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from recording import CHAT, Clock, handle, local, onboard, recorder, say, texts_of

from bot.app import App, build
from bot.config import Settings
from flows.messages import Outbound, Reply
from flows.texts import Texts
from flows.timing import BRUSSELS
from handlers.coaching import when_text
from handlers.inbound import Inbound
from handlers.nudges import Nudges
from storage import coaching, due
from storage.database import Database
from storage.tables import OUTBOX, TIP_SENT, DueKind, OutboxKind


@pytest.fixture
def clock() -> Clock:
    # Close to the real time: runs are stamped by the database layer's own clock, and a
    # reminder counts from the last answer.
    return Clock(datetime.now(UTC))


@pytest.fixture
async def coached(settings: Settings, clock: Clock) -> AsyncIterator[App]:
    app = await build(settings, clock=clock)
    yield app
    await app.close()


async def press(app: App, ref: str, choice: str, user: str = "u1") -> list[Outbound]:
    return await handle(app, Inbound(CHAT, user, reply=Reply(choice=choice, ref=ref),
                                     press=f"press-{ref}-{choice}"))


async def finish_check(app: App, user: str = "u1", answer: str = "2") -> list[Outbound]:
    """Answer every question with the same choice; returns what the last answer got."""
    for _ in range(30):
        got = await say(app, answer, user)
        if any(m.image is not None for m in got):  # the result's chart
            return got
    raise AssertionError("the check did not end")


async def person_id(app: App, user: str = "u1") -> int:
    async with app.db.transaction() as tx:
        found = (await tx.execute(sa.text(
            "SELECT shopkeeper_id FROM identity WHERE external_id = :u"), {"u": user})).scalar()
    assert isinstance(found, int)
    return found


async def due_rows(app: App, user: str = "u1") -> dict[str, datetime]:
    owner = await person_id(app, user)
    async with app.db.transaction() as tx:
        rows = await due.upcoming(tx, shopkeeper_id=owner)
    return {f"{r.kind}:{r.subject}" if r.subject else r.kind: r.due_at for r in rows}


async def tick(app: App, at: datetime) -> list[Outbound]:
    """Run a tick at ``at`` and return what it delivered (to anyone)."""
    channel = recorder(app)
    before = len(channel.sent)
    await app.nudges.tick(at)
    await app.sender.poll()
    return [message for _, message, _ in channel.sent[before:]]


async def planned(app: App, clock: Clock, *, moment: str = "morning",
                  user: str = "u1") -> list[Outbound]:
    """Onboard, do the check, take weekly tips at ``moment``; returns the last answer."""
    recorder(app)
    await onboard(app, user)
    offer = await finish_check(app, user)
    assert any(m.ref == "plan" for m in offer)
    moment_prompt = await press(app, "plan", "weekly", user)
    assert [m.ref for m in moment_prompt] == ["moment"]
    return await press(app, "moment", moment, user)


# -- the plan after the result ------------------------------------------------------------


async def test_the_result_offers_tips_a_moment_and_this_weeks_action(coached: App,
                                                                     clock: Clock) -> None:
    clock.now = local(2027, 3, 24, 15)  # a Wednesday afternoon
    last = await planned(coached, clock)
    words = texts_of(last)
    assert "Je eerste tip komt vrijdag 26 maart, 's ochtends" in words
    offer = next(m for m in last if (m.ref or "").startswith("commit."))
    assert [b.label for b in offer.buttons][-1] == "Nog niet"
    assert offer.buttons[0].label == "Stap 1"
    rows = await due_rows(coached)
    assert rows["tip"] == local(2027, 3, 26, 9)
    assert rows["reassess"].astimezone(BRUSSELS).date() == (
        local(2027, 3, 24, 15) + timedelta(weeks=12)).astimezone(BRUSSELS).date()
    assert not any(key.startswith("reminder") for key in rows)  # the check is finished


async def test_no_tips_for_now_plans_no_tip_but_still_the_reassessment(coached: App) -> None:
    recorder(coached)
    await onboard(coached)
    await finish_check(coached)
    said = await press(coached, "plan", "off")
    assert "voorlopig geen tips" in texts_of(said)
    rows = await due_rows(coached)
    assert "tip" not in rows and "reassess" in rows
    assert "Wil je elke week" in texts_of(await say(coached, "/tips"))


async def test_tips_before_the_check_point_to_the_check(coached: App) -> None:
    recorder(coached)
    await onboard(coached)
    assert "Tips krijg je na de check" in texts_of(await say(coached, "/tips"))
    assert "Nog geen tips afgevinkt" in texts_of(await say(coached, "/progress"))


# -- tips going out -----------------------------------------------------------------------


async def test_a_tip_arrives_at_the_persons_moment_with_its_buttons(coached: App,
                                                                    clock: Clock) -> None:
    clock.now = local(2027, 3, 24, 15)
    await planned(coached, clock, moment="evening")
    assert (await due_rows(coached))["tip"] == local(2027, 3, 26, 17)
    assert await tick(coached, local(2027, 3, 26, 16, 59)) == []
    (tip,) = await tick(coached, local(2027, 3, 26, 17, 0))
    assert tip.text.startswith("💡 Tip · ") and "Waarom?" in tip.text
    assert [b.label for b in tip.buttons] == ["✅ Gedaan", "⏰ Later", "🚫 Niet voor mij",
                                              "📌 Deze week"]
    assert (tip.ref or "").startswith("tip.")
    # The next one a week later at the same moment, in local time.
    assert (await due_rows(coached))["tip"] == local(2027, 4, 2, 17)
    async with coached.db.transaction() as tx:
        kinds = (await tx.execute(sa.select(OUTBOX.c.kind).where(
            OUTBOX.c.payload["text"].as_string().like("💡%")))).scalars().all()
    assert kinds == [OutboxKind.BULK]


async def test_a_due_tip_waits_through_quiet_hours_sundays_and_holidays(coached: App,
                                                                        clock: Clock) -> None:
    clock.now = local(2027, 3, 22, 10)
    await planned(coached, clock)
    owner = await person_id(coached)
    async with coached.db.transaction() as tx:  # due on Saturday evening before Easter
        await due.plan(tx, shopkeeper_id=owner, kind=DueKind.TIP, at=local(2027, 3, 27, 21))
    assert await tick(coached, local(2027, 3, 27, 21)) == []  # quiet hours
    assert await tick(coached, local(2027, 3, 28, 11)) == []  # Easter Sunday
    assert await tick(coached, local(2027, 3, 29, 11)) == []  # Easter Monday
    # On Tuesday it goes out in the person's moment (the morning), once.
    assert await tick(coached, local(2027, 3, 30, 8, 59)) == []
    sent = await tick(coached, local(2027, 3, 30, 9, 0))
    assert len(sent) == 1 and sent[0].text.startswith("💡")
    assert await tick(coached, local(2027, 3, 30, 9, 1)) == []


async def test_outside_the_persons_moment_a_tip_waits_for_it(coached: App,
                                                             clock: Clock) -> None:
    clock.now = local(2027, 3, 22, 10)
    await planned(coached, clock, moment="afternoon")
    owner = await person_id(coached)
    async with coached.db.transaction() as tx:  # the bot was down at its moment
        await due.plan(tx, shopkeeper_id=owner, kind=DueKind.TIP, at=local(2027, 3, 23, 13))
    assert await tick(coached, local(2027, 3, 24, 10)) == []  # a morning: not theirs
    assert (await due_rows(coached))["tip"] == local(2027, 3, 24, 12)
    assert len(await tick(coached, local(2027, 3, 24, 12))) == 1


async def test_a_long_downtime_is_caught_up_with_one_tip(coached: App, clock: Clock) -> None:
    clock.now = local(2027, 3, 22, 10)
    await planned(coached, clock)
    first = (await due_rows(coached))["tip"]
    back = first + timedelta(weeks=5)  # five weekly tips were missed
    back = back.astimezone(BRUSSELS).replace(hour=10).astimezone(UTC)
    assert back.astimezone(BRUSSELS).weekday() < 6
    assert len(await tick(coached, back)) == 1
    assert (await due_rows(coached))["tip"] > back + timedelta(days=6)
    assert await tick(coached, back + timedelta(minutes=5)) == []


async def test_the_week_has_its_tips_across_the_daylight_saving_change(coached: App,
                                                                      clock: Clock) -> None:
    clock.now = local(2027, 3, 17, 10)  # first tip Friday 19 March, then 26 March, 2 April
    await planned(coached, clock)
    times = []
    at = (await due_rows(coached))["tip"]
    for _ in range(3):
        assert len(await tick(coached, at)) == 1
        times.append(at.astimezone(BRUSSELS))
        at = (await due_rows(coached))["tip"]
    assert [(t.day, t.hour, t.minute) for t in times] == [(19, 9, 0), (26, 9, 0), (2, 9, 0)]
    assert times[1].utcoffset() != times[2].utcoffset()  # 28 March: summer time began


# -- tip buttons --------------------------------------------------------------------------


async def first_tip(app: App, clock: Clock) -> Outbound:
    clock.now = local(2027, 3, 22, 10)
    await planned(app, clock)
    (tip,) = await tick(app, (await due_rows(app))["tip"])
    return tip


async def test_done_later_and_not_for_me_are_recorded_and_stale_buttons_are_harmless(
        coached: App, clock: Clock) -> None:
    tip = await first_tip(coached, clock)
    assert tip.ref is not None
    tip_id = tip.ref.removeprefix("tip.")
    (noted,) = await press(coached, tip.ref, "done")
    assert noted.notice and "Genoteerd" in noted.text
    (again,) = await press(coached, tip.ref, "done")
    assert "al als gedaan" in again.text
    (later,) = await press(coached, tip.ref, "later")  # after done: nothing changes
    assert "al als gedaan" in later.text
    owner = await person_id(coached)
    async with coached.db.transaction() as tx:
        sent = await coaching.sent_tip(tx, shopkeeper_id=owner, tip_id=tip_id)
    assert sent is not None and sent.outcome == "done"
    (gone,) = await press(coached, "tip.no_such_tip", "done")
    assert "ken ik niet meer" in gone.text
    (odd,) = await press(coached, tip.ref, "explode")
    assert odd.notice
    async with coached.db.transaction() as tx:
        assert (await tx.execute(sa.select(sa.func.count()).select_from(TIP_SENT))
                ).scalar_one() == 1


async def test_later_brings_the_same_tip_back_after_two_days(coached: App,
                                                             clock: Clock) -> None:
    tip = await first_tip(coached, clock)
    assert tip.ref is not None
    clock.now = local(2027, 3, 26, 9, 30)  # the tip came Wednesday morning
    (later,) = await press(coached, tip.ref, "later")
    assert "dinsdag 30 maart, 's ochtends" in later.text
    back_at = (await due_rows(coached))[f"later:{tip.ref.removeprefix('tip.')}"]
    assert back_at == local(2027, 3, 30, 9)  # 2 days: Sunday, then Easter Monday: Tuesday
    (again,) = await tick(coached, back_at)
    assert again.text == tip.text and again.ref == tip.ref


async def test_not_for_me_cancels_a_later_and_marks_the_tip(coached: App,
                                                            clock: Clock) -> None:
    tip = await first_tip(coached, clock)
    assert tip.ref is not None
    await press(coached, tip.ref, "later")
    (no,) = await press(coached, tip.ref, "no")
    assert "minder tips van dit soort" in no.text
    assert not any(k.startswith("later:") for k in await due_rows(coached))


# -- this week's action -------------------------------------------------------------------


async def test_this_weeks_action_gets_a_check_in_four_days_later(coached: App,
                                                                 clock: Clock) -> None:
    clock.now = local(2027, 4, 5, 10)  # Monday
    last = await planned(coached, clock)
    offer = next(m for m in last if (m.ref or "").startswith("commit."))
    assert offer.ref is not None
    said = await press(coached, offer.ref, offer.buttons[0].id)
    assert "Deze week:" in texts_of(said) and "vrijdag 9 april" in texts_of(said)
    check_at = next(at for key, at in (await due_rows(coached)).items()
                    if key.startswith("check_in:"))
    assert check_at == local(2027, 4, 9, 9)
    (check,) = [m for m in await tick(coached, check_at) if (m.ref or "").startswith("check.")]
    assert "Hoe ging het met je actie" in check.text
    assert [b.id for b in check.buttons] == ["done", "busy", "dropped"]
    assert check.ref is not None
    busy = await press(coached, check.ref, "busy")
    assert "nog eens" in texts_of(busy)
    assert any(k.startswith("check_in:") for k in await due_rows(coached))
    done = await press(coached, check.ref, "done")
    assert "Knap gedaan" in texts_of(done)
    (already,) = await press(coached, check.ref, "dropped")
    assert "al laten weten" in already.text


async def test_a_new_action_replaces_the_open_one_and_its_check_in(coached: App,
                                                                   clock: Clock) -> None:
    tip = await first_tip(coached, clock)
    assert tip.ref is not None
    (pinned,) = await press(coached, tip.ref, "week")
    assert pinned.notice and "📌" in pinned.text
    first = {k for k in await due_rows(coached) if k.startswith("check_in:")}
    await press(coached, tip.ref, "week")
    second = {k for k in await due_rows(coached) if k.startswith("check_in:")}
    assert len(first) == len(second) == 1 and first != second
    owner = await person_id(coached)
    async with coached.db.transaction() as tx:
        check = await coaching.commitment(
            tx, commitment_id=int(next(iter(second)).split(":")[1]), shopkeeper_id=owner)
        assert check is not None
        # Done at the check-in marks the tip it came from done too.
    (check_in,) = [m for m in await tick(coached, (await due_rows(coached))[next(iter(second))])
                   if (m.ref or "").startswith("check.")]
    assert check_in.ref is not None
    await press(coached, check_in.ref, "done")
    async with coached.db.transaction() as tx:
        sent = await coaching.sent_tip(tx, shopkeeper_id=owner,
                                       tip_id=tip.ref.removeprefix("tip."))
    assert sent is not None and sent.outcome == "done"


# -- progress -----------------------------------------------------------------------------


async def test_progress_counts_done_tips_per_theme_with_a_chart(coached: App,
                                                                clock: Clock) -> None:
    tip = await first_tip(coached, clock)
    assert tip.ref is not None
    await press(coached, tip.ref, "done")
    text, chart = await say(coached, "/progress")
    assert "✅ 1 × tip gedaan" in text.text
    assert chart.image is not None and chart.image.data.startswith(b"\x89PNG")


# -- reminders ----------------------------------------------------------------------------


async def test_someone_who_left_the_check_gets_two_reminders_at_most(coached: App,
                                                                     clock: Clock) -> None:
    recorder(coached)
    await onboard(coached)
    await say(coached, "2")  # one answer, then silence
    first = (await due_rows(coached))[next(k for k in await due_rows(coached)
                                           if k.startswith("reminder:"))]
    assert first >= clock.now + timedelta(days=2)
    (one,) = await tick(coached, first)
    assert "nog niet klaar" in one.text and one.ref == "resume"
    second = next(at for k, at in (await due_rows(coached)).items()
                  if k.startswith("reminder:"))
    assert second >= clock.now + timedelta(days=7)
    (two,) = await tick(coached, second)
    assert "Nog één seintje" in two.text
    assert not any(k.startswith("reminder:") for k in await due_rows(coached))
    resumed = await press(coached, "resume", "go")
    assert "Vraag 2 van" in texts_of(resumed)


async def test_an_answer_moves_the_reminder_and_stop_ends_it(coached: App,
                                                             clock: Clock) -> None:
    recorder(coached)
    await onboard(coached)
    first = next(at for k, at in (await due_rows(coached)).items()
                 if k.startswith("reminder:"))
    clock.now = clock.now + timedelta(days=1)
    await say(coached, "2")  # the run's last answer is now (real time) later
    assert await tick(coached, first) == []
    await say(coached, "/stop")
    assert await due_rows(coached) == {}
    assert await tick(coached, first + timedelta(days=30)) == []


# -- /stop and /start ---------------------------------------------------------------------


async def test_stop_ends_tips_check_ins_and_the_reassessment_and_start_resumes(
        coached: App, clock: Clock) -> None:
    tip = await first_tip(coached, clock)
    assert tip.ref is not None
    await press(coached, tip.ref, "week")
    assert {k.split(":")[0] for k in await due_rows(coached)} == {"tip", "check_in",
                                                                 "reassess"}
    await say(coached, "/stop")
    assert await due_rows(coached) == {}
    assert await tick(coached, clock.now + timedelta(weeks=20)) == []
    await say(coached, "/start")
    assert {k.split(":")[0] for k in await due_rows(coached)} == {"tip", "reassess"}


async def test_stop_drops_tips_that_were_queued_but_not_sent(
        coached: App, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    clock.now = local(2027, 3, 22, 10)
    await planned(coached, clock)
    # The sender is not woken: the tip stays queued (otherwise it may go before the /stop).
    monkeypatch.setattr(coached.sender, "wake", lambda: None)
    await coached.nudges.tick((await due_rows(coached))["tip"])  # recorded, not delivered
    await say(coached, "/stop")
    await coached.sender.poll()
    assert not any(m.text.startswith("💡") for m in recorder(coached).to("u1"))


# -- two processes, a crash ---------------------------------------------------------------


async def test_two_ticks_at_once_send_every_tip_once(coached: App, clock: Clock,
                                                     settings: Settings) -> None:
    clock.now = local(2027, 3, 22, 10)
    users = [f"p{i}" for i in range(6)]
    for user in users:
        await planned(coached, clock, user=user)
    at = (await due_rows(coached, users[0]))["tip"]
    other_db = Database(settings.database_url)  # a second process's connection
    other = Nudges(other_db, coached.texts, coached.nudges.library, coached.nudges.assessment,
                   coached.nudges.schedule, coached.sender, name="other")
    try:
        counts = await asyncio.gather(coached.nudges.tick(at), other.tick(at))
    finally:
        await other_db.close()
    assert sum(counts) == len(users)
    async with coached.db.transaction() as tx:
        per_person = (await tx.execute(sa.select(OUTBOX.c.external_id, sa.func.count())
                                       .where(OUTBOX.c.kind == OutboxKind.BULK)
                                       .group_by(OUTBOX.c.external_id))).all()
    assert sorted(per_person) == [(user, 1) for user in users]


async def test_a_tick_that_fails_midway_sends_nothing_and_loses_nothing(
        coached: App, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    clock.now = local(2027, 3, 22, 10)
    await planned(coached, clock)
    at = (await due_rows(coached))["tip"]
    real = coaching.record_sent

    async def crash(*args: object, **kwargs: object) -> None:
        raise ConnectionError("the database went away mid-tick")

    monkeypatch.setattr(coaching, "record_sent", crash)
    with pytest.raises(ConnectionError):
        await coached.nudges.tick(at)
    monkeypatch.setattr(coaching, "record_sent", real)
    assert (await due_rows(coached))["tip"] == at  # still due
    assert len(await tick(coached, at)) == 1
    assert await tick(coached, at + timedelta(minutes=1)) == []


# -- the re-assessment --------------------------------------------------------------------


@pytest.mark.parametrize(("lang", "change", "since"), [
    ("nl", "→", "Sindsdien: ✅ 1 × tip gedaan, 📌 0 × weekactie"),
    ("en", "→", "Since then: ✅ 1 × tip done, 📌 0 × weekly action"),
    ("fr", "→", "Depuis : ✅ 1 × conseil appliqué, 📌 0 × action")])
async def test_the_reassessment_shows_the_change_and_what_was_done(
        coached: App, clock: Clock, lang: str, change: str, since: str) -> None:
    tip = await first_tip(coached, clock)
    assert tip.ref is not None
    await press(coached, tip.ref, "done")
    if lang != "nl":
        await press(coached, "lang", lang)
    invite_at = (await due_rows(coached))["reassess"]
    assert invite_at - clock.now >= timedelta(weeks=12) - timedelta(days=1)
    (invite,) = [m for m in await tick(coached, invite_at) if m.ref == "reassess"]
    assert [b.id for b in invite.buttons] == ["go", "later"]
    clock.now = invite_at
    await press(coached, "reassess", "go")
    result = await finish_check(coached, answer="1")
    comparison = next(m for m in result if change in m.text and "(+" in m.text)
    assert since in comparison.text
    chart = next(m for m in result if m.image is not None)
    assert chart.image is not None and chart.image.data.startswith(b"\x89PNG")
    assert chart.chart is not None and chart.chart.before is not None  # both profiles
    assert chart.chart.scores == (100,) * 6 and max(chart.chart.before) < 100
    assert (await due_rows(coached))["reassess"] > invite_at + timedelta(weeks=11)


@pytest.mark.parametrize("lang", ["nl", "en", "fr"])
def test_what_a_tip_button_answers_fits_a_telegram_pop_up(lang: str) -> None:
    """A notice answers the press as a pop-up: Telegram allows 200 characters."""
    texts = Texts.load()
    longest = when_text(texts, lang, local(2027, 9, 29, 9), "afternoon")  # woensdag september
    for key in ("tip_done_ok", "tip_not_for_me_ok", "tip_later_ok", "tip_already_done",
                "tip_already_not_for_me", "tip_gone", "commit_set_short", "stale_button",
                "checkin_already"):
        assert len(texts.get(lang, key, when=longest)) <= 200, key


async def test_a_blocked_bot_keeps_the_plan_and_tips_resume_after_unblocking(
        coached: App, clock: Clock) -> None:
    clock.now = local(2027, 3, 22, 10)
    await planned(coached, clock)
    at = (await due_rows(coached))["tip"]
    await handle(coached, Inbound(CHAT, "u1", reachable=False))
    assert await tick(coached, at) == []
    assert (await due_rows(coached))["tip"] == at + timedelta(days=1)
    await handle(coached, Inbound(CHAT, "u1", reachable=True))
    assert len(await tick(coached, at + timedelta(days=1))) == 1
