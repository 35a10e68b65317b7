"""Retention: when each person was last active, and when they were told of their erasure.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("shopkeeper") as batch:
        batch.add_column(sa.Column("last_active_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("retention_notice_at", sa.DateTime(timezone=True),
                                   nullable=True))
    # The best knowledge of past activity: the last change to the person's row.
    op.execute("UPDATE shopkeeper SET last_active_at = updated_at")
    op.create_index("ix_shopkeeper_last_active_at", "shopkeeper", ["last_active_at"])


def downgrade() -> None:
    op.drop_index("ix_shopkeeper_last_active_at", table_name="shopkeeper")
    with op.batch_alter_table("shopkeeper") as batch:
        batch.drop_column("retention_notice_at")
        batch.drop_column("last_active_at")
