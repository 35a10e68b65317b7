"""One-time invites to a role: made by an admin (/invite) or the command line, redeemed by
``/start invite_<code>`` once, within 7 days; a spent, expired or unknown code gets one and
the same kind answer."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from recording import CHAT, recorder, say, texts_of

from bot import cli
from bot.app import App, build
from bot.config import Settings
from flows.definition import LANGUAGES
from flows.texts import Texts
from handlers.admin import AdminDesk
from storage import audit, invites, roles, shopkeepers
from storage.database import Database
from storage.tables import INVITE, PERSON_ROLE, Role, utcnow

STARTED = re.compile(r"/start (invite_[A-Za-z0-9_-]+)")


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[App]:
    app = await build(settings)
    recorder(app)
    async with app.db.transaction() as tx:
        admin, _ = await shopkeepers.find_or_create(tx, channel=CHAT, external_id="admin",
                                                    language="nl")
        await roles.grant(tx, shopkeeper_id=admin.id, role=Role.ADMIN, by="test")
    yield app
    await app.close()


async def roles_of(app: App, user: str) -> frozenset[Role]:
    async with app.db.transaction() as tx:
        person = await shopkeepers.find_by_identity(tx, channel=CHAT, external_id=user)
        return await roles.of(tx, shopkeeper_id=person.id) if person else frozenset()


async def invite(app: App, role: str) -> str:
    """The /start payload of a new invite, made by the admin in their chat."""
    [answer] = await say(app, f"/invite {role}", "admin")
    found = STARTED.search(answer.text)
    assert found is not None, answer.text
    return found.group(1)


def desk(app: App) -> AdminDesk:
    admin = app.dispatcher.desks[Role.ADMIN]
    assert isinstance(admin, AdminDesk)
    return admin


async def test_an_invite_gives_its_role_once(app: App, texts: Texts) -> None:
    payload = await invite(app, "coach")
    code = payload.removeprefix("invite_")
    assert len(code) >= 22 and len(payload) <= 64  # ≥ 128 bits; a /start payload's limit

    answer = texts_of(await say(app, f"/start {payload}", "newcoach"))
    assert "Je bent nu coach" in answer and "/reach" in answer and "/roles" not in answer
    assert await roles_of(app, "newcoach") == {Role.COACH}
    async with app.db.transaction() as tx:
        granted = await roles.everyone(tx)
        waiting = await roles.menus_to_sync(tx, channel=CHAT)
    assert (CHAT, "newcoach", Role.COACH, f"invite:{CHAT}:admin") in granted
    assert "newcoach" in [ext for _, ext, _, _ in waiting]  # their menu is set again

    spent = texts.get("nl", "invite_spent")
    assert texts_of(await say(app, f"/start {payload}", "other")) == spent
    assert await roles_of(app, "other") == frozenset()
    assert texts_of(await say(app, f"/start {payload}", "newcoach")) == spent


async def test_an_admin_invite_names_both_desks(app: App) -> None:
    payload = await invite(app, "admin")
    answer = texts_of(await say(app, f"/start {payload}", "second", language_hint="en"))
    assert "You now have the admin role" in answer
    assert "/reach" in answer and "/roles" in answer and "/invite" in answer
    assert await roles_of(app, "second") == {Role.ADMIN}


async def test_with_the_bots_username_the_admin_gets_a_link(app: App) -> None:
    desk(app).bot_username = "KissCoachBot"
    [answer] = await say(app, "/invite coach", "admin")
    link = re.search(r"https://t\.me/KissCoachBot\?start=(invite_[A-Za-z0-9_-]{32})\b",
                     answer.text)
    assert link is not None, answer.text
    await say(app, f"/start {link.group(1)}", "viaLink")
    assert await roles_of(app, "viaLink") == {Role.COACH}


async def test_expired_unknown_and_malformed_codes_get_the_same_answer(
        app: App, texts: Texts) -> None:
    async with app.db.transaction() as tx:
        old = await invites.create(tx, role=Role.COACH, via="test",
                                   now=utcnow() - timedelta(days=7, seconds=1))
    spent = texts.get("nl", "invite_spent")
    for payload in (f"invite_{old}", "invite_doesNotExist123", "invite_", "invite_a b",
                    "invite_" + "x" * 70, "invite_'; drop table invite; --"):
        assert texts_of(await say(app, f"/start {payload}", "stranger")) == spent, payload
    assert await roles_of(app, "stranger") == frozenset()


async def test_a_code_expires_after_seven_days(db: Database) -> None:
    made = utcnow()
    async with db.transaction() as tx:
        person, _ = await shopkeepers.find_or_create(tx, channel=CHAT, external_id="p",
                                                     language="nl")
        code = await invites.create(tx, role=Role.COACH, via="test", now=made)
        late = made + invites.LIFETIME
        assert await invites.redeem(tx, code=code, shopkeeper_id=person.id, now=late) is None
        in_time = late - timedelta(seconds=1)
        assert await invites.redeem(tx, code=code, shopkeeper_id=person.id,
                                    now=in_time) is Role.COACH


async def test_invite_is_for_admins_only(app: App, texts: Texts) -> None:
    unknown = texts.get("nl", "unknown_command", command="invite")
    assert texts_of(await say(app, "/invite coach", "shopkeeper")) == unknown
    await say(app, f"/start {await invite(app, 'coach')}", "coach")
    assert texts_of(await say(app, "/invite coach", "coach")) == unknown
    async with app.db.transaction() as tx:
        made = (await tx.execute(sa.select(sa.func.count()).select_from(INVITE))).scalar()
    assert made == 1  # only the admin's


async def test_invite_without_a_role_explains_itself(app: App, texts: Texts) -> None:
    for argument in ("", "boss", "shopkeeper"):
        assert texts_of(await say(app, f"/invite {argument}".strip(), "admin")) == texts.get(
            "nl", "invite_usage")


async def test_an_admin_opening_an_invite_leaves_it_for_its_person(app: App) -> None:
    payload = await invite(app, "coach")
    assert "al admin" in texts_of(await say(app, f"/start {payload}", "admin"))
    await say(app, f"/start {payload}", "meant")
    assert await roles_of(app, "meant") == {Role.COACH}


async def test_two_people_racing_for_one_code_on_postgresql(postgres_url: str) -> None:
    db = Database(postgres_url)
    try:
        await db.upgrade()
        async with db.transaction() as tx:
            people = [(await shopkeepers.find_or_create(tx, channel=CHAT, external_id=name,
                                                        language="nl"))[0].id
                      for name in ("a", "b")]
            codes = [await invites.create(tx, role=Role.COACH, via="test") for _ in range(10)]

        async def race(code: str, person: int, ready: asyncio.Barrier) -> Role | None:
            async with db.transaction() as tx:
                await tx.execute(sa.text("SELECT 1"))  # both transactions are open
                await ready.wait()
                return await invites.redeem(tx, code=code, shopkeeper_id=person)

        winners: set[int] = set()
        for code in codes:
            ready = asyncio.Barrier(2)
            won = await asyncio.gather(*(race(code, person, ready) for person in people))
            assert sorted(map(str, won)) == ["None", "coach"], won
            winners.add(people[won.index(Role.COACH)])
        async with db.transaction() as tx:
            granted = (await tx.execute(sa.select(sa.func.count()).select_from(PERSON_ROLE)
                                        )).scalar()
            used = (await tx.execute(sa.select(sa.func.count()).select_from(INVITE).where(
                INVITE.c.used_at.is_not(None)))).scalar()
        assert used == 10
        assert granted == len(winners)  # one coach role per person who won a code
    finally:
        await db.close()


def test_the_command_line_prints_a_link_or_what_to_type(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KISS_DATABASE_URL", f"sqlite:///{tmp_path / 'kiss.sqlite3'}")
    monkeypatch.setenv("KISS_CHARTS_DIR", str(tmp_path / "charts"))
    monkeypatch.delenv("TELEGRAM_BOT_USERNAME", raising=False)
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)

    assert cli.main(["roles", "invite", "coach", "--bot", "@KissCoachBot"]) == 0
    link = capsys.readouterr().out
    assert re.search(r"^https://t\.me/KissCoachBot\?start=invite_[A-Za-z0-9_-]{32}$", link,
                     re.MULTILINE), link

    assert cli.main(["roles", "invite", "admin"]) == 0
    typed = capsys.readouterr().out
    assert re.search(r"/start invite_[A-Za-z0-9_-]{32}$", typed, re.MULTILINE), typed

    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "FromEnvBot")
    assert cli.main(["roles", "invite", "coach"]) == 0
    assert "https://t.me/FromEnvBot?start=invite_" in capsys.readouterr().out


def test_the_texts_exist_in_every_language(texts: Texts) -> None:
    keys = ("cmd_invite", "role_coach", "role_admin", "invite_usage", "invite_link",
            "invite_typed", "invite_welcome", "invite_spent", "invite_already")
    for lang in LANGUAGES:
        for key in keys:
            assert texts.get(lang, key, role="x", link="y", start="z").strip(), (lang, key)
        assert "/invite" in texts.get(lang, "help_admin"), lang


async def test_every_role_change_is_in_the_audit_trail(app: App) -> None:
    async with app.db.transaction() as tx:
        person, _ = await shopkeepers.find_or_create(tx, channel=CHAT, external_id="an",
                                                     language="nl")
        assert await roles.grant(tx, shopkeeper_id=person.id, role=Role.COACH, by="cli:jan")
        assert not await roles.grant(tx, shopkeeper_id=person.id, role=Role.COACH,
                                     by="cli:jan")  # nothing changed: nothing logged
        assert await roles.revoke(tx, shopkeeper_id=person.id, role=Role.COACH, by="cli:els")
        logged = [(e.actor, e.action, e.detail) for e in await audit.entries(tx)
                  if e.detail.get("shopkeeper") == person.id]
    assert logged == [("cli:jan", "role_grant", {"role": "coach", "shopkeeper": person.id}),
                      ("cli:els", "role_revoke", {"role": "coach", "shopkeeper": person.id})]
