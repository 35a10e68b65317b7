"""The dashboard: one-time login links and browser sessions.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dashboard_login",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("shopkeeper_id", sa.Integer(),
                  sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_dashboard_login_shopkeeper_id", "dashboard_login", ["shopkeeper_id"])
    op.create_table(
        "dashboard_session",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("shopkeeper_id", sa.Integer(),
                  sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_dashboard_session_shopkeeper_id", "dashboard_session",
                    ["shopkeeper_id"])


def downgrade() -> None:
    op.drop_index("ix_dashboard_session_shopkeeper_id", table_name="dashboard_session")
    op.drop_table("dashboard_session")
    op.drop_index("ix_dashboard_login_shopkeeper_id", table_name="dashboard_login")
    op.drop_table("dashboard_login")
