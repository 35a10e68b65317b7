"""The grouped path (the database adds up each profile, :func:`storage.insight.tallies`;
:mod:`flows.insight` adds up the tallies) gives exactly the figures of averaging shop by
shop (:mod:`insight_reference`), on many random shops: every breakdown, the change T0 →
latest, every cross-tabulation, both bases, periods and several k, on SQLite and
PostgreSQL. The reference is computed from the shops as the test made them, not from
the database."""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import insight_reference as reference
import pytest
import sqlalchemy as sa

from flows.insight import (
    BASES,
    DIMENSIONS,
    ONCE_OR_AGAIN,
    CrossTab,
    crosstab,
    profile_for,
    summarise,
)
from flows.places import gazetteer
from flows.texts import Texts
from handlers.stats import StatsView
from storage import insight as figures
from storage.database import Database
from storage.tables import RESULT, RUN, SHOPKEEPER, utcnow

THEMES = ("beleving", "vakkennis", "innovatie", "toekomst", "digitalisering", "anders_denken")
SHOP_TYPES = ("food", "fashion", "health", "garden", "home", None)
TEAM_SIZES = ("solo", "2_4", "5_9", "10_plus", None)
KS = (1, 3, 5, 12)


@dataclass(frozen=True)
class Result:
    overall: int
    scores: dict[str, int]
    at: datetime


@dataclass(frozen=True)
class Shop:
    municipality: str | None
    shop_type: str | None
    team_size: str | None
    consented: bool
    results: tuple[Result, ...]


def random_shops(rng: random.Random, count: int) -> list[Shop]:
    """Shops over a few large and many small municipalities (some unknown, one not in the
    gazetteer), with 0 to 3 results each; some results lack a theme (an older flow) or
    hold one no flow asks any more; a few shops never consented."""
    places = list(gazetteer().municipalities)
    rng.shuffle(places)
    towns: list[str | None] = [*places[:25], None, "Atlantis"]
    weights = [rng.choice((1, 1, 2, 5, 20)) for _ in towns]
    start = utcnow().replace(microsecond=0) - timedelta(days=700)
    shops = []
    for _ in range(count):
        results = []
        at = start + timedelta(days=rng.randint(0, 300), seconds=rng.randint(0, 86_400))
        for _ in range(rng.choice((0, 1, 1, 1, 1, 2, 2, 3))):
            scores = {theme: rng.randint(0, 100) for theme in THEMES if rng.random() < 0.9}
            if rng.random() < 0.1:
                scores["oud_thema"] = rng.randint(0, 100)
            results.append(Result(rng.randint(0, 100), scores, at))
            at += timedelta(days=rng.randint(30, 120))
        shops.append(Shop(rng.choices(towns, weights)[0], rng.choice(SHOP_TYPES),
                          rng.choice(TEAM_SIZES), rng.random() < 0.93, tuple(results)))
    return shops


async def store(db: Database, shops: list[Shop]) -> None:
    now = utcnow()
    async with db.transaction() as tx:
        for shop in shops:
            person = (await tx.execute(sa.insert(SHOPKEEPER).values(
                language="nl", language_chosen=True,
                consent_at=now if shop.consented else None,
                consent_version="test" if shop.consented else None,
                municipality=shop.municipality, shop_type=shop.shop_type,
                team_size=shop.team_size, created_at=now, updated_at=now)
                .returning(SHOPKEEPER.c.id))).scalar_one()
            for result in shop.results:
                run = (await tx.execute(sa.insert(RUN).values(
                    shopkeeper_id=person, flow_id="assessment", flow_key="assessment@test",
                    status="completed", state={}, started_at=result.at, updated_at=result.at,
                    completed_at=result.at).returning(RUN.c.id))).scalar_one()
                await tx.execute(sa.insert(RESULT).values(
                    shopkeeper_id=person, run_id=run, flow_key="assessment@test",
                    scores=result.scores, overall=result.overall, focus=[],
                    created_at=result.at))


def assessed(shops: list[Shop], basis: str, since: datetime | None,
             until: datetime | None) -> list[reference.Assessed]:
    """What the old per-shop read returned: each consented shop with a result whose
    ``basis`` result was made in the period."""
    def scores(result: Result) -> reference.Scores:
        return reference.Scores(result.overall, {theme: value for theme, value
                                                 in result.scores.items() if theme in THEMES})

    found = []
    for shop in shops:
        if not (shop.consented and shop.results):
            continue
        made = (shop.results[-1] if basis == "latest" else shop.results[0]).at
        if (since is not None and made < since) or (until is not None and made >= until):
            continue
        found.append(reference.Assessed(shop.municipality, shop.shop_type, shop.team_size,
                                        scores(shop.results[0]), scores(shop.results[-1]),
                                        len(shop.results)))
    return found


