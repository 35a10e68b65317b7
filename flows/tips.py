"""The tip library: concrete actions per theme, as data, and which one a person gets next.

Tips live in ``flows/tips/<theme>.toml`` and the retail calendar in
``flows/data/calendar.toml``; both are validated at load like the flows (file, line,
reason), so a broken tip never reaches a shopkeeper. :func:`choose` is pure: the host gives
it what it knows of the person (shop type, scores, focus themes, tips already had, kinds
they did not want) and the date, and gets the tips in the order they should go out.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from flows.definition import LANGUAGES, Localized
from flows.loader import FlowError, FlowProblem
from flows.timing import nth_weekday, parse_duration

TIPS_DIR = Path(__file__).resolve().parent / "tips"
CALENDAR = Path(__file__).resolve().parent / "data" / "calendar.toml"

THEMES = ("beleving", "vakkennis", "innovatie", "toekomst", "digitalisering", "anders_denken")
#: A theme's level by score, as the assessment's four bands (0-25, 26-50, 51-75, 76-100).
LEVELS = ("start", "on_way", "doing_well", "front_runner")
EFFORTS = ("quick", "halfday", "project")
#: Shop types of the onboarding flow's ``shop_type`` question.
SHOP_TYPES = frozenset({"food", "fashion", "health", "garden", "home", "diy_electro",
                        "leisure", "second_hand", "horeca_services", "other"})
TIP_ID = re.compile(r"^[a-z0-9_]{1,24}$")
KIND = re.compile(r"^[a-z_]{1,20}$")
#: Tip texts stay short: a tip is read on a phone, with its buttons under it, and must fit
#: a WhatsApp interactive body (1,024) with room to spare.
MAX_ACTION = 300
MAX_WHY = 180
#: Keywords: the words shopkeepers use for what a tip is about ("insta", "kassa",
#: "etalage"), comma-separated per language; only the tip search reads them.
MAX_KEYWORDS = 240
KEYWORD = re.compile(r"^[^\W_][\w' .&-]{0,39}$")
#: A tip is an action for the coming week: a seasonal one needs that week before its day.
ACT_WITHIN = timedelta(days=7)
#: Links must be plain https URLs (shown as text, so no markup to break).
LINK = re.compile(r"^https://[a-z0-9.-]+\.[a-z]{2,}(/[^\s<>\"]*)?$")

_TIP_KEYS = frozenset({"id", "kind", "levels", "shop_types", "effort", "season", "source",
                       "link", "action", "why", "keywords"})
_EVENT_KEYS = frozenset({"id", "name", "date", "month", "weekday", "nth", "lead"})


def level_of(score: int) -> str:
    """The level id of a theme score (0-100)."""
    return LEVELS[min(max(score - 1, 0) // 25, 3)]


@dataclass(frozen=True, slots=True)
class Season:
    """A day in the retail calendar that tips prepare for, ``lead`` ahead of it."""

    id: str
    name: Localized
    lead: timedelta
    fixed: tuple[int, int] | None = None  # (month, day)
    weekday_rule: tuple[int, int, int] | None = None  # (month, weekday, nth)

    def day_in(self, year: int) -> date:
        if self.fixed is not None:
            return date(year, *self.fixed)
        assert self.weekday_rule is not None
        month, weekday, nth = self.weekday_rule
        return nth_weekday(year, month, weekday, nth)

    def upcoming(self, today: date) -> date:
        """The next time this day comes (today counts)."""
        this_year = self.day_in(today.year)
        return this_year if this_year >= today else self.day_in(today.year + 1)

    def ahead(self, today: date) -> bool:
        """Is ``today`` in the lead-up: after the lead starts, and still a week before the
        day (a tip is an action for the week; the day itself is too late)?"""
        day = self.upcoming(today)
        return day - self.lead <= today < day - ACT_WITHIN


@dataclass(frozen=True, slots=True)
class Tip:
    """One concrete action for one theme, and for whom it fits."""

    id: str
    theme: str
    kind: str
    effort: str
    action: Localized
    why: Localized
    levels: frozenset[str] = frozenset()  # empty: every level
    shop_types: frozenset[str] = frozenset()  # empty: every shop
    season: str | None = None
    source: str | None = None
    link: str | None = None
    keywords: Localized = field(default_factory=dict)  # comma-separated, for the search
    line: int = 0

    def fits(self, shop_type: str | None, level: str | None) -> bool:
        return ((not self.shop_types or shop_type in self.shop_types)
                and (not self.levels or level is None or level in self.levels))


@dataclass(frozen=True, slots=True)
class TipLibrary:
    """Every tip (in file order, themes in :data:`THEMES` order) and the calendar."""

    tips: tuple[Tip, ...]
    seasons: Mapping[str, Season]
    by_id: Mapping[str, Tip] = field(default_factory=dict)
    ahead_on: dict[date, frozenset[str]] = field(default_factory=dict, compare=False,
                                                 repr=False)
    fitting_on: dict[tuple[str | None, date], tuple[Tip, ...]] = field(
        default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {tip.id: tip for tip in self.tips})

    def get(self, tip_id: str) -> Tip | None:
        return self.by_id.get(tip_id)

    def timely(self, tip: Tip, today: date) -> bool:
        """A tip without a season is always timely; a seasonal one only in its lead-up."""
        return tip.season is None or tip.season in self.seasons_ahead(today)

    def fitting(self, shop_type: str | None, today: date) -> tuple[Tip, ...]:
        """The timely tips for a shop type, whatever the level. A tick asks for thousands
        of people and there are few shop types: the answer is kept for the day."""
        if self.fitting_on and next(iter(self.fitting_on))[1] != today:
            self.fitting_on.clear()  # ticks move forward: one day is enough to keep
        found = self.fitting_on.get((shop_type, today))
        if found is None:
            timely = self.seasons_ahead(today)
            found = self.fitting_on[(shop_type, today)] = tuple(
                tip for tip in self.tips if (tip.season is None or tip.season in timely)
                and (not tip.shop_types or shop_type in tip.shop_types))
        return found

    def seasons_ahead(self, today: date) -> frozenset[str]:
        """The seasons in their lead-up on ``today`` (computed once per day: a tick asks
        for every person)."""
        found = self.ahead_on.get(today)
        if found is None:
            found = frozenset(s.id for s in self.seasons.values() if s.ahead(today))
            self.ahead_on.clear()  # ticks move forward: one day is enough to keep
            self.ahead_on[today] = found
        return found


@dataclass(frozen=True, slots=True)
class Person:
    """What :func:`choose` needs to know of someone."""

    shop_type: str | None
    scores: Mapping[str, int]  # theme → latest score; empty before any result
    focus: tuple[str, ...]  # the focus themes of the latest result, first first
    had: Collection[str] = ()  # tip ids already sent
    per_theme: Mapping[str, int] = field(default_factory=dict)  # tips sent per theme
    unwanted: Mapping[str, int] = field(default_factory=dict)  # kind → "not for me" count
    last: str | None = None  # the tip sent most recently


def choose(library: TipLibrary, person: Person, today: date, count: int = 1) -> list[Tip]:
    """The next ``count`` tips for ``person`` on ``today``, best first.

    Never a tip already had, nor one for another shop type or level, nor a seasonal tip
    outside its lead-up. Then: a timely seasonal tip first (its moment passes), but never
    two in a row (December would otherwise be nothing but end-of-year tips); kinds the
    person called "not for me" last; the focus themes before the others (taking turns, so
    both get tips); then the lowest-scoring theme; quick actions before projects.
    """
    focus = list(person.focus)
    others = sorted((t for t in THEMES if t not in focus),
                    key=lambda t: (person.scores.get(t, 0), THEMES.index(t)))
    order = {theme: i for i, theme in enumerate([*focus, *others])}
    per_theme = dict(person.per_theme)
    chosen: list[Tip] = []
    had = set(person.had)
    last = library.get(person.last) if person.last else None
    levels = {theme: _level(person.scores, theme) for theme in THEMES}
    fitting = [tip for tip in library.fitting(person.shop_type, today)
               if not tip.levels or levels[tip.theme] is None or levels[tip.theme] in tip.levels]
    for _ in range(count):
        season_first = last is None or last.season is None
        best = min(
            (tip for tip in fitting if tip.id not in had),
            key=lambda tip: (
                season_first and tip.season is None,
                person.unwanted.get(tip.kind, 0),
                tip.theme not in focus,
                per_theme.get(tip.theme, 0) if tip.theme in focus else 0,
                order[tip.theme],
                EFFORTS.index(tip.effort),
            ),
            default=None)
        if best is None:
            break
        chosen.append(best)
        last = best
        had.add(best.id)
        per_theme[best.theme] = per_theme.get(best.theme, 0) + 1
    return chosen


def _level(scores: Mapping[str, int], theme: str) -> str | None:
    return level_of(scores[theme]) if theme in scores else None


# -- loading ------------------------------------------------------------------------------


def load_tips(directory: Path = TIPS_DIR, calendar: Path = CALENDAR) -> TipLibrary:
    """Load and validate the calendar and every ``<theme>.toml``; raise
    :class:`~flows.loader.FlowError` listing every problem (file, line, tip, reason)."""
    problems: list[FlowProblem] = []
    seasons = _load_calendar(calendar, problems)
    tips: list[Tip] = []
    for theme in THEMES:
        path = directory / f"{theme}.toml"
        if not path.exists():
            problems.append(FlowProblem(str(path), 0, None, f"no tips for theme '{theme}'"))
            continue
        tips.extend(_load_file(path, theme, seasons, problems))
    for path in sorted(directory.glob("*.toml")):
        if path.stem not in THEMES:
            problems.append(FlowProblem(str(path), 0, None,
                                        f"'{path.stem}' is not a theme ({', '.join(THEMES)})"))
    seen: dict[str, Tip] = {}
    for tip in tips:
        if tip.id in seen:
            problems.append(FlowProblem(f"{TIPS_DIR.name}/{tip.theme}.toml", tip.line, tip.id,
                                        f"tip id '{tip.id}' is also used in "
                                        f"{seen[tip.id].theme}.toml"))
        seen[tip.id] = tip
    if problems:
        raise FlowError(problems)
    return TipLibrary(tuple(tips), seasons)


def _read(path: Path, problems: list[FlowProblem]) -> tuple[dict[str, Any], list[str]] | None:
    try:
        source = path.read_text(encoding="utf-8")
        return tomllib.loads(source), source.splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(FlowProblem(str(path), 0, None, f"cannot read: {exc}"))
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        problems.append(FlowProblem(str(path), int(match.group(1)) if match else 0, None,
                                    f"not valid TOML: {exc}"))
    return None


def _headers(lines: list[str], header: str) -> list[int]:
    """Line number of each ``[[header]]`` (tomllib keeps no positions)."""
    return [i for i, line in enumerate(lines, start=1) if line.strip() == f"[[{header}]]"]


def _load_calendar(path: Path, problems: list[FlowProblem]) -> dict[str, Season]:
    read = _read(path, problems)
    if read is None:
        return {}
    data, lines = read
    events = data.get("events")
    if data.get("spec_version") != 1 or not isinstance(events, list):
        problems.append(FlowProblem(str(path), 0, None,
                                    "needs spec_version = 1 and a list of [[events]]"))
        return {}
    seasons: dict[str, Season] = {}
    for item, line in zip(events, _headers(lines, "events") + [0] * len(events), strict=False):
        def fail(reason: str, event: str | None = None, line: int = line) -> None:
            problems.append(FlowProblem(str(path), line, event, reason))

        if not isinstance(item, dict):
            fail("an event must be a table")
            continue
        event_id = item.get("id")
        if not isinstance(event_id, str) or not TIP_ID.match(event_id):
            fail("id must be lower-case letters, digits or '_'")
            continue
        for key in sorted(set(item) - _EVENT_KEYS):
            fail(f"unknown key '{key}'", event_id)
        name = _localized(item.get("name"), "name", 60,
                          lambda reason, event=event_id: fail(reason, event))
        try:
            lead = parse_duration(str(item.get("lead", "")))
        except ValueError as exc:
            fail(f"lead: {exc}", event_id)
            continue
        if lead <= ACT_WITHIN + timedelta(days=6):
            fail("lead must be at least two weeks: tips stop a week before the day", event_id)
            continue
        try:
            if "date" in item:
                month, day = (int(part) for part in str(item["date"]).split("-"))
                date(2024, month, day)  # a leap year: 02-29 would pass, and is refused below
                if (month, day) == (2, 29):
                    raise ValueError("29 February is not there every year")
                season = Season(event_id, name, lead, fixed=(month, day))
            else:
                rule = (int(item["month"]), int(item["weekday"]), int(item["nth"]))
                nth_weekday(2026, *rule)
                season = Season(event_id, name, lead, weekday_rule=rule)
        except (KeyError, ValueError, TypeError) as exc:
            fail(f"needs date = \"MM-DD\" or month, weekday (0-6) and nth: {exc}", event_id)
            continue
        if event_id in seasons:
            fail(f"event id '{event_id}' is used twice", event_id)
        seasons[event_id] = season
    return seasons


def _load_file(path: Path, theme: str, seasons: Mapping[str, Season],
               problems: list[FlowProblem]) -> list[Tip]:
    read = _read(path, problems)
    if read is None:
        return []
    data, lines = read
    for key in sorted(set(data) - {"spec_version", "theme", "tips"}):
        problems.append(FlowProblem(str(path), 0, None, f"unknown key '{key}'"))
    if data.get("spec_version") != 1:
        problems.append(FlowProblem(str(path), 0, None, "spec_version must be 1"))
    if data.get("theme") != theme:
        problems.append(FlowProblem(str(path), 0, None,
                                    f"theme must be '{theme}', as the file name says"))
    raw = data.get("tips")
    if not isinstance(raw, list) or not raw:
        problems.append(FlowProblem(str(path), 0, None, "needs a list of [[tips]]"))
        return []
    lines_of = _headers(lines, "tips") + [0] * len(raw)
    tips = []
    for item, line in zip(raw, lines_of, strict=False):
        tip = _tip(item, theme, str(path), line, seasons, problems)
        if tip is not None:
            tips.append(tip)
    return tips


def _tip(item: Any, theme: str, path: str, line: int, seasons: Mapping[str, Season],
         problems: list[FlowProblem]) -> Tip | None:
    before = len(problems)
    tip_id = item.get("id") if isinstance(item, dict) else None

    def fail(reason: str) -> None:
        problems.append(FlowProblem(path, line, tip_id if isinstance(tip_id, str) else None,
                                    reason))

    if not isinstance(item, dict):
        fail("a tip must be a table")
        return None
    if not isinstance(tip_id, str) or not TIP_ID.match(tip_id):
        fail("id must be 1-24 lower-case letters, digits or '_'")
    for key in sorted(set(item) - _TIP_KEYS):
        fail(f"unknown key '{key}'")
    kind = item.get("kind")
    if not isinstance(kind, str) or not KIND.match(kind):
        fail("kind must be 1-20 lower-case letters or '_'")
    effort = item.get("effort")
    if effort not in EFFORTS:
        fail(f"effort must be one of {', '.join(EFFORTS)}")
    levels = _tags(item.get("levels", []), LEVELS, "levels", fail)
    shop_types = _tags(item.get("shop_types", []), SHOP_TYPES, "shop_types", fail)
    season = item.get("season")
    if season is not None and season not in seasons:
        fail(f"season '{season}' is not in the calendar ({', '.join(sorted(seasons))})")
    for key in ("source", "link"):
        value = item.get(key)
        if value is not None and (not isinstance(value, str) or not LINK.match(value)):
            fail(f"{key} must be an https:// address")
    action = _localized(item.get("action"), "action", MAX_ACTION, fail)
    why = _localized(item.get("why"), "why", MAX_WHY, fail)
    keywords = _keywords(item.get("keywords"), fail)
    if len(problems) > before:
        return None
    return Tip(str(tip_id), theme, str(kind), str(effort), action, why, levels, shop_types,
               season, item.get("source"), item.get("link"), keywords, line)


def _keywords(raw: Any, fail: Any) -> Localized:
    """Optional; when there, every language has a list of short words or phrases."""
    if raw is None:
        return {}
    keywords = _localized(raw, "keywords", MAX_KEYWORDS, fail)
    for lang, text in keywords.items():
        words = [word.strip() for word in text.split(",")]
        for word in words:
            if not KEYWORD.match(word):
                fail(f"keywords '{lang}': '{word}' is not a word or short phrase "
                     "(a letter or digit first, at most 40 characters, separated by commas)")
        if len(set(words)) < len(words):
            fail(f"keywords '{lang}' names a word twice")
    return keywords


def _tags(raw: Any, known: Iterable[str], what: str, fail: Any) -> frozenset[str]:
    allowed = set(known)
    if not isinstance(raw, list) or not all(isinstance(tag, str) for tag in raw):
        fail(f"{what} must be a list of names")
        return frozenset()
    for tag in raw:
        if tag not in allowed:
            fail(f"{what}: '{tag}' is not known ({', '.join(sorted(allowed))})")
    return frozenset(raw)


def _localized(raw: Any, what: str, limit: int, fail: Any) -> Localized:
    if not isinstance(raw, Mapping):
        fail(f"{what} must be a table of texts per language")
        return {}
    text: Localized = {}
    for lang in LANGUAGES:
        item = raw.get(lang)
        if not isinstance(item, str) or not item.strip():
            fail(f"{what} has no '{lang}' text")
        elif len(item) > limit:
            fail(f"{what} '{lang}' is {len(item)} characters, the limit is {limit}")
        else:
            text[lang] = item.strip()
    for lang in sorted(set(raw) - set(LANGUAGES)):
        fail(f"{what}: '{lang}' is not a language of this bot")
    return text
