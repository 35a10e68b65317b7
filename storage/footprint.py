"""Where one person's data lives: every row about them, in every table.

Read from the schema, not listed by hand, so a table added later with a foreign key to
``shopkeeper`` is covered by /mydata and /delete without anyone remembering to:

- **theirs**: rows that exist because of the person (a foreign key to them that cascades,
  their chat's received updates and outbox rows, their chat's rate-limit pause, a note to
  admins that names their address). Erasure deletes these.
- **mentions**: rows that are someone else's (or the programme's) and only name the
  person: a foreign key that is set to NULL on delete (the coach who sent a broadcast), or a
  written-out address (``created_via``, ``granted_by``). Erasure keeps the row and removes
  the name.
- **audit**: the audit trail names the actor of exports, stats views and role changes. It
  is kept as it is, for accountability (GDPR art. 5(2) and 17(3)(b)); nothing in chat
  removes it, erasure included (see :mod:`storage.audit`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import (
    AUDIT,
    IDENTITY,
    INBOX,
    OUTBOX,
    RATE_PAUSE,
    SHOPKEEPER,
    WHATSAPP_PACE,
    WHATSAPP_WINDOW,
)

#: Tables whose rows are addressed to a chat: (channel column, address column).
ADDRESSED: dict[str, tuple[str, str]] = {
    INBOX.name: ("channel", "chat"),
    OUTBOX.name: ("channel", "external_id"),
    IDENTITY.name: ("channel", "external_id"),
    WHATSAPP_WINDOW.name: ("channel", "external_id"),
    WHATSAPP_PACE.name: ("channel", "external_id"),
}
#: Columns that name a person by address, written out (``telegram:123``, or
#: ``invite:telegram:123`` for a role given through someone's invite).
NAMED_BY: dict[str, str] = {
    "broadcast": "created_via",
    "invite": "created_via",
    "person_role": "granted_by",
}
#: What stands in a ``NAMED_BY`` column once the person it named is erased.
ERASED = "erased"


@dataclass(frozen=True, slots=True)
class Person:
    """The person's internal id and every (channel, external id) they are known by."""

    shopkeeper_id: int
    addresses: tuple[tuple[str, str], ...]

    @property
    def written(self) -> list[str]:
        """Their addresses as written out in other rows (``telegram:123``)."""
        plain = [f"{channel}:{external}" for channel, external in self.addresses]
        return [*plain, *(f"invite:{address}" for address in plain)]


async def person(tx: AsyncConnection, *, shopkeeper_id: int) -> Person:
    """The person with their addresses (none left when they were erased already)."""
    rows = (await tx.execute(
        sa.select(IDENTITY.c.channel, IDENTITY.c.external_id)
        .where(IDENTITY.c.shopkeeper_id == shopkeeper_id).order_by(IDENTITY.c.id))).all()
    return Person(shopkeeper_id, tuple((str(c), str(e)) for c, e in rows))


def tables() -> list[sa.Table]:
    """Every table, children before parents (the order to delete in)."""
    return list(reversed(SHOPKEEPER.metadata.sorted_tables))


def theirs(table: sa.Table, who: Person) -> sa.ColumnElement[bool] | None:
    """The condition for the rows of ``table`` that are the person's own, or None."""
    if table is SHOPKEEPER:
        return SHOPKEEPER.c.id == who.shopkeeper_id
    if table is AUDIT:
        return None
    conditions: list[sa.ColumnElement[bool]] = [
        column == who.shopkeeper_id for column, ondelete in _references(table)
        if ondelete == "CASCADE"]
    if table.name in ADDRESSED and who.addresses:
        channel, address = ADDRESSED[table.name]
        conditions.append(sa.tuple_(table.c[channel], table.c[address]).in_(who.addresses))
    if table is OUTBOX and who.addresses:
        # A note to admins about a failed turn names the address it failed for.
        payload = sa.cast(OUTBOX.c.payload, sa.Text)
        conditions.extend(payload.contains(address, autoescape=True) for address in who.written)
    if table is RATE_PAUSE and who.addresses:
        conditions.append(RATE_PAUSE.c.scope.in_(who.written))
    return sa.or_(*conditions) if conditions else None


def mentions(table: sa.Table, who: Person) -> Iterator[tuple[sa.Column[Any], Any]]:
    """(column, the value it holds when it names the person) for the columns of ``table``
    that may name the person in a row that is not theirs."""
    for column, ondelete in _references(table):
        if ondelete != "CASCADE":
            yield column, who.shopkeeper_id
    if table.name in NAMED_BY:
        column = table.c[NAMED_BY[table.name]]
        for written in who.written:
            yield column, written


def audit_entries(who: Person) -> sa.ColumnElement[bool]:
    """Audit entries the person made (exported, looked at stats, granted a role)."""
    return AUDIT.c.actor.in_(who.written)


def _references(table: sa.Table) -> Iterator[tuple[sa.Column[Any], str | None]]:
    """(column, its ON DELETE rule) for each column that points at a person."""
    for column in table.columns:
        for key in column.foreign_keys:
            if key.column.table is SHOPKEEPER:
                yield column, (key.ondelete or "").upper() or None
