"""WhatsApp messages out: the outbox sender's channel. It translates an
:class:`~flows.messages.Outbound` into Cloud API calls (:mod:`bot.whatsapp.render`) and
applies WhatsApp's rules for each outbox row:

* **The 24-hour window.** Free-form messages only within 24 hours of the person's last
  message. Outside it a tip, reminder, broadcast or check-in takes its kind's policy
  (``[whatsapp.outside_window]``): its approved template, or it waits until the person writes
  again (:class:`~bot.delivery.outcomes.Held`; the row's error says so, and the webhook
  releases it). Replies and everything else wait.
* **The daily tier.** Templates reach at most ``daily_tier`` different people a day (UTC);
  past that a row waits for the next day, saying so. The slot is claimed in the database
  before the send (:func:`storage.whatsapp.claim_slot`), so several processes serving the
  number share one count.
* **The pair rate.** In bulk, at most one message per ``pair_seconds`` to the same person,
  claimed in the database too (:func:`storage.whatsapp.claim_pace`).

Cloud API errors become the outbox's outcomes: 130429/131056 → rate limited (back off),
131047 → the window is closed after all (the template path), 131026 → unreachable, 5xx →
retried, other 4xx → refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from bot.delivery.outcomes import (
    DeliveryError,
    Held,
    MaybeDelivered,
    Media,
    NotDelivered,
    Pace,
    RateLimited,
    Refused,
    Unreachable,
)
from bot.whatsapp.graph import Graph, GraphError, GraphLostError, GraphUnreachedError
from bot.whatsapp.render import Call, Renderer
from bot.whatsapp.settings import WhatsAppSettings
from flows.messages import Outbound
from flows.texts import Texts
from handlers.coaching import CHECK_PREFIX, REASSESS_REF, RESUME_REF, TIP_PREFIX
from storage import whatsapp
from storage.broadcasts import NEXT_DAY
from storage.database import Database
from storage.records import OutboxRecord
from storage.tables import OutboxKind, utcnow

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=24)
#: Seconds to back off after a rate-limit error (the Cloud API gives no retry-after).
BACK_OFF = 5.0
RATE_LIMITED = (130429, 80007)
PAIR_RATE = 131056
WINDOW_CLOSED = 131047
UNDELIVERABLE = (131026, 131051, 131021)
#: Entries the in-memory caches may hold before the stale ones are dropped (they only save
#: queries: what decides is in the database).
KEPT = 50_000


def kind_of(row: OutboxRecord) -> str:
    """What kind of message a row is, for the policy outside the window."""
    if row.kind == OutboxKind.REPLY:
        return "reply"
    ref = str(row.payload.get("ref") or "")
    if ref.startswith(TIP_PREFIX):
        return "tip"
    if ref.startswith(CHECK_PREFIX):
        return "check_in"
    if ref in (RESUME_REF, REASSESS_REF):
        return "reminder"
    if row.payload.get("html") and not ref:
        return "broadcast"
    return "other"


class WhatsAppChannel:
    """Sends outbox rows to WhatsApp numbers (the sender's
    :class:`~bot.delivery.outcomes.RowChannel`), and fetches what people sent the number
    (a :class:`~bot.delivery.outcomes.MediaSource`).

    Args:
        graph: The Cloud API client.
        texts: What the channel itself says.
        settings: Templates, policies, tier, pair rate.
        db: Windows, the pair rate, the day's tier (shared with the other processes).
        clock: The current time (tests move it: windows close, days pass).
    """

    #: A media id from a webhook is for downloading (for 7 days); to send a file, the Cloud
    #: API wants it uploaded (its media id then lasts 30 days). See ``fetch``.
    resends_received = False

    def __init__(self, graph: Graph, texts: Texts, settings: WhatsAppSettings, db: Database,
                 *, clock: Callable[[], datetime] = utcnow) -> None:
        self.graph = graph
        self.renderer = Renderer(texts)
        self.settings = settings
        self.db = db
        self.clock = clock
        #: wa_id → when they last wrote, as this process saw it (saves a query per reply).
        self.wrote: dict[str, datetime] = {}
        #: wa_id → when the Cloud API last said their window was closed.
        self.closed: dict[str, datetime] = {}

    async def fetch(self, platform_id: str) -> bytes:
        """The bytes of a file someone sent the number (a coach's photo), by its media id:
        the :class:`~bot.delivery.outcomes.MediaSource` other channels get pictures from."""
        try:
            return await self.graph.download(platform_id)
        except GraphError as exc:
            if exc.status >= 500 or exc.status == 429 or exc.code in RATE_LIMITED:
                raise NotDelivered(f"whatsapp media {platform_id}: {exc}") from exc
            raise Refused(f"whatsapp media {platform_id}: {exc}") from exc
        except (GraphLostError, GraphUnreachedError) as exc:
            raise NotDelivered(f"whatsapp media {platform_id}: {exc}") from exc

    def note_wrote(self, at: dict[str, datetime]) -> None:
        """People wrote (the webhook): their windows are open from ``at``."""
        if len(self.wrote) + len(self.closed) > KEPT:
            self._forget_old()
        for wa_id, when in at.items():
            if when > self.wrote.get(wa_id, when - WINDOW):
                self.wrote[wa_id] = when
            self.closed.pop(wa_id, None)

    def _forget_old(self) -> None:
        """Drop what no longer matters (closed windows), so the caches stay small however
        many people write."""
        now = self.clock()
        self.wrote = {k: v for k, v in self.wrote.items() if now - v < WINDOW}
        self.closed = {k: v for k, v in self.closed.items() if now - v < WINDOW}

    async def send(self, to: str, message: Outbound, *, lang: str, done: int,
                   pace: Pace, media: Media | None = None) -> list[str]:
        """The plain :class:`~bot.delivery.outcomes.Channel`: a message as a reply."""
        return await self._free_form(to, message, lang, done, pace, media, page=0)

    async def send_row(self, row: OutboxRecord, message: Outbound, *, lang: str,
                       pace: Pace, media: Media | None = None) -> list[str]:
        kind = kind_of(row)
        now = self.clock()
        if not await self._window_open(row.external_id, now):
            return await self._outside(row, message, kind, lang, pace, now)
        if kind != "reply":
            await self._pace_pair(row, now)
        try:
            return await self._free_form(row.external_id, message, lang, row.progress, pace,
                                         media, page=int(row.payload.get("wa_page", 0)))
        except Held as held:
            if kind == "reply" or self.settings.policy(kind) != "template":
                raise
            # The Cloud API says the window closed: the template path, at once.
            raise Held(held.reason, until=utcnow(), progress=held.progress,
                       platform_ids=held.platform_ids) from held

    async def _pace_pair(self, row: OutboxRecord, now: datetime) -> None:
        """The pair rate: this bulk message may go only when the number's last one went
        ``pair_seconds`` ago; the claim is one statement, so only one process sends."""
        pair = timedelta(seconds=self.settings.pair_seconds)
        async with self.db.transaction() as tx:
            last = await whatsapp.claim_pace(tx, external_id=row.external_id, now=now,
                                             pair=pair)
        if last is not None:
            raise Held(f"whatsapp: pair rate (one message per "
                       f"{self.settings.pair_seconds:g} s to the same person)",
                       until=utcnow() + max(last + pair - now, timedelta(0)),
                       progress=row.progress)

    async def _window_open(self, wa_id: str, now: datetime) -> bool:
        """Whether free-form messages may go to ``wa_id`` now: they wrote less than 24 h ago
        (as this process saw it, else as stored) and the Cloud API has not said otherwise."""
        wrote = self.wrote.get(wa_id)
        if wrote is None or now - wrote >= WINDOW:
            async with self.db.transaction() as tx:
                stored = await whatsapp.last_wrote(tx, external_id=wa_id)
            if stored is not None and (wrote is None or stored > wrote):
                wrote = self.wrote[wa_id] = stored
        closed = self.closed.get(wa_id)
        if wrote is None or (closed is not None and closed >= wrote):
            return False
        return now - wrote < WINDOW

    async def _outside(self, row: OutboxRecord, message: Outbound, kind: str, lang: str,
                       pace: Pace, now: datetime) -> list[str]:
        """Outside the window: the kind's template, or wait for the person."""
        template = self.settings.templates.get(kind)
        language = template.languages.get(lang) if template is not None else None
        if (kind == "reply" or self.settings.policy(kind) != "template" or template is None
                or language is None or row.shopkeeper_id is None or row.progress > 0):
            raise Held(f"{whatsapp.WAITING} for the person to write again (24-hour window "
                       f"closed; {kind})", until=None, progress=row.progress)
        day = now.date().isoformat()
        call = self.renderer.template(message, template.name, language)
        async with self.db.transaction() as tx:
            slot = await whatsapp.claim_slot(tx, day=day, shopkeeper_id=row.shopkeeper_id,
                                             tier=self.settings.daily_tier)
        if slot is whatsapp.Slot.FULL:
            tomorrow = datetime.combine(now.date() + timedelta(days=1),
                                        datetime.min.time(), tzinfo=now.tzinfo)
            raise Held(f"{NEXT_DAY} of {self.settings.daily_tier} people "
                       f"reached; continues on {tomorrow.date().isoformat()}",
                       until=utcnow() + (tomorrow - now), progress=row.progress)
        left = False  # the template may have reached the person: their slot stays used
        try:
            await pace()  # also where a cancelled broadcast stops
            left = True
            return [await self.graph.send(row.external_id, call.body)]
        except (GraphError, GraphUnreachedError) as exc:
            left = False  # refused, or never sent
            raise _outcome(exc, 0, [], row.external_id) from exc
        except GraphLostError as exc:
            raise _outcome(exc, 0, [], row.external_id) from exc
        finally:
            if not left and slot is whatsapp.Slot.NEW:  # nobody was reached: free it again
                async with self.db.transaction() as tx:
                    await whatsapp.release_slot(tx, day=day, shopkeeper_id=row.shopkeeper_id)

    async def _free_form(self, to: str, message: Outbound, lang: str, done: int, pace: Pace,
                         media: Media | None, *, page: int) -> list[str]:
        if message.delete:
            raise Refused("WhatsApp cannot delete messages that were sent")
        calls = self.renderer.calls(message, lang, media=media, page=page)
        ids: list[str] = []
        for index, call in enumerate(calls):
            if index < done:
                continue  # went out before a retry
            await pace()
            try:
                ids.append(await self._one(to, call))
            except (GraphError, GraphLostError, GraphUnreachedError) as exc:
                if isinstance(exc, GraphError) and exc.code == WINDOW_CLOSED:
                    self.closed[to] = self.clock()
                raise _outcome(exc, index, ids, to) from exc
        return ids

    async def _one(self, to: str, call: Call) -> str:
        body = call.body
        kind = str(body["type"])
        if call.upload is not None:
            media_id = await self.graph.upload(call.upload.data, call.upload.content_type,
                                               call.upload.name)
            body = {**body, kind: {**body[kind], "id": media_id}}
        elif call.media is not None:
            media = call.media
            if media.platform_id is None:
                if media.data is None:
                    raise GraphError(400, 100, f"picture {media.id} has no bytes to upload")
                media.platform_id = await self.graph.upload(media.data, media.content_type,
                                                            media.name)
            body = {**body, kind: {**body[kind], "id": media.platform_id}}
        return await self.graph.send(to, body)


def _outcome(exc: Exception, index: int, ids: Sequence[str],
             to: str | None = None) -> DeliveryError:
    """The outbox's outcome for a Cloud API failure after ``index`` calls went through."""
    outcome: DeliveryError
    if isinstance(exc, GraphUnreachedError):
        outcome = NotDelivered(str(exc), progress=index)
    elif isinstance(exc, GraphLostError):
        outcome = MaybeDelivered(str(exc), progress=index)
    else:
        assert isinstance(exc, GraphError)
        if exc.code == PAIR_RATE:  # this person only
            outcome = RateLimited(str(exc), retry_after=BACK_OFF, chat=to, progress=index)
        elif exc.code in RATE_LIMITED:
            outcome = RateLimited(str(exc), retry_after=BACK_OFF, progress=index)
        elif exc.code == WINDOW_CLOSED:
            outcome = Held(f"{whatsapp.WAITING} for the person to write again ({exc})",
                           until=None, progress=index)
        elif exc.code in UNDELIVERABLE:
            outcome = Unreachable(str(exc), progress=index)
        elif exc.status >= 500 or exc.status == 429:
            outcome = NotDelivered(str(exc), progress=index)
        else:
            outcome = Refused(str(exc), progress=index)
    outcome.platform_ids = tuple(ids)
    return outcome
