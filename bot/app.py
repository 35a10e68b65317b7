"""The composition root: builds every part once, in the order they depend on each other,
and owns what runs in the background (the scheduler, the chart painter, the sender)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.config import Settings, public_url
from bot.delivery.sender import OutboxSender
from bot.inbox import Inbox
from bot.painter import ChartPainter
from flows.engine import Engine
from flows.loader import load_library
from flows.places import gazetteer
from flows.texts import Texts
from flows.tips import load_tips
from handlers.admin import AdminDesk
from handlers.broadcasts import Broadcasts
from handlers.coach import CoachDesk
from handlers.coaching import CoachingChat
from handlers.composer import BroadcastComposer, Labels
from handlers.dashboard_link import DashboardLink
from handlers.dispatcher import Dispatcher
from handlers.flow_versions import FlowVersions
from handlers.grounding import Prompts
from handlers.language_model import LanguageModel
from handlers.nudges import Nudges
from handlers.privacy import PrivacyChat
from handlers.questions import QuestionsChat
from handlers.retention import Retention
from handlers.shopkeeper import CONSENT_VERSION, ShopkeeperChat
from handlers.tickets import Tickets
from storage import inbox, roles, shopkeepers
from storage.database import Database
from storage.tables import Role, utcnow
from storage.tip_search import TipSearch

log = logging.getLogger(__name__)

FLOWS_DIR = Path(__file__).resolve().parent.parent / "flows"
#: How long handled updates are kept to recognise a redelivery.
UPDATES_KEPT_DAYS = 7
#: Seconds between looks for leases that ran out (a sender that died mid-send).
EXPIRE_SECONDS = 5
#: Seconds between a sender's heartbeats (the overall rate is shared among live senders).
HEARTBEAT_SECONDS = 5
#: Seconds between looks for stored updates nobody is handling (after a crash).
RECOVER_SECONDS = 10
#: Seconds between looks for broadcasts that are due or finished.
BROADCAST_SECONDS = 5
#: Seconds between looks for people whose data is due for erasure, or for the notice.
RETENTION_SECONDS = 3600


@dataclass(slots=True)
class App:
    """Everything a channel needs. ``start`` begins the background work, ``close`` ends it."""

    settings: Settings
    db: Database
    texts: Texts
    dispatcher: Dispatcher
    sender: OutboxSender
    inbox: Inbox
    painter: ChartPainter
    scheduler: AsyncIOScheduler
    nudges: Nudges
    broadcasts: Broadcasts
    retention: Retention
    #: Run at the very end of :meth:`close` (a channel's HTTP session, after the last sends).
    closers: list[Callable[[], Awaitable[object]]] = field(default_factory=list)

    async def start(self) -> None:
        """Warm the painter, handle what a crash left behind, and start the scheduled jobs:
        the sender's poll, expired leases, heartbeats, recovery and pruning. Channels are
        added before (their readers and senders); a second call does nothing."""
        if self.scheduler.running:
            return
        await self.painter.warm()
        await self.sender.heartbeat(only_one=self.db.url.startswith("sqlite"))
        await self.sender.expire()
        await self.inbox.recover()
        delivery = self.settings.delivery
        jobs = ((self.sender.tick, delivery.poll_seconds),
                (self.sender.expire, EXPIRE_SECONDS),
                (self.sender.heartbeat, HEARTBEAT_SECONDS),
                (self.inbox.recover, RECOVER_SECONDS),
                (self.nudges.tick, self.settings.schedule.tick.total_seconds()),
                (self.broadcasts.tick, BROADCAST_SECONDS),
                (self.retention.tick, RETENTION_SECONDS),
                (self._prune, 24 * 3600))
        for job, seconds in jobs:
            self.scheduler.add_job(job, "interval", seconds=seconds, max_instances=1,
                                   coalesce=True, misfire_grace_time=None)
        self.scheduler.start()
        self.sender.wake()  # whatever was queued before the restart

    async def _prune(self) -> None:
        async with self.db.transaction() as tx:
            await inbox.forget_handled_older_than(tx, days=UPDATES_KEPT_DAYS)

    async def close(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        await self.inbox.idle()
        await self.sender.close()
        self.painter.close()
        for close in reversed(self.closers):
            await close()
        await self.db.close()


async def build(settings: Settings, *, flows_dir: Path = FLOWS_DIR,
                clock: Callable[[], datetime] = utcnow) -> App:
    """Load and validate the flows first (a broken flow must stop the bot before it talks to
    anyone), then bring the database schema up to date. ``clock`` is what the coaching
    plan takes as the current time (tests move it)."""
    flows = FlowVersions(load_library(flows_dir))
    texts = Texts.load(flows_dir / "texts")
    library = load_tips(flows_dir / "tips", flows_dir / "data" / "calendar.toml")
    db = Database(settings.database_url, exclusive=True)  # one bot process per SQLite file
    await db.upgrade()
    async with db.transaction() as tx:
        await flows.remember_current(tx)
        await inbox.forget_handled_older_than(tx, days=UPDATES_KEPT_DAYS)
        for address in sorted(settings.admin_ids):
            channel, _, external_id = address.partition(":")
            person, _ = await shopkeepers.find_or_create(
                tx, channel=channel, external_id=external_id, language="nl")
            await roles.grant(tx, shopkeeper_id=person.id, role=Role.ADMIN, by="env")
    painter = ChartPainter()
    sender = OutboxSender(db, {}, {}, painter, texts, settings.delivery)
    coaching = CoachingChat(texts, library, settings.schedule, clock=clock)
    privacy = PrivacyChat(texts, settings.privacy, CONSENT_VERSION, clock=clock)
    places = gazetteer()
    labels = Labels.from_flows(flows.latest("onboarding"), flows.latest("assessment"))
    composer = BroadcastComposer(texts, places, labels, settings.schedule.hours, clock=clock)
    tickets = Tickets(texts, labels, sender, clock=clock)
    model = LanguageModel(settings.llm)
    questions = QuestionsChat(db, texts, Prompts.load(flows_dir / "prompts"), library,
                              TipSearch(library), model, labels, sender, tickets=tickets,
                              clock=clock)
    dispatcher = Dispatcher(db, texts,
                            ShopkeeperChat(flows, Engine(texts), texts, coaching, privacy,
                                           questions),
                            CoachDesk(texts, composer, tickets,
                                      DashboardLink(texts, public_url(settings), clock=clock)),
                            AdminDesk(texts), sender)
    nudges = Nudges(db, texts, library, flows.latest("assessment"), settings.schedule, sender,
                    name=sender.id, clock=clock)
    sending = Broadcasts(db, texts, places, settings.schedule.hours, sender, clock=clock)
    retention = Retention(db, texts, settings.privacy, settings.schedule.hours, sender,
                          clock=clock)
    return App(settings, db, texts, dispatcher, sender,
               Inbox(db, dispatcher, concurrency=settings.concurrent_updates), painter,
               AsyncIOScheduler(timezone="UTC"), nudges, sending, retention,
               closers=[model.close])
