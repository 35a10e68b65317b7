"""One turn at a time per person, across processes.

On PostgreSQL the lock is a transaction-scoped advisory lock, taken first in the turn and
released by its commit or rollback, so a crash can never leave it held. SQLite has one
writer (and one bot process, see :mod:`storage.database`): the in-process lock suffices.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

# hashtextextended: a stable 64-bit hash of the key, the advisory lock's id.
_LOCK = sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")


async def lock_person(tx: AsyncConnection, key: str) -> None:
    """Wait until no other transaction holds ``key`` (e.g. ``telegram:42``)."""
    if tx.dialect.name == "postgresql":
        await tx.execute(_LOCK, {"key": key})
