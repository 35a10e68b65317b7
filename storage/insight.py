"""What the programme's figures are computed from, read fresh from the database each time
(no cached totals: a person erased is no longer counted anywhere).

Two reads: :func:`funnel` (how far people got, one row of counts) and :func:`tallies`
(the shops that finished the check, added up per profile: how many, and the sums of their
first and latest results). Both are single statements. The k-anonymity and the averages
are :mod:`flows.insight`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from flows.insight import PROFILE, Sums, Tally
from storage.tables import COACHING_PLAN, DUE, RESULT, SHOPKEEPER, Cadence, DueKind


@dataclass(frozen=True, slots=True)
class Funnel:
    """How far people got. ``started``: everyone who wrote to the bot (and is still
    known); ``consented``: agreed to the privacy terms; ``finished``: completed the check at
    least once; ``on_tips``: gets tips now (a plan with tips on, a next tip planned, not
    stopped, reachable); ``opted_out``: said /stop (their data is kept until /delete)."""

    started: int
    consented: int
    finished: int
    on_tips: int
    opted_out: int


async def funnel(tx: AsyncConnection) -> Funnel:
    """The funnel's counts, in one statement."""
    consented = SHOPKEEPER.c.consent_at.is_not(None)
    finished = sa.exists().where(RESULT.c.shopkeeper_id == SHOPKEEPER.c.id)
    tip_planned = sa.exists().where(DUE.c.shopkeeper_id == SHOPKEEPER.c.id,
                                    DUE.c.kind == DueKind.TIP.value)
    on_tips = sa.and_(consented, SHOPKEEPER.c.opted_out_at.is_(None),
                      SHOPKEEPER.c.unreachable_since.is_(None),
                      COACHING_PLAN.c.cadence.is_not(None),
                      COACHING_PLAN.c.cadence != Cadence.OFF.value, tip_planned)
    row = (await tx.execute(
        sa.select(sa.func.count(),
                  sa.func.count().filter(consented),
                  sa.func.count().filter(consented, finished),
                  sa.func.count().filter(on_tips),
                  sa.func.count().filter(consented, SHOPKEEPER.c.opted_out_at.is_not(None)))
        .select_from(SHOPKEEPER.outerjoin(
            COACHING_PLAN, COACHING_PLAN.c.shopkeeper_id == SHOPKEEPER.c.id)))).one()
    return Funnel(*(int(value) for value in row))


async def tallies(tx: AsyncConnection, *, themes: Sequence[str],
                  profile: Sequence[str] = ("municipality", "shop_type"),
                  since: datetime | None = None, until: datetime | None = None,
                  basis: str = "latest") -> list[Tally]:
    """Every consented shop with a result, added up per ``profile`` (some of
    :data:`flows.insight.PROFILE`) and per "did the check again": how many shops, and
    the sums of their first and latest results (the scores of ``themes``; one missing from
    an older result is not counted). One statement; the database reads the theme scores
    out of the JSON and adds them up, so a few hundred rows come back for 10,000 shops
    (reading one row per shop and adding up in Python cost the bot's process 0.25-0.4 s
    of CPU per view on PostgreSQL).

    With ``since`` and/or ``until``: only the shops whose ``basis`` result (``latest`` or
    ``first``) was made in that period (``since`` ≤ it < ``until``)."""
    if not set(profile) <= set(PROFILE):
        raise ValueError(f"profile {profile!r}: expected some of {PROFILE}")
    profile = tuple(field for field in PROFILE if field in profile)
    if since is None and until is None:
        rows = await tx.execute(_tallies(tuple(themes), profile))
    else:
        rows = await tx.execute(_tallies(tuple(themes), profile, basis), {
            "since": since or datetime.min.replace(tzinfo=UTC),
            "until": until or datetime.max.replace(tzinfo=UTC)})
    width = 1 + 2 * len(themes)
    found = []
    for row in rows:
        groups, (again, shops, *values) = row[:len(profile)], row[len(profile):]
        latest = _sums(themes, values[:width])
        found.append(Tally(dict(zip(profile, groups, strict=True)), bool(again), int(shops),
                           _sums(themes, values[width:]) if again else latest, latest))
    return found


@cache
def _tallies(themes: tuple[str, ...], profile: tuple[str, ...],
             period_of: str | None = None) -> sa.Select[Any]:
    """The statement of :func:`tallies`, built once per set of themes and profile (and
    per result a period applies to: parameters ``since`` and ``until``)."""
    rounds = (sa.select(RESULT.c.shopkeeper_id.label("owner"),
                        sa.func.min(RESULT.c.id).label("first_id"),
                        sa.func.max(RESULT.c.id).label("latest_id"),
                        sa.func.count().label("rounds"))
              .group_by(RESULT.c.shopkeeper_id).subquery("rounds"))
    first, latest = RESULT.alias("first_result"), RESULT.alias("latest_result")
    again = rounds.c.rounds > 1

    def scores(result: sa.FromClause, name: str) -> list[sa.ColumnElement[Any]]:
        return [result.c.overall.label(f"{name}_overall"),
                *(result.c.scores[theme].as_integer().label(f"{name}_{number}")
                  for number, theme in enumerate(themes))]

    # One row per shop with its scores read out of the JSON once. Materialised on
    # PostgreSQL, which would otherwise read each score twice (for its sum and its count):
    # 100 ms instead of 75 for 10,000 shops. SQLite reads them once either way.
    # Most shops did the check once: their first result is their latest, read once (the
    # first result's sums are only read for the groups of shops that did it again).
    shops = (sa.select(*(SHOPKEEPER.c[field] for field in profile), again.label("again"),
                       *scores(latest, "latest"), *scores(first, "first"))
             .join(rounds, rounds.c.owner == SHOPKEEPER.c.id)
             .join(latest, latest.c.id == rounds.c.latest_id)
             .outerjoin(first, sa.and_(first.c.id == rounds.c.first_id, again))
             .where(SHOPKEEPER.c.consent_at.is_not(None)))
    if period_of is not None:
        made = (latest.c.created_at if period_of == "latest"
                else sa.func.coalesce(first.c.created_at, latest.c.created_at))
        moment = RESULT.c.created_at.type
        shops = shops.where(made >= sa.bindparam("since", type_=moment),
                            made < sa.bindparam("until", type_=moment))
    shop = shops.cte("shop").prefix_with("MATERIALIZED", dialect="postgresql")

    def sums(name: str) -> list[sa.ColumnElement[Any]]:
        values = [shop.c[f"{name}_{number}"] for number in range(len(themes))]
        return [sa.func.sum(shop.c[f"{name}_overall"]), *(sa.func.sum(v) for v in values),
                *(sa.func.count(v) for v in values)]

    groups = [shop.c[field] for field in profile]
    return (sa.select(*groups, shop.c.again, sa.func.count(), *sums("latest"), *sums("first"))
            .group_by(*groups, shop.c.again))


def _sums(themes: Sequence[str], values: Sequence[int | None]) -> Sums:
    """The sums of one group: the overall total, then each theme's total, then each
    theme's count (a total is None when no shop of the group has that theme)."""
    overall, *per_theme = values
    assert overall is not None
    totals, counts = per_theme[:len(themes)], per_theme[len(themes):]
    return Sums(int(overall), {theme: (int(total or 0), int(count or 0))
                               for theme, total, count in zip(themes, totals, counts,
                                                              strict=True)})
