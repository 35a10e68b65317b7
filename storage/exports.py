"""What the exports read: the rows behind each table an admin can export, streamed.

Exports run beside the bot (their own process, or a worker thread of it) on a connection of
their own: synchronous, read-only, and never holding SQLite's write lock (WAL lets them
read while the bot writes). Rows are fetched in chunks (a server-side cursor on
PostgreSQL), so memory stays flat however large the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.broadcasts import Counts
from storage.database import async_url
from storage.sqlite_inline import DRIVERNAME
from storage.tables import (
    BROADCAST,
    COMMITMENT,
    FLOW_SNAPSHOT,
    IDENTITY,
    OUTBOX,
    QUESTION,
    RESULT,
    RUN,
    SHOPKEEPER,
    TICKET,
    TICKET_MESSAGE,
    TIP_SENT,
)

#: Rows fetched per round trip.
CHUNK = 2000


@dataclass(frozen=True, slots=True)
class Filters:
    """Which rows: ``since`` ≤ the table's own moment < ``until`` (UTC-aware), and people
    of one ``municipality``. Each table says which moment it filters on."""

    since: datetime | None = None
    until: datetime | None = None
    municipality: str | None = None


def reader_url(tx: AsyncConnection) -> str:
    """The URL a reader opens for the database ``tx`` works on (the bot's own driver is
    asynchronous; a reader is not)."""
    url = tx.engine.url
    if url.drivername == DRIVERNAME:
        url = url.set(drivername="sqlite")
    return url.render_as_string(hide_password=False)


@contextmanager
def reading(url: str) -> Iterator[sa.Connection]:
    """A read-only connection to ``url`` for one export: on PostgreSQL a repeatable-read
    snapshot (every table of the export sees the same moment), on SQLite a plain reader
    that never takes the write lock."""
    sync = _sync_url(url)
    if sync.startswith("sqlite"):
        engine = sa.create_engine(sync, poolclass=sa.NullPool)
        sa.event.listen(engine, "connect", _query_only)
    else:
        engine = sa.create_engine(sync, poolclass=sa.NullPool,
                                  isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text("SET TRANSACTION READ ONLY"))
            yield connection.execution_options(stream_results=True, yield_per=CHUNK)
            connection.rollback()
    finally:
        engine.dispose()


def flow_sources(conn: sa.Connection) -> dict[str, str]:
    """Every stored flow version's text by its key (a run's pin)."""
    rows = conn.execute(sa.select(FLOW_SNAPSHOT.c.key, FLOW_SNAPSHOT.c.source))
    return {key: source for key, source in rows}


def _people(filters: Filters) -> sa.ColumnElement[bool]:
    if filters.municipality is None:
        return sa.true()
    return SHOPKEEPER.c.municipality == filters.municipality


def _between(column: sa.ColumnElement[Any], filters: Filters) -> sa.ColumnElement[bool]:
    conditions: list[sa.ColumnElement[bool]] = [sa.true()]
    if filters.since is not None:
        conditions.append(column >= filters.since)
    if filters.until is not None:
        conditions.append(column < filters.until)
    return sa.and_(*conditions)


def _stream(conn: sa.Connection, query: sa.Select[Any]) -> Iterator[sa.RowMapping]:
    for partition in conn.execute(query).mappings().partitions(CHUNK):
        yield from partition


def assessments(conn: sa.Connection, filters: Filters) -> Iterator[sa.RowMapping]:
    """Completed assessments (one per result), oldest first per person, filtered on when
    they were completed. Each carries the person's profile, the run's answers (its
    ``state``), its ``round`` (0 for the first of that person: T0) and the scores of the
    person's previous assessment (``previous_scores``, ``previous_overall``; None at T0),
    both counted over all the person's assessments, whatever the filters."""
    def each(function: sa.FunctionElement[Any]) -> sa.Over[Any]:
        return function.over(partition_by=RESULT.c.shopkeeper_id, order_by=RESULT.c.id)

    ordered = sa.select(
        RESULT.c.id, RESULT.c.shopkeeper_id, RESULT.c.run_id, RESULT.c.flow_key,
        RESULT.c.scores, RESULT.c.overall, RESULT.c.created_at,
        (each(sa.func.row_number()) - 1).label("round"),
        each(sa.func.lag(RESULT.c.scores, type_=RESULT.c.scores.type))
        .label("previous_scores"),
        each(sa.func.lag(RESULT.c.overall, type_=sa.Integer)).label("previous_overall"),
    ).subquery()
    query = (sa.select(
        ordered, RUN.c.state, RUN.c.completed_at, SHOPKEEPER.c.shop_type,
        SHOPKEEPER.c.team_size, SHOPKEEPER.c.municipality)
        .join(RUN, RUN.c.id == ordered.c.run_id)
        .join(SHOPKEEPER, SHOPKEEPER.c.id == ordered.c.shopkeeper_id)
        .where(_between(ordered.c.created_at, filters), _people(filters))
        .order_by(ordered.c.id))
    return _stream(conn, query)


