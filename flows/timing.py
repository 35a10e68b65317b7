"""When a non-urgent message (a tip, a reminder, a check-in) may go out.

Quiet hours and rest days are about the shopkeeper's own clock and calendar, so everything
is judged on the local wall clock in Europe/Brussels: an instant is quiet when the clock
on the wall shows a time in the quiet range. That settles the daylight-saving nights too:

- spring forward (02:00 → 03:00): a wall time in the gap never shows, so a quiet range
  ending at 02:30 ends when the clock jumps to 03:00, and one starting at 02:30 starts then;
- fall back (03:00 → 02:00): the hour 02:00-03:00 shows twice, and a quiet range that
  covers part of it is quiet both times the clock shows it.

Intervals of a day or more are counted in local calendar days, so a weekly tip keeps its
local hour through both changes. Pure: no I/O, no clock of its own (callers pass ``now``).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

BRUSSELS = ZoneInfo("Europe/Brussels")

#: The local window each "moment" of the day stands for, [start, end).
MOMENTS: dict[str, tuple[time, time]] = {
    "morning": (time(9), time(12)),
    "afternoon": (time(12), time(17)),
    "evening": (time(17), time(20)),
}

#: How far next_slot looks before it gives up (a year and a bit: every holiday passes once).
SEARCH_DAYS = 400

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_UNITS_HELP = "s (seconds), m (minutes), h (hours), d (days), w (weeks)"
_DURATION = re.compile(r"(?:[0-9]+\s*[a-z]+\s*)+")
_DURATION_PART = re.compile(r"([0-9]+)\s*([a-z]+)")
_QUIET = re.compile(r"([0-9]{2}):([0-9]{2})\s*-\s*([0-9]{2}):([0-9]{2})")
# spelled out: calendar.day_name follows the process locale, and config is in English
_WEEKDAYS = {name: number for number, name in enumerate(
    ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))}


def parse_duration(text: str) -> timedelta:
    """Read a duration from config text: "30s", "5m", "2h", "2d", "12w", or parts combined
    ("1d12h", "1d 12h"). A bare number, a unit other than s/m/h/d/w, or a total of zero is
    a ValueError naming the text and the accepted units."""

    def invalid(reason: str) -> ValueError:
        return ValueError(f"duration {text!r}: {reason}; write a whole number and a unit, "
                          f"one of {_UNITS_HELP}, e.g. '30s', '2h' or '1d 12h'")

    cleaned = text.strip().casefold()
    if not cleaned:
        raise invalid("empty")
    if not _DURATION.fullmatch(cleaned):
        raise invalid("a number without a unit" if cleaned.isdecimal() else "not understood")
    seconds = 0
    for number, unit in _DURATION_PART.findall(cleaned):
        if unit not in _UNITS:
            raise invalid(f"unknown unit {unit!r}")
        seconds += int(number) * _UNITS[unit]
    if seconds == 0:
        raise invalid("must be longer than zero")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise invalid("far too long") from None


def easter(year: int) -> date:
    """Easter Sunday of a Gregorian year, by the anonymous Gregorian algorithm
    (Meeus/Jones/Butcher)."""
    if year < 1583:
        raise ValueError(f"easter({year}): the Gregorian computus applies from 1583 on")
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


def belgian_holidays(year: int) -> dict[date, str]:
    """The 10 Belgian legal public holidays of ``year``, by date, with English names.

    When two fall on the same day (Ascension on 1 May, as in 2008) that date names both.
    """
    sunday = easter(year)
    holidays = [
        (date(year, 1, 1), "New Year"),
        (sunday + timedelta(days=1), "Easter Monday"),
        (date(year, 5, 1), "Labour Day"),
        (sunday + timedelta(days=39), "Ascension"),
        (sunday + timedelta(days=50), "Whit Monday"),
        (date(year, 7, 21), "National Day"),
        (date(year, 8, 15), "Assumption"),
        (date(year, 11, 1), "All Saints"),
        (date(year, 11, 11), "Armistice"),
        (date(year, 12, 25), "Christmas"),
    ]
    names: dict[date, str] = {}
    for day, name in holidays:
        names[day] = f"{names[day]} and {name}" if day in names else name
    return dict(sorted(names.items()))


@cache
def _holiday_dates(year: int) -> frozenset[date]:
    # cached apart from belgian_holidays so no caller can change a shared dict
    return frozenset(belgian_holidays(year))


def nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th (1-based; -1 = last, -2 = one before) weekday (0=Monday … 6=Sunday) of a
    month, e.g. Mother's Day in Belgium = nth_weekday(y, 5, 6, 2). ValueError when the month
    has no such day (a fifth Monday, say)."""
    if not 0 <= weekday <= 6:
        raise ValueError(f"weekday {weekday}: use 0 (Monday) to 6 (Sunday)")
    if n == 0:
        raise ValueError("n must be 1, 2, … or -1 (last), -2, …, not 0")
    first_weekday, length = calendar.monthrange(year, month)
    if n > 0:
        day = 1 + (weekday - first_weekday) % 7 + 7 * (n - 1)
    else:
        last_weekday = (first_weekday + length - 1) % 7
        day = length - (last_weekday - weekday) % 7 - 7 * (-n - 1)
    if not 1 <= day <= length:
        raise ValueError(f"{year}-{month:02d} has no weekday {weekday} number {n}")
    return date(year, month, day)


