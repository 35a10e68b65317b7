"""Delivery: an inbox of received updates, an outbox with retries and leases, roles, and
the person's opt-out and reachability as separate facts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OPEN = "status IN ('queued', 'claimed', 'sending', 'errored')"


def upgrade() -> None:
    with op.batch_alter_table("shopkeeper") as batch:
        batch.add_column(sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("unreachable_since", sa.DateTime(timezone=True), nullable=True))
    # The old flag mixed /stop and "blocked"; it cannot tell which, so it is kept as an
    # opt-out: only the person's own /start undoes that.
    op.execute("UPDATE shopkeeper SET opted_out_at = updated_at WHERE opted_out")
    with op.batch_alter_table("shopkeeper") as batch:
        batch.drop_column("opted_out")

    op.create_table(
        "person_role",
        sa.Column("shopkeeper_id", sa.Integer(), sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("granted_by", sa.String(length=80), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("shopkeeper_id", "role"),
    )
    op.create_table(
        "menu_sync",
        sa.Column("shopkeeper_id", sa.Integer(), sa.ForeignKey("shopkeeper.id", ondelete="CASCADE"), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("shopkeeper_id"),
    )

    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("shopkeeper_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("kind", sa.String(length=10), nullable=False, server_default="reply"))
        batch.add_column(sa.Column("ordered", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("progress", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(length=40), nullable=True))
        batch.drop_index("ix_outbox_status")
    # Rows left "pending" by the old code may or may not have arrived: uncertain, not resent.
    op.execute("UPDATE outbox SET status = 'uncertain', error = 'left pending before 0003' WHERE status = 'pending'")
    op.execute("UPDATE outbox SET next_attempt_at = created_at")
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("next_attempt_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.alter_column("kind", existing_type=sa.String(length=10), server_default=None)
        batch.alter_column("ordered", existing_type=sa.Boolean(), server_default=None)
        batch.alter_column("progress", existing_type=sa.Integer(), server_default=None)
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_chat_open", "outbox", ["channel", "external_id", "id"],
                    postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))

    op.create_table(
        "inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("chat", sa.String(length=64), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "key"),
    )
    op.create_index("ix_inbox_pending", "inbox", ["status", "channel", "chat", "seq"])
    op.create_index("ix_inbox_received_at", "inbox", ["received_at"])
    # The inbox's unique key is the dedupe now.
    op.drop_index("ix_processed_update_created_at", table_name="processed_update")
    op.drop_table("processed_update")

    op.create_table(
        "rate_pause",
        sa.Column("scope", sa.String(length=90), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope"),
    )
    op.create_table(
        "sender_process",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sender_process_seen_at", "sender_process", ["seen_at"])


def downgrade() -> None:
    op.drop_index("ix_sender_process_seen_at", table_name="sender_process")
    op.drop_table("sender_process")
    op.drop_table("rate_pause")
    op.create_table(
        "processed_update",
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "key"),
    )
    op.create_index("ix_processed_update_created_at", "processed_update", ["created_at"])
    op.execute("INSERT INTO processed_update (channel, key, created_at) "
               "SELECT channel, key, received_at FROM inbox")
    op.drop_index("ix_inbox_received_at", table_name="inbox")
    op.drop_index("ix_inbox_pending", table_name="inbox")
    op.drop_table("inbox")
    op.drop_index("ix_outbox_chat_open", table_name="outbox")
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.execute("UPDATE outbox SET status = 'pending' WHERE status IN ('queued', 'claimed', 'sending', 'errored', 'uncertain')")
    with op.batch_alter_table("outbox") as batch:
        for column in ("claimed_by", "lease_until", "next_attempt_at", "progress", "ordered", "kind"):
            batch.drop_column(column)
        batch.create_index("ix_outbox_status", ["status"])
    op.drop_table("menu_sync")
    op.drop_table("person_role")
    with op.batch_alter_table("shopkeeper") as batch:
        batch.add_column(sa.Column("opted_out", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE shopkeeper SET opted_out = (opted_out_at IS NOT NULL OR unreachable_since IS NOT NULL)")
    with op.batch_alter_table("shopkeeper") as batch:
        batch.drop_column("unreachable_since")
        batch.drop_column("opted_out_at")
