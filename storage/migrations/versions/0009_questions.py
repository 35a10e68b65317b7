"""Questions to the coach: the question, its answer (AI or found tips) and its token cost.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "question",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("shopkeeper_id", sa.Integer(), sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=10), nullable=True),
        sa.Column("model", sa.String(length=80), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("ai_notice", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_question_shopkeeper_id", "question", ["shopkeeper_id"])
    op.create_index("ix_question_asked_at", "question", ["asked_at"])


def downgrade() -> None:
    op.drop_index("ix_question_asked_at", table_name="question")
    op.drop_index("ix_question_shopkeeper_id", table_name="question")
    op.drop_table("question")
