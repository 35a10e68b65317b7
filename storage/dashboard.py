"""The dashboard's logins and sessions, and the few reads its pages need that no chat
command does (tickets of every status, with their shop).

A login link and a session are random tokens the person holds; the database keeps only
their SHA-256, so a copy of it (a backup, an export) opens nothing. A link works once and
for :data:`LOGIN_VALID`; a session ends after :data:`IDLE` without a request. Both rows
belong to the person (``ON DELETE CASCADE``): ``/delete`` takes them along.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage import roles
from storage.tables import (
    DASHBOARD_LOGIN,
    DASHBOARD_SESSION,
    IDENTITY,
    RESULT,
    SHOPKEEPER,
    TICKET,
    Role,
)

#: How long a login link may be used.
LOGIN_VALID = timedelta(minutes=10)
#: A session without a request for this long is over.
IDLE = timedelta(hours=8)
#: A session's last request is written at most this often (not on every page view).
SEEN_EVERY = timedelta(minutes=1)


def digest(token: str) -> str:
    """What is stored of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A random token: 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


async def create_login(tx: AsyncConnection, *, shopkeeper_id: int, now: datetime) -> str:
    """A new one-time login token for this person (valid :data:`LOGIN_VALID`)."""
    token = new_token()
    await tx.execute(sa.insert(DASHBOARD_LOGIN).values(
        token_hash=digest(token), shopkeeper_id=shopkeeper_id, created_at=now,
        expires_at=now + LOGIN_VALID))
    return token


async def redeem_login(tx: AsyncConnection, *, token: str, now: datetime) -> int | None:
    """Use a login token: the person it was made for, or None when it is unknown, used or
    expired. One conditional UPDATE: of two uses at once exactly one wins."""
    row = (await tx.execute(
        sa.update(DASHBOARD_LOGIN)
        .where(DASHBOARD_LOGIN.c.token_hash == digest(token),
               DASHBOARD_LOGIN.c.used_at.is_(None), DASHBOARD_LOGIN.c.expires_at > now)
        .values(used_at=now).returning(DASHBOARD_LOGIN.c.shopkeeper_id))).first()
    return int(row[0]) if row is not None else None


async def open_session(tx: AsyncConnection, *, shopkeeper_id: int, now: datetime) -> str:
    """A new session for this person; its token goes in the browser's cookie."""
    token = new_token()
    await tx.execute(sa.insert(DASHBOARD_SESSION).values(
        token_hash=digest(token), shopkeeper_id=shopkeeper_id, created_at=now, seen_at=now))
    return token


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who a session is: the person, their address (``telegram:123``, for the audit
    trail), their language and their roles now."""

    shopkeeper_id: int
    address: str
    language: str
    roles: frozenset[Role]


async def visitor(tx: AsyncConnection, *, token: str, now: datetime) -> Visitor | None:
    """The person behind a session token, with their roles as they are now; None when the
    session is unknown, ended or idle too long. Marks the session as seen."""
    row = (await tx.execute(
        sa.select(DASHBOARD_SESSION.c.id, DASHBOARD_SESSION.c.seen_at,
                  SHOPKEEPER.c.id, SHOPKEEPER.c.language)
        .join(SHOPKEEPER, SHOPKEEPER.c.id == DASHBOARD_SESSION.c.shopkeeper_id)
        .where(DASHBOARD_SESSION.c.token_hash == digest(token)))).first()
    if row is None:
        return None
    session_id, seen_at, person, language = row
    if now - seen_at >= IDLE:
        await tx.execute(sa.delete(DASHBOARD_SESSION).where(
            DASHBOARD_SESSION.c.id == session_id))
        return None
    if now - seen_at >= SEEN_EVERY:
        await tx.execute(sa.update(DASHBOARD_SESSION).where(
            DASHBOARD_SESSION.c.id == session_id).values(seen_at=now))
    address = (await tx.execute(
        sa.select(IDENTITY.c.channel, IDENTITY.c.external_id)
        .where(IDENTITY.c.shopkeeper_id == person).order_by(IDENTITY.c.id.desc())
        .limit(1))).first()
    return Visitor(int(person), f"{address[0]}:{address[1]}" if address else
                   f"shopkeeper:{person}", str(language),
                   await roles.of(tx, shopkeeper_id=int(person)))


async def end_session(tx: AsyncConnection, *, token: str) -> None:
    """Log out: the session is gone."""
    await tx.execute(sa.delete(DASHBOARD_SESSION).where(
        DASHBOARD_SESSION.c.token_hash == digest(token)))


async def forget_stale(tx: AsyncConnection, *, now: datetime) -> int:
    """Remove used or expired links and idle sessions; how many rows went."""
    links = await tx.execute(sa.delete(DASHBOARD_LOGIN).where(sa.or_(
        DASHBOARD_LOGIN.c.used_at.is_not(None), DASHBOARD_LOGIN.c.expires_at <= now)))
    sessions = await tx.execute(sa.delete(DASHBOARD_SESSION).where(
        DASHBOARD_SESSION.c.seen_at <= now - IDLE))
    return int(links.rowcount) + int(sessions.rowcount)


async def figures_version(tx: AsyncConnection) -> tuple[object, ...]:
    """What the programme's figures are computed from, in a few numbers: how many consented
    people and results there are, the newest result and the latest profile change. Any
    new result, consent, changed profile or erasure changes it; one cheap statement, so the
    dashboard can keep the figures of an unchanged database (see
    :mod:`bot.dashboard.figures`)."""
    row = (await tx.execute(sa.select(
        sa.select(sa.func.count()).select_from(RESULT).scalar_subquery(),
        sa.select(sa.func.max(RESULT.c.id)).scalar_subquery(),
        sa.select(sa.func.count()).select_from(SHOPKEEPER)
        .where(SHOPKEEPER.c.consent_at.is_not(None)).scalar_subquery(),
        sa.select(sa.func.count()).select_from(SHOPKEEPER).scalar_subquery(),
        sa.select(sa.func.max(SHOPKEEPER.c.updated_at)).scalar_subquery()))).one()
    return tuple(row)


@dataclass(frozen=True, slots=True)
class TicketLine:
    """One ticket as the tickets page lists it: the shop and the question."""

    id: int
    status: str
    question: str
    shop_name: str | None
    municipality: str | None
    shop_type: str | None
    coach_name: str | None
    created_at: datetime
    active_at: datetime
    closed_at: datetime | None


async def tickets(tx: AsyncConnection, *, statuses: tuple[str, ...],
                  limit: int = 100) -> list[TicketLine]:
    """The latest tickets of these statuses, newest first, with their shop."""
    rows = await tx.execute(
        sa.select(TICKET.c.id, TICKET.c.status, TICKET.c.question, SHOPKEEPER.c.shop_name,
                  SHOPKEEPER.c.municipality, SHOPKEEPER.c.shop_type, TICKET.c.coach_name,
                  TICKET.c.created_at, TICKET.c.active_at, TICKET.c.closed_at)
        .join(SHOPKEEPER, SHOPKEEPER.c.id == TICKET.c.shopkeeper_id)
        .where(TICKET.c.status.in_(statuses))
        .order_by(TICKET.c.id.desc()).limit(limit))
    return [TicketLine(**row) for row in rows.mappings()]
