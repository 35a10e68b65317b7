"""What the programme's figures are computed from, read fresh from the database each time
(no cached totals: a person erased is no longer counted anywhere).

Two reads: :func:`funnel` (how far people got, one row of counts) and :func:`assessed`
(one row per shop that finished the check, with its first and latest result). Both are
single statements; for 4,000 assessments they return in milliseconds on SQLite and
PostgreSQL. The k-anonymity and the averages are :mod:`flows.insight`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from flows.insight import Assessed, Scores
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


async def assessed(tx: AsyncConnection, *, themes: Sequence[str],
                   since: datetime | None = None, until: datetime | None = None,
                   basis: str = "latest") -> list[Assessed]:
    """Every consented shop with a result: its profile, first and latest result (the
    scores of ``themes``; one missing from an older result is left out), and how many
    results it has. One statement, one row per shop; the database reads the theme scores
    out of the JSON (decoding 4,000 documents in Python took most of the time).

    With ``since`` and/or ``until``: only the shops whose ``basis`` result (``latest`` or
    ``first``) was made in that period (``since`` ≤ it < ``until``)."""
    if since is None and until is None:
        rows = await tx.execute(_assessed(tuple(themes)))
    else:
        rows = await tx.execute(_assessed(tuple(themes), basis), {
            "since": since or datetime.min.replace(tzinfo=UTC),
            "until": until or datetime.max.replace(tzinfo=UTC)})
    width = len(themes) + 1
    found = []
    for municipality, shop_type, team_size, count, *values in rows:
        now = _scores(themes, values[:width])
        then = _scores(themes, values[width:]) if values[width] is not None else now
        found.append(Assessed(municipality, shop_type, team_size, then, now, int(count)))
    return found


@cache
def _assessed(themes: tuple[str, ...], period_of: str | None = None) -> sa.Select[Any]:
    """The statement of :func:`assessed`, built once per set of themes (and per result a
    period applies to: parameters ``since`` and ``until``)."""
    rounds = (sa.select(RESULT.c.shopkeeper_id.label("owner"),
                        sa.func.min(RESULT.c.id).label("first_id"),
                        sa.func.max(RESULT.c.id).label("latest_id"),
                        sa.func.count().label("rounds"))
              .group_by(RESULT.c.shopkeeper_id).subquery("rounds"))
    first, latest = RESULT.alias("first_result"), RESULT.alias("latest_result")
    # Most shops did the check once: their first result is their latest, read once.
    statement = (
        sa.select(SHOPKEEPER.c.municipality, SHOPKEEPER.c.shop_type, SHOPKEEPER.c.team_size,
                  rounds.c.rounds, latest.c.overall,
                  *(latest.c.scores[theme].as_integer() for theme in themes),
                  first.c.overall, *(first.c.scores[theme].as_integer() for theme in themes))
        .join(rounds, rounds.c.owner == SHOPKEEPER.c.id)
        .join(latest, latest.c.id == rounds.c.latest_id)
        .outerjoin(first, sa.and_(first.c.id == rounds.c.first_id, rounds.c.rounds > 1))
        .where(SHOPKEEPER.c.consent_at.is_not(None))
        .order_by(SHOPKEEPER.c.id))
    if period_of is None:
        return statement
    made = (latest.c.created_at if period_of == "latest"
            else sa.func.coalesce(first.c.created_at, latest.c.created_at))
    moment = RESULT.c.created_at.type
    return statement.where(made >= sa.bindparam("since", type_=moment),
                           made < sa.bindparam("until", type_=moment))


def _scores(themes: Sequence[str], values: Sequence[int | None]) -> Scores:
    overall, *per_theme = values
    assert overall is not None
    return Scores(int(overall), {theme: int(value) for theme, value
                                 in zip(themes, per_theme, strict=True) if value is not None})
