"""Coaching: a plan per person, what is due when, the tips sent and the weekly commitments.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _owner(*, primary_key: bool = False) -> sa.Column[int]:
    return sa.Column("shopkeeper_id", sa.Integer(),
                     sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"), nullable=False,
                     primary_key=primary_key)


def upgrade() -> None:
    with op.batch_alter_table("assessment_result") as batch:
        batch.add_column(sa.Column("focus", sa.JSON(), nullable=True))
    op.create_table(
        "coaching_plan",
        _owner(primary_key=True),
        sa.Column("cadence", sa.String(length=10), nullable=False),
        sa.Column("moment", sa.String(length=10), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "due",
        sa.Column("id", sa.Integer(), primary_key=True),
        _owner(),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("subject", sa.String(length=40), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=40), nullable=True),
        sa.UniqueConstraint("shopkeeper_id", "kind", "subject"),
    )
    op.create_index("ix_due_due_at", "due", ["due_at"])
    op.create_table(
        "tip_sent",
        sa.Column("id", sa.Integer(), primary_key=True),
        _owner(),
        sa.Column("tip_id", sa.String(length=24), nullable=False),
        sa.Column("theme", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=12), nullable=True),
        sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("shopkeeper_id", "tip_id"),
    )
    op.create_table(
        "commitment",
        sa.Column("id", sa.Integer(), primary_key=True),
        _owner(),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("what", sa.String(length=400), nullable=False),
        sa.Column("chosen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=True),
        sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_commitment_shopkeeper_id", "commitment", ["shopkeeper_id"])


def downgrade() -> None:
    op.drop_table("commitment")
    op.drop_table("tip_sent")
    op.drop_index("ix_due_due_at", "due")
    op.drop_table("due")
    op.drop_table("coaching_plan")
    with op.batch_alter_table("assessment_result") as batch:
        batch.drop_column("focus")
