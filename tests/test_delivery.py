"""One way in, one way out: the inbox, the dispatcher and the outbox sender on a real
database, through a recording channel that can fail sends with any outcome."""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from recording import CHAT, handle, inbound, onboard, reading, recorder, say, texts_of, update

from bot.app import App, build
from bot.config import Settings
from bot.delivery.outcomes import MaybeDelivered, NotDelivered, Refused, Unreachable
from bot.delivery.sender import DeliverySettings
from storage import inbox, outbox, shopkeepers
from storage.tables import INBOX, OUTBOX, OutboxStatus, utcnow


async def statuses(app: App) -> list[str]:
    await app.sender.settled()
    async with app.db.transaction() as tx:
        rows = await tx.execute(sa.select(OUTBOX.c.status).order_by(OUTBOX.c.id))
        return [str(status) for status in rows.scalars()]


async def retry_due(app: App) -> int:
    """Make every errored row due now and poll: what the scheduler does a moment later."""
    async with app.db.transaction() as tx:
        await tx.execute(sa.update(OUTBOX).where(OUTBOX.c.status == OutboxStatus.ERRORED)
                         .values(next_attempt_at=utcnow()))
    return await app.sender.poll()


async def test_a_reply_that_surely_did_not_arrive_is_retried_and_the_journey_goes_on(
        app: App) -> None:
    channel = recorder(app)
    await onboard(app)
    channel.faults.append(NotDelivered("502 Bad Gateway"))
    assert await say(app, "1") == []  # the next question did not go out
    assert "errored" in await statuses(app)
    assert await retry_due(app) >= 1
    assert channel.to("u1")[-1].text.startswith("Vraag 2 van 26")
    await say(app, "1")
    assert channel.to("u1")[-1].text.startswith("Vraag 3 van 26")  # nothing skipped
    assert set(await statuses(app)) == {"sent"}


async def test_retries_back_off_and_give_up_with_the_reason(settings: Settings) -> None:
    app = await build(replace(settings, delivery=DeliverySettings(max_attempts=3)))
    app.sender.jitter = lambda: 0.5  # the middle of the jitter range: exact delays
    try:
        channel = recorder(app)
        channel.faults.extend(NotDelivered("503") for _ in range(3))
        before = utcnow()
        await say(app, "/help")
        async with app.db.transaction() as tx:
            due = (await tx.execute(sa.select(OUTBOX.c.next_attempt_at))).scalar_one()
        assert timedelta(seconds=0.9) < due - before < timedelta(seconds=1.5)  # 1 s, then 2 s
        await retry_due(app)
        await retry_due(app)
        async with app.db.transaction() as tx:
            status, error, attempts = (await tx.execute(
                sa.select(OUTBOX.c.status, OUTBOX.c.error, OUTBOX.c.attempts))).one()
        assert (status, attempts) == ("failed", 3) and "503 (after 3 attempts)" in error
        assert channel.attempts == 3
    finally:
        await app.close()


async def test_a_refused_message_fails_at_once_and_a_blocked_person_is_unreachable(
        app: App) -> None:
    channel = recorder(app)
    await say(app, "/start")
    before = channel.attempts
    channel.faults.append(Refused("Bad Request: message is too long"))
    await say(app, "/help")
    assert (await statuses(app))[-1] == "failed"
    channel.faults.append(Unreachable("Forbidden: bot was blocked by the user"))
    await say(app, "/privacy")
    async with app.db.transaction() as tx:
        person = await shopkeepers.find_by_identity(tx, channel=CHAT, external_id="u1")
    assert person is not None and person.unreachable_since is not None
    assert person.opted_out_at is None  # the platform's fact, not the person's wish
    assert channel.attempts == before + 2  # one try each, never retried


async def test_uncertain_replies_are_not_resent_and_an_old_tap_asks_again(app: App) -> None:
    channel = recorder(app)
    await onboard(app)
    question_1 = channel.to("u1")[-1]
    channel.faults.append(MaybeDelivered("read timed out"))
    await handle(app, replace(inbound("1"), reply=replace(
        inbound("1").reply, choice=question_1.buttons[0].id, ref=question_1.ref, text=None)))
    assert (await statuses(app))[-1] == "uncertain"
    assert await app.sender.poll() == 0  # never resent on its own
    # The person never saw question 2 and taps question 1 again: question 2 comes back.
    again = await handle(app, replace(inbound("1"), reply=replace(
        inbound("1").reply, choice=question_1.buttons[0].id, ref=question_1.ref, text=None)))
    assert again[0].notice and again[-1].text.startswith("Vraag 2 van 26")


