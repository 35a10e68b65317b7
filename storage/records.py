"""What a turn reads from storage: plain records, not ORM objects attached to a session.

A conversation turn reads a shopkeeper and their open run, then writes back a few
columns. Through the ORM every turn paid for identity maps, change tracking and a
unit-of-work flush; as records, a read is one SELECT and every write is one explicit
UPDATE or INSERT (see :mod:`storage.shopkeepers` and :mod:`storage.runs`). Changing a
record's attribute writes nothing by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from storage.tables import INBOX, OUTBOX, RESULT, RUN, SHOPKEEPER


@dataclass(slots=True)
class ShopkeeperRecord:
    """A row of ``shopkeeper`` (see :class:`storage.tables.Shopkeeper`)."""

    id: int
    language: str
    language_chosen: bool
    consent_at: datetime | None
    consent_version: str | None
    shop_name: str | None
    municipality: str | None
    municipality_input: str | None
    shop_type: str | None
    team_size: str | None
    opted_out_at: datetime | None
    unreachable_since: datetime | None
    created_at: datetime
    updated_at: datetime
    last_active_at: datetime | None = None
    retention_notice_at: datetime | None = None


@dataclass(slots=True)
class RunRecord:
    """A row of ``run`` (see :class:`storage.tables.Run`)."""

    id: int
    shopkeeper_id: int
    flow_id: str
    flow_key: str
    status: str
    state: dict[str, Any]
    started_at: datetime
    updated_at: datetime
    completed_at: datetime | None


@dataclass(slots=True)
class ResultRecord:
    """A row of ``assessment_result`` (see :class:`storage.tables.AssessmentResult`)."""

    id: int
    shopkeeper_id: int
    run_id: int
    flow_key: str
    scores: dict[str, int]
    overall: int
    created_at: datetime
    focus: list[str] | None


@dataclass(slots=True)
class OutboxRecord:
    """A claimed row of ``outbox`` (see :class:`storage.tables.OutboxMessage`)."""

    id: int
    shopkeeper_id: int | None
    channel: str
    external_id: str
    payload: dict[str, Any]
    kind: str
    attempts: int
    progress: int
    created_at: datetime
    #: The platform's message ids of calls of this row that went out on an earlier attempt.
    platform_ids: list[str] | None = None


@dataclass(slots=True)
class InboxRecord:
    """A row of ``inbox`` (see :class:`storage.tables.InboxUpdate`)."""

    id: int
    channel: str
    key: str
    chat: str | None
    seq: int
    payload: dict[str, Any]
    status: str
    attempts: int


def _columns(record: type, table: sa.Table) -> list[sa.Column[Any]]:
    """The table's columns in the record's field order; a field the table lacks fails at
    import, so the two cannot drift apart silently."""
    return [table.c[f.name] for f in fields(record)]


SHOPKEEPER_COLUMNS = _columns(ShopkeeperRecord, SHOPKEEPER)
RUN_COLUMNS = _columns(RunRecord, RUN)
RESULT_COLUMNS = _columns(ResultRecord, RESULT)
OUTBOX_COLUMNS = _columns(OutboxRecord, OUTBOX)
INBOX_COLUMNS = _columns(InboxRecord, INBOX)


def shopkeeper_from(row: Sequence[Any]) -> ShopkeeperRecord:
    """A record from a row that starts with :data:`SHOPKEEPER_COLUMNS`."""
    return ShopkeeperRecord(*row[:len(SHOPKEEPER_COLUMNS)])


def run_from(row: Sequence[Any], start: int = 0) -> RunRecord | None:
    """A record from the :data:`RUN_COLUMNS` at ``start`` in a row; None for an outer
    join that found no run."""
    values = row[start:start + len(RUN_COLUMNS)]
    return RunRecord(*values) if values[0] is not None else None