def count_assessments(conn: sa.Connection, filters: Filters) -> int:
    """How many assessments :func:`assessments` yields (for a progress bar)."""
    return int(conn.execute(
        sa.select(sa.func.count()).select_from(RESULT)
        .join(SHOPKEEPER, SHOPKEEPER.c.id == RESULT.c.shopkeeper_id)
        .where(_between(RESULT.c.created_at, filters), _people(filters))).scalar_one())


def _first_identity() -> sa.ScalarSelect[Any]:
    channel = (IDENTITY.c.channel + sa.literal(":") + IDENTITY.c.external_id)
    return (sa.select(channel).where(IDENTITY.c.shopkeeper_id == SHOPKEEPER.c.id)
            .order_by(IDENTITY.c.id).limit(1).scalar_subquery())


def _last_activity() -> sa.ColumnElement[Any]:
    """The person's latest move: their profile or any of their runs changing."""
    run = (sa.select(sa.func.max(RUN.c.updated_at))
           .where(RUN.c.shopkeeper_id == SHOPKEEPER.c.id).scalar_subquery())
    return sa.case((run > SHOPKEEPER.c.updated_at, run), else_=SHOPKEEPER.c.updated_at)


def users(conn: sa.Connection, filters: Filters) -> Iterator[sa.RowMapping]:
    """Everyone, with their profile, address (``channel:id``) and last activity, filtered
    on when they first wrote."""
    query = (sa.select(SHOPKEEPER, _first_identity().label("address"),
                       _last_activity().label("last_activity"))
             .where(_between(SHOPKEEPER.c.created_at, filters), _people(filters))
             .order_by(SHOPKEEPER.c.id))
    return _stream(conn, query)


def count_users(conn: sa.Connection, filters: Filters) -> int:
    return int(conn.execute(
        sa.select(sa.func.count()).select_from(SHOPKEEPER)
        .where(_between(SHOPKEEPER.c.created_at, filters), _people(filters))).scalar_one())


def tips(conn: sa.Connection, filters: Filters) -> Iterator[sa.RowMapping]:
    """Delivered tips with what the person said of them and the week's action they made of
    them (their latest commitment from that tip), filtered on when the tip was sent; then
    the actions chosen from a result (not from a tip), filtered on when they were chosen."""
    source = sa.literal("tip:") + TIP_SENT.c.tip_id
    chosen_from = COMMITMENT.alias("chosen_from")
    latest = (sa.select(sa.func.max(chosen_from.c.id))
              .where(chosen_from.c.shopkeeper_id == TIP_SENT.c.shopkeeper_id,
                     chosen_from.c.source == source).correlate(TIP_SENT).scalar_subquery())
    profile = (SHOPKEEPER.c.shop_type, SHOPKEEPER.c.municipality)
    sent = (sa.select(
        TIP_SENT.c.shopkeeper_id, TIP_SENT.c.tip_id, TIP_SENT.c.theme, TIP_SENT.c.kind,
        TIP_SENT.c.sent_at, TIP_SENT.c.outcome, TIP_SENT.c.outcome_at, *profile,
        COMMITMENT.c.source, COMMITMENT.c.what, COMMITMENT.c.chosen_at,
        COMMITMENT.c.outcome.label("commitment_outcome"),
        COMMITMENT.c.outcome_at.label("commitment_outcome_at"))
        .join(SHOPKEEPER, SHOPKEEPER.c.id == TIP_SENT.c.shopkeeper_id)
        .outerjoin(COMMITMENT, COMMITMENT.c.id == latest)
        .where(_between(TIP_SENT.c.sent_at, filters), _people(filters))
        .order_by(TIP_SENT.c.id))
    yield from _stream(conn, sent)
    chosen = (sa.select(
        COMMITMENT.c.shopkeeper_id, *profile, COMMITMENT.c.source, COMMITMENT.c.what,
        COMMITMENT.c.chosen_at, COMMITMENT.c.outcome.label("commitment_outcome"),
        COMMITMENT.c.outcome_at.label("commitment_outcome_at"))
        .join(SHOPKEEPER, SHOPKEEPER.c.id == COMMITMENT.c.shopkeeper_id)
        .where(sa.not_(COMMITMENT.c.source.startswith("tip:")),
               _between(COMMITMENT.c.chosen_at, filters), _people(filters))
        .order_by(COMMITMENT.c.id))
    yield from _stream(conn, chosen)


