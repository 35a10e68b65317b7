"""Pictures sent with broadcasts: stored once, uploaded to each platform once.

A picture from the command line or the dashboard has bytes; one a coach sent in chat has
only its **origin**: the channel it came through and that platform's id for it. Whether
that platform takes its id again to send the picture is the channel's to say (Telegram's
``file_id`` yes; a media id WhatsApp gave with a received message no, it is for
downloading), so nothing here calls it sendable. A channel that cannot send by the origin
id gets the bytes, fetched once from the origin's channel and kept here
(:func:`keep_bytes`). After the first upload each platform's own id is kept too
(:func:`remember_upload`), so the next recipients get the id instead of the bytes.
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
    #: (channel, the platform's id there) of a picture received in chat; None otherwise.
    origin: tuple[str, str] | None = None


async def put(tx: AsyncConnection, *, data: bytes, content_type: str, name: str) -> int:
    """Store a picture's bytes (checked by :func:`flows.pictures.picture`; the same bytes
    twice are one row); returns its id."""
    return await _put(tx, hashlib.sha256(data).hexdigest(), content_type, name, data, None)


async def put_platform(tx: AsyncConnection, *, channel: str, platform_id: str,
                       unique_id: str, content_type: str = "image/jpeg",
                       name: str = "photo.jpg") -> int:
    """Store a picture known only by the id ``channel``'s platform gave it (a photo a
    coach sent in chat): its origin. ``unique_id`` is the platform's stable id of the file
    (Telegram's ``file_unique_id``, WhatsApp's sha256)."""
    digest = hashlib.sha256(f"{channel}:{unique_id}".encode()).hexdigest()
    return await _put(tx, digest, content_type, name, None, (channel, platform_id))


async def _put(tx: AsyncConnection, digest: str, content_type: str, name: str,
               data: bytes | None, origin: tuple[str, str] | None) -> int:
    found = (await tx.execute(sa.select(MEDIA.c.id).where(MEDIA.c.sha256 == digest))).first()
    if found is not None:
        return int(found[0])
    result = await tx.execute(sa.insert(MEDIA).values(
        sha256=digest, content_type=content_type[:40], name=name[:80], data=data,
        platform_ids={}, created_at=utcnow(),
        origin_channel=origin[0] if origin else None,
        origin_id=origin[1][:200] if origin else None))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


async def get(tx: AsyncConnection, *, media_id: int) -> MediaRecord | None:
    row = (await tx.execute(sa.select(MEDIA).where(MEDIA.c.id == media_id))).mappings().first()
    if row is None:
        return None
    origin = row["origin_channel"], row["origin_id"]
    return MediaRecord(row["id"], row["content_type"], row["name"], row["data"],
                       dict(row["platform_ids"] or {}),
                       origin if None not in origin else None)


async def keep_bytes(tx: AsyncConnection, *, media_id: int, data: bytes,
                     content_type: str) -> bool:
    """Keep the bytes fetched from a picture's origin, once: False when another process
    kept them first (its bytes stand: they are the same picture)."""
    changed = (await tx.execute(sa.update(MEDIA).where(
        MEDIA.c.id == media_id, MEDIA.c.data.is_(None))
        .values(data=data, content_type=content_type[:40]))).rowcount
    return bool(changed)


async def remember_upload(tx: AsyncConnection, *, media_id: int, channel: str,
                          platform_id: str) -> None:
    """Keep the platform's id after the first upload (the others reuse it)."""
    current = await get(tx, media_id=media_id)
    if current is None or current.platform_ids.get(channel) == platform_id:
        return
    await tx.execute(sa.update(MEDIA).where(MEDIA.c.id == media_id).values(
        platform_ids={**current.platform_ids, channel: platform_id}))
