"""A copy of everything held about one person (GDPR art. 15 and 20), table by table.

The same rows erasure would delete or clear (:mod:`storage.footprint`), plus the pictures
of their drafts and the audit entries of what they did, as plain JSON-able values: times in
ISO 8601 (UTC), binary data as its size (a chart drawn from scores that are in the copy).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage import footprint
from storage.tables import AUDIT, BROADCAST_DRAFT, MEDIA


async def everything_about(tx: AsyncConnection, *,
                           shopkeeper_id: int) -> dict[str, list[dict[str, Any]]]:
    """Table name → the person's rows there (tables without any are left out)."""
    who = await footprint.person(tx, shopkeeper_id=shopkeeper_id)
    found: dict[str, list[dict[str, Any]]] = {}
    for table in reversed(footprint.tables()):  # parents first: the profile leads
        conditions = [column == value for column, value in footprint.mentions(table, who)]
        own = footprint.theirs(table, who)
        if own is not None:
            conditions.append(own)
        if table is AUDIT:
            conditions.append(footprint.audit_entries(who))
        if table is MEDIA:
            conditions.append(MEDIA.c.id.in_(
                sa.select(BROADCAST_DRAFT.c.media_id)
                .where(BROADCAST_DRAFT.c.shopkeeper_id == shopkeeper_id)))
        if not conditions:
            continue
        primary = list(table.primary_key.columns) or list(table.columns)[:1]
        rows = (await tx.execute(
            sa.select(table).where(sa.or_(*conditions)).order_by(*primary))).mappings()
        values = [{name: _plain(value) for name, value in row.items()} for row in rows]
        if values:
            found[table.name] = values
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return {"binary_bytes": len(bytes(value))}
    return value
