"""Who has been away too long: the people retention notifies and erases.

Inactivity counts from ``last_active_at`` (see :func:`storage.shopkeepers.touch`), or from
when the person was created for someone who never did anything since. People with a role
(coach, admin) are never picked: their record serves the role, not a coaching plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import IDENTITY, PERSON_ROLE, SHOPKEEPER

_last_active = sa.func.coalesce(SHOPKEEPER.c.last_active_at, SHOPKEEPER.c.created_at)
_NO_ROLE = ~sa.exists().where(PERSON_ROLE.c.shopkeeper_id == SHOPKEEPER.c.id)


@dataclass(frozen=True, slots=True)
class Away:
    """Someone retention acts on, with where to reach them and in which language;
    ``silent`` when no message may go to them (they sent /stop, or blocked the bot)."""

    shopkeeper_id: int
    channel: str | None
    external_id: str | None
    language: str
    silent: bool

    @property
    def address(self) -> str | None:
        """``channel:external_id`` (the person's lock key), None without an identity."""
        return f"{self.channel}:{self.external_id}" if self.channel else None


def _people(*conditions: sa.ColumnElement[bool], limit: int) -> sa.Select[Any]:
    other = IDENTITY.alias("newest")
    newest = (sa.select(sa.func.max(other.c.id))
              .where(other.c.shopkeeper_id == SHOPKEEPER.c.id).correlate(SHOPKEEPER)
              .scalar_subquery())
    return (sa.select(SHOPKEEPER.c.id, IDENTITY.c.channel, IDENTITY.c.external_id,
                      SHOPKEEPER.c.language,
                      sa.or_(SHOPKEEPER.c.opted_out_at.is_not(None),
                             SHOPKEEPER.c.unreachable_since.is_not(None)))
            .select_from(SHOPKEEPER).outerjoin(IDENTITY, IDENTITY.c.id == newest)
            .where(_NO_ROLE, *conditions).order_by(SHOPKEEPER.c.id).limit(limit))


async def _read(tx: AsyncConnection, query: sa.Select[Any]) -> list[Away]:
    return [Away(int(str(i)), None if c is None else str(c), None if e is None else str(e),
                 str(lang), bool(silent))
            for i, c, e, lang, silent in (await tx.execute(query)).all()]


async def never_consented(tx: AsyncConnection, *, inactive_since: datetime,
                          limit: int) -> list[Away]:
    """People without consent (a chat id and a language at most) silent since before
    ``inactive_since``."""
    return await _read(tx, _people(SHOPKEEPER.c.consent_at.is_(None),
                                   _last_active < inactive_since, limit=limit))


async def to_notify(tx: AsyncConnection, *, inactive_since: datetime,
                    limit: int) -> list[Away]:
    """Consented people silent since before ``inactive_since`` and not told yet."""
    return await _read(tx, _people(SHOPKEEPER.c.consent_at.is_not(None),
                                   SHOPKEEPER.c.retention_notice_at.is_(None),
                                   _last_active < inactive_since, limit=limit))


async def to_erase(tx: AsyncConnection, *, notified_before: datetime,
                   limit: int) -> list[Away]:
    """People told before ``notified_before`` who have not been active since."""
    return await _read(tx, _people(SHOPKEEPER.c.retention_notice_at < notified_before,
                                   limit=limit))


async def still_away(tx: AsyncConnection, *, shopkeeper_id: int,
                     condition: str, before: datetime) -> bool:
    """Re-checked under the person's lock just before erasing: ``condition`` is
    ``"never_consented"`` (silent since before ``before``) or ``"notified"`` (told before
    ``before`` and silent since)."""
    match condition:
        case "never_consented":
            where = [SHOPKEEPER.c.consent_at.is_(None), _last_active < before]
        case "notified":
            where = [SHOPKEEPER.c.retention_notice_at < before]
        case _:
            raise ValueError(f"unknown condition {condition!r}")
    found = (await tx.execute(sa.select(SHOPKEEPER.c.id).where(
        SHOPKEEPER.c.id == shopkeeper_id, _NO_ROLE, *where))).first()
    return found is not None


async def notified(tx: AsyncConnection, *, ids: list[int], inactive_since: datetime,
                   now: datetime) -> list[int]:
    """Mark people as told (their erasure follows unless they come back); returns those
    marked: not someone who became active since they were picked."""
    if not ids:
        return []
    result = await tx.execute(
        sa.update(SHOPKEEPER)
        .where(SHOPKEEPER.c.id.in_(ids), SHOPKEEPER.c.retention_notice_at.is_(None),
               _last_active < inactive_since)
        .values(retention_notice_at=now).returning(SHOPKEEPER.c.id))
    return [int(i) for i in result.scalars()]
