"""The coaching plan's records: a person's tip choices, the tips they had, their weekly
commitments, and what a tick needs to know of many people at once."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.due import among
from storage.tables import (
    COACHING_PLAN,
    COMMITMENT,
    IDENTITY,
    RESULT,
    RUN,
    SHOPKEEPER,
    TIP_SENT,
    Cadence,
    CommitmentOutcome,
    TipOutcome,
)


@dataclass(slots=True)
class Plan:
    cadence: str
    moment: str | None


@dataclass(slots=True)
class Sent:
    """A tip a person had, and what they said of it (None: nothing yet)."""

    tip_id: str
    theme: str
    kind: str
    outcome: str | None
    sent_at: datetime


@dataclass(slots=True)
class CommitmentRecord:
    id: int
    shopkeeper_id: int
    source: str
    what: str
    chosen_at: datetime
    outcome: str | None


@dataclass(slots=True)
class Recipient:
    """What a tick needs to say something to one person (see :func:`recipients`)."""

    id: int
    language: str
    shop_type: str | None
    channel: str
    external_id: str
    consented: bool
    opted_out: bool  # /stop
    unreachable: bool  # the platform says so (blocked the bot); may come back
    plan: Plan | None
    scores: dict[str, int] = field(default_factory=dict)
    focus: list[str] = field(default_factory=list)
    result_at: datetime | None = None
    had: list[Sent] = field(default_factory=list)
    open_run: tuple[int, str, datetime] | None = None  # (run id, flow id, last activity)

    def unwanted(self) -> Counter[str]:
        """Kinds of tips this person called "not for me", and how often."""
        return Counter(s.kind for s in self.had if s.outcome == TipOutcome.NOT_FOR_ME)


# -- the plan -----------------------------------------------------------------------------


def _upsert_plan(dialect: str) -> sa.Insert:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(COACHING_PLAN)
    return statement.on_conflict_do_update(
        index_elements=["shopkeeper_id"],
        set_={"cadence": statement.excluded.cadence, "moment": statement.excluded.moment,
              "updated_at": statement.excluded.updated_at})


_UPSERT_PLAN = {name: _upsert_plan(name) for name in ("postgresql", "sqlite")}


async def plan_of(tx: AsyncConnection, *, shopkeeper_id: int) -> Plan | None:
    row = (await tx.execute(sa.select(COACHING_PLAN.c.cadence, COACHING_PLAN.c.moment).where(
        COACHING_PLAN.c.shopkeeper_id == shopkeeper_id))).first()
    return Plan(*row) if row is not None else None


async def choose_plan(tx: AsyncConnection, *, shopkeeper_id: int, cadence: Cadence,
                      moment: str | None, now: datetime) -> None:
    await tx.execute(_UPSERT_PLAN[tx.dialect.name], {
        "shopkeeper_id": shopkeeper_id, "cadence": cadence, "moment": moment,
        "updated_at": now})


# -- tips ---------------------------------------------------------------------------------

_RECORD_SENT = sa.insert(TIP_SENT)


async def record_sent(tx: AsyncConnection, rows: Iterable[dict[str, Any]]) -> None:
    """Tips that went out: ``shopkeeper_id``, ``tip_id``, ``theme``, ``kind``, ``sent_at``."""
    params = [{**row, "outcome": None, "outcome_at": None} for row in rows]
    if params:
        await tx.execute(_RECORD_SENT, params)


async def sent_tip(tx: AsyncConnection, *, shopkeeper_id: int, tip_id: str) -> Sent | None:
    row = (await tx.execute(sa.select(
        TIP_SENT.c.tip_id, TIP_SENT.c.theme, TIP_SENT.c.kind, TIP_SENT.c.outcome,
        TIP_SENT.c.sent_at).where(TIP_SENT.c.shopkeeper_id == shopkeeper_id,
                                  TIP_SENT.c.tip_id == tip_id))).first()
    return Sent(*row) if row is not None else None


async def rate_tip(tx: AsyncConnection, *, shopkeeper_id: int, tip_id: str,
                   outcome: TipOutcome, now: datetime) -> None:
    await tx.execute(sa.update(TIP_SENT).where(
        TIP_SENT.c.shopkeeper_id == shopkeeper_id, TIP_SENT.c.tip_id == tip_id)
        .values(outcome=outcome, outcome_at=now))


async def history(tx: AsyncConnection, *, shopkeeper_id: int) -> list[Sent]:
    return (await _histories(tx, [shopkeeper_id])).get(shopkeeper_id, [])


async def _histories(tx: AsyncConnection, ids: Collection[int]) -> dict[int, list[Sent]]:
    rows = await tx.execute(sa.select(
        TIP_SENT.c.shopkeeper_id, TIP_SENT.c.tip_id, TIP_SENT.c.theme, TIP_SENT.c.kind,
        TIP_SENT.c.outcome, TIP_SENT.c.sent_at)
        .where(among(tx, TIP_SENT.c.shopkeeper_id, ids)).order_by(TIP_SENT.c.id))
    found: dict[int, list[Sent]] = defaultdict(list)
    for owner, *rest in rows:
        found[owner].append(Sent(*rest))
    return found


# -- commitments --------------------------------------------------------------------------

_COMMITMENT_COLUMNS = (COMMITMENT.c.id, COMMITMENT.c.shopkeeper_id, COMMITMENT.c.source,
                       COMMITMENT.c.what, COMMITMENT.c.chosen_at, COMMITMENT.c.outcome)


async def commit(tx: AsyncConnection, *, shopkeeper_id: int, source: str, what: str,
                 now: datetime) -> tuple[int, list[int]]:
    """This week's action; an open one before it counts as replaced. Returns the new id
    and the ids it replaced."""
    replaced = list((await tx.execute(
        sa.update(COMMITMENT).where(COMMITMENT.c.shopkeeper_id == shopkeeper_id,
                                    COMMITMENT.c.outcome.is_(None))
        .values(outcome=CommitmentOutcome.REPLACED, outcome_at=now)
        .returning(COMMITMENT.c.id))).scalars())
    new_id = (await tx.execute(sa.insert(COMMITMENT).values(
        shopkeeper_id=shopkeeper_id, source=source, what=what[:400], chosen_at=now)
        .returning(COMMITMENT.c.id))).scalar_one()
    return int(new_id), [int(i) for i in replaced]


async def commitment(tx: AsyncConnection, *, commitment_id: int,
                     shopkeeper_id: int) -> CommitmentRecord | None:
    row = (await tx.execute(sa.select(*_COMMITMENT_COLUMNS).where(
        COMMITMENT.c.id == commitment_id, COMMITMENT.c.shopkeeper_id == shopkeeper_id))).first()
    return CommitmentRecord(*row) if row is not None else None


async def commitments_of(tx: AsyncConnection, ids: Collection[int]) -> dict[int, CommitmentRecord]:
    rows = await tx.execute(sa.select(*_COMMITMENT_COLUMNS).where(COMMITMENT.c.id.in_(ids)))
    return {row[0]: CommitmentRecord(*row) for row in rows}


async def settle_commitment(tx: AsyncConnection, *, commitment_id: int,
                            outcome: CommitmentOutcome, now: datetime) -> None:
    await tx.execute(sa.update(COMMITMENT).where(COMMITMENT.c.id == commitment_id)
                     .values(outcome=outcome, outcome_at=now))


# -- progress -----------------------------------------------------------------------------


@dataclass(slots=True)
class Progress:
    """Done tips per theme and commitments kept, over a period."""

    done: Counter[str]
    kept: int
    had: int


async def progress(tx: AsyncConnection, *, shopkeeper_id: int,
                   since: datetime | None = None, until: datetime | None = None) -> Progress:
    tips = sa.select(TIP_SENT.c.theme, TIP_SENT.c.outcome).where(
        TIP_SENT.c.shopkeeper_id == shopkeeper_id)
    kept = sa.select(sa.func.count()).where(
        COMMITMENT.c.shopkeeper_id == shopkeeper_id,
        COMMITMENT.c.outcome == CommitmentOutcome.DONE)
    if since is not None:
        tips = tips.where(TIP_SENT.c.sent_at >= since)
        kept = kept.where(COMMITMENT.c.chosen_at >= since)
    if until is not None:
        tips = tips.where(TIP_SENT.c.sent_at < until)
        kept = kept.where(COMMITMENT.c.chosen_at < until)
    rows = (await tx.execute(tips)).all()
    done = Counter(theme for theme, outcome in rows if outcome == TipOutcome.DONE)
    return Progress(done, int((await tx.execute(kept)).scalar_one()), len(rows))


# -- many people at once (a tick) ---------------------------------------------------------


async def recipients(tx: AsyncConnection, ids: Collection[int]) -> dict[int, Recipient]:
    """Everything a tick needs of these people, in a handful of queries."""
    if not ids:
        return {}
    people = await tx.execute(
        sa.select(SHOPKEEPER.c.id, SHOPKEEPER.c.language, SHOPKEEPER.c.shop_type,
                  SHOPKEEPER.c.consent_at, SHOPKEEPER.c.opted_out_at,
                  SHOPKEEPER.c.unreachable_since, COACHING_PLAN.c.cadence,
                  COACHING_PLAN.c.moment)
        .outerjoin(COACHING_PLAN, COACHING_PLAN.c.shopkeeper_id == SHOPKEEPER.c.id)
        .where(among(tx, SHOPKEEPER.c.id, ids)))
    # The newest address of each person: where they last came from.
    addresses: dict[int, tuple[str, str]] = {}
    for owner, channel, external_id in await tx.execute(
            sa.select(IDENTITY.c.shopkeeper_id, IDENTITY.c.channel, IDENTITY.c.external_id)
            .where(among(tx, IDENTITY.c.shopkeeper_id, ids)).order_by(IDENTITY.c.id)):
        addresses[owner] = (channel, external_id)
    found: dict[int, Recipient] = {}
    for (person, language, shop_type, consent_at, opted_out_at, unreachable, cadence,
         moment) in people:
        if person not in addresses:
            continue
        channel, external_id = addresses[person]
        found[person] = Recipient(
            person, language, shop_type, channel, external_id, consent_at is not None,
            opted_out_at is not None, unreachable is not None,
            Plan(cadence, moment) if cadence is not None else None)
    latest = (sa.select(sa.func.max(RESULT.c.id)).where(among(tx, RESULT.c.shopkeeper_id, ids))
              .group_by(RESULT.c.shopkeeper_id))
    for owner, scores, focus, created_at in await tx.execute(
            sa.select(RESULT.c.shopkeeper_id, RESULT.c.scores, RESULT.c.focus,
                      RESULT.c.created_at).where(RESULT.c.id.in_(latest))):
        if owner in found:
            found[owner].scores = dict(scores)
            found[owner].focus = list(focus or _lowest(scores))
            found[owner].result_at = created_at
    for owner, had in (await _histories(tx, ids)).items():
        if owner in found:
            found[owner].had = had
    for run_id, owner, flow_id, updated_at in await tx.execute(
            sa.select(RUN.c.id, RUN.c.shopkeeper_id, RUN.c.flow_id, RUN.c.updated_at)
            .where(among(tx, RUN.c.shopkeeper_id, ids), RUN.c.status.in_(("active", "paused")))):
        if owner in found:
            found[owner].open_run = (run_id, flow_id, updated_at)
    return found


def _lowest(scores: dict[str, int]) -> list[str]:
    """Focus themes for a result stored before they were: the two lowest below 100."""
    return sorted((t for t, s in scores.items() if s < 100), key=lambda t: scores[t])[:2]
