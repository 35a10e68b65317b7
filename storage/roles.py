"""Roles: who is also a coach or an admin, and whose command menu must be set again."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage import audit
from storage.tables import IDENTITY, MENU_SYNC, PERSON_ROLE, SHOPKEEPER, Role, utcnow


async def of(tx: AsyncConnection, *, shopkeeper_id: int) -> frozenset[Role]:
    result = await tx.execute(sa.select(PERSON_ROLE.c.role).where(
        PERSON_ROLE.c.shopkeeper_id == shopkeeper_id))
    return frozenset(Role(role) for role in result.scalars())


async def grant(tx: AsyncConnection, *, shopkeeper_id: int, role: Role, by: str) -> bool:
    """Grant ``role`` (``by`` whom, written to the audit trail); False when the person had it
    already. Their menu is set again."""
    insert = postgresql.insert if tx.dialect.name == "postgresql" else sqlite.insert
    result = await tx.execute(
        insert(PERSON_ROLE).values(shopkeeper_id=shopkeeper_id, role=role, granted_by=by[:80],
                                   granted_at=utcnow())
        .on_conflict_do_nothing().returning(PERSON_ROLE.c.role))
    granted = result.first() is not None
    if granted:
        await _request_menu(tx, shopkeeper_id)
        await audit.record(tx, actor=by, action="role_grant",
                           detail={"role": str(role), "shopkeeper": shopkeeper_id})
    return granted


async def revoke(tx: AsyncConnection, *, shopkeeper_id: int, role: Role,
                 by: str = "unknown") -> bool:
    """Take ``role`` away (``by`` whom, for the audit trail); False when the person did not
    have it."""
    result = await tx.execute(sa.delete(PERSON_ROLE).where(
        PERSON_ROLE.c.shopkeeper_id == shopkeeper_id, PERSON_ROLE.c.role == role))
    revoked = bool(result.rowcount)
    if revoked:
        await _request_menu(tx, shopkeeper_id)
        await audit.record(tx, actor=by, action="role_revoke",
                           detail={"role": str(role), "shopkeeper": shopkeeper_id})
    return revoked


async def everyone(tx: AsyncConnection) -> list[tuple[str, str, Role, str]]:
    """(channel, external id, role, granted by) for every granted role."""
    result = await tx.execute(
        sa.select(IDENTITY.c.channel, IDENTITY.c.external_id, PERSON_ROLE.c.role,
                  PERSON_ROLE.c.granted_by)
        .join(IDENTITY, IDENTITY.c.shopkeeper_id == PERSON_ROLE.c.shopkeeper_id)
        .order_by(PERSON_ROLE.c.role, IDENTITY.c.channel, IDENTITY.c.external_id))
    return [(channel, ext, Role(role), by) for channel, ext, role, by in result.all()]


@dataclass(frozen=True, slots=True)
class Holder:
    """Someone holding a role, with an address to reach them and their language."""

    shopkeeper_id: int
    channel: str
    external_id: str
    language: str


async def holders(tx: AsyncConnection, *, role: Role) -> list[Holder]:
    """Everyone who holds ``role`` and can be reached (not opted out, not unreachable)."""
    result = await tx.execute(
        sa.select(PERSON_ROLE.c.shopkeeper_id, IDENTITY.c.channel, IDENTITY.c.external_id,
                  SHOPKEEPER.c.language)
        .join(IDENTITY, IDENTITY.c.shopkeeper_id == PERSON_ROLE.c.shopkeeper_id)
        .join(SHOPKEEPER, SHOPKEEPER.c.id == PERSON_ROLE.c.shopkeeper_id)
        .where(PERSON_ROLE.c.role == role, SHOPKEEPER.c.opted_out_at.is_(None),
               SHOPKEEPER.c.unreachable_since.is_(None)))
    return [Holder(*row) for row in result.all()]


async def _request_menu(tx: AsyncConnection, shopkeeper_id: int) -> None:
    insert = postgresql.insert if tx.dialect.name == "postgresql" else sqlite.insert
    await tx.execute(insert(MENU_SYNC).values(shopkeeper_id=shopkeeper_id,
                                              requested_at=utcnow()).on_conflict_do_nothing())


async def menus_to_sync(tx: AsyncConnection, *, channel: str, limit: int = 50,
                        ) -> list[tuple[int, str, frozenset[Role], str]]:
    """(person, external id on ``channel``, current roles, language) for menus waiting to
    be set."""
    result = await tx.execute(
        sa.select(MENU_SYNC.c.shopkeeper_id, IDENTITY.c.external_id, SHOPKEEPER.c.language)
        .join(IDENTITY, IDENTITY.c.shopkeeper_id == MENU_SYNC.c.shopkeeper_id)
        .join(SHOPKEEPER, SHOPKEEPER.c.id == MENU_SYNC.c.shopkeeper_id)
        .where(IDENTITY.c.channel == channel).order_by(MENU_SYNC.c.requested_at).limit(limit))
    rows = result.all()
    return [(person, ext, await of(tx, shopkeeper_id=person), lang)
            for person, ext, lang in rows]


async def menu_synced(tx: AsyncConnection, *, shopkeeper_id: int) -> None:
    await tx.execute(sa.delete(MENU_SYNC).where(MENU_SYNC.c.shopkeeper_id == shopkeeper_id))