async def test_uncertain_replies_are_resent_once_with_a_note_when_configured(
        settings: Settings) -> None:
    delivery = DeliverySettings(resend_uncertain_replies=True)
    app = await build(replace(settings, delivery=delivery))
    try:
        channel = recorder(app)
        channel.faults.append(MaybeDelivered("connection reset"))
        await say(app, "/help")
        assert await statuses(app) == ["queued"]
        await app.sender.poll()
        assert channel.to("u1")[-1].text.startswith("(Opnieuw verstuurd")
        assert "Dit kan ik" in channel.to("u1")[-1].text
        channel.faults.extend([MaybeDelivered("reset"), MaybeDelivered("reset again")])
        await say(app, "/privacy")
        await app.sender.poll()
        assert await app.sender.poll() == 0  # resent once, uncertain again: that is all
        assert await statuses(app) == ["sent", "uncertain"]
    finally:
        await app.close()


async def test_a_chats_messages_wait_for_an_earlier_one_that_is_retried(
        settings: Settings) -> None:
    app = await build(replace(settings, delivery=DeliverySettings(backoff_base=60)))
    try:
        channel = recorder(app)
        channel.faults.append(NotDelivered("502"))
        await say(app, "/help")
        await say(app, "/privacy")  # recorded behind the errored /help answer: queued
        assert await app.sender.poll() == 0  # /help's retry is not due, so nothing goes
        await retry_due(app)
        assert [m.text[:12] for m in channel.to("u1")] == ["Dit kan ik v", "🔒 Privacy bi"]
    finally:
        await app.close()


async def test_a_crash_leaves_nothing_sending_and_nothing_received_unhandled(
        settings: Settings) -> None:
    """The state a SIGKILL leaves (built by hand, so every case is certain), then a start."""
    first = await build(settings)
    reading(first)
    await say(first, "/start", "sent-before")
    async with first.db.transaction() as tx:
        # Received and stored, never handled (killed between storing and processing).
        await inbox.store(tx, channel=CHAT, updates=[update(900, "waiting", "/start")])
        person, _ = await shopkeepers.find_or_create(tx, channel=CHAT, external_id="mid",
                                                     language="nl")
        lease = utcnow() + timedelta(minutes=5)  # still running, as far as the rows say
        [_claimed] = await outbox.record(tx, shopkeeper_id=person.id, channel=CHAT,
                                        external_id="mid", payloads=[{"text": "claimed"}],
                                        sending_until=lease, claimed_by="dead:1")
        [sending] = await outbox.record(tx, shopkeeper_id=person.id, channel=CHAT,
                                        external_id="mid2", payloads=[{"text": "mid-send"}],
                                        sending_until=lease, claimed_by="dead:1")
        await outbox.mark_sending(tx, message_id=sending)
    await first.sender.settled()
    await first.db.close()  # no graceful close of the rest: that is what a kill skips

    second = await build(settings)
    try:
        channel = reading(second)
        await second.start()
        await second.inbox.idle()
        await second.sender.settled()
        await second.sender.poll()
        assert [m.text for m in channel.to("mid")] == ["claimed"]  # never tried: sent now
        assert channel.to("mid2") == []  # may have arrived: not sent twice
        assert channel.to("sent-before") == []  # sent before the crash: not again
        assert "In welke taal" in texts_of(channel.to("waiting"))
        async with second.db.transaction() as tx:
            left = (await tx.execute(sa.select(OUTBOX.c.status).where(
                OUTBOX.c.status.in_(("claimed", "sending"))))).all()
            pending = (await tx.execute(sa.select(INBOX.c.id).where(
                INBOX.c.status == "pending"))).all()
        assert left == [] and pending == []
    finally:
        await second.close()


async def test_stop_then_block_then_unblock_stays_opted_out(app: App) -> None:
    reading(app)
    await onboard(app)
    await say(app, "/stop")
    for seq, reachable in ((1, False), (2, True)):
        await app.inbox.receive(CHAT, [replace(update(seq, "u1", ""), payload={
            "user": "u1", "reachable": reachable})])
        await app.inbox.idle()
    async with app.db.transaction() as tx:
        person = await shopkeepers.find_by_identity(tx, channel=CHAT, external_id="u1")
    assert person is not None
    assert person.opted_out_at is not None and person.unreachable_since is None


