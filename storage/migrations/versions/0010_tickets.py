"""Tickets: a shopkeeper who asked for a human coach, and that conversation.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ticket",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("shopkeeper_id", sa.Integer(),
                  sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"), nullable=False),
        sa.Column("question", sa.String(length=2000), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("coach_id", sa.Integer(), sa.ForeignKey("shopkeeper.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("coach_name", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("active_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_ticket_shopkeeper_id", "ticket", ["shopkeeper_id"])
    op.create_index("ix_ticket_status", "ticket", ["status"])
    op.create_table(
        "ticket_message",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("ticket.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("from_coach", sa.Boolean(), nullable=False),
        sa.Column("text", sa.String(length=4000), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_ticket_message_ticket_id", "ticket_message", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_ticket_message_ticket_id", table_name="ticket_message")
    op.drop_table("ticket_message")
    op.drop_index("ix_ticket_status", table_name="ticket")
    op.drop_index("ix_ticket_shopkeeper_id", table_name="ticket")
    op.drop_table("ticket")
