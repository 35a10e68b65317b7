"""Finding, creating, updating and forgetting shopkeepers.

Reads return :class:`~storage.records.ShopkeeperRecord` (and the open run as a
:class:`~storage.records.RunRecord`); every change is one explicit statement. The
statements on a turn's path are built once, so executing them skips building and hashing a
new SQL expression each time.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.records import (
    RUN_COLUMNS,
    SHOPKEEPER_COLUMNS,
    RunRecord,
    ShopkeeperRecord,
    run_from,
    shopkeeper_from,
)
from storage.runs import OPEN
from storage.tables import IDENTITY, RUN, SHOPKEEPER, utcnow

#: Profile fields a flow may set (``save_as``); consent and language are handled apart.
PROFILE_FIELDS = frozenset({"shop_name", "municipality", "shop_type", "team_size"})
#: Columns :func:`update` may set.
WRITABLE = frozenset(c.name for c in SHOPKEEPER_COLUMNS) - {"id", "created_at", "updated_at"}

_BY_IDENTITY = (
    sa.select(*SHOPKEEPER_COLUMNS)
    .join(IDENTITY, IDENTITY.c.shopkeeper_id == SHOPKEEPER.c.id)
    .where(IDENTITY.c.channel == sa.bindparam("channel"),
           IDENTITY.c.external_id == sa.bindparam("external_id")))

_WITH_OPEN_RUN = (
    sa.select(*SHOPKEEPER_COLUMNS, *RUN_COLUMNS)
    .join(IDENTITY, IDENTITY.c.shopkeeper_id == SHOPKEEPER.c.id)
    .outerjoin(RUN, sa.and_(RUN.c.shopkeeper_id == SHOPKEEPER.c.id, RUN.c.status.in_(OPEN)))
    .where(IDENTITY.c.channel == sa.bindparam("channel"),
           IDENTITY.c.external_id == sa.bindparam("external_id"))
    .order_by(RUN.c.id.desc()).limit(1))

_INSERT = sa.insert(SHOPKEEPER).returning(*SHOPKEEPER_COLUMNS)
_INSERT_IDENTITY = sa.insert(IDENTITY)


async def find_by_identity(tx: AsyncConnection, *, channel: str,
                           external_id: str) -> ShopkeeperRecord | None:
    """The shopkeeper behind a channel address, or None for a stranger."""
    row = (await tx.execute(_BY_IDENTITY, {"channel": channel,
                                                "external_id": external_id})).first()
    return shopkeeper_from(row) if row is not None else None


async def find_with_open_run(tx: AsyncConnection, *, channel: str, external_id: str,
                             ) -> tuple[ShopkeeperRecord | None, RunRecord | None]:
    """The shopkeeper behind a channel address and the run they are in, in one query."""
    row = (await tx.execute(_WITH_OPEN_RUN, {"channel": channel,
                                                  "external_id": external_id})).first()
    if row is None:
        return None, None
    return shopkeeper_from(row), run_from(row, len(SHOPKEEPER_COLUMNS))


async def create(tx: AsyncConnection, *, channel: str, external_id: str,
                 language: str) -> ShopkeeperRecord:
    """A new shopkeeper reachable at (channel, external_id); no personal data yet."""
    now = utcnow()
    row = (await tx.execute(_INSERT, {
        "language": language, "language_chosen": False, "opted_out": False,
        "created_at": now, "updated_at": now})).one()
    shopkeeper = shopkeeper_from(row)
    await tx.execute(_INSERT_IDENTITY, {
        "channel": channel, "external_id": external_id, "shopkeeper_id": shopkeeper.id,
        "created_at": now})
    return shopkeeper


async def update(tx: AsyncConnection, *, shopkeeper: ShopkeeperRecord,
                 **values: Any) -> None:
    """Set columns on ``shopkeeper``, in the record and in the database, and bump
    ``updated_at``."""
    unknown = set(values) - WRITABLE
    if unknown:
        raise AttributeError(f"shopkeeper has no writable field {sorted(unknown)}")
    values["updated_at"] = utcnow()
    for name, value in values.items():
        setattr(shopkeeper, name, value)
    await tx.execute(
        sa.update(SHOPKEEPER).where(SHOPKEEPER.c.id == shopkeeper.id).values(**values))


async def forget(tx: AsyncConnection, *, shopkeeper_id: int) -> None:
    """Delete the shopkeeper and, by cascade, every row about them."""
    await tx.execute(sa.delete(SHOPKEEPER).where(SHOPKEEPER.c.id == shopkeeper_id))


def profile_of(shopkeeper: ShopkeeperRecord) -> dict[str, str]:
    """The fields flows may read (skip conditions, placeholders)."""
    values = {name: getattr(shopkeeper, name) for name in PROFILE_FIELDS}
    values["language"] = shopkeeper.language
    return {k: str(v) for k, v in values.items() if v is not None}
