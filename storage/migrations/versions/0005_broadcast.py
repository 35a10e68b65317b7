"""Broadcasts: a coach's message to a segment, and one outbox row per recipient.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "broadcast",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_by", sa.Integer(),
                  sa.ForeignKey("shopkeeper.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created_via", sa.String(length=80), nullable=False),
        sa.Column("texts", sa.JSON(), nullable=False),
        sa.Column("segment", sa.JSON(), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("send_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_broadcast_send_at", "broadcast", ["send_at"])
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("broadcast_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_outbox_broadcast", "broadcast", ["broadcast_id"], ["id"],
                                 ondelete="CASCADE")
        batch.create_unique_constraint("uq_outbox_broadcast_person",
                                       ["broadcast_id", "shopkeeper_id"])


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_constraint("uq_outbox_broadcast_person", type_="unique")
        batch.drop_constraint("fk_outbox_broadcast", type_="foreignkey")
        batch.drop_column("broadcast_id")
    op.drop_index("ix_broadcast_send_at", "broadcast")
    op.drop_table("broadcast")
