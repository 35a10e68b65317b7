"""WhatsApp's rules shared by every process: the pair rate and the daily tier's count in
tables, the broadcast's "the rest goes tomorrow" on its row, and where a picture came from
(to fetch its bytes when another channel needs them).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

#: The channel whose received media ids cannot be sent again (see storage.media).
_UNSENDABLE = "whatsapp"


def upgrade() -> None:
    op.create_table(
        "whatsapp_pace",
        sa.Column("channel", sa.String(length=20), primary_key=True),
        sa.Column("external_id", sa.String(length=64), primary_key=True),
        sa.Column("last_bulk_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "whatsapp_tier",
        sa.Column("day", sa.String(length=10), primary_key=True),
        sa.Column("reached", sa.Integer(), nullable=False),
    )
    # Slots already used count on: a deploy in the middle of a day must not reset the tier.
    op.execute("INSERT INTO whatsapp_tier (day, reached) "
               "SELECT day, count(*) FROM whatsapp_reach GROUP BY day")
    with op.batch_alter_table("broadcast") as batch:
        batch.add_column(sa.Column("next_day_rows", sa.Integer(), nullable=True))
    with op.batch_alter_table("media") as batch:
        batch.add_column(sa.Column("origin_channel", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("origin_id", sa.String(length=200), nullable=True))
    _origins()


def _origins() -> None:
    """A picture stored without bytes had one platform id: where it came from. A WhatsApp
    one was received, and a received media id is not sent again: it is only an origin."""
    media = sa.table("media", sa.column("id", sa.Integer()),
                     sa.column("data", sa.LargeBinary()),
                     sa.column("platform_ids", sa.JSON()),
                     sa.column("origin_channel", sa.String()),
                     sa.column("origin_id", sa.String()))
    connection = op.get_bind()
    rows = connection.execute(sa.select(media.c.id, media.c.platform_ids)
                              .where(media.c.data.is_(None))).all()
    for media_id, platform_ids in rows:
        ids = dict(platform_ids or {})
        if len(ids) != 1:
            continue
        ((channel, platform_id),) = ids.items()
        kept = {} if channel == _UNSENDABLE else ids
        connection.execute(sa.update(media).where(media.c.id == media_id).values(
            origin_channel=channel, origin_id=platform_id, platform_ids=kept))


def downgrade() -> None:
    with op.batch_alter_table("media") as batch:
        batch.drop_column("origin_id")
        batch.drop_column("origin_channel")
    with op.batch_alter_table("broadcast") as batch:
        batch.drop_column("next_day_rows")
    op.drop_table("whatsapp_tier")
    op.drop_table("whatsapp_pace")
