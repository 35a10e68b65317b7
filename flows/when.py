"""When a coach wants a broadcast to go out, as they type it in chat.

``morgen 9:30``, ``vrijdag 14u``, ``12/12 10:00``, ``2026-12-12 10:00``, ``tomorrow 9am`` is
not needed: hours are written the Belgian way (``9u``, ``9h30``, ``9:30``, ``9.30``, ``14``).
The day words (today, tomorrow, the weekdays) come from the texts of the coach's language,
so parsing stays free of any one language. Times are Brussels wall-clock times.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flows.timing import BRUSSELS

#: How far ahead a broadcast may be planned.
HORIZON = timedelta(days=180)
#: Without a time, a day means this hour.
DEFAULT_TIME = time(9)

_TIME = re.compile(r"(?:(?:om|at|à|a)\s+)?([01]?\d|2[0-3])\s*(?:([:.hu])\s*([0-5]\d)?)?"
                   r"\s*(?:uur)?")
_DATE = re.compile(r"^(\d{1,2})[/.-](\d{1,2})(?:[/.-](\d{2}|\d{4}))?")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[ t]|$)")


class WhenError(ValueError):
    """Why a typed moment is not accepted: ``code`` is ``unreadable``, ``past`` or
    ``too_far`` (the bot says it in the coach's language)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True, slots=True)
class DayWords:
    """The words for days in one language: ``relative`` maps a word to days from today
    (vandaag 0, morgen 1, overmorgen 2); ``weekdays`` names Monday to Sunday."""

    relative: Mapping[str, int]
    weekdays: Sequence[str]


def parse_when(text: str, now: datetime, words: Sequence[DayWords]) -> datetime:
    """The moment ``text`` names, in UTC, after ``now`` and within :data:`HORIZON`."""
    typed = " ".join(text.lower().replace(",", " ").split())
    today = now.astimezone(BRUSSELS).date()
    day, rest = _day(typed, today, words)
    at = DEFAULT_TIME
    if rest:
        found = _TIME.fullmatch(rest)
        if found is None:
            raise WhenError("unreadable")
        at = time(int(found[1]), int(found[3] or 0))
    if day is None:
        if not rest:
            raise WhenError("unreadable")
        day = today  # only an hour: today, or tomorrow when that hour has passed
        if datetime.combine(day, at, BRUSSELS) <= now:
            day += timedelta(days=1)
    moment = datetime.combine(day, at, BRUSSELS).astimezone(UTC)
    if moment <= now:
        raise WhenError("past")
    if moment - now > HORIZON:
        raise WhenError("too_far")
    return moment


def _day(typed: str, today: date, words: Sequence[DayWords]) -> tuple[date | None, str]:
    """The day at the start of ``typed`` and what follows it."""
    if found := _ISO.match(typed):
        return _date(int(found[1]), int(found[2]), int(found[3])), typed[found.end():].strip()
    if found := _DATE.match(typed):
        day, month, year = int(found[1]), int(found[2]), found[3]
        if year is None:
            chosen = _date(today.year, month, day)
            if today - chosen > HORIZON:  # early January for a date in December: next year
                chosen = _date(today.year + 1, month, day)
        else:
            chosen = _date(int(year) + (2000 if len(year) == 2 else 0), month, day)
        return chosen, typed[found.end():].strip()
    first, _, rest = typed.partition(" ")
    for language in words:
        relative = {w.lower(): n for w, n in language.relative.items()}
        if first in relative:
            return today + timedelta(days=relative[first]), rest
        names = [w.lower() for w in language.weekdays]
        if first in names:
            ahead = (names.index(first) - today.weekday()) % 7
            return today + timedelta(days=ahead or 7), rest
    return None, typed


def _date(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise WhenError("unreadable") from None
