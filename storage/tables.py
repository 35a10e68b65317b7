"""The tables, as SQLModel classes. Every timestamp is UTC-aware.

Identity is per channel (``identity``): a Telegram chat id today, a WhatsApp number later,
both pointing at one ``shopkeeper``. Outbound messages are rows (``outbox``) written in the
same transaction as the state change that caused them, so nothing said is ever lost.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timestamp that is UTC-aware on the way in and out, SQLite included."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime: store UTC-aware timestamps only")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None,
                             dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Shopkeeper(SQLModel, table=True):
    """A person using the bot, with their profile. Personal fields stay empty until consent."""

    id: int | None = Field(default=None, primary_key=True)
    language: str = Field(default="nl", max_length=5)
    language_chosen: bool = False
    consent_at: datetime | None = Field(default=None, sa_type=UtcDateTime())
    consent_version: str | None = Field(default=None, max_length=40)
    shop_name: str | None = Field(default=None, max_length=80)
    municipality: str | None = Field(default=None, max_length=40, index=True)
    municipality_input: str | None = Field(default=None, max_length=80)
    shop_type: str | None = Field(default=None, max_length=20)
    team_size: str | None = Field(default=None, max_length=10)
    opted_out: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())


class Identity(SQLModel, table=True):
    """How a channel knows a shopkeeper: (``telegram``, chat id), (``console``, name), …"""

    __table_args__ = (sa.UniqueConstraint("channel", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    external_id: str = Field(max_length=64)
    shopkeeper_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"), index=True,
                            nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())


class FlowSnapshot(SQLModel, table=True):
    """The exact text of every flow version a run has started on, so it can be rebuilt."""

    __tablename__ = "flow_snapshot"

    key: str = Field(primary_key=True, max_length=60)
    flow_id: str = Field(max_length=32)
    version: str = Field(max_length=40)
    source: str = Field(sa_type=sa.Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())


class RunStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    ABANDONED = "abandoned"


class Run(SQLModel, table=True):
    """One pass of one shopkeeper through one flow, pinned to the flow version it began on."""

    id: int | None = Field(default=None, primary_key=True)
    shopkeeper_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"), index=True,
                            nullable=False))
    flow_id: str = Field(max_length=32)
    flow_key: str = Field(max_length=60)
    status: str = Field(default=RunStatus.ACTIVE, max_length=10)
    state: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())
    completed_at: datetime | None = Field(default=None, sa_type=UtcDateTime())


class AssessmentResult(SQLModel, table=True):
    """The scores of one completed assessment; the re-assessment compares against these."""

    __tablename__ = "assessment_result"

    id: int | None = Field(default=None, primary_key=True)
    shopkeeper_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"), index=True,
                            nullable=False))
    run_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("run.id", ondelete="CASCADE"), nullable=False))
    flow_key: str = Field(max_length=60)
    scores: dict[str, int] = Field(default_factory=dict, sa_type=sa.JSON)
    overall: int
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class OutboxMessage(SQLModel, table=True):
    """A message to deliver: recorded first, sent after, with the reason when it fails."""

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    shopkeeper_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"), index=True,
                            nullable=False))
    channel: str = Field(max_length=20)
    external_id: str = Field(max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    image: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    status: str = Field(default=OutboxStatus.PENDING, max_length=10, index=True)
    attempts: int = 0
    error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime())
    sent_at: datetime | None = Field(default=None, sa_type=UtcDateTime())


class ProcessedUpdate(SQLModel, table=True):
    """An inbound update already handled (Telegram ``update_id``, WhatsApp ``wamid``)."""

    __tablename__ = "processed_update"

    channel: str = Field(primary_key=True, max_length=20)
    key: str = Field(primary_key=True, max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime(), index=True)


# The Core tables behind the classes, for the storage functions' explicit statements
# (SQLModel types ``__table__`` loosely, hence the one cast here).
SHOPKEEPER: sa.Table = Shopkeeper.__table__  # type: ignore[attr-defined]
IDENTITY: sa.Table = Identity.__table__  # type: ignore[attr-defined]
FLOW_SNAPSHOT: sa.Table = FlowSnapshot.__table__  # type: ignore[attr-defined]
RUN: sa.Table = Run.__table__  # type: ignore[attr-defined]
RESULT: sa.Table = AssessmentResult.__table__  # type: ignore[attr-defined]
OUTBOX: sa.Table = OutboxMessage.__table__  # type: ignore[attr-defined]
PROCESSED: sa.Table = ProcessedUpdate.__table__  # type: ignore[attr-defined]
