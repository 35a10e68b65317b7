"""Finding, creating, updating and forgetting shopkeepers."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.runs import OPEN
from storage.tables import Identity, Run, Shopkeeper, utcnow

#: Profile fields a flow may set (``save_as``); consent and language are handled apart.
PROFILE_FIELDS = frozenset({"shop_name", "municipality", "shop_type", "team_size"})


async def find_by_identity(session: AsyncSession, *, channel: str,
                           external_id: str) -> Shopkeeper | None:
    """The shopkeeper behind a channel address, or None for a stranger."""
    statement = (sa.select(Shopkeeper).join(Identity, col(Identity.shopkeeper_id) == Shopkeeper.id)
                 .where(col(Identity.channel) == channel, col(Identity.external_id) == external_id))
    return (await session.execute(statement)).scalar_one_or_none()


async def find_with_open_run(session: AsyncSession, *, channel: str, external_id: str,
                             ) -> tuple[Shopkeeper | None, Run | None]:
    """The shopkeeper behind a channel address and the run they are in, in one query."""
    statement = (
        sa.select(Shopkeeper, Run)
        .join(Identity, col(Identity.shopkeeper_id) == col(Shopkeeper.id))
        .outerjoin(Run, sa.and_(col(Run.shopkeeper_id) == col(Shopkeeper.id),
                                col(Run.status).in_(OPEN)))
        .where(col(Identity.channel) == channel, col(Identity.external_id) == external_id)
        .order_by(col(Run.id).desc()).limit(1))
    row = (await session.execute(statement)).first()
    return (row[0], row[1]) if row is not None else (None, None)


async def create(session: AsyncSession, *, channel: str, external_id: str,
                 language: str) -> Shopkeeper:
    """A new shopkeeper reachable at (channel, external_id); no personal data yet."""
    shopkeeper = Shopkeeper(language=language)
    session.add(shopkeeper)
    await session.flush()
    assert shopkeeper.id is not None
    session.add(Identity(channel=channel, external_id=external_id, shopkeeper_id=shopkeeper.id))
    await session.flush()
    return shopkeeper


async def update(session: AsyncSession, *, shopkeeper: Shopkeeper, **values: Any) -> None:
    """Set columns on ``shopkeeper`` and bump ``updated_at``."""
    for name, value in values.items():
        if not hasattr(Shopkeeper, name):
            raise AttributeError(f"shopkeeper has no field '{name}'")
        setattr(shopkeeper, name, value)
    shopkeeper.updated_at = utcnow()
    session.add(shopkeeper)  # written with the rest of the turn at commit


async def forget(session: AsyncSession, *, shopkeeper_id: int) -> None:
    """Delete the shopkeeper and, by cascade, every row about them."""
    await session.execute(sa.delete(Shopkeeper).where(col(Shopkeeper.id) == shopkeeper_id))


def profile_of(shopkeeper: Shopkeeper) -> dict[str, str]:
    """The fields flows may read (skip conditions, placeholders)."""
    values = {name: getattr(shopkeeper, name) for name in PROFILE_FIELDS}
    values["language"] = shopkeeper.language
    return {k: str(v) for k, v in values.items() if v is not None}
