"""How a send can fail, in the words the outbox needs, whatever the platform.

A channel's ``send`` raises one of these; the sender turns it into the row's next status.
``progress`` is how many platform calls of the message had already gone through (a long
text is several), so a retry starts after them; ``platform_ids`` are the platform's message
ids of the calls of this attempt that did go through, kept with the row.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from flows.messages import Outbound
from storage.records import OutboxRecord

Pace = Callable[[], Awaitable[None]]
"""Waits until the rate limits allow one more platform call; channels call it before each."""


class DeliveryError(Exception):
    """A message did not (surely) arrive."""

    def __init__(self, reason: str, *, progress: int = 0,
                 platform_ids: Sequence[str] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.progress = progress
        self.platform_ids = tuple(platform_ids)


class NotDelivered(DeliveryError):
    """It surely did not arrive (a 5xx, a refused connection): try again later."""


class RateLimited(NotDelivered):
    """A 429: nothing more to ``chat`` (or, when None, to anyone) for ``retry_after`` s."""

    def __init__(self, reason: str, *, retry_after: float, chat: str | None = None,
                 progress: int = 0, platform_ids: Sequence[str] = ()) -> None:
        super().__init__(reason, progress=progress, platform_ids=platform_ids)
        self.retry_after = retry_after
        self.chat = chat


class Refused(DeliveryError):
    """The platform refused this message (a 400): sending it again changes nothing."""


class Unreachable(DeliveryError):
    """The person blocked the bot or no longer exists (a 403)."""


class MaybeDelivered(DeliveryError):
    """The request went out and no answer came (a timeout, a reset): it may have arrived."""


class Held(DeliveryError):
    """Not sent now, by the platform's rules rather than a failure (WhatsApp: outside the
    24-hour window, over the daily tier, the pair rate): tried again at ``until``, or, when
    None, once the person writes again. Not counted as an attempt; ``reason`` stays on the
    row so it says why it waits."""

    def __init__(self, reason: str, *, until: datetime | None, progress: int = 0,
                 platform_ids: Sequence[str] = ()) -> None:
        super().__init__(reason, progress=progress, platform_ids=platform_ids)
        self.until = until


@dataclass(slots=True)
class Media:
    """A stored picture (:mod:`storage.media`) as one channel sends it: by ``platform_id``
    when the platform knows it, else by uploading ``data``; a channel that uploads sets
    ``platform_id`` from the platform's answer, so the next recipients reuse it."""

    id: int
    name: str
    content_type: str
    data: bytes | None
    platform_id: str | None = None


class Channel(Protocol):
    """What the sender needs of a channel: deliver one message to one address."""

    async def send(self, to: str, message: Outbound, *, lang: str, done: int,
                   pace: Pace, media: Media | None = None) -> Sequence[str] | None:
        """Make the platform calls for ``message`` after the first ``done``; call ``pace``
        before each. ``lang`` is the person's language, for anything the channel itself
        says; ``media`` the picture of ``message.photo``, resolved by the sender. Returns
        the platform's ids of the messages the calls made (None: a channel without message
        ids). Raises a :class:`DeliveryError` when it did not (surely) arrive, with the ids
        of the calls that did."""


@runtime_checkable
class RowChannel(Protocol):
    """A channel whose rules depend on the row, not only the message (WhatsApp: whether
    it is a reply, a tip or a broadcast decides what happens outside the 24-hour window).
    The sender calls :meth:`send_row` instead of ``send`` when a channel has it."""

    async def send_row(self, row: OutboxRecord, message: Outbound, *, lang: str,
                       pace: Pace, media: Media | None = None) -> Sequence[str] | None:
        """Like :meth:`Channel.send` for ``row`` (its address, kind, broadcast, progress)."""


@runtime_checkable
class MediaSource(Protocol):
    """A channel that can download a file by the id its platform gave it, so a picture a
    coach sent through it reaches people on the other channels too."""

    #: Whether the platform takes an id it gave with a received message to send that file
    #: again (Telegram's ``file_id``: yes; a media id in a WhatsApp webhook: no, it is for
    #: downloading only).
    resends_received: bool

    async def fetch(self, platform_id: str) -> bytes:
        """The file's bytes. Raises :class:`Refused` when the platform will never give
        them (an unknown or expired id, a file too large), :class:`NotDelivered` when it
        may later."""
