"""Stored pictures (:mod:`storage.media`) as each channel sends them, for the sender.

A channel sends a picture by its platform's id when it has one: one kept after an upload,
or the id it gave with the coach's own message when the platform takes that again
(:attr:`~bot.delivery.outcomes.MediaSource.resends_received`). Otherwise it needs the
bytes; a picture received in chat has none until they are fetched from the channel it came
through. That happens once per picture, whatever the number of recipients and channels
(one lock per picture; the bytes are then kept on the media row for every process), and
each channel uploads once (one lock per channel and picture).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from bot.delivery.outcomes import Channel, Media, MediaSource, NotDelivered, Refused
from flows import pictures
from storage import media
from storage.database import Database
from storage.media import MediaRecord

log = logging.getLogger(__name__)


class Pictures:
    """The sender's pictures: cached per channel (a stored picture never changes).

    Args:
        db: Where pictures are stored.
        channels: The sender's channels (the same mapping: channels join later).
    """

    def __init__(self, db: Database, channels: Mapping[str, Channel]) -> None:
        self.db = db
        self.channels = channels
        self._found: dict[tuple[str, int], Media] = {}
        self._fetches: dict[int, asyncio.Lock] = {}
        #: Pictures whose bytes the origin will never give: the next rows fail at once.
        self._refused: dict[int, Refused] = {}
        self._uploads: dict[tuple[str, int], asyncio.Lock] = {}

    async def get(self, channel: str, media_id: int) -> Media | None:
        """Picture ``media_id`` as ``channel`` sends it; None when it is gone."""
        found = self._found.get((channel, media_id))
        if found is None:
            async with self.db.transaction() as tx:
                record = await media.get(tx, media_id=media_id)
            if record is None:
                return None
            found = self._found.setdefault((channel, media_id), Media(
                record.id, record.name, record.content_type, record.data,
                record.platform_ids.get(channel) or self._resent(channel, record)))
        return found

    def _resent(self, channel: str, record: MediaRecord) -> str | None:
        """The id the picture came with, when it came through ``channel`` and that
        platform sends a file again by it (a channel that cannot download has only that
        id to try)."""
        if record.origin is None or record.origin[0] != channel:
            return None
        source = self.channels.get(channel)
        if isinstance(source, MediaSource) and not source.resends_received:
            return None
        return record.origin[1]

    async def ready(self, image: Media) -> None:
        """Make sure the channel can send ``image``: by its id, or by its bytes, fetched
        from its origin when nobody has them yet. Raises a DeliveryError when they cannot
        be had (now, or ever)."""
        if image.platform_id is not None or image.data is not None:
            return
        async with self._fetches.setdefault(image.id, asyncio.Lock()):
            if image.data is not None:  # fetched while this one waited
                return
            refused = self._refused.get(image.id)
            if refused is not None:
                raise Refused(refused.reason)
            async with self.db.transaction() as tx:
                record = await media.get(tx, media_id=image.id)
            if record is None:
                raise Refused(f"picture {image.id} is gone")
            if record.data is None:
                try:
                    record = await self._fetch(record)
                except Refused as exc:
                    self._refused[image.id] = exc
                    raise
            self._share(record)

    async def _fetch(self, record: MediaRecord) -> MediaRecord:
        """The bytes of a picture received in chat, from the channel it came through;
        kept on its row (the first process to keep them wins; they are the same)."""
        if record.origin is None:
            raise Refused(f"picture {record.id} has neither bytes nor an origin")
        channel, platform_id = record.origin
        source = self.channels.get(channel)
        if not isinstance(source, MediaSource):
            raise NotDelivered(f"picture {record.id} came through {channel}, which this "
                               f"process does not serve: its bytes cannot be fetched here")
        data = await source.fetch(platform_id)
        try:
            checked = pictures.picture(data, record.name)
        except pictures.PictureError as exc:
            raise Refused(f"picture {record.id} from {channel}: {exc}") from exc
        async with self.db.transaction() as tx:
            await media.keep_bytes(tx, media_id=record.id, data=checked.data,
                                   content_type=checked.content_type)
            kept = await media.get(tx, media_id=record.id)
        log.info("picture %s fetched from %s (%d bytes)", record.id, channel, len(data))
        return kept or record

    def _share(self, record: MediaRecord) -> None:
        """Every channel's cached copy of the picture gets the bytes."""
        for (_, media_id), cached in self._found.items():
            if media_id == record.id and cached.data is None:
                cached.data = record.data
                cached.content_type = record.content_type

    def upload_lock(self, channel: str, media_id: int) -> asyncio.Lock:
        """Held while ``channel`` uploads the picture: the first recipient uploads, the
        others wait and reuse the platform's id."""
        return self._uploads.setdefault((channel, media_id), asyncio.Lock())

    async def remember(self, channel: str, image: Media) -> None:
        """Keep the platform's id of an upload for the next processes."""
        if image.platform_id is None:
            return
        try:
            async with self.db.transaction() as tx:
                await media.remember_upload(tx, media_id=image.id, channel=channel,
                                            platform_id=image.platform_id)
        except Exception:  # only a saving: the next process uploads once more
            log.exception("could not keep the platform id of picture %s", image.id)
