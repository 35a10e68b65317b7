"""The shopkeeper's conversation on a real database (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import sqlalchemy as sa
from recording import CHAT, handle, onboard, say, texts_of

from bot.app import App, build
from bot.config import Settings
from flows.messages import Outbound, Reply
from handlers.inbound import Inbound
from storage import shopkeepers
from storage.tables import AssessmentResult, FlowSnapshot, Identity, OutboxMessage, Run, Shopkeeper


async def count(app: App, table: type) -> int:
    async with app.db.session() as session:
        return (await session.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()


async def test_onboarding_stores_the_profile_with_consent(app: App) -> None:
    last = await onboard(app)
    assert "Vraag 1 van 26" in texts_of(last)
    async with app.db.transaction() as tx:
        person = await shopkeepers.find_by_identity(tx, channel=CHAT, external_id="u1")
    assert person is not None
    assert (person.shop_name, person.municipality, person.shop_type, person.team_size) == (
        "Bakkerij Dewitte", "Kortrijk", "food", "2_4")
    assert person.consent_at is not None and person.consent_at.tzinfo is not None
    assert person.consent_version


async def test_refusing_consent_keeps_nothing(app: App) -> None:
    await say(app, "/start")
    await say(app, "1")
    goodbye = await say(app, "nee")
    assert "bewaar ik niets" in texts_of(goodbye)
    for table in (Shopkeeper, Identity, Run, OutboxMessage):
        assert await count(app, table) == 0, table.__name__


async def test_the_whole_assessment_gives_a_result_and_a_chart(app: App) -> None:
    await onboard(app)
    deliveries: list[Outbound] = []
    for _ in range(26):
        deliveries = await say(app, "1")
    words = texts_of(deliveries)
    assert "Je resultaat: 100/100 (Voorloper)" in words
    charts = [m.image for m in deliveries if m.image is not None]
    assert len(charts) == 1 and charts[0].data.startswith(b"\x89PNG\r\n\x1a\n")
    assert await count(app, AssessmentResult) == 1
    again = await say(app, "/results")
    assert "Je resultaat: 100/100" in texts_of(again)
    assert "Welkom terug" in texts_of(await say(app, "/start"))


async def test_every_message_is_in_the_outbox_and_marked_sent(app: App) -> None:
    await onboard(app)
    await app.sender.marks.flush()  # marks are written in batches, off the reply's path
    async with app.db.session() as session:
        statuses = (await session.execute(sa.select(OutboxMessage.status))).scalars().all()
    assert statuses and set(statuses) == {"sent"}


async def test_pause_then_start_resumes_at_the_same_question(app: App) -> None:
    await onboard(app)
    for answer in ("1", "2", "3"):
        await say(app, answer)
    assert "ik hou je antwoorden bij" in texts_of(await say(app, "later"))
    resumed = await say(app, "/start")
    assert "Welkom terug" in resumed[0].text
    assert resumed[-1].text.startswith("Vraag 4 van 26")


async def test_resume_after_a_restart_of_the_bot(settings: Settings) -> None:
    first = await build(settings)
    await onboard(first)
    for answer in ("1", "2", "3", "1", "2"):
        await say(first, answer)
    await first.close()

    second = await build(settings)  # a new process would do exactly this
    try:
        resumed = await say(second, "/start")
        assert resumed[-1].text.startswith("Vraag 6 van 26")
    finally:
        await second.close()


async def test_a_run_keeps_its_flow_version_when_the_file_changes(
        settings: Settings, tmp_path: Path) -> None:
    flows_dir = tmp_path / "flows"
    shutil.copytree(Path(__file__).resolve().parent.parent / "flows", flows_dir)
    first = await build(settings, flows_dir=flows_dir)
    await onboard(first)
    await say(first, "1")
    old_key = (await _open_run(first)).flow_key
    await first.close()

    path = flows_dir / "assessment.toml"
    path.write_text(path.read_text().replace(
        "Heb je het voorbije jaar je zaak bekeken", "NIEUWE VRAAG: heb je je zaak bekeken"))
    second = await build(settings, flows_dir=flows_dir)
    try:
        assert second.dispatcher.shopkeeper.flows.latest("assessment").key != old_key
        # halfway through: still the old wording, from the stored snapshot
        resumed = texts_of(await say(second, "/start"))
        assert "Heb je het voorbije jaar je zaak bekeken" in resumed
        assert "NIEUWE VRAAG" not in resumed
        # someone new gets the new version
        await onboard(second, user="u2")
        fresh = texts_of(await say(second, "1", user="u2"))
        assert "NIEUWE VRAAG" in fresh
        async with second.db.session() as session:
            assert await session.get(FlowSnapshot, old_key) is not None
    finally:
        await second.close()


async def _open_run(app: App) -> Run:
    async with app.db.session() as session:
        return (await session.execute(sa.select(Run).where(Run.status == "active"))).scalar_one()


async def test_stop_opts_out_and_start_opts_back_in(app: App) -> None:
    await onboard(app)
    assert "geen berichten meer" in texts_of(await say(app, "/stop"))
    async with app.db.transaction() as tx:
        person = await shopkeepers.find_by_identity(tx, channel=CHAT, external_id="u1")
        assert person is not None and person.opted_out_at is not None
    resumed = await say(app, "/start")
    assert resumed[-1].text.startswith("Vraag 1 van 26")
    async with app.db.transaction() as tx:
        person = await shopkeepers.find_by_identity(tx, channel=CHAT, external_id="u1")
        assert person is not None and person.opted_out_at is None


async def test_language_can_change_mid_assessment(app: App) -> None:
    await onboard(app)
    prompt = (await say(app, "/language"))[0]
    assert [b.id for b in prompt.buttons] == ["nl", "en", "fr"]
    inbound = Inbound(CHAT, "u1", reply=Reply(choice="fr", ref=prompt.ref))
    switched = await handle(app, inbound)
    assert switched[0].text == "D'accord, on continue en français."
    assert switched[-1].text.startswith("Question 1 sur 26")


async def test_unknown_commands_and_unexpected_text_get_a_friendly_pointer(app: App) -> None:
    assert "/help" in texts_of(await say(app, "/dance"))
    await onboard(app)
    for _ in range(26):
        await say(app, "2")
    [answer] = await say(app, "wat nu? 🤔")  # outside the check: a question to the coach
    assert "/help" in answer.text and answer.buttons[0].label == "💬 Spreek met een coach"


async def test_language_hint_picks_the_first_language(settings: Settings) -> None:
    app = await build(replace(settings))
    try:
        first = await say(app, "/start", "fr-user", language_hint="fr-BE")
        assert "Je suis KI:SS Coach" in first[0].text
    finally:
        await app.close()


async def test_a_button_from_an_earlier_run_is_stale(app: App) -> None:
    await onboard(app)
    question = (await say(app, "/restart"))[-1]
    old = (await say(app, "/restart"))[-1]
    assert old.ref != question.ref  # same question, same step, but another run
    press = Inbound(CHAT, "u1", reply=Reply(choice=question.buttons[0].id, ref=question.ref))
    [notice] = await handle(app, press)
    assert notice.notice and "oudere vraag" in notice.text
