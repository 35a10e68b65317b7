"""Privacy in chat: the notice, /mydata, /delete (and that it leaves no trace anywhere),
/stop, and the configuration of the controller's details."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from recording import CHAT, handle, recorder, say

from bot.app import App, build
from bot.config import ConfigError, Settings
from flows.messages import Outbound, Reply
from handlers.inbound import Inbound
from handlers.privacy import FILE_NAME, Privacy
from handlers.turn import Turn
from storage import (
    audit,
    broadcasts,
    due,
    inbox,
    invites,
    media,
    outbox,
    roles,
    senders,
    shopkeepers,
)
from storage.inbox import Received
from storage.tables import (
    AUDIT,
    BROADCAST,
    BROADCAST_DRAFT,
    COACHING_PLAN,
    COMMITMENT,
    MEDIA,
    PERSON_ROLE,
    TIP_SENT,
    DueKind,
    Role,
)

ROOT = Path(__file__).resolve().parent.parent
#: Distinctive, so a match in the scan is surely this person and not a coincidence.
CHAT_ID = "4815162342"
SHOP = "Bakkerij Zwanenveld"
FIRST_NAME = "Hildegonde"


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[App]:
    app = await build(settings)
    recorder(app)
    yield app
    await app.close()


async def onboarded(app: App, user: str = CHAT_ID, shop: str = SHOP) -> int:
    """Onboard ``user`` (consent given) and finish the check; returns their id."""
    for answer in ("/start", "Nederlands", "ja", shop, "Kortrijk", "voeding", "2"):
        await say(app, answer, user)
    for _ in range(30):
        if any(m.image is not None or m.chart is not None for m in await say(app, "2", user)):
            break
    else:
        raise AssertionError("the check did not end")
    return await person_of(app, user)


async def person_of(app: App, user: str) -> int:
    async with app.db.transaction() as tx:
        found = await shopkeepers.find_by_identity(tx, channel=CHAT, external_id=user)
    assert found is not None
    return found.id


async def command(app: App, user: str, name: str) -> list[Outbound]:
    """What the shopkeeper's side answers to ``/name`` (the handler, not the delivery)."""
    async with app.db.transaction() as tx:
        person, run = await shopkeepers.find_with_open_run(tx, channel=CHAT, external_id=user)
        assert person is not None
        turn = Turn(tx, person, run, person.language)
        return await app.dispatcher.shopkeeper.command(turn, name, "")


async def everything_else_about(app: App, person: int, other: int) -> None:
    """Give ``person`` a trace in every table that can hold one: a coaching plan, due rows,
    tips and an action, a coach role (granted, and granting one to ``other``), invites, a
    broadcast and a draft with a picture, received updates, a rate-limit pause, and a note
    to an admin that names their address."""
    now = datetime.now(UTC)
    address = f"{CHAT}:{CHAT_ID}"
    async with app.db.transaction() as tx:
        await tx.execute(sa.insert(COACHING_PLAN).values(
            shopkeeper_id=person, cadence="weekly", moment="morning", updated_at=now))
        await due.plan(tx, shopkeeper_id=person, kind=DueKind.TIP, at=now + timedelta(days=2))
        await tx.execute(sa.insert(TIP_SENT).values(
            shopkeeper_id=person, tip_id="bel-01", theme="beleving", kind="etalage",
            sent_at=now, outcome="done", outcome_at=now))
        await tx.execute(sa.insert(COMMITMENT).values(
            shopkeeper_id=person, source="tip:bel-01", what=f"Etalage van {SHOP} vernieuwen",
            chosen_at=now))
        await roles.grant(tx, shopkeeper_id=person, role=Role.COACH, by="cli:test")
        await roles.grant(tx, shopkeeper_id=other, role=Role.COACH, by=address)
        await invites.create(tx, role=Role.COACH, via=address, created_by=person)
        used = await invites.create(tx, role=Role.ADMIN, via="cli:test")
        assert await invites.redeem(tx, code=used, shopkeeper_id=person) is Role.ADMIN
        shared = await media.put(tx, data=b"\x89PNG shared", content_type="image/png",
                                 name="affiche.png")
        await broadcasts.create(tx, created_by=person, created_via=address,
                                texts={"nl": "Koopavond vrijdag"}, segment={}, urgent=False,
                                send_at=now, now=now)
        await tx.execute(sa.update(BROADCAST).values(media_id=shared))
        mine = await media.put_platform(tx, channel=CHAT, platform_id=f"file-of-{CHAT_ID}",
                                        unique_id=f"photo-of-{CHAT_ID}")
        await tx.execute(sa.insert(BROADCAST_DRAFT).values(
            shopkeeper_id=person, step="text", texts={"nl": f"Groeten van {SHOP}"},
            segment={}, media_id=mine, urgent=False, updated_at=now))
        await inbox.store(tx, channel=CHAT, updates=[Received(
            key="900001", chat=CHAT_ID, seq=900001,
            payload={"user": CHAT_ID, "text": "hallo", "first_name": FIRST_NAME})])
        await senders.pause(tx, scope=address, until=now + timedelta(hours=1))
        await outbox.record(tx, shopkeeper_id=other, channel=CHAT, external_id="admin",
                            payloads=[{"text": f"A turn of {address} failed"}])


