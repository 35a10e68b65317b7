"""The coaching plan's clock: how long after what each nudge comes, within sending hours.

Every duration is a setting (``[schedule]`` in ``config.toml``, overridden by the
environment), so an operator can run the whole cycle in minutes; the sending hours keep
everything non-urgent out of the night, Sundays and public holidays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flows.timing import SendingHours
from storage.tables import Cadence


@dataclass(frozen=True, slots=True)
class Schedule:
    """When nudges go out.

    Args:
        tick: How often the app looks for due work.
        first_tip_after: From the result to the first tip.
        tip_every: Between tips on the weekly plan (twice a week: half of it).
        reassess_after: From a result to the invitation to do the check again.
        later_after: A tip put off with "later" comes back after this.
        check_in_after: From choosing this week's action to asking how it went.
        reminders: After how long without an answer someone who left the check halfway
            is reminded (one reminder per entry, counted from their last answer).
        hours: When non-urgent messages may go out.
    """

    tick: timedelta = timedelta(seconds=30)
    first_tip_after: timedelta = timedelta(days=2)
    tip_every: timedelta = timedelta(days=7)
    reassess_after: timedelta = timedelta(weeks=12)
    later_after: timedelta = timedelta(days=2)
    check_in_after: timedelta = timedelta(days=4)
    reminders: tuple[timedelta, ...] = (timedelta(days=2), timedelta(days=7))
    hours: SendingHours = field(default_factory=SendingHours)

    def first_tip(self, now: datetime, moment: str | None) -> datetime:
        return self.hours.due_after(now, self.first_tip_after, moment)

    def next_tip(self, now: datetime, cadence: str, moment: str | None, sent: int) -> datetime:
        """After the ``sent``-th tip: weekly, or twice a week (for a 7-day week: 3 days,
        then 4, so the two tips keep their weekdays)."""
        interval = self.tip_every
        if cadence == Cadence.TWICE:
            whole_days = interval.total_seconds() % 86400 == 0 and interval.days >= 2
            if whole_days:
                half = interval.days // 2
                interval = timedelta(days=half if sent % 2 else interval.days - half)
            else:
                interval = interval / 2
        return self.hours.due_after(now, interval, moment)

    def later(self, now: datetime, moment: str | None) -> datetime:
        return self.hours.due_after(now, self.later_after, moment)

    def check_in(self, now: datetime, moment: str | None) -> datetime:
        return self.hours.due_after(now, self.check_in_after, moment)

    def reassess(self, result_at: datetime, moment: str | None) -> datetime:
        return self.hours.due_after(result_at, self.reassess_after, moment)

    def reminder(self, last_answer: datetime, number: int) -> datetime | None:
        """When reminder ``number`` (0-based) is due, or None when there is none left."""
        if number >= len(self.reminders):
            return None
        return self.hours.due_after(last_answer, self.reminders[number])
