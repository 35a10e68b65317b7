"""Invites: a one-time code that gives a role to whoever redeems it first, for 7 days.

The code travels in a Telegram deep link (``?start=invite_<code>``), whose payload allows
only ``A-Za-z0-9_-`` and 64 characters: ``secrets.token_urlsafe`` fits (192 bits, 32
characters). Redeeming is one conditional UPDATE in the transaction that grants the role:
of two people racing for one code, exactly one gets a row back.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage import roles
from storage.tables import INVITE, Role, utcnow

#: What precedes the code in a /start payload.
PREFIX = "invite_"
LIFETIME = timedelta(days=7)
#: Random bytes per code: 192 bits, 32 URL-safe characters.
CODE_BYTES = 24
_CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")


async def create(tx: AsyncConnection, *, role: Role, via: str, created_by: int | None = None,
                 now: datetime | None = None) -> str:
    """A new code for ``role``, made by ``created_by`` (None: the command line) through
    ``via`` (``telegram:ID``, ``cli:LOGIN``)."""
    now = now or utcnow()
    code = secrets.token_urlsafe(CODE_BYTES)
    await tx.execute(sa.insert(INVITE).values(
        code=code, role=role, created_by=created_by, created_via=via[:80], created_at=now,
        expires_at=now + LIFETIME))
    return code


async def redeem(tx: AsyncConnection, *, code: str, shopkeeper_id: int,
                 now: datetime | None = None) -> Role | None:
    """Spend ``code`` for the person and grant its role (their menu is set again); None
    when the code is unknown, used or expired — which of these is not told."""
    if not _CODE.fullmatch(code):
        return None
    now = now or utcnow()
    result = await tx.execute(
        sa.update(INVITE)
        .where(INVITE.c.code == code, INVITE.c.used_at.is_(None), INVITE.c.expires_at > now)
        .values(used_by=shopkeeper_id, used_at=now)
        .returning(INVITE.c.role, INVITE.c.created_via))
    row = result.first()
    if row is None:
        return None
    role = Role(row.role)
    await roles.grant(tx, shopkeeper_id=shopkeeper_id, role=role, by=f"invite:{row.created_via}")
    return role


def code_in(payload: str) -> str | None:
    """The code in a /start payload (``invite_<code>``), or None when it is not an invite."""
    return payload[len(PREFIX):] if payload.startswith(PREFIX) else None


def payload(code: str) -> str:
    """The /start payload that redeems ``code``."""
    return PREFIX + code
