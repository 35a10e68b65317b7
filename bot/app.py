"""The composition root: builds every part once, in the order they depend on each other."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.config import Settings
from bot.painter import ChartPainter
from flows.engine import Engine
from flows.loader import load_library
from flows.texts import Texts
from handlers.flow_versions import FlowVersions
from handlers.shopkeeper import ShopkeeperChat
from storage import updates
from storage.database import Database

FLOWS_DIR = Path(__file__).resolve().parent.parent / "flows"
#: How long handled update ids are kept to recognise a redelivery.
UPDATES_KEPT_DAYS = 7


@dataclass(slots=True)
class App:
    """Everything a channel needs: the database and the shopkeeper conversation."""

    settings: Settings
    db: Database
    texts: Texts
    shopkeeper: ShopkeeperChat

    async def close(self) -> None:
        await self.shopkeeper.close()
        self.shopkeeper.painter.close()
        await self.db.close()


async def build(settings: Settings, *, flows_dir: Path = FLOWS_DIR) -> App:
    """Load and validate the flows first (a broken flow must stop the bot before it talks to
    anyone), then bring the database schema up to date."""
    flows = FlowVersions(load_library(flows_dir))
    texts = Texts.load(flows_dir / "texts")
    db = Database(settings.database_url)
    await db.upgrade()
    async with db.transaction() as tx:
        await flows.remember_current(tx)
        # Platforms stop redelivering after a day (Telegram) or a few (WhatsApp).
        await updates.forget_older_than(tx, days=UPDATES_KEPT_DAYS)
    engine = Engine(texts)
    return App(settings, db, texts, ShopkeeperChat(db, flows, engine, texts, ChartPainter()))
