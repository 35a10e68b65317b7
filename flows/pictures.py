"""A picture a coach sends with a broadcast, checked before anything is queued."""

from __future__ import annotations

from dataclasses import dataclass

#: Telegram's limit for a photo uploaded with sendPhoto.
MAX_BYTES = 10 * 1024 * 1024
#: What a photo can be, by its first bytes (the file name may lie).
_KINDS = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))


class PictureError(ValueError):
    """A file that cannot go out as a photo, with the reason."""


@dataclass(frozen=True, slots=True)
class Picture:
    """A checked picture: its bytes, type and a file name."""

    data: bytes
    content_type: str
    name: str


def picture(data: bytes, name: str) -> Picture:
    """``data`` as a photo, or :class:`PictureError` saying why not."""
    if not data:
        raise PictureError(f"{name} is empty")
    if len(data) > MAX_BYTES:
        raise PictureError(f"{name} is {len(data) / 1024 / 1024:.1f} MB; a photo may be at "
                           f"most {MAX_BYTES // 1024 // 1024} MB")
    kind = next((kind for magic, kind in _KINDS if data.startswith(magic)), None)
    if kind is None:
        raise PictureError(f"{name} is not a JPEG or PNG picture")
    return Picture(data, kind, name[-80:])
