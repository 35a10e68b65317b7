"""Whose turn is under way: the update being handled and the person, for every log line.

The inbox opens :func:`turn` around each update; the dispatcher names the person with
:func:`person` as soon as it knows them (their internal id: no chat id in a log). Context
variables, so concurrent turns never mix; :mod:`bot.logs` puts them on each record.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import Context, ContextVar, copy_context

#: The update being handled, as ``channel:key`` (Telegram's ``update_id``).
_update: ContextVar[str | None] = ContextVar("kiss_update", default=None)
#: The person whose turn it is, once known.
_person: ContextVar[int | None] = ContextVar("kiss_person", default=None)


@contextmanager
def turn(update: str) -> Iterator[None]:
    """Inside, the turn is ``update``'s (and the person's, once :func:`person` says);
    both are forgotten when it ends."""
    update_token = _update.set(update)
    person_token = _person.set(None)
    try:
        yield
    finally:
        _person.reset(person_token)
        _update.reset(update_token)


def person(person_id: int | None) -> None:
    """The turn under way is this person's."""
    _person.set(person_id)


def current() -> tuple[str | None, int | None]:
    """The update and the person of the turn under way (None outside one)."""
    return _update.get(), _person.get()


def outside() -> Context:
    """The current context without a turn: for background work a turn merely starts (the
    sender's next poll), so its log lines do not name that turn's update and person."""
    context = copy_context()
    context.run(_forget)
    return context


def _forget() -> None:
    _update.set(None)
    _person.set(None)
