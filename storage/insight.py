"""What the programme's figures are computed from, read fresh from the database each time
(no cached totals: a person erased is no longer counted anywhere).

Two reads: :func:`funnel` (how far people got, one row of counts) and :func:`assessed`
(one row per shop that finished the check, with its first and latest result). Both are
single statements; for 4,000 assessments they return in milliseconds on SQLite and
PostgreSQL. The k-anonymity and the averages are :mod:`flows.insight`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

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


async def assessed(tx: AsyncConnection) -> list[Assessed]:
    """Every consented shop with a result: its profile, first and latest result, and how
    many results it has (one statement; one row per shop)."""
    rounds = (sa.select(RESULT.c.shopkeeper_id.label("owner"),
                        sa.func.min(RESULT.c.id).label("first_id"),
                        sa.func.max(RESULT.c.id).label("latest_id"),
                        sa.func.count().label("rounds"))
              .group_by(RESULT.c.shopkeeper_id).subquery("rounds"))
    first, latest = RESULT.alias("first_result"), RESULT.alias("latest_result")
    rows = await tx.execute(
        sa.select(SHOPKEEPER.c.municipality, SHOPKEEPER.c.shop_type, SHOPKEEPER.c.team_size,
                  first.c.overall, first.c.scores, latest.c.overall, latest.c.scores,
                  rounds.c.rounds)
        .join(rounds, rounds.c.owner == SHOPKEEPER.c.id)
        .join(first, first.c.id == rounds.c.first_id)
        .join(latest, latest.c.id == rounds.c.latest_id)
        .where(SHOPKEEPER.c.consent_at.is_not(None))
        .order_by(SHOPKEEPER.c.id))
    return [Assessed(municipality, shop_type, team_size,
                     Scores(int(first_overall), _themes(first_scores)),
                     Scores(int(latest_overall), _themes(latest_scores)), int(count))
            for (municipality, shop_type, team_size, first_overall, first_scores,
                 latest_overall, latest_scores, count) in rows]


def _themes(scores: dict[str, int] | None) -> dict[str, int]:
    return {str(theme): int(value) for theme, value in (scores or {}).items()}
