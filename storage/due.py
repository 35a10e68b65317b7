"""What is due to whom, and when: the rows a tick turns into outbox messages.

One row per (person, kind, subject). :func:`claim` takes due rows atomically, inside the
caller's transaction: ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``
on PostgreSQL, so two bot processes take disjoint rows; on SQLite the same ``UPDATE …
RETURNING`` runs under the single writer's lock. The caller moves or deletes each claimed
row in that same transaction, together with the messages it records: a crash before the
commit loses nothing and sends nothing, and after it nothing is sent twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import DUE, DueKind


@dataclass(slots=True)
class DueRecord:
    """A claimed row of ``due`` (see :class:`storage.tables.Due`)."""

    id: int
    shopkeeper_id: int
    kind: str
    subject: str
    due_at: datetime
    count: int


_COLUMNS = (DUE.c.id, DUE.c.shopkeeper_id, DUE.c.kind, DUE.c.subject, DUE.c.due_at,
            DUE.c.count)


def _upsert(dialect: str) -> sa.Insert:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(DUE)
    return statement.on_conflict_do_update(
        index_elements=["shopkeeper_id", "kind", "subject"],
        set_={"due_at": statement.excluded.due_at, "count": statement.excluded.count})


_UPSERT = {name: _upsert(name) for name in ("postgresql", "sqlite")}
_DELETE = sa.delete(DUE).where(DUE.c.id == sa.bindparam("row"))


async def plan(tx: AsyncConnection, *, shopkeeper_id: int, kind: DueKind, at: datetime,
               subject: str = "", count: int = 0) -> None:
    """Make (or move) ``kind`` for ``subject`` due at ``at``."""
    await tx.execute(_UPSERT[tx.dialect.name], {
        "shopkeeper_id": shopkeeper_id, "kind": kind, "subject": subject, "due_at": at,
        "count": count})


async def when(tx: AsyncConnection, *, shopkeeper_id: int, kind: DueKind,
               subject: str = "") -> datetime | None:
    """When ``kind`` is due for this person, if it is."""
    return (await tx.execute(sa.select(DUE.c.due_at).where(
        DUE.c.shopkeeper_id == shopkeeper_id, DUE.c.kind == kind,
        DUE.c.subject == subject))).scalar_one_or_none()


async def cancel(tx: AsyncConnection, *, shopkeeper_id: int,
                 kinds: Collection[DueKind] | None = None, subject: str | None = None) -> int:
    """Nothing of ``kinds`` (every kind when None) is due for this person any more."""
    statement = sa.delete(DUE).where(DUE.c.shopkeeper_id == shopkeeper_id)
    if kinds is not None:
        statement = statement.where(DUE.c.kind.in_([str(k) for k in kinds]))
    if subject is not None:
        statement = statement.where(DUE.c.subject == subject)
    return int((await tx.execute(statement)).rowcount)


async def claim(tx: AsyncConnection, *, now: datetime, limit: int,
                by: str) -> list[DueRecord]:
    """Take up to ``limit`` rows due at ``now``, earliest first, for this transaction."""
    due = (sa.select(DUE.c.id).where(DUE.c.due_at <= now).order_by(DUE.c.due_at, DUE.c.id)
           .limit(limit).with_for_update(skip_locked=True))
    rows = (await tx.execute(
        sa.update(DUE).where(DUE.c.id.in_(due.scalar_subquery())).values(claimed_by=by)
        .returning(*_COLUMNS))).all()
    return sorted((DueRecord(*row) for row in rows), key=lambda r: (r.due_at, r.id))


async def move(tx: AsyncConnection, moves: Iterable[tuple[int, datetime, int]]) -> None:
    """Set each claimed row (id, next time, times sent) to go again later. Rows moving to
    the same time are moved in one statement: after a tick most of a batch shares its
    next time (same moment of the day), and one UPDATE per row costs PostgreSQL a round
    trip each."""
    groups: dict[tuple[datetime, int], list[int]] = defaultdict(list)
    for row, at, times in moves:
        groups[(at, times)].append(row)
    for (at, times), rows in groups.items():
        await tx.execute(sa.update(DUE).where(among(tx, DUE.c.id, rows))
                         .values(due_at=at, count=times))


def among(tx: AsyncConnection, column: sa.ColumnElement[int],
          ids: Collection[int]) -> sa.ColumnElement[bool]:
    """``column IN ids``; on PostgreSQL as ``= ANY(array)``: one parameter instead of
    thousands, which psycopg would otherwise rewrite for every statement."""
    if tx.dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam("ids", list(ids), unique=True,
                                              type_=postgresql.ARRAY(sa.Integer)))
    return column.in_(list(ids))


async def delete(tx: AsyncConnection, rows: Iterable[int]) -> None:
    """Claimed rows that are done with (or no longer apply)."""
    params = [{"row": row} for row in rows]
    if params:
        await tx.execute(_DELETE, params)


async def upcoming(tx: AsyncConnection, *, shopkeeper_id: int) -> list[DueRecord]:
    """Everything due for one person, soonest first (for ``tips preview`` and tests)."""
    rows = (await tx.execute(sa.select(*_COLUMNS).where(DUE.c.shopkeeper_id == shopkeeper_id)
                             .order_by(DUE.c.due_at))).all()
    return [DueRecord(*row) for row in rows]