def periods(shops: list[Shop]) -> list[tuple[datetime | None, datetime | None]]:
    """No period, and periods whose ends are moments of results (both ends are tested
    exactly: since is included, until is not)."""
    moments = sorted(result.at for shop in shops for result in shop.results)
    since, until = moments[len(moments) // 3], moments[2 * len(moments) // 3]
    return [(None, None), (since, None), (None, until), (since, until)]


def reference_crosstab(shops: list[reference.Assessed], rows: str, columns: str, basis: str,
                       k: int) -> CrossTab:
    """The old crosstab; "once or again" as the progress page did it (in the team size, so
    not crossed with the team size)."""
    if ONCE_OR_AGAIN not in (rows, columns):
        return reference.crosstab(shops, THEMES, gazetteer().arrondissement_of, rows, columns,
                                  basis=basis, k=k)
    marked = [dataclasses.replace(shop, team_size="again" if shop.rounds > 1 else "once")
              for shop in shops]
    dimensions = tuple("team_size" if d == ONCE_OR_AGAIN else d for d in (rows, columns))
    table = reference.crosstab(marked, THEMES, gazetteer().arrondissement_of, *dimensions,
                               basis=basis, k=k)
    return dataclasses.replace(table, dimensions=(rows, columns))


@pytest.fixture(params=[3, 17])
async def stored(request: pytest.FixtureRequest,
                 database_url: str) -> AsyncIterator[tuple[Database, list[Shop]]]:
    shops = random_shops(random.Random(request.param), 400)
    db = Database(database_url)
    await db.upgrade()
    await store(db, shops)
    yield db, shops
    await db.close()


async def test_the_grouped_figures_equal_the_per_shop_ones(
        stored: tuple[Database, list[Shop]]) -> None:
    db, shops = stored
    places = gazetteer().arrondissement_of
    compared = 0
    for basis, (since, until) in itertools.product(BASES, periods(shops)):
        expected_shops = assessed(shops, basis, since, until)
        async with db.transaction() as tx:
            tallies = await figures.tallies(tx, themes=THEMES, since=since, until=until,
                                            basis=basis)
        # A row per profile and "again", not per shop.
        assert len(tallies) == len({(s.municipality, s.shop_type, s.rounds > 1)
                                    for s in expected_shops}) < len(expected_shops)
        for k in KS:
            expected = reference.summarise(expected_shops, THEMES, places, basis=basis, k=k)
            assert summarise(tallies, THEMES, places, basis=basis, k=k) == expected
            compared += 1
        assert expected.overall is not None and expected.change is not None  # not vacuous
    assert compared == len(BASES) * 4 * len(KS)


@pytest.mark.parametrize("basis", BASES)
async def test_every_cross_tabulation_equals_the_per_shop_one(
        stored: tuple[Database, list[Shop]], basis: str) -> None:
    db, shops = stored
    places = gazetteer().arrondissement_of
    expected_shops = assessed(shops, basis, None, None)
    shown = 0
    for rows, columns in itertools.permutations((*DIMENSIONS, ONCE_OR_AGAIN), 2):
        if {rows, columns} == {"team_size", ONCE_OR_AGAIN}:
            continue  # the reference has no way to say it
        async with db.transaction() as tx:
            tallies = await figures.tallies(tx, themes=THEMES, basis=basis,
                                            profile=profile_for((rows, columns)))
        for k in KS:
            expected = reference_crosstab(expected_shops, rows, columns, basis, k)
            assert crosstab(tallies, THEMES, places, rows, columns, basis=basis,
                            k=k) == expected, (rows, columns, k)
            shown += not expected.withheld
    assert shown > 20  # most tables are shown, with their cells compared


async def test_the_stats_view_reads_the_grouped_figures(
        stored: tuple[Database, list[Shop]], texts: Texts) -> None:
    """What /stats, ``kiss-coach stats`` and the dashboard call: the same figures, with a
    cross-tabulation and a period."""
    db, shops = stored
    since, until = periods(shops)[3]
    view = StatsView(texts, k=3)
    async with db.transaction() as tx:
        report = await view.gather(tx, actor="test", via="test", basis="first",
                                   cross=("arrondissement", "team_size"), since=since,
                                   until=until)
    expected_shops = assessed(shops, "first", since, until)
    places = gazetteer().arrondissement_of
    assert report.insight == reference.summarise(expected_shops, THEMES, places,
                                                 basis="first", k=3)
    assert report.cross == reference.crosstab(expected_shops, THEMES, places,
                                              "arrondissement", "team_size", basis="first",
                                              k=3)
    assert report.cross is not None and not report.cross.withheld
