"""Pictures sent with broadcasts: stored once, uploaded to each platform once.

A picture from the command line has bytes; one a coach sent in chat has only the
platform's id for it (Telegram's ``file_id``), which that platform accepts again as is.
After the first upload the platform's id is kept too, so the next recipients get the id
instead of the bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import MEDIA, utcnow


@dataclass(frozen=True, slots=True)
class MediaRecord:
    """A stored picture: ``data`` (None when only platform ids are known) and
    ``platform_ids`` (channel → the platform's id)."""

    id: int
    content_type: str
    name: str
    data: bytes | None
    platform_ids: dict[str, str] = field(default_factory=dict)


async def put(tx: AsyncConnection, *, data: bytes, content_type: str, name: str) -> int:
    """Store a picture's bytes (checked by :func:`flows.pictures.picture`; the same bytes
    twice are one row); returns its id."""
    return await _put(tx, hashlib.sha256(data).hexdigest(), content_type, name, data, {})


async def put_platform(tx: AsyncConnection, *, channel: str, platform_id: str,
                       unique_id: str, content_type: str = "image/jpeg",
                       name: str = "photo.jpg") -> int:
    """Store a picture known only by its platform id (a photo a coach sent in chat);
    ``unique_id`` is the platform's stable id of the file (Telegram's ``file_unique_id``)."""
    digest = hashlib.sha256(f"{channel}:{unique_id}".encode()).hexdigest()
    return await _put(tx, digest, content_type, name, None, {channel: platform_id})


async def _put(tx: AsyncConnection, digest: str, content_type: str, name: str,
               data: bytes | None, platform_ids: dict[str, str]) -> int:
    found = (await tx.execute(sa.select(MEDIA.c.id).where(MEDIA.c.sha256 == digest))).first()
    if found is not None:
        return int(found[0])
    result = await tx.execute(sa.insert(MEDIA).values(
        sha256=digest, content_type=content_type[:40], name=name[:80], data=data,
        platform_ids=platform_ids, created_at=utcnow()))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


async def get(tx: AsyncConnection, *, media_id: int) -> MediaRecord | None:
    row = (await tx.execute(sa.select(MEDIA).where(MEDIA.c.id == media_id))).mappings().first()
    if row is None:
        return None
    return MediaRecord(row["id"], row["content_type"], row["name"], row["data"],
                       dict(row["platform_ids"] or {}))


async def remember_upload(tx: AsyncConnection, *, media_id: int, channel: str,
                          platform_id: str) -> None:
    """Keep the platform's id after the first upload (the others reuse it)."""
    current = await get(tx, media_id=media_id)
    if current is None or current.platform_ids.get(channel) == platform_id:
        return
    await tx.execute(sa.update(MEDIA).where(MEDIA.c.id == media_id).values(
        platform_ids={**current.platform_ids, channel: platform_id}))