def _in_range(t: time, start: time, end: time) -> bool:
    """Whether wall time ``t`` lies in [start, end), a range that may wrap midnight."""
    if start < end:
        return start <= t < end
    return t >= start or t < end


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


def _offset_change(start: datetime, end: datetime, zone: ZoneInfo) -> list[datetime]:
    """The instant in [start, end) at which ``zone`` changes its UTC offset, if it does.

    A binary search over whole seconds (zone transitions are whole seconds); one change a
    day is all any real zone has.
    """
    low, high = int(start.timestamp()), int(end.timestamp())

    def offset(seconds: int) -> timedelta | None:
        return datetime.fromtimestamp(seconds, zone).utcoffset()

    if offset(low) == offset(high):
        return []
    while high - low > 1:
        middle = (low + high) // 2
        if offset(middle) == offset(low):
            low = middle
        else:
            high = middle
    return [datetime.fromtimestamp(high, UTC)]


@dataclass(frozen=True, slots=True)
class SendingHours:
    """When non-urgent messages may go out.

    ``quiet``: a local time range [start, end) during which nothing goes out; it may wrap
    midnight (20:00-09:00), or None. ``rest_weekdays``: weekdays (0=Monday … 6=Sunday) on
    which nothing goes out all day; ``rest_on_holidays``: Belgian public holidays too.
    """

    quiet: tuple[time, time] | None = (time(20), time(9))
    rest_weekdays: frozenset[int] = frozenset({6})
    rest_on_holidays: bool = True
    zone: ZoneInfo = BRUSSELS

    def __post_init__(self) -> None:
        if self.quiet is not None and self.quiet[0] == self.quiet[1]:
            raise ValueError(f"quiet hours start and end at {self.quiet[0]}: say which "
                             "part of the day is quiet (rest days cover whole days)")
        if not self.rest_weekdays <= frozenset(range(7)):
            raise ValueError(f"rest weekdays {sorted(self.rest_weekdays)}: use 0-6")

    @classmethod
    def parse(cls, quiet: str, rest_days: str) -> SendingHours:
        """From config text: ``quiet`` "20:00-09:00" ("" = none; HH:MM-HH:MM, start and end
        different), ``rest_days`` "sunday,holidays" (English weekday names and/or
        "holidays", comma-separated, any case, spaces allowed; "" = none). ValueError with
        the reason otherwise."""
        quiet_range: tuple[time, time] | None = None
        if quiet.strip():
            match = _QUIET.fullmatch(quiet.strip())
            if not match:
                raise ValueError(f"quiet hours {quiet!r}: write HH:MM-HH:MM, e.g. "
                                 "'20:00-09:00', or leave empty for none")
            start_hour, start_minute, end_hour, end_minute = map(int, match.groups())
            for hour, minute in ((start_hour, start_minute), (end_hour, end_minute)):
                if hour > 23 or minute > 59:
                    raise ValueError(f"quiet hours {quiet!r}: {hour:02d}:{minute:02d} is "
                                     "not a time of day (00:00-23:59; midnight is 00:00)")
            quiet_range = (time(start_hour, start_minute), time(end_hour, end_minute))
            if quiet_range[0] == quiet_range[1]:
                raise ValueError(f"quiet hours {quiet!r}: start and end are the same; "
                                 "use rest days for whole days")
        weekdays: set[int] = set()
        holidays = False
        for item in rest_days.split(","):
            name = item.strip().casefold()
            if name == "holidays":
                holidays = True
            elif name in _WEEKDAYS:
                weekdays.add(_WEEKDAYS[name])
            elif name:
                raise ValueError(f"rest days {rest_days!r}: {item.strip()!r} is not one of "
                                 f"{', '.join(_WEEKDAYS)} or holidays")
        return cls(quiet_range, frozenset(weekdays), holidays)

    def allowed(self, at: datetime) -> bool:
        """May a non-urgent message go out at ``at`` (aware datetime, any zone)?"""
        _require_aware(at, "at")
        return self._fits(at, None)

    def next_slot(self, after: datetime, moment: str | None = None) -> datetime:
        """The earliest instant >= ``after`` at which a message may go out, in UTC.

        With ``moment`` (a key of MOMENTS) it must also lie within that moment's local
        window, cut down to the allowed hours (quiet "20:00-10:00" makes morning
        10:00-12:00). A window that lies wholly in the quiet hours is ignored. ValueError
        when nothing is allowed within SEARCH_DAYS days (every day a rest day, say).
        """
        _require_aware(after, "after")
        window = self._window(moment)
        if self._fits(after, window):
            return after.astimezone(UTC)
        first_day = after.astimezone(self.zone).date()
        for offset in range(SEARCH_DAYS):
            day = first_day + timedelta(days=offset)
            if self._rest_day(day):
                continue
            for candidate in self._changes(day, window):
                if candidate >= after and self._fits(candidate, window):
                    return candidate
        raise ValueError(f"no allowed time within {SEARCH_DAYS} days")

    def due_after(self, start: datetime, interval: timedelta,
                  moment: str | None = None) -> datetime:
        """When something due ``interval`` after ``start`` should go out, in UTC.

        An interval of a day or more is counted on the local calendar and clock: "7d" after
        Saturday 09:30 is the next Saturday at the start of the ``moment`` window, or
        without a moment at 09:30 again, whatever daylight saving did in between. A wall
        time that does not exist that day (02:30 in spring) is read with the offset before
        the change (03:30). A shorter interval (operators testing the cycle in minutes) is
        real time. Either way the result then moves to the next slot.
        """
        _require_aware(start, "start")
        if interval <= timedelta(0):
            raise ValueError(f"interval must be positive, got {interval}")
        if interval < timedelta(days=1):
            # aware arithmetic in a ZoneInfo adds to the wall clock: go through UTC
            return self.next_slot(start.astimezone(UTC) + interval, moment)
        wall = start.astimezone(self.zone).replace(tzinfo=None) + interval
        window = self._window(moment)
        at = window[0] if window else wall.time()
        return self.next_slot(datetime.combine(wall.date(), at, tzinfo=self.zone), moment)

    def _rest_day(self, day: date) -> bool:
        return day.weekday() in self.rest_weekdays or (
            self.rest_on_holidays and day in _holiday_dates(day.year))

    def _fits(self, at: datetime, window: tuple[time, time] | None) -> bool:
        """Allowed at ``at``, and within ``window`` when one is given (all local wall time)."""
        local = at.astimezone(self.zone)
        wall = local.time()
        if self._rest_day(local.date()):
            return False
        if self.quiet is not None and _in_range(wall, *self.quiet):
            return False
        return window is None or _in_range(wall, *window)

    def _window(self, moment: str | None) -> tuple[time, time] | None:
        """The moment's window, or None when there is no moment or it is to be ignored."""
        if moment is None:
            return None
        if moment not in MOMENTS:
            raise ValueError(f"moment {moment!r}: use one of {', '.join(MOMENTS)}")
        start, end = MOMENTS[moment]
        if self.quiet is None:
            return start, end
        quiet_start, quiet_end = self.quiet
        # two arcs of the clock overlap exactly when one starts inside the other; the
        # allowed hours are the arc [quiet end, quiet start)
        if _in_range(start, quiet_end, quiet_start) or _in_range(quiet_end, start, end):
            return start, end
        return None

    def _changes(self, day: date, window: tuple[time, time] | None) -> list[datetime]:
        """Every instant of ``day`` at which _fits can turn true, in UTC, in order.

        Between two of them the local date and the side of each boundary stay the same:
        the wall clock only crosses a boundary when it shows it (both times, on the night
        it shows it twice), or when it jumps at a change of offset.
        """
        walls = {time(0)} | set(self.quiet or ()) | set(window or ())
        instants = {datetime.combine(day, wall, tzinfo=self.zone).replace(fold=fold)
                    .astimezone(UTC) for wall in walls for fold in (0, 1)}
        day_start, day_end = (datetime.combine(d, time(0), tzinfo=self.zone)
                              for d in (day, day + timedelta(days=1)))
        instants.update(_offset_change(day_start, day_end, self.zone))
        return sorted(instants)
