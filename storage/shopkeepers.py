"""Finding, creating, updating and forgetting shopkeepers.

Reads return :class:`~storage.records.ShopkeeperRecord` (and the open run as a
:class:`~storage.records.RunRecord`); every change is one explicit statement. The
statements on a turn's path are built once, so executing them skips building and hashing a
new SQL expression each time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
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
_INSERT_IDENTITY = {
    name: insert(IDENTITY).on_conflict_do_nothing().returning(IDENTITY.c.id)
    for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))}


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


async def find_or_create(tx: AsyncConnection, *, channel: str, external_id: str,
                         language: str) -> tuple[ShopkeeperRecord, RunRecord | None]:
    """The person behind (channel, external_id) and their open run; a new person (no
    personal data yet) for a stranger.

    Two first messages of one stranger in two processes never collide: the identity is
    inserted with ON CONFLICT DO NOTHING, and the loser drops its new row and reads the
    winner's.
    """
    shopkeeper, run = await find_with_open_run(tx, channel=channel, external_id=external_id)
    if shopkeeper is not None:
        return shopkeeper, run
    now = utcnow()
    row = (await tx.execute(_INSERT, {
        "language": language, "language_chosen": False, "created_at": now,
        "updated_at": now})).one()
    created = shopkeeper_from(row)
    claimed = await tx.execute(_INSERT_IDENTITY[tx.dialect.name], {
        "channel": channel, "external_id": external_id, "shopkeeper_id": created.id,
        "created_at": now})
    if claimed.first() is not None:
        return created, None
    await tx.execute(sa.delete(SHOPKEEPER).where(SHOPKEEPER.c.id == created.id))
    shopkeeper, run = await find_with_open_run(tx, channel=channel, external_id=external_id)
    assert shopkeeper is not None, "the identity exists: someone else created it"
    return shopkeeper, run


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


#: Activity is written at most this often per person (a turn's hot path stays one UPDATE
#: lighter); retention counts in months, so a day's precision is plenty.
ACTIVITY_PRECISION = timedelta(days=1)


async def touch(tx: AsyncConnection, *, shopkeeper: ShopkeeperRecord, now: datetime) -> None:
    """The person did something: note it (for retention), and call off an erasure they
    were told of."""
    last = shopkeeper.last_active_at
    if (shopkeeper.retention_notice_at is None and last is not None
            and timedelta(0) <= now - last < ACTIVITY_PRECISION):
        return
    shopkeeper.last_active_at, shopkeeper.retention_notice_at = now, None
    await tx.execute(sa.update(SHOPKEEPER).where(SHOPKEEPER.c.id == shopkeeper.id)
                     .values(last_active_at=now, retention_notice_at=None))


async def forget(tx: AsyncConnection, *, shopkeeper_id: int) -> None:
    """Delete the shopkeeper and, by cascade, every row about them."""
    await tx.execute(sa.delete(SHOPKEEPER).where(SHOPKEEPER.c.id == shopkeeper_id))


async def reachable(tx: AsyncConnection, *, channel: str, external_id: str,
                    reachable: bool) -> ShopkeeperRecord | None:
    """What the platform says: blocked (or deactivated) or back. Never touches the
    person's own opt-out."""
    shopkeeper = await find_by_identity(tx, channel=channel, external_id=external_id)
    if shopkeeper is None or (shopkeeper.unreachable_since is None) == reachable:
        return shopkeeper
    await update(tx, shopkeeper=shopkeeper,
                 unreachable_since=None if reachable else utcnow())
    return shopkeeper


async def reach(tx: AsyncConnection) -> dict[str, int]:
    """Consented shopkeepers: how many a message reaches now, and why the others not."""
    consented = SHOPKEEPER.c.consent_at.is_not(None)
    opted_out = SHOPKEEPER.c.opted_out_at.is_not(None)
    unreachable = SHOPKEEPER.c.unreachable_since.is_not(None)
    row = (await tx.execute(sa.select(
        sa.func.count().filter(consented),
        sa.func.count().filter(consented, ~opted_out, ~unreachable),
        sa.func.count().filter(consented, opted_out),
        sa.func.count().filter(consented, ~opted_out, unreachable)))).one()
    return dict(zip(("consented", "reachable", "opted_out", "unreachable"),
                    (int(v) for v in row), strict=True))


async def address_of(tx: AsyncConnection, *,
                     shopkeeper_id: int) -> tuple[str, str, str] | None:
    """Where to reach a person (their newest address) and in which language:
    (channel, external id, language)."""
    row = (await tx.execute(
        sa.select(IDENTITY.c.channel, IDENTITY.c.external_id, SHOPKEEPER.c.language)
        .join(SHOPKEEPER, SHOPKEEPER.c.id == IDENTITY.c.shopkeeper_id)
        .where(IDENTITY.c.shopkeeper_id == shopkeeper_id)
        .order_by(IDENTITY.c.id.desc()).limit(1))).first()
    return (str(row[0]), str(row[1]), str(row[2])) if row is not None else None


def profile_of(shopkeeper: ShopkeeperRecord) -> dict[str, str]:
    """The fields flows may read (skip conditions, placeholders)."""
    values = {name: getattr(shopkeeper, name) for name in PROFILE_FIELDS}
    values["language"] = shopkeeper.language
    return {k: str(v) for k, v in values.items() if v is not None}
