"""Follow-ups: which outbox messages are about which ticket (a coach answers a ticket by
replying to one of them).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ticket_post",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("ticket.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("outbox_id", sa.Integer(), sa.ForeignKey("outbox.id", ondelete="CASCADE"),
                  nullable=False),
    )
    op.create_index("ix_ticket_post_ticket_id", "ticket_post", ["ticket_id"])
    op.create_index("ix_ticket_post_outbox_id", "ticket_post", ["outbox_id"])


def downgrade() -> None:
    op.drop_index("ix_ticket_post_outbox_id", table_name="ticket_post")
    op.drop_index("ix_ticket_post_ticket_id", table_name="ticket_post")
    op.drop_table("ticket_post")