def scan(connection: sa.Connection, person: int) -> list[tuple[str, str, str]]:
    """Every (table, column, value) in the whole database, read from the schema itself,
    that names the person: their chat id, shop name or first name anywhere, or their
    internal id in a column that points at a person."""
    schema = sa.MetaData()
    schema.reflect(connection)
    found = []
    for table in schema.sorted_tables:
        pointing = {key.parent.name for key in table.foreign_keys
                    if key.column.table.name == "shopkeeper"}
        if table.name == "shopkeeper":
            pointing.add("id")
        for row in connection.execute(sa.select(table)).mappings():
            for column, value in row.items():
                if isinstance(value, bytes | memoryview):
                    text = bytes(value).decode("latin-1")
                elif isinstance(value, dict | list):
                    text = json.dumps(value, ensure_ascii=False)
                else:
                    text = str(value)
                if any(needle in text for needle in (CHAT_ID, SHOP, FIRST_NAME)) or (
                        column in pointing and value == person):
                    found.append((table.name, column, text[:60]))
    return found


async def trace(app: App, person: int) -> list[tuple[str, str, str]]:
    async with app.db.transaction() as tx:
        return await tx.run_sync(lambda connection: scan(connection, person))


async def erase_by_chat(app: App, user: str = CHAT_ID) -> list[Outbound]:
    question = await say(app, "/delete", user)
    assert [b.label for b in question[-1].buttons] == ["Ja, wis alles", "Nee"]
    ref = question[-1].ref
    assert ref is not None
    return await handle(app, Inbound(CHAT, user, reply=Reply(choice="yes", ref=ref)))


# -- /delete ------------------------------------------------------------------------------


async def test_delete_leaves_no_trace_of_the_person_in_any_table_or_column(app: App) -> None:
    person = await onboarded(app)
    other = await onboarded(app, "u2", "Slagerij Vandamme")
    await everything_else_about(app, person, other)
    before = await trace(app, person)
    assert {table for table, _, _ in before} >= {
        "shopkeeper", "identity", "run", "assessment_result", "outbox", "inbox", "due",
        "tip_sent", "commitment", "coaching_plan", "person_role", "menu_sync", "invite",
        "broadcast", "broadcast_draft", "media", "rate_pause"}

    goodbye = await erase_by_chat(app)

    assert "ik heb al je gegevens gewist" in goodbye[-1].text
    # Only the audit trail still names them: as who granted u2's role (what staff did is
    # kept for accountability, see the next test).
    assert [(table, column) for table, column, _ in await trace(app, person)] == [
        ("audit", "actor")]
    async with app.db.transaction() as tx:
        entries = await audit.entries(tx)
    assert {e.action for e in entries if e.actor != "self"} == {"role_grant"}
    async with app.db.transaction() as tx:
        kept = (await tx.execute(sa.select(sa.func.count()).select_from(MEDIA))).scalar()
        others_role = (await tx.execute(sa.select(PERSON_ROLE.c.granted_by).where(
            PERSON_ROLE.c.shopkeeper_id == other))).scalar()
        still = await shopkeepers.find_by_identity(tx, channel=CHAT, external_id="u2")
    # The erasure is audited without a name: who did it ("self") and counts per table.
    [entry] = [e for e in entries if e.action == "erase"]
    assert entry.actor == "self" and entry.detail["reason"] == "request"
    assert entry.detail["rows"]["shopkeeper"] == 1 and entry.detail["rows"]["run"] >= 2
    # What belonged to others stays: the shared picture, the role u2 was given, u2.
    assert kept == 1 and others_role == "erased"
    assert still is not None and still.shop_name == "Slagerij Vandamme"


async def test_delete_asks_first_and_no_keeps_everything(app: App) -> None:
    person = await onboarded(app)
    question = await say(app, "/delete", CHAT_ID)
    assert "echt al je gegevens" in question[-1].text
    assert question[-1].ref is not None
    answer = await handle(app, Inbound(CHAT, CHAT_ID,
                                       reply=Reply(choice="no", ref=question[-1].ref)))
    assert answer[-1].text.startswith("Oké, ik wis niets")
    assert await person_of(app, CHAT_ID) == person


