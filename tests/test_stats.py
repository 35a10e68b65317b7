"""The programme's figures: read from the database as it is now (an erasure is reflected at
once), equal to hand-computed averages, k-anonymous, shown to admins only (in chat and in
``kiss-coach stats``), and every view written to the audit trail."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from recording import CHAT, recorder, say, texts_of
from sqlalchemy.ext.asyncio import AsyncConnection

from bot import cli
from bot.app import App, build
from bot.config import Settings
from flows.insight import OTHER, Sums, Tally, crosstab, summarise
from flows.places import gazetteer
from flows.texts import Texts
from handlers.stats import StatsView
from storage import audit, due, roles, shopkeepers
from storage import insight as figures
from storage.database import Database
from storage.tables import (
    COACHING_PLAN,
    IDENTITY,
    RESULT,
    RUN,
    SHOPKEEPER,
    DueKind,
    Role,
    utcnow,
)

THEMES = ("beleving", "vakkennis", "innovatie", "toekomst", "digitalisering", "anders_denken")

#: (municipality, shop type, scores of each check in order). Kortrijk's six did it twice.
SHOPS = [
    *(("Kortrijk", "food", [v - 20, v]) for v in (40, 50, 60)),
    *(("Kortrijk", "fashion", [v - 20, v]) for v in (70, 80, 90)),
    *(("Waregem", "fashion", [v]) for v in (20, 30, 40, 50, 60)),
    *(("Brugge", "food", [v]) for v in (10, 20, 30, 40, 50)),
    *(("Damme", "food", [v]) for v in (70, 80)),
    ("Mesen", "garden", [100]),
]


def scores_for(value: int) -> dict[str, int]:
    """Every theme at ``value``, digitalisering at half."""
    return {theme: value // 2 if theme == "digitalisering" else value for theme in THEMES}


async def add_shop(tx: AsyncConnection, name: str, municipality: str | None,
                   shop_type: str | None, checks: list[int], *, consented: bool = True,
                   team_size: str = "solo") -> int:
    now = utcnow()
    person = (await tx.execute(sa.insert(SHOPKEEPER).values(
        language="nl", language_chosen=True, consent_at=now if consented else None,
        consent_version="test" if consented else None,
        shop_name=f"Winkel {name}" if consented else None,
        municipality=municipality, shop_type=shop_type, team_size=team_size if consented
        else None, created_at=now, updated_at=now).returning(SHOPKEEPER.c.id))).scalar_one()
    await tx.execute(sa.insert(IDENTITY).values(channel=CHAT, external_id=name,
                                                shopkeeper_id=person, created_at=now))
    for round_, value in enumerate(checks):
        at = now - timedelta(weeks=12 * (len(checks) - round_))
        run = (await tx.execute(sa.insert(RUN).values(
            shopkeeper_id=person, flow_id="assessment", flow_key="assessment@test",
            status="completed", state={}, started_at=at, updated_at=at, completed_at=at)
            .returning(RUN.c.id))).scalar_one()
        await tx.execute(sa.insert(RESULT).values(
            shopkeeper_id=person, run_id=run, flow_key="assessment@test",
            scores=scores_for(value), overall=value, focus=[], created_at=at))
    return int(person)


async def seed(db: Database) -> dict[str, int]:
    """The 19 shops of :data:`SHOPS`, and around them: two people who never consented, one
    who consented and did not finish, tips for three (one blocked the bot), one /stop."""
    ids: dict[str, int] = {}
    async with db.transaction() as tx:
        for number, (municipality, shop_type, checks) in enumerate(SHOPS):
            ids[f"s{number}"] = await add_shop(
                tx, f"s{number}", municipality, shop_type, checks,
                team_size="2_4" if shop_type == "fashion" else "solo")
        for name in ("stranger1", "stranger2"):
            ids[name] = await add_shop(tx, name, None, None, [], consented=False)
        ids["halfway"] = await add_shop(tx, "halfway", "Kortrijk", "food", [])
        now = utcnow()
        for name in ("s0", "s1", "s2"):
            await tx.execute(sa.insert(COACHING_PLAN).values(
                shopkeeper_id=ids[name], cadence="weekly", moment="morning", updated_at=now))
            await due.plan(tx, shopkeeper_id=ids[name], kind=DueKind.TIP,
                           at=now + timedelta(days=2))
        await tx.execute(sa.update(SHOPKEEPER).where(SHOPKEEPER.c.id == ids["s2"])
                         .values(unreachable_since=now))
        await tx.execute(sa.update(SHOPKEEPER).where(SHOPKEEPER.c.id == ids["s10"])
                         .values(opted_out_at=now))
    return ids


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.upgrade()
    yield database
    await database.close()


async def test_the_funnel_counts_how_far_people_got(db: Database) -> None:
    await seed(db)
    async with db.transaction() as tx:
        funnel = await figures.funnel(tx)
    assert funnel == figures.Funnel(started=22, consented=20, finished=19, on_tips=2,
                                    opted_out=1)


async def test_the_averages_equal_the_hand_computed_ones(db: Database) -> None:
    await seed(db)
    async with db.transaction() as tx:
        tallies = await figures.tallies(tx, themes=THEMES)
    insight = summarise(tallies, THEMES, gazetteer().arrondissement_of)
    assert insight.shops == 19
    assert insight.overall is not None
    assert insight.overall.overall == pytest.approx(990 / 19)
    assert insight.overall.themes["digitalisering"] == pytest.approx(495 / 19)
    assert insight.overall.themes["beleving"] == pytest.approx(990 / 19)
    municipality, arrondissement, shop_type = insight.breakdowns
    # Kortrijk 6 and Waregem 5 shown; Brugge (5) goes with Damme (2) and Mesen (1),
    # because arrondissement Brugge (7) is folded with Ieper (1).
    assert [(k, a.shops, a.overall) for k, a in municipality.groups] == [
        ("Kortrijk", 6, 65), ("Waregem", 5, 40)]
    assert municipality.other is not None
    assert (municipality.other.shops, municipality.other.overall, municipality.folded) == (
        8, 50, 3)
    assert [(k, a.shops, a.overall) for k, a in arrondissement.groups] == [
        ("Kortrijk", 11, pytest.approx(590 / 11))]
    assert arrondissement.other is not None and arrondissement.other.shops == 8
    assert [(k, a.shops, a.overall) for k, a in shop_type.groups] == [("food", 10, 45)]
    assert shop_type.other is not None
    assert (shop_type.other.shops, shop_type.other.overall) == (9, 60)
    # T0 against the latest: the six in Kortrijk did the check twice, 13 others once.
    assert insight.change is not None
    assert (insight.change.first.shops, insight.change.first.overall,
            insight.change.latest.overall) == (6, 45, 65)
    first = summarise(tallies, THEMES, gazetteer().arrondissement_of, basis="first")
    assert first.overall is not None and first.overall.overall == pytest.approx(870 / 19)


async def test_an_erased_shop_is_no_longer_counted(db: Database) -> None:
    ids = await seed(db)
    async with db.transaction() as tx:
        await shopkeepers.forget(tx, shopkeeper_id=ids["s6"])  # one of Waregem's five
        tallies = await figures.tallies(tx, themes=THEMES)
        funnel = await figures.funnel(tx)
    assert (funnel.started, funnel.finished) == (21, 18)
    municipality = summarise(tallies, THEMES, gazetteer().arrondissement_of).breakdowns[0]
    # Waregem has 4 now; arrondissement Kortrijk (10) minus Kortrijk (6) would be those 4,
    # so Kortrijk is folded as well: no municipality is shown on its own.
    assert municipality.groups == ()
    assert municipality.other is not None and municipality.other.shops == 18


async def test_few_shops_show_no_averages_at_all(db: Database, texts: Texts) -> None:
    async with db.transaction() as tx:
        for number in range(4):
            await add_shop(tx, f"s{number}", "Kortrijk", "food", [50])
        report = await StatsView(texts).gather(tx, actor="test", via="test")
    assert report.insight.overall is None
    assert all(b.withheld for b in report.insight.breakdowns)
    shown = StatsView(texts).messages(report, "nl")
    assert "Kortrijk" not in texts_of(shown) and "50" not in texts_of(shown)
    assert texts.get("nl", "stats_too_few", k=5) in texts_of(shown)


# -- in chat ------------------------------------------------------------------------------


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[App]:
    app = await build(settings)
    recorder(app)
    await seed(app.db)
    async with app.db.transaction() as tx:
        for name, role in (("admin", Role.ADMIN), ("coach", Role.COACH)):
            person, _ = await shopkeepers.find_or_create(tx, channel=CHAT, external_id=name,
                                                         language="nl")
            await roles.grant(tx, shopkeeper_id=person.id, role=role, by="test")
    yield app
    await app.close()


async def stats_entries(db: Database) -> list[audit.AuditRecord]:
    async with db.transaction() as tx:
        return [e for e in await audit.entries(tx) if e.action == "stats"]


async def test_an_admin_sees_the_figures_with_a_chart(app: App, texts: Texts) -> None:
    messages = await say(app, "/stats", "admin")
    funnel, themes, groups, municipalities = messages
    # the admin and the coach wrote to the bot too: 24 started
    assert "Begonnen: 24" in funnel.text and "Krijgt nu tips: 2" in funnel.text
    assert "Totaal: 52\n" in themes.text and "Digitalisering: 26" in themes.text
    assert "Wie de check opnieuw deed (6 zaken)" in themes.text
    assert "Totaal: 45 → 65 (+20)" in themes.text
    assert themes.chart is not None and themes.chart.style == "score_bars"
    assert themes.chart.scores == (52, 52, 52, 52, 26, 52)
    assert themes.image is not None and themes.image.data.startswith(b"\x89PNG")
    assert "Kortrijk: 54 (11)" in groups.text and "Overige (2 samen): 50 (8)" in groups.text
    assert "Voeding: 45 (10)" in groups.text and "Overige (2 samen): 60 (9)" in groups.text
    assert municipalities.text.splitlines()[1:] == [
        "Kortrijk: 65 (6)", "Waregem: 40 (5)", "Overige (3 samen): 50 (8)"]
    for hidden in ("Brugge", "Damme", "Mesen", "Ieper", "Bloemen"):
        assert hidden not in texts_of(messages)
    assert all(len(m.text) <= 4096 for m in messages)
    [entry] = await stats_entries(app.db)
    assert (entry.actor, entry.detail["via"], entry.detail["shops"]) == ("test:admin", "chat",
                                                                         19)


@pytest.mark.parametrize("lang", ["en", "fr"])
async def test_the_figures_in_english_and_french(app: App, lang: str) -> None:
    async with app.db.transaction() as tx:
        person = await shopkeepers.find_by_identity(tx, channel=CHAT, external_id="admin")
        assert person is not None
        await shopkeepers.update(tx, shopkeeper=person, language=lang)
    text = texts_of(await say(app, "/stats", "admin"))
    other = {"en": "Other (3 together): 50 (8)", "fr": "Autres (3 ensemble) : 50 (8)"}[lang]
    food = {"en": "Food and drink: 45 (10)", "fr": "Alimentation : 45 (10)"}[lang]
    assert other in text and food in text


async def test_only_admins_see_the_figures(app: App, texts: Texts) -> None:
    unknown = texts.get("nl", "unknown_command", command="stats")
    assert texts_of(await say(app, "/stats", "coach")) == unknown
    assert texts_of(await say(app, "/stats", "s0")) == unknown
    assert await stats_entries(app.db) == []


async def test_every_municipality_shown_still_fits_one_message(
        app: App, texts: Texts) -> None:
    async with app.db.transaction() as tx:
        for number, municipality in enumerate(gazetteer().municipalities):
            for shop in range(5):
                await add_shop(tx, f"m{number}-{shop}", municipality, "home", [50])
    messages = await say(app, "/stats", "admin")
    assert len(messages[-1].text.splitlines()) == 1 + 62
    assert all(len(m.text) <= 4096 for m in messages)


# -- in the terminal ----------------------------------------------------------------------


def test_kiss_coach_stats_prints_tables_and_is_audited(
        database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KISS_DATABASE_URL", database_url)
    monkeypatch.setenv("KISS_CHARTS_DIR", str(tmp_path / "charts"))

    async def prepare() -> None:
        db = Database(database_url)
        try:
            await db.upgrade()
            await seed(db)
        finally:
            await db.close()

    asyncio.run(prepare())
    assert cli.main(["stats", "--lang", "en", "--cross", "shop_type,team_size"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("group"))
    assert header.split()[:5] == ["group", "shops", "Overall", "Customer", "experience"]
    assert any(line.split() == ["Kortrijk", "6", "65", "65", "65", "65", "65", "33", "65"]
               for line in lines), out
    assert any(line.split() == ["Other", "(3", "together)", "8", "50", "50", "50", "50", "50", "25",
                                "50"] for line in lines), out
    for hidden in ("Brugge", "Damme", "Mesen"):
        assert hidden not in out
    # Food: 10 just me, 0 of 2-4; other: Mesen's garden shop alone, 8 of 2-4. Hiding
    # cells cannot help: food's total gives its one cell, and "just me" minus it is Mesen.
    cross = lines.index("Type of shop × Team size (average overall score and shops per "
                        "cell; – = hidden)")
    assert lines[cross + 1] == "Fewer than 5 shops: not shown, so that nobody can be recognised."

    async def entries() -> list[audit.AuditRecord]:
        db = Database(database_url)
        try:
            return await stats_entries(db)
        finally:
            await db.close()

    [entry] = asyncio.run(entries())
    assert entry.actor == f"cli:{cli._login()}"
    assert entry.detail == {"via": "cli", "basis": "latest",
                            "cross": ["shop_type", "team_size"], "shops": 19}


def test_other_is_a_key_no_group_has() -> None:
    assert OTHER not in gazetteer().municipalities


def shop(shop_type: str, team_size: str, value: int) -> Tally:
    """One shop in Kortrijk that did the check once, every theme at ``value``."""
    result = Sums(value, {theme: (score, 1) for theme, score in scores_for(value).items()})
    return Tally({"municipality": "Kortrijk", "shop_type": shop_type, "team_size": team_size},
                 False, 1, result, result)


def test_a_cross_tabulation_shows_cells_of_enough_shops_with_their_averages() -> None:
    shops = [*(shop("food", "solo", 50) for _ in range(12)),
             *(shop("food", "2_4", 70) for _ in range(6)),
             *(shop("fashion", "solo", 30 + 2 * n) for n in range(7)),
             *(shop("fashion", "2_4", 90) for _ in range(5)),
             *(shop("garden", "solo", 10) for _ in range(2))]
    table = crosstab(shops, THEMES, gazetteer().arrondissement_of, "shop_type", "team_size")
    # garden (2) is folded with fashion (12, the next smallest) into "other"
    assert (table.rows, table.columns, table.folded) == (("food", OTHER), ("solo", "2_4"),
                                                         (2, 0))
    found = {cell: (a.shops, a.overall) if a else None for cell, a in table.cells.items()}
    assert found == {("food", "solo"): (12, 50), ("food", "2_4"): (6, 70),
                     (OTHER, "solo"): (9, pytest.approx((7 * 36 + 20) / 9)),
                     (OTHER, "2_4"): (5, 90)}
