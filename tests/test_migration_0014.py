"""Migration 0014 on a database that already has data: the tier's count of the day so far
is carried over, and pictures stored with only a platform id get their origin (a WhatsApp
media id from a webhook is no longer taken for an id to send by)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from storage.database import alembic_config


def _migrate(connection: sa.Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def test_existing_reach_and_pictures_are_carried_over(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    now = datetime(2026, 11, 27, 10, tzinfo=UTC)
    with engine.begin() as connection:
        _migrate(connection, "0013")
        for person in (1, 2, 3):
            connection.execute(sa.text(
                "INSERT INTO shopkeeper (id, language, language_chosen, created_at, "
                "updated_at) VALUES (:id, 'nl', 1, :now, :now)"), {"id": person, "now": now})
        connection.execute(sa.text(
            "INSERT INTO whatsapp_reach (day, shopkeeper_id) VALUES "
            "('2026-11-26', 1), ('2026-11-27', 1), ('2026-11-27', 2), ('2026-11-27', 3)"))
        for sha, data, ids in (("a", None, '{"telegram": "AgAC-file"}'),
                               ("b", None, '{"whatsapp": "8000000001"}'),
                               ("c", b"\x89PNG", '{"whatsapp": "7000000001"}')):
            connection.execute(sa.text(
                "INSERT INTO media (sha256, content_type, name, data, platform_ids, "
                "created_at) VALUES (:sha, 'image/jpeg', 'photo.jpg', :data, :ids, :now)"),
                {"sha": sha, "data": data, "ids": ids, "now": now})
        _migrate(connection, "0014")
        tiers = connection.execute(sa.text(
            "SELECT day, reached FROM whatsapp_tier ORDER BY day")).all()
        pictures = connection.execute(sa.text(
            "SELECT sha256, platform_ids, origin_channel, origin_id FROM media "
            "ORDER BY sha256")).all()
    engine.dispose()
    assert [tuple(t) for t in tiers] == [("2026-11-26", 1), ("2026-11-27", 3)]
    assert [(sha, _json(ids), channel, origin) for sha, ids, channel, origin in pictures] == [
        ("a", {"telegram": "AgAC-file"}, "telegram", "AgAC-file"),  # still sent by file_id
        ("b", {}, "whatsapp", "8000000001"),  # received: only downloaded from now on
        ("c", {"whatsapp": "7000000001"}, None, None)]  # an upload of our own bytes


def _json(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value
