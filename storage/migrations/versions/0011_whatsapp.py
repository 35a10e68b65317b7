"""WhatsApp: the customer-service window, the daily recipient tier, delivery receipts.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "whatsapp_window",
        sa.Column("channel", sa.String(length=20), primary_key=True),
        sa.Column("external_id", sa.String(length=64), primary_key=True),
        sa.Column("last_inbound_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "whatsapp_reach",
        sa.Column("day", sa.String(length=10), primary_key=True),
        sa.Column("shopkeeper_id", sa.Integer(),
                  sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_table(
        "whatsapp_receipt",
        sa.Column("outbox_id", sa.Integer(), sa.ForeignKey("outbox.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("whatsapp_receipt")
    op.drop_table("whatsapp_reach")
    op.drop_table("whatsapp_window")
