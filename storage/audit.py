"""The audit trail: every export, stats view, role change and erasure, with who did it.

Entries are only ever added here; nothing a person can reach from chat removes them. The
actor is written out (``telegram:123``, ``cli:login``) so an entry outlives the erasure of
the admin who made it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import AUDIT, utcnow


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One entry: ``action`` (``export``, ``stats``, ``role_grant``, ``erase``, …) by
    ``actor`` at ``at``, with its ``detail`` (filters, the role, counts)."""

    id: int
    at: datetime
    actor: str
    action: str
    detail: dict[str, Any]


async def record(tx: AsyncConnection, *, actor: str, action: str,
                 detail: dict[str, Any] | None = None, now: datetime | None = None) -> int:
    """Add an entry in the caller's transaction (so it exists exactly when the act does)."""
    result = await tx.execute(sa.insert(AUDIT).values(
        at=now or utcnow(), actor=actor[:80], action=action[:40], detail=detail or {}))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


async def entries(tx: AsyncConnection, *, since: datetime | None = None,
                  limit: int | None = None) -> list[AuditRecord]:
    """Entries from ``since`` on, oldest first."""
    query = sa.select(AUDIT).order_by(AUDIT.c.at, AUDIT.c.id)
    if since is not None:
        query = query.where(AUDIT.c.at >= since)
    if limit is not None:
        query = query.limit(limit)
    rows = (await tx.execute(query)).mappings()
    return [AuditRecord(r["id"], r["at"], r["actor"], r["action"], dict(r["detail"] or {}))
            for r in rows]