async def test_an_old_erasure_question_erases_nothing(settings: Settings) -> None:
    from recording import Clock
    clock = Clock(datetime.now(UTC))
    app = await build(settings, clock=clock)
    try:
        recorder(app)
        person = await onboarded(app)
        question = await say(app, "/delete", CHAT_ID)
        clock.now += timedelta(days=2)
        answer = await handle(app, Inbound(CHAT, CHAT_ID,
                                           reply=Reply(choice="yes", ref=question[-1].ref)))
        assert "verlopen" in answer[-1].text
        assert await person_of(app, CHAT_ID) == person
    finally:
        await app.close()


async def test_an_erasure_that_fails_halfway_erases_nothing(
        app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """One transaction: the audit entry is written last; when it fails, every delete
    before it is rolled back."""
    person = await onboarded(app)

    async def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(audit, "record", broken)
    await erase_by_chat(app)
    assert await person_of(app, CHAT_ID) == person
    assert {table for table, _, _ in await trace(app, person)} >= {"run", "assessment_result"}


async def test_a_count_drops_after_an_erasure(app: App) -> None:
    await onboarded(app)
    await onboarded(app, "u2", "Slagerij Vandamme")
    async with app.db.transaction() as tx:
        assert (await shopkeepers.reach(tx))["consented"] == 2
    await erase_by_chat(app)
    async with app.db.transaction() as tx:
        assert (await shopkeepers.reach(tx))["consented"] == 1


async def test_a_staff_members_audit_entries_outlive_their_erasure(app: App) -> None:
    """The audit trail says who exported data even after that admin erased themselves
    (accountability): the one place their address stays, by design."""
    person = await onboarded(app)
    async with app.db.transaction() as tx:
        await audit.record(tx, actor=f"{CHAT}:{CHAT_ID}", action="export",
                           detail={"what": "answers"})
    await erase_by_chat(app)
    assert [(table, column) for table, column, _ in await trace(app, person)] == [
        ("audit", "actor")]
    async with app.db.transaction() as tx:
        actions = (await tx.execute(sa.select(AUDIT.c.action).order_by(AUDIT.c.id))).scalars()
        assert list(actions) == ["export", "erase"]


async def test_after_an_erasure_start_is_a_new_beginning(app: App) -> None:
    person = await onboarded(app)
    await erase_by_chat(app)
    assert await trace(app, person) == []
    again = await say(app, "/start", CHAT_ID)
    assert "KI:SS Coach" in again[0].text  # the welcome of onboarding
    async with app.db.transaction() as tx:
        fresh = await shopkeepers.find_by_identity(tx, channel=CHAT, external_id=CHAT_ID)
    assert fresh is not None and fresh.consent_at is None and fresh.shop_name is None


# -- /stop and /mydata --------------------------------------------------------------------


async def test_stop_keeps_the_data_and_points_to_delete(app: App) -> None:
    person = await onboarded(app)
    stopped = await say(app, "/stop", CHAT_ID)
    assert "blijven bewaard" in stopped[-1].text and "/delete" in stopped[-1].text
    assert await person_of(app, CHAT_ID) == person


async def test_mydata_is_a_json_file_of_everything_about_the_person_only(app: App) -> None:
    person = await onboarded(app)
    other = await onboarded(app, "u2", "Slagerij Vandamme")
    await everything_else_about(app, person, other)

    [message] = await command(app, CHAT_ID, "mydata")

    assert message.document is not None
    assert message.document.name == FILE_NAME
    assert message.document.content_type == "application/json"
    assert "alles wat ik over je bewaar" in message.text
    copy = json.loads(message.document.data)
    data = copy["data"]
    assert data["shopkeeper"][0]["shop_name"] == SHOP
    assert data["shopkeeper"][0]["consent_version"] == copy["privacy_notice_version"]
    assert [i["external_id"] for i in data["identity"]] == [CHAT_ID]
    assert {r["flow_id"] for r in data["run"]} == {"onboarding", "assessment"}
    assert data["assessment_result"][0]["overall"] >= 0
    assert data["tip_sent"][0]["outcome"] == "done"
    assert data["commitment"][0]["what"].endswith(SHOP + " vernieuwen")
    assert {r["role"] for r in data["person_role"]} == {"coach", "admin"}
    assert data["inbox"][0]["payload"]["first_name"] == FIRST_NAME
    assert {r["status"] for r in data["outbox"]} <= {"sent", "claimed", "sending", "queued"}
    assert all(r["external_id"] == CHAT_ID for r in data["outbox"]
               if r["shopkeeper_id"] == person)
    assert len(data["broadcast"]) == 1 and len(data["broadcast_draft"]) == 1
    assert len(data["invite"]) == 2  # one made, one used
    assert data["media"][0]["data"] is None  # the picture of their draft, without bytes
    # Nothing of the other person, apart from the role this person granted them.
    text = message.document.data.decode()
    assert "Slagerij Vandamme" not in text
    assert [r["shopkeeper_id"] for r in data["person_role"] if r["shopkeeper_id"] != person
            ] == [other]


async def test_mydata_goes_out_as_a_document(app: App) -> None:
    await onboarded(app)
    [message] = await say(app, "/mydata", CHAT_ID)
    assert message.document is not None and message.document.name == FILE_NAME


# -- the notice ---------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["nl", "en", "fr"])
async def test_the_notice_says_who_why_what_how_long_and_the_rights(app: App,
                                                                    lang: str) -> None:
    notice = app.dispatcher.shopkeeper.privacy.notice(lang).text
    assert len(notice) <= 4096
    assert "KERNpunt" in notice and "Leiedal" in notice and "UNIZO" in notice
    assert "privacy@kernpunt.be" in notice
    assert "24" in notice and "30" in notice  # months inactive, days to answer
    for command_name in ("/mydata", "/delete", "/stop"):
        assert command_name in notice
    assert "GBA" in notice and "5" in notice  # the authority; groups of at least 5
    assert all(len(paragraph) < 600 for paragraph in notice.split("\n\n"))


async def test_privacy_shows_the_notice(app: App) -> None:
    [notice] = await say(app, "/privacy", "u9")
    assert notice.text.startswith("🔒 Privacy bij KI:SS Coach")
    assert "Gegevensbeschermingsautoriteit" in notice.text


def test_the_controllers_details_and_periods_come_from_config(tmp_path: Path) -> None:
    shipped = (ROOT / "config.toml").read_text(encoding="utf-8")
    settings = Settings.load(ROOT / "config.toml", environ={})
    assert settings.privacy.inactive_after == timedelta(days=730)
    assert settings.privacy.controller["nl"].startswith("de Provincie West-Vlaanderen")
    moved = Settings.load(ROOT / "config.toml", environ={
        "KISS_RETENTION_INACTIVE_AFTER": "6 months", "KISS_PRIVACY_CONTACT": "dpo@example.be",
        "KISS_RETENTION_ERASE_AFTER_NOTICE": "2w"})
    assert moved.privacy.inactive_after == timedelta(days=183)
    assert moved.privacy.erase_after_notice == timedelta(days=14)
    assert moved.privacy.contact == "dpo@example.be"
    other = tmp_path / "other.toml"
    other.write_text(shipped.replace('controller = { nl = "de Provincie West-Vlaanderen',
                                     'controller = { nl = "De Stad Brugge'), encoding="utf-8")
    assert Settings.load(other, environ={}).privacy.controller["nl"].startswith("De Stad")
    with pytest.raises(ConfigError, match="contact"):
        Settings.load(ROOT / "config.toml", environ={"KISS_PRIVACY_CONTACT": "nobody"})
    with pytest.raises(ConfigError, match="inactive_after"):
        Settings.load(ROOT / "config.toml", environ={"KISS_RETENTION_INACTIVE_AFTER": "24"})


async def test_a_configured_controller_is_named_in_the_notice(settings: Settings) -> None:
    privacy = Privacy(controller={"nl": "de Stad Brugge"}, contact="dpo@brugge.be",
                      inactive_after=timedelta(days=365))
    app = await build(replace(settings, privacy=privacy))
    try:
        [notice] = await say(app, "/privacy", "u9")
        assert "de Stad Brugge" in notice.text and "dpo@brugge.be" in notice.text
        assert "12 maanden" in notice.text
    finally:
        await app.close()


# -- before consent -----------------------------------------------------------------------


async def test_before_consent_only_a_chat_id_and_a_language_are_kept(app: App) -> None:
    """Even a poster's municipality (``/start kortrijk``) waits in the conversation's state
    and only becomes part of the profile with consent."""
    await say(app, "/start kortrijk", "u5")
    await say(app, "English", "u5")
    async with app.db.transaction() as tx:
        person = await shopkeepers.find_by_identity(tx, channel=CHAT, external_id="u5")
    assert person is not None
    assert (person.language, person.consent_at, person.shop_name, person.municipality,
            person.shop_type, person.team_size) == ("en", None, None, None, None, None)
    await say(app, "yes", "u5")
    asked = await say(app, "Bakkerij Dewitte", "u5")
    assert "What kind of shop" in asked[-1].text  # the municipality came with the poster
    async with app.db.transaction() as tx:
        person = await shopkeepers.find_by_identity(tx, channel=CHAT, external_id="u5")
    assert person is not None and person.municipality == "Kortrijk"
