"""Processed updates, so redelivered updates are handled at most once.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "processed_update",
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "key"),
    )
    op.create_index("ix_processed_update_created_at", "processed_update", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_processed_update_created_at", table_name="processed_update")
    op.drop_table("processed_update")
