"""flows.timing: durations, the Belgian calendar, and when a non-urgent message may go out,
through both daylight-saving changes of 2026 and 2027.

Brussels changes at 01:00 UTC: on 29 March 2026 and 28 March 2027 from 02:00 CET to 03:00
CEST, on 25 October 2026 and 31 October 2027 from 03:00 CEST back to 02:00 CET.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from flows.timing import (
    BRUSSELS,
    MOMENTS,
    SendingHours,
    belgian_holidays,
    easter,
    nth_weekday,
    parse_duration,
)

DEFAULT = SendingHours()
#: Nothing held back: no quiet hours, no rest days.
OPEN = SendingHours(quiet=None, rest_weekdays=frozenset(), rest_on_holidays=False)
#: The default quiet hours, but every day a working day (to look at the nights alone).
NO_REST = SendingHours(rest_weekdays=frozenset(), rest_on_holidays=False)

SPRING = [date(2026, 3, 29), date(2027, 3, 28)]
AUTUMN = [date(2026, 10, 25), date(2027, 10, 31)]


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
          microsecond: int = 0, *, fold: int = 0) -> datetime:
    """A Brussels wall-clock time: local(2027, 3, 8, 9) is 8 March 2027 09:00."""
    return datetime(year, month, day, hour, minute, second, microsecond, BRUSSELS, fold=fold)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
        second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def change(day: date) -> datetime:
    """The instant Brussels changes its clocks on ``day``."""
    return datetime.combine(day, time(1), tzinfo=UTC)


def quiet(text: str) -> SendingHours:
    """Quiet hours from config text, no rest days."""
    return SendingHours.parse(text, "")


# --- parse_duration ---------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("30s", timedelta(seconds=30)),
    ("5m", timedelta(minutes=5)),
    ("2h", timedelta(hours=2)),
    ("2d", timedelta(days=2)),
    ("12w", timedelta(weeks=12)),
    ("90m", timedelta(minutes=90)),
    ("1d12h", timedelta(days=1, hours=12)),
    ("1d 12h", timedelta(days=1, hours=12)),
    ("  2h  ", timedelta(hours=2)),
    ("1w2d3h4m5s", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
    ("5s 1w", timedelta(weeks=1, seconds=5)),
    ("2H", timedelta(hours=2)),
    ("1d0h", timedelta(days=1)),
])
def test_parse_duration_reads_units_and_combinations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", [
    "", "   ", "30", "0s", "0d 0h", "-5m", "5y", "1.5h", "5 minutes", "h", "1d-2h", "5m!",
    "٣s", "99999999999999w",
])
def test_parse_duration_errors_name_the_text_and_the_units(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))) as caught:
        parse_duration(text)
    assert "s (seconds), m (minutes), h (hours), d (days), w (weeks)" in str(caught.value)


@pytest.mark.parametrize(("text", "reason"), [
    ("30", "without a unit"), ("0s", "longer than zero"), ("5y", "unknown unit 'y'"),
])
def test_parse_duration_says_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_duration(text)


# --- the calendar -----------------------------------------------------------------------

@pytest.mark.parametrize(("year", "sunday"), [
    (2024, date(2024, 3, 31)), (2025, date(2025, 4, 20)), (2026, date(2026, 4, 5)),
    (2027, date(2027, 3, 28)), (2038, date(2038, 4, 25)), (2000, date(2000, 4, 23)),
    (2008, date(2008, 3, 23)), (1943, date(1943, 4, 25)), (2285, date(2285, 3, 22)),
    (1583, date(1583, 4, 10)),
])
def test_easter_on_known_years(year: int, sunday: date) -> None:
    assert easter(year) == sunday


def test_easter_is_always_a_sunday_between_22_march_and_25_april() -> None:
    for year in range(1583, 3000):
        sunday = easter(year)
        assert sunday.weekday() == 6, year
        assert date(year, 3, 22) <= sunday <= date(year, 4, 25), year


def test_easter_refuses_years_before_the_gregorian_calendar() -> None:
    with pytest.raises(ValueError, match="1583"):
        easter(1500)


def test_the_ten_belgian_holidays_of_2027() -> None:
    assert belgian_holidays(2027) == {
        date(2027, 1, 1): "New Year",
        date(2027, 3, 29): "Easter Monday",
        date(2027, 5, 1): "Labour Day",
        date(2027, 5, 6): "Ascension",
        date(2027, 5, 17): "Whit Monday",
        date(2027, 7, 21): "National Day",
        date(2027, 8, 15): "Assumption",
        date(2027, 11, 1): "All Saints",
        date(2027, 11, 11): "Armistice",
        date(2027, 12, 25): "Christmas",
    }
    assert list(belgian_holidays(2027)) == sorted(belgian_holidays(2027))


@pytest.mark.parametrize(("name", "day"), [
    ("Easter Monday", date(2027, 3, 29)), ("Ascension", date(2027, 5, 6)),
    ("Whit Monday", date(2027, 5, 17)), ("Easter Monday", date(2026, 4, 6)),
    ("Ascension", date(2026, 5, 14)), ("Whit Monday", date(2026, 5, 25)),
])
def test_movable_holidays(name: str, day: date) -> None:
    assert belgian_holidays(day.year)[day] == name


def test_ascension_on_labour_day_keeps_both_names() -> None:
    holidays = belgian_holidays(2008)  # Easter on 23 March: Ascension on 1 May
    assert holidays[date(2008, 5, 1)] == "Labour Day and Ascension"
    assert len(holidays) == 9


@pytest.mark.parametrize("year", range(1990, 2101))
def test_every_year_has_ten_holidays_on_the_right_weekdays(year: int) -> None:
    holidays = belgian_holidays(year)
    names = [name for joined in holidays.values() for name in joined.split(" and ")]
    assert len(names) == 10
    weekday = {name: day.weekday() for day, joined in holidays.items()
               for name in joined.split(" and ")}
    assert weekday["Easter Monday"] == weekday["Whit Monday"] == 0
    assert weekday["Ascension"] == 3


def test_holidays_given_out_are_the_callers_own() -> None:
    belgian_holidays(2027).clear()
    assert len(belgian_holidays(2027)) == 10
    assert not DEFAULT.allowed(local(2027, 12, 25, 12))


@pytest.mark.parametrize(("args", "expected"), [
    ((2027, 5, 6, 2), date(2027, 5, 9)),  # Mother's Day
    ((2026, 5, 6, 2), date(2026, 5, 10)),
    ((2027, 6, 6, 2), date(2027, 6, 13)),  # Father's Day
    ((2027, 1, 0, 1), date(2027, 1, 4)),
    ((2027, 2, 0, 4), date(2027, 2, 22)),
    ((2027, 3, 6, -1), date(2027, 3, 28)),
    ((2027, 3, 6, -2), date(2027, 3, 21)),
    ((2027, 10, 6, -1), date(2027, 10, 31)),
    ((2026, 3, 6, -1), date(2026, 3, 29)),
    ((2026, 10, 6, -1), date(2026, 10, 25)),
    ((2027, 12, 4, -1), date(2027, 12, 31)),
    ((2027, 12, 2, 5), date(2027, 12, 29)),
])
def test_nth_weekday(args: tuple[int, int, int, int], expected: date) -> None:
    assert nth_weekday(*args) == expected


@pytest.mark.parametrize("args", [
    (2027, 2, 0, 5), (2027, 2, 0, -5), (2027, 5, 6, 0), (2027, 5, 7, 1), (2027, 5, -1, 1),
])
def test_nth_weekday_refuses_days_that_do_not_exist(args: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError):
        nth_weekday(*args)


@pytest.mark.parametrize("year", range(2020, 2041))
def test_the_clocks_change_on_the_last_sundays_of_march_and_october(year: int) -> None:
    for month in (3, 10):
        day = nth_weekday(year, month, 6, -1)
        before = datetime.combine(day, time(0), tzinfo=BRUSSELS).utcoffset()
        after = datetime.combine(day, time(12), tzinfo=BRUSSELS).utcoffset()
        assert before != after, (year, month)


# --- SendingHours: config ---------------------------------------------------------------

@pytest.mark.parametrize(("quiet_text", "rest", "expected"), [
    ("20:00-09:00", "sunday,holidays", DEFAULT),
    ("", "", OPEN),
    (" 22:30 - 07:15 ", "Saturday, SUNDAY",
     SendingHours((time(22, 30), time(7, 15)), frozenset({5, 6}), False)),
    ("01:30-02:30", " holidays ", SendingHours((time(1, 30), time(2, 30)), frozenset(), True)),
    ("", "monday,monday", SendingHours(None, frozenset({0}), False)),
    ("00:00-06:00", "", SendingHours((time(0), time(6)), frozenset(), False)),
])
def test_parse_config(quiet_text: str, rest: str, expected: SendingHours) -> None:
    assert SendingHours.parse(quiet_text, rest) == expected


@pytest.mark.parametrize(("quiet_text", "rest", "reason"), [
    ("20:00", "", "HH:MM-HH:MM"),
    ("20-09", "", "HH:MM-HH:MM"),
    ("8:00-09:00", "", "HH:MM-HH:MM"),
    ("20:00–09:00", "", "HH:MM-HH:MM"),  # an en dash
    ("20:00-09:00-10:00", "", "HH:MM-HH:MM"),
    ("24:00-09:00", "", "not a time of day"),
    ("20:60-09:00", "", "not a time of day"),
    ("09:00-09:00", "", "the same"),
    ("", "sun", "'sun' is not one of monday"),
    ("", "sunday;monday", "'sunday;monday' is not one of"),
    ("", "weekend", "'weekend'"),
])
def test_parse_errors_give_the_reason(quiet_text: str, rest: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        SendingHours.parse(quiet_text, rest)


@pytest.mark.parametrize("kwargs", [
    {"quiet": (time(9), time(9))}, {"rest_weekdays": frozenset({7})},
    {"rest_weekdays": frozenset({-1})},
])
def test_invalid_sending_hours_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SendingHours(**kwargs)  # type: ignore[arg-type]


# --- allowed ----------------------------------------------------------------------------

@pytest.mark.parametrize(("at", "expected"), [
    (local(2027, 3, 8, 8, 59, 59), False),  # Monday
    (local(2027, 3, 8, 9), True),
    (local(2027, 3, 8, 12), True),
    (local(2027, 3, 8, 19, 59, 59), True),
    (local(2027, 3, 8, 20), False),
    (local(2027, 3, 8, 0), False),
    (local(2027, 3, 6, 12), True),  # Saturday
    (local(2027, 3, 7, 12), False),  # Sunday
    (local(2027, 3, 29, 12), False),  # Easter Monday
    (local(2027, 11, 11, 12), False),  # Armistice, a Thursday
    (local(2027, 3, 30, 9), True),
    (utc(2027, 3, 8, 8), True),  # 09:00 in Brussels
    (utc(2027, 3, 8, 7, 59), False),
    (utc(2027, 7, 5, 18), False),  # 20:00 CEST is 18:00 UTC: quiet starts then
    (utc(2027, 7, 5, 18) - timedelta(microseconds=1), True),
    (utc(2027, 7, 5, 18, 0, 1), False),
    (datetime(2027, 3, 8, 3, tzinfo=ZoneInfo("America/New_York")), True),  # 09:00 here
])
def test_allowed_by_default(at: datetime, expected: bool) -> None:
    assert DEFAULT.allowed(at) is expected


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2027, 3, 8, 10)
    with pytest.raises(ValueError, match="timezone-aware"):
        DEFAULT.allowed(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        DEFAULT.next_slot(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        DEFAULT.due_after(naive, timedelta(days=1))


# --- next_slot --------------------------------------------------------------------------

@pytest.mark.parametrize("after", [
    local(2027, 3, 6, 20), local(2027, 3, 6, 23, 59, 59), local(2027, 3, 7, 0),
    local(2027, 3, 7, 12), local(2027, 3, 8, 0), local(2027, 3, 8, 8, 59, 59),
])
def test_saturday_evening_waits_for_monday_morning(after: datetime) -> None:
    slot = DEFAULT.next_slot(after)
    assert slot == local(2027, 3, 8, 9) == utc(2027, 3, 8, 8)
    assert slot.tzinfo is UTC


@pytest.mark.parametrize("after", [
    local(2027, 3, 27, 20), local(2027, 3, 28, 1), local(2027, 3, 28, 10),
    local(2027, 3, 29, 9), local(2027, 3, 29, 21), local(2027, 3, 30, 8, 30),
])
def test_easter_sunday_and_monday_wait_for_tuesday(after: datetime) -> None:
    assert DEFAULT.next_slot(after) == local(2027, 3, 30, 9) == utc(2027, 3, 30, 7)


@pytest.mark.parametrize("after", [
    local(2027, 3, 8, 9), local(2027, 3, 8, 10, 17, 23, 456), local(2027, 3, 8, 19, 59, 59),
    local(2027, 3, 6, 15),
])
def test_an_allowed_instant_is_its_own_slot(after: datetime) -> None:
    slot = DEFAULT.next_slot(after)
    assert slot == after
    assert slot.tzinfo is UTC


@pytest.mark.parametrize(("after", "expected"), [
    (local(2026, 3, 28, 21), utc(2026, 3, 29, 7)),  # 09:00 CEST
    (local(2027, 3, 28, 1, 59), utc(2027, 3, 28, 7)),
    (local(2026, 10, 24, 21), utc(2026, 10, 25, 8)),  # 09:00 CET
    (local(2027, 10, 31, 2, 30, fold=1), utc(2027, 10, 31, 8)),
])
def test_the_morning_after_a_clock_change(after: datetime, expected: datetime) -> None:
    assert NO_REST.next_slot(after) == expected
    assert NO_REST.next_slot(after).astimezone(BRUSSELS).time() == time(9)


@pytest.mark.parametrize("day", SPRING)
@pytest.mark.parametrize(("quiet_text", "offset", "expected"), [
    # 01:30-02:30 ends when the clock jumps from 02:00 to 03:00
    ("01:30-02:30", timedelta(minutes=-31), True),  # 01:29 CET
    ("01:30-02:30", timedelta(minutes=-30), False),  # 01:30 CET
    ("01:30-02:30", timedelta(seconds=-1), False),  # 01:59:59 CET
    ("01:30-02:30", timedelta(0), True),  # 03:00 CEST
    # 02:30-04:00 starts then
    ("02:30-04:00", timedelta(seconds=-1), True),
    ("02:30-04:00", timedelta(0), False),
    ("02:30-04:00", timedelta(minutes=59, seconds=59), False),  # 03:59:59 CEST
    ("02:30-04:00", timedelta(hours=1), True),  # 04:00 CEST
    # a range wholly inside the missing hour never happens
    ("02:10-02:50", timedelta(seconds=-1), True),
    ("02:10-02:50", timedelta(0), True),
])
def test_allowed_on_the_spring_night(day: date, quiet_text: str, offset: timedelta,
                                     expected: bool) -> None:
    assert quiet(quiet_text).allowed(change(day) + offset) is expected


@pytest.mark.parametrize("day", AUTUMN)
@pytest.mark.parametrize(("quiet_text", "offset", "expected"), [
    # 01:30-02:30 holds both times the clock shows 02:00-02:30
    ("01:30-02:30", timedelta(minutes=-91), True),  # 01:29 CEST
    ("01:30-02:30", timedelta(minutes=-90), False),  # 01:30 CEST
    ("01:30-02:30", timedelta(minutes=-31), False),  # 02:29 CEST
    ("01:30-02:30", timedelta(minutes=-30), True),  # 02:30 CEST
    ("01:30-02:30", timedelta(seconds=-1), True),  # 02:59:59 CEST
    ("01:30-02:30", timedelta(0), False),  # 02:00 CET
    ("01:30-02:30", timedelta(minutes=29, seconds=59), False),  # 02:29:59 CET
    ("01:30-02:30", timedelta(minutes=30), True),  # 02:30 CET
    # 02:00-03:00 is two hours of real time that night
    ("02:00-03:00", timedelta(hours=-1, seconds=-1), True),  # 01:59:59 CEST
    ("02:00-03:00", timedelta(hours=-1), False),
    ("02:00-03:00", timedelta(0), False),
    ("02:00-03:00", timedelta(minutes=59, seconds=59), False),
    ("02:00-03:00", timedelta(hours=1), True),  # 03:00 CET
])
def test_allowed_on_the_autumn_night(day: date, quiet_text: str, offset: timedelta,
                                     expected: bool) -> None:
    assert quiet(quiet_text).allowed(change(day) + offset) is expected


@pytest.mark.parametrize("day", SPRING)
@pytest.mark.parametrize(("quiet_text", "offset", "expected"), [
    ("01:30-02:30", timedelta(minutes=-15), timedelta(0)),  # to 03:00 CEST
    ("02:30-04:00", timedelta(0), timedelta(hours=1)),  # to 04:00 CEST
    ("02:30-03:30", timedelta(0), timedelta(minutes=30)),  # to 03:30 CEST
    ("02:30-03:30", timedelta(minutes=-1), timedelta(minutes=-1)),  # 01:59 CET is fine
    ("20:00-02:30", timedelta(hours=-3), timedelta(0)),
])
def test_next_slot_on_the_spring_night(day: date, quiet_text: str, offset: timedelta,
                                       expected: timedelta) -> None:
    assert quiet(quiet_text).next_slot(change(day) + offset) == change(day) + expected


@pytest.mark.parametrize("day", AUTUMN)
@pytest.mark.parametrize(("quiet_text", "offset", "expected"), [
    ("01:30-02:30", timedelta(minutes=-75), timedelta(minutes=-30)),  # to 02:30 CEST
    ("01:30-02:30", timedelta(minutes=-10), timedelta(minutes=-10)),  # 02:50 CEST is fine
    ("01:30-02:30", timedelta(0), timedelta(minutes=30)),  # 02:00 CET: to 02:30 CET
    ("02:00-03:00", timedelta(hours=-1), timedelta(hours=1)),  # to 03:00 CET
    ("00:00-02:15", timedelta(minutes=-90), timedelta(minutes=-45)),  # to 02:15 CEST
    ("00:00-02:15", timedelta(minutes=5), timedelta(minutes=15)),  # to 02:15 CET
])
def test_next_slot_on_the_autumn_night(day: date, quiet_text: str, offset: timedelta,
                                       expected: timedelta) -> None:
    assert quiet(quiet_text).next_slot(change(day) + offset) == change(day) + expected


@pytest.mark.parametrize("hours", [
    NO_REST, quiet("01:30-02:30"), quiet("02:00-03:00"), quiet("02:30-04:00"),
    quiet("00:00-02:15"), quiet("02:59-02:01"),
])
@pytest.mark.parametrize("day", SPRING + AUTUMN)
def test_next_slot_is_the_first_allowed_minute(hours: SendingHours, day: date) -> None:
    """Against a brute-force walk, minute by minute (every boundary is a whole minute)."""
    start = change(day) - timedelta(hours=4)
    for step in range(0, 8 * 60, 7):
        after = start + timedelta(minutes=step)
        walk = after
        while not hours.allowed(walk):
            walk += timedelta(minutes=1)
        assert hours.next_slot(after) == walk, after


@pytest.mark.parametrize(("after", "moment", "expected"), [
    (local(2027, 3, 8, 7), "morning", local(2027, 3, 8, 9)),
    (local(2027, 3, 8, 10, 30), "morning", local(2027, 3, 8, 10, 30)),
    (local(2027, 3, 8, 12), "morning", local(2027, 3, 9, 9)),
    (local(2027, 3, 8, 7), "afternoon", local(2027, 3, 8, 12)),
    (local(2027, 3, 8, 16, 59), "afternoon", local(2027, 3, 8, 16, 59)),
    (local(2027, 3, 8, 17), "afternoon", local(2027, 3, 9, 12)),
    (local(2027, 3, 8, 7), "evening", local(2027, 3, 8, 17)),
    (local(2027, 3, 8, 20, 30), "evening", local(2027, 3, 9, 17)),
    (local(2027, 3, 5, 20, 30), "evening", local(2027, 3, 6, 17)),  # Friday → Saturday
    (local(2027, 3, 6, 20, 30), "evening", local(2027, 3, 8, 17)),  # Saturday → Monday
    (local(2027, 3, 27, 20, 30), "evening", local(2027, 3, 30, 17)),  # over Easter
    (local(2027, 3, 27, 12), None, local(2027, 3, 27, 12)),
])
def test_next_slot_within_a_moment(after: datetime, moment: str | None,
                                   expected: datetime) -> None:
    slot = DEFAULT.next_slot(after, moment)
    assert slot == expected
    if moment is not None:
        start, end = MOMENTS[moment]
        assert start <= slot.astimezone(BRUSSELS).time() < end


def test_a_moment_across_the_spring_change() -> None:
    assert NO_REST.next_slot(local(2027, 3, 27, 21), "morning") == utc(2027, 3, 28, 7)
    assert NO_REST.next_slot(local(2027, 10, 30, 21), "morning") == utc(2027, 10, 31, 8)


@pytest.mark.parametrize(("quiet_text", "after", "moment", "expected"), [
    # quiet until 10:00 makes morning 10:00-12:00
    ("20:00-10:00", local(2027, 3, 8, 7), "morning", local(2027, 3, 8, 10)),
    ("20:00-10:00", local(2027, 3, 8, 9, 30), "morning", local(2027, 3, 8, 10)),
    ("20:00-10:00", local(2027, 3, 8, 11), "morning", local(2027, 3, 8, 11)),
    ("18:00-09:00", local(2027, 3, 8, 18), "evening", local(2027, 3, 9, 17)),
    # a morning wholly in the quiet hours is ignored: any allowed time will do
    ("08:00-13:00", local(2027, 3, 8, 7), "morning", local(2027, 3, 8, 7)),
    ("08:00-13:00", local(2027, 3, 8, 9), "morning", local(2027, 3, 8, 13)),
    ("08:00-13:00", local(2027, 3, 8, 9), "afternoon", local(2027, 3, 8, 13)),
    ("12:00-09:00", local(2027, 3, 8, 13), "evening", local(2027, 3, 9, 9)),
    ("17:00-20:00", local(2027, 3, 8, 18), "evening", local(2027, 3, 8, 20)),
])
def test_a_moment_is_cut_to_the_allowed_hours(quiet_text: str, after: datetime,
                                              moment: str, expected: datetime) -> None:
    assert quiet(quiet_text).next_slot(after, moment) == expected


def test_an_unknown_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="morning, afternoon, evening"):
        DEFAULT.next_slot(local(2027, 3, 8, 9), "night")


@pytest.mark.parametrize("after", [
    local(2027, 3, 7, 3), local(2027, 12, 25, 23, 59), change(SPRING[1]),
    change(AUTUMN[1]) - timedelta(minutes=30), change(AUTUMN[1]) + timedelta(minutes=30),
    utc(2026, 1, 1), datetime(2027, 5, 1, 22, 15, 1, 7, tzinfo=ZoneInfo("Asia/Tokyo")),
])
def test_without_quiet_hours_or_rest_days_anything_goes(after: datetime) -> None:
    slot = OPEN.next_slot(after)
    assert slot == after
    assert slot.tzinfo is UTC
    assert OPEN.next_slot(local(2027, 3, 8, 20, 30), "evening") == local(2027, 3, 9, 17)


@pytest.mark.parametrize("hours", [
    SendingHours(rest_weekdays=frozenset(range(7))),
    SendingHours.parse("", "monday,tuesday,wednesday,thursday,friday,saturday,sunday"),
])
def test_no_allowed_time_at_all_ends_the_search(hours: SendingHours) -> None:
    with pytest.raises(ValueError, match="no allowed time within 400 days"):
        hours.next_slot(local(2027, 3, 8, 9))
    with pytest.raises(ValueError, match="no allowed time within 400 days"):
        hours.due_after(local(2027, 3, 8, 9), timedelta(days=7), "morning")


# --- due_after --------------------------------------------------------------------------

@pytest.mark.parametrize(("start", "expected"), [
    (local(2027, 3, 27, 9), utc(2027, 4, 3, 7)),  # CET → CEST
    (local(2026, 3, 28, 9), utc(2026, 4, 4, 7)),
    (local(2027, 10, 30, 9), utc(2027, 11, 6, 8)),  # CEST → CET
    (local(2026, 10, 24, 9), utc(2026, 10, 31, 8)),
])
@pytest.mark.parametrize("moment", ["morning", None])
def test_a_week_later_is_the_same_local_time(start: datetime, expected: datetime,
                                             moment: str | None) -> None:
    due = DEFAULT.due_after(start, parse_duration("7d"), moment)
    assert due == expected
    assert due.astimezone(BRUSSELS) == start + timedelta(days=7)  # wall-clock arithmetic


@pytest.mark.parametrize(("moment", "expected"), [
    ("morning", local(2027, 4, 3, 9)), (None, local(2027, 4, 3, 9, 30)),
    ("afternoon", local(2027, 4, 3, 12)), ("evening", local(2027, 4, 3, 17)),
])
def test_a_week_later_starts_the_moment_window(moment: str | None, expected: datetime) -> None:
    assert DEFAULT.due_after(local(2027, 3, 27, 9, 30), timedelta(weeks=1), moment) == expected


@pytest.mark.parametrize(("start", "interval", "moment", "expected"), [
    # Easter Monday 2027: on to the first allowed time, Tuesday 09:00 (not 10:00)
    (local(2027, 3, 22, 10), "7d", None, utc(2027, 3, 30, 7)),
    (local(2027, 3, 22, 10), "7d", "morning", utc(2027, 3, 30, 7)),
    (local(2027, 3, 27, 17), "1d", "evening", utc(2027, 3, 30, 15)),
    # All Saints 2027, a Monday, the day after the autumn change
    (local(2027, 10, 25, 10), "1w", None, utc(2027, 11, 2, 8)),
    (local(2027, 10, 25, 10), "1w", "afternoon", utc(2027, 11, 2, 11)),
    # Christmas 2027 on a Saturday, then Sunday
    (local(2027, 12, 18, 9), "7d", "morning", utc(2027, 12, 27, 8)),
])
def test_due_after_a_holiday_waits(start: datetime, interval: str, moment: str | None,
                                   expected: datetime) -> None:
    assert DEFAULT.due_after(start, parse_duration(interval), moment) == expected


@pytest.mark.parametrize(("start", "interval", "expected"), [
    # calendar days, then the rest on the wall clock: 35 hours of real time here
    (local(2027, 3, 27, 12), "1d12h", local(2027, 3, 29, 0)),
    # 02:30 does not exist on 28 March: read with the offset before the change (03:30 CEST)
    (local(2027, 3, 27, 2, 30), "1d", utc(2027, 3, 28, 1, 30)),
    # 02:30 exists twice on 31 October: the first one
    (local(2027, 10, 30, 2, 30), "1d", utc(2027, 10, 31, 0, 30)),
    (local(2027, 10, 31, 2, 30, fold=1), "1d", local(2027, 11, 1, 2, 30)),
])
def test_due_after_days_on_the_wall_clock(start: datetime, interval: str,
                                          expected: datetime) -> None:
    assert OPEN.due_after(start, parse_duration(interval)) == expected


@pytest.mark.parametrize(("hours", "start", "interval", "moment", "expected"), [
    (DEFAULT, local(2027, 3, 8, 10), "30m", None, local(2027, 3, 8, 10, 30)),
    (DEFAULT, local(2027, 3, 8, 19, 50), "5m", None, local(2027, 3, 8, 19, 55)),
    (DEFAULT, local(2027, 3, 8, 19, 50), "30m", None, local(2027, 3, 9, 9)),
    (DEFAULT, local(2027, 3, 6, 19, 30), "1h", None, local(2027, 3, 8, 9)),
    (DEFAULT, local(2027, 3, 8, 10), "30m", "evening", local(2027, 3, 8, 17)),
    (DEFAULT, local(2027, 3, 8, 10), "30s", None, local(2027, 3, 8, 10, 0, 30)),
    # real time across the changes, not the wall clock
    (OPEN, local(2027, 3, 28, 1, 30), "1h", None, utc(2027, 3, 28, 1, 30)),  # 03:30 CEST
    (OPEN, local(2027, 10, 31, 2, 30), "1h", None, utc(2027, 10, 31, 1, 30)),  # 02:30 CET
    (OPEN, local(2026, 3, 28, 12), "23h59m", None, utc(2026, 3, 29, 10, 59)),
])
def test_short_intervals_are_real_time(hours: SendingHours, start: datetime, interval: str,
                                       moment: str | None, expected: datetime) -> None:
    due = hours.due_after(start, parse_duration(interval), moment)
    assert due == expected
    assert due.tzinfo is UTC


def test_a_weekly_cycle_does_not_drift_over_two_years() -> None:
    planned = local(2026, 1, 3, 9)  # a Saturday
    for _ in range(104):
        due = DEFAULT.due_after(planned, timedelta(weeks=1), "morning")
        assert due.astimezone(BRUSSELS).time() == time(9), due
        assert timedelta(days=7) - timedelta(hours=1) <= due - planned <= timedelta(days=9)
        planned = planned + timedelta(weeks=1)  # the plan, not the holiday-moved send


@pytest.mark.parametrize("interval", [timedelta(0), timedelta(seconds=-1)])
def test_due_after_needs_a_positive_interval(interval: timedelta) -> None:
    with pytest.raises(ValueError, match="positive"):
        DEFAULT.due_after(local(2027, 3, 8, 9), interval)