async def test_quick_taps_are_answered_one_after_the_other_in_order(app: App) -> None:
    channel = recorder(app)
    await onboard(app)
    # Five answers at once (a double tap, a fast thumb): each one answers the next question.
    await asyncio.gather(*(app.dispatcher.handle(inbound(answer))
                           for answer in ("1", "2", "3", "1", "2")))
    assert channel.to("u1")[-1].text.startswith("Vraag 6 van 26")
    asked = [m.text.split("\n")[0] for m in channel.to("u1") if m.text.startswith("Vraag")]
    assert asked == [f"Vraag {n} van 26" for n in range(1, 7)]


async def test_an_unreadable_update_is_skipped_and_holds_up_nobody(app: App) -> None:
    channel = reading(app)
    await app.inbox.receive(CHAT, [replace(update(1, "u1", "/start"), payload={"oops": 1}),
                                   update(2, "u1", "/help"), update(3, "u2", "/start")])
    await app.inbox.idle()
    assert "Dit kan ik" in texts_of(channel.to("u1"))
    assert "In welke taal" in texts_of(channel.to("u2"))
    async with app.db.transaction() as tx:
        counts = await inbox.counts(tx)
    assert counts == {"poison": 1, "done": 2}


async def test_a_redelivered_update_is_handled_once(app: App) -> None:
    channel = reading(app)
    for _ in range(2):
        await app.inbox.receive(CHAT, [update(77, "u1", "/start")])
        await app.inbox.idle()
    assert len([m for m in channel.to("u1") if "In welke taal" in m.text]) == 1


async def test_a_refusal_leaves_no_row_that_mentions_the_person(app: App) -> None:
    """Onboarding is the flow with a refusal; every table is searched for the person."""
    channel = reading(app)
    for seq, text in enumerate(("/start", "1", "nee"), start=1):
        await app.inbox.receive(CHAT, [update(seq, "refuser-42", text)])
        await app.inbox.idle()
    await app.sender.settled()
    assert "bewaar ik niets" in texts_of(channel.to("refuser-42"))
    async with app.db.transaction() as tx:
        names = await tx.run_sync(lambda c: sa.inspect(c).get_table_names())
        for name in names:
            rows = (await tx.execute(sa.text(f'SELECT * FROM "{name}"'))).all()
            assert not any("refuser-42" in str(row) for row in rows), name
            if name in ("shopkeeper", "identity", "run", "outbox", "inbox"):
                assert rows == [], name


async def test_sent_marks_survive_a_database_error(app: App) -> None:
    marks = app.sender.marks
    marks.pending[123456] = None
    real = app.db.transaction

    def broken() -> object:
        raise OSError("the database went away")

    app.db.transaction = broken  # type: ignore[method-assign]
    assert not await marks.flush()
    assert 123456 in marks.pending  # kept for the next flush
    app.db.transaction = real  # type: ignore[method-assign]
    assert await marks.flush() and not marks.pending


async def test_a_dead_chart_painter_is_replaced_and_the_result_still_goes_out(
        app: App) -> None:
    channel = recorder(app)
    await onboard(app)
    for _ in range(24):
        await say(app, "2")
    await app.painter.warm()
    pid = app.painter.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await say(app, "2")
    await say(app, "2")  # the last answer: the result, whose chart the dead painter owes
    words = texts_of(channel.to("u1"))
    assert "Je resultaat" in words  # the text went out without waiting for the chart
    await retry_due(app)  # the chart follows when the (new) painter draws it
    assert any(m.image is not None for m in channel.to("u1"))
    assert app.painter.pid() not in (None, pid)


async def test_a_second_process_on_one_sqlite_file_is_refused(
        settings: Settings, tmp_path: Path) -> None:
    from storage.sqlite_guard import AlreadyServingError

    settings = replace(settings, database_url=f"sqlite:///{tmp_path / 'one.sqlite3'}")
    app = await build(settings)
    try:
        with pytest.raises(AlreadyServingError, match="PostgreSQL"):
            await build(settings)
    finally:
        await app.close()


async def test_a_result_that_may_not_have_arrived_comes_back_on_a_tap(app: App) -> None:
    channel = recorder(app)
    await onboard(app)
    for _ in range(25):
        await say(app, "2")
    last_question = channel.to("u1")[-1]
    channel.faults.append(MaybeDelivered("connection reset"))  # the result's first message
    await say(app, "2")
    await app.sender.poll()  # the rest of the result goes out; its first message is missing
    assert "Je resultaat" not in texts_of(channel.to("u1"))
    tap = replace(inbound("2"), reply=replace(inbound("2").reply, text=None,
                                              choice=last_question.buttons[0].id,
                                              ref=last_question.ref))
    again = await handle(app, tap)
    assert again[0].notice and "Je resultaat" in texts_of(again)