def count_tips(conn: sa.Connection, filters: Filters) -> int:
    sent = (sa.select(sa.func.count()).select_from(TIP_SENT)
            .join(SHOPKEEPER, SHOPKEEPER.c.id == TIP_SENT.c.shopkeeper_id)
            .where(_between(TIP_SENT.c.sent_at, filters), _people(filters)))
    chosen = (sa.select(sa.func.count()).select_from(COMMITMENT)
              .join(SHOPKEEPER, SHOPKEEPER.c.id == COMMITMENT.c.shopkeeper_id)
              .where(sa.not_(COMMITMENT.c.source.startswith("tip:")),
                     _between(COMMITMENT.c.chosen_at, filters), _people(filters)))
    return int(conn.execute(sent).scalar_one()) + int(conn.execute(chosen).scalar_one())


def broadcasts(conn: sa.Connection,
               filters: Filters) -> Iterator[tuple[sa.RowMapping, Counts]]:
    """Each broadcast (filtered on when it was to go out) with how its messages stand;
    with a municipality, counting only the recipients who live there."""
    made = list(conn.execute(
        sa.select(BROADCAST).where(_between(BROADCAST.c.send_at, filters))
        .order_by(BROADCAST.c.id)).mappings())
    if not made:
        return
    unreachable = SHOPKEEPER.c.unreachable_since.is_not(None)
    tallies: dict[int, Counts] = {row["id"]: Counts() for row in made}
    rows = conn.execute(
        sa.select(OUTBOX.c.broadcast_id, OUTBOX.c.status, OUTBOX.c.error, unreachable,
                  sa.func.count())
        .outerjoin(SHOPKEEPER, SHOPKEEPER.c.id == OUTBOX.c.shopkeeper_id)
        .where(OUTBOX.c.broadcast_id.in_(tallies), _people(filters))
        .group_by(OUTBOX.c.broadcast_id, OUTBOX.c.status, OUTBOX.c.error, unreachable))
    for broadcast_id, status, error, gone, number in rows:
        tallies[broadcast_id].add(status, error, bool(gone), number)
    for row in made:
        yield row, tallies[row["id"]]


def tickets(conn: sa.Connection, filters: Filters) -> Iterator[sa.RowMapping]:
    """Every ticket (filtered on when it was opened) with each message of its conversation,
    oldest first: one row per message, ``message_id`` None for a ticket without any."""
    query = (sa.select(
        TICKET.c.id, TICKET.c.shopkeeper_id, TICKET.c.question, TICKET.c.status,
        TICKET.c.coach_id, TICKET.c.coach_name, TICKET.c.created_at, TICKET.c.claimed_at,
        TICKET.c.closed_at, SHOPKEEPER.c.shop_type, SHOPKEEPER.c.municipality,
        TICKET_MESSAGE.c.id.label("message_id"), TICKET_MESSAGE.c.from_coach,
        TICKET_MESSAGE.c.text, TICKET_MESSAGE.c.at)
        .join(SHOPKEEPER, SHOPKEEPER.c.id == TICKET.c.shopkeeper_id)
        .outerjoin(TICKET_MESSAGE, TICKET_MESSAGE.c.ticket_id == TICKET.c.id)
        .where(_between(TICKET.c.created_at, filters), _people(filters))
        .order_by(TICKET.c.id, TICKET_MESSAGE.c.id))
    return _stream(conn, query)


def count_tickets(conn: sa.Connection, filters: Filters) -> int:
    return int(conn.execute(
        sa.select(sa.func.count()).select_from(TICKET)
        .join(SHOPKEEPER, SHOPKEEPER.c.id == TICKET.c.shopkeeper_id)
        .where(_between(TICKET.c.created_at, filters), _people(filters))).scalar_one())


def questions(conn: sa.Connection, filters: Filters) -> Iterator[sa.RowMapping]:
    """Every question to the coach (filtered on when it was asked) with its answer, how it
    was answered and its tokens, oldest first."""
    query = (sa.select(QUESTION, SHOPKEEPER.c.shop_type, SHOPKEEPER.c.municipality)
             .join(SHOPKEEPER, SHOPKEEPER.c.id == QUESTION.c.shopkeeper_id)
             .where(_between(QUESTION.c.asked_at, filters), _people(filters))
             .order_by(QUESTION.c.id))
    return _stream(conn, query)


def count_questions(conn: sa.Connection, filters: Filters) -> int:
    return int(conn.execute(
        sa.select(sa.func.count()).select_from(QUESTION)
        .join(SHOPKEEPER, SHOPKEEPER.c.id == QUESTION.c.shopkeeper_id)
        .where(_between(QUESTION.c.asked_at, filters), _people(filters))).scalar_one())


def _sync_url(url: str) -> str:
    parsed = sa.make_url(async_url(url))
    driver = {"sqlite+aiosqlite": "sqlite", DRIVERNAME: "sqlite",
              "postgresql+asyncpg": "postgresql+psycopg"}.get(parsed.drivername,
                                                              parsed.drivername)
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def _query_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=1")  # an export never writes, whatever the bug
    cursor.close()
