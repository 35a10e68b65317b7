"""Broadcast photos and deletion, drafts composed in chat, and the audit trail.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("sha256", sa.String(length=64), nullable=False, unique=True),
        sa.Column("content_type", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.Column("platform_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("broadcast") as batch:
        batch.add_column(sa.Column("media_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key("fk_broadcast_media", "media", ["media_id"], ["id"],
                                 ondelete="SET NULL")
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("platform_ids", sa.JSON(), nullable=True))
    op.create_table(
        "broadcast_draft",
        sa.Column("shopkeeper_id", sa.Integer(),
                  sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("step", sa.String(length=20), nullable=False),
        sa.Column("texts", sa.JSON(), nullable=False),
        sa.Column("segment", sa.JSON(), nullable=False),
        sa.Column("media_id", sa.Integer(), sa.ForeignKey("media.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("send_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_audit_at", "audit", ["at"])


def downgrade() -> None:
    op.drop_index("ix_audit_at", table_name="audit")
    op.drop_table("audit")
    op.drop_table("broadcast_draft")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("platform_ids")
    with op.batch_alter_table("broadcast") as batch:
        batch.drop_constraint("fk_broadcast_media", type_="foreignkey")
        batch.drop_column("deleted_at")
        batch.drop_column("media_id")
    op.drop_table("media")
