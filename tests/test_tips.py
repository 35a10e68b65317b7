"""The tip library: what ships is valid and large enough, broken files are refused with the
file, line and reason, and :func:`choose` picks what fits the person."""

from __future__ import annotations

import shutil
import tomllib
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest

from flows.definition import LANGUAGES, Flow
from flows.loader import FlowError
from flows.tips import (
    CALENDAR,
    LEVELS,
    SHOP_TYPES,
    THEMES,
    TIPS_DIR,
    Person,
    Season,
    Tip,
    TipLibrary,
    choose,
    level_of,
    load_tips,
)

LIBRARY = load_tips()


def test_the_library_has_at_least_ten_tips_per_theme_in_every_language() -> None:
    per_theme = Counter(tip.theme for tip in LIBRARY.tips)
    assert set(per_theme) == set(THEMES)
    assert min(per_theme.values()) >= 10 and len(LIBRARY.tips) >= 60
    for tip in LIBRARY.tips:
        assert set(tip.action) == set(LANGUAGES) == set(tip.why), tip.id


def test_the_library_serves_every_level_and_has_seasonal_tips() -> None:
    for theme in THEMES:
        mine = [t for t in LIBRARY.tips if t.theme == theme]
        for level in LEVELS:
            assert sum(1 for t in mine if not t.levels or level in t.levels) >= 3, (theme, level)
    assert len({t.season for t in LIBRARY.tips if t.season}) >= 6


def test_shop_types_are_the_onboarding_flows_choices(library: dict[str, Flow]) -> None:
    node = library["onboarding"].node("shop_type")
    assert {choice.id for choice in node.choices} == SHOP_TYPES


def test_tip_themes_are_the_assessments_themes(library: dict[str, Flow]) -> None:
    assert tuple(t.id for t in library["assessment"].themes) == THEMES


def test_a_tip_with_a_figure_or_a_law_names_its_source() -> None:
    """A tip that quotes a percentage, a euro amount or a legal date must say where from."""
    for tip in LIBRARY.tips:
        text = tip.action["nl"] + " " + tip.why["nl"]
        quotes_a_fact = "%" in text or "€" in text or any(
            year in text for year in ("2020", "2021", "2022", "2023", "2024", "2025", "2026"))
        if quotes_a_fact:
            assert tip.source, tip.id


@pytest.mark.parametrize(("score", "level"), [(0, "start"), (25, "start"), (26, "on_way"),
                                              (50, "on_way"), (51, "doing_well"),
                                              (75, "doing_well"), (76, "front_runner"),
                                              (100, "front_runner")])
def test_a_score_falls_in_the_assessments_level_bands(score: int, level: str) -> None:
    assert level_of(score) == level


# -- broken files are refused -------------------------------------------------------------


def _broken(tmp_path: Path, theme: str, old: str, new: str) -> str:
    folder = tmp_path / f"tips{len(list(tmp_path.iterdir()))}"
    shutil.copytree(TIPS_DIR, folder)
    path = folder / f"{theme}.toml"
    source = path.read_text(encoding="utf-8")
    assert old in source
    path.write_text(source.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(FlowError) as caught:
        load_tips(folder, CALENDAR)
    return str(caught.value)


def _first_tip(theme: str) -> dict[str, object]:
    data = tomllib.loads((TIPS_DIR / f"{theme}.toml").read_text(encoding="utf-8"))
    first: dict[str, object] = data["tips"][0]
    return first


def test_a_tip_without_french_is_refused_with_its_line(tmp_path: Path) -> None:
    tip = _first_tip("beleving")
    action = tip["action"]
    assert isinstance(action, dict)
    error = _broken(tmp_path, "beleving", f'fr = {_toml(action["fr"])}', "xx = 'x'")
    assert "beleving.toml:" in error and f"[node {tip['id']}]" in error
    assert "no 'fr' text" in error


EXTRA = """
[[tips]]
id = "extra_tip"
kind = "etalage"
effort = "quick"
{more}
action = {{ nl = "Doe dit.", en = "Do this.", fr = "Faites ceci." }}
why = {{ nl = "Daarom.", en = "Because.", fr = "Parce que." }}
"""


def _appended(tmp_path: Path, theme: str, more: str) -> str:
    source = (TIPS_DIR / f"{theme}.toml").read_text(encoding="utf-8")
    last = source.rstrip()
    return _broken(tmp_path, theme, last, last + "\n" + EXTRA.format(more=more))


def test_an_unknown_season_shop_type_and_level_are_refused(tmp_path: Path) -> None:
    error = _appended(tmp_path, "vakkennis",
                      'season = "kermis"\nshop_types = ["bakery"]\nlevels = ["expert"]')
    assert "[node extra_tip]" in error
    assert "season 'kermis' is not in the calendar" in error
    assert "shop_types: 'bakery' is not known" in error
    assert "levels: 'expert' is not known" in error


def test_a_link_that_is_not_https_is_refused(tmp_path: Path) -> None:
    error = _appended(tmp_path, "innovatie", 'link = "http://example.com/x"')
    assert "link must be an https:// address" in error


def test_a_too_long_action_and_a_duplicate_id_are_refused(tmp_path: Path) -> None:
    first = _first_tip("toekomst")
    other = _first_tip("digitalisering")
    action = first["action"]
    assert isinstance(action, dict)
    error = _broken(tmp_path, "toekomst", f'nl = {_toml(action["nl"])}',
                    f'nl = "{"x" * 400}"')
    assert "action 'nl' is 400 characters, the limit is 300" in error
    error = _broken(tmp_path, "toekomst", f'id = "{first["id"]}"', f'id = "{other["id"]}"')
    assert f"tip id '{other['id']}' is also used" in error


def test_broken_toml_names_its_line(tmp_path: Path) -> None:
    error = _broken(tmp_path, "anders_denken", "[[tips]]", "[[tips]\n")
    assert "anders_denken.toml:" in error and "not valid TOML" in error


def _toml(text: object) -> str:
    """How the shipped files write a string (basic, with escapes)."""
    assert isinstance(text, str)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- the calendar -------------------------------------------------------------------------


def test_seasons_fall_on_their_days() -> None:
    seasons = LIBRARY.seasons
    assert seasons["moederdag"].day_in(2027) == date(2027, 5, 9)  # second Sunday of May
    assert seasons["solden_winter"].day_in(2027) == date(2027, 1, 3)
    assert seasons["weekend_van_de_klant"].day_in(2027).weekday() == 5


def test_a_seasonal_tip_comes_before_its_day_never_after() -> None:
    season = Season("moederdag", {"nl": "Moederdag"}, timedelta(weeks=4),
                    weekday_rule=(5, 6, 2))
    assert not season.ahead(date(2027, 4, 10))  # more than 4 weeks before 9 May
    assert season.ahead(date(2027, 4, 11))
    assert season.ahead(date(2027, 5, 1))
    assert not season.ahead(date(2027, 5, 2))  # a week before: too late to prepare
    assert not season.ahead(date(2027, 5, 9))
    assert not season.ahead(date(2027, 5, 20))


# -- choosing -----------------------------------------------------------------------------


def _tip(tip_id: str, theme: str, **extra: object) -> Tip:
    return Tip(tip_id, theme, str(extra.pop("kind", tip_id)), str(extra.pop("effort", "quick")),
               {"nl": tip_id}, {"nl": "why"}, **extra)  # type: ignore[arg-type]


SMALL = TipLibrary((
    _tip("b1", "beleving"), _tip("b2", "beleving", kind="etalage"),
    _tip("v1", "vakkennis"), _tip("v2", "vakkennis"),
    _tip("d1", "digitalisering"), _tip("d2", "digitalisering", kind="etalage"),
    _tip("food", "innovatie", shop_types=frozenset({"food"})),
    _tip("pro", "innovatie", levels=frozenset({"front_runner"})),
    _tip("mom", "toekomst", season="moederdag"),
), {"moederdag": Season("moederdag", {"nl": "Moederdag"}, timedelta(weeks=4),
                        weekday_rule=(5, 6, 2))})
SCORES = {"beleving": 20, "vakkennis": 40, "innovatie": 30, "toekomst": 60,
          "digitalisering": 10, "anders_denken": 80}
WINTER = date(2027, 2, 1)


def test_the_focus_themes_come_first_taking_turns() -> None:
    person = Person("fashion", SCORES, ("digitalisering", "beleving"))
    picked = [t.id for t in choose(SMALL, person, WINTER, count=4)]
    assert picked == ["d1", "b1", "d2", "b2"]


def test_never_the_same_tip_twice_nor_one_for_another_shop_or_level() -> None:
    person = Person("fashion", SCORES, ("digitalisering", "beleving"),
                    had={"d1", "b1", "d2", "b2", "v1", "v2"})
    picked = [t.id for t in choose(SMALL, person, WINTER, count=10)]
    assert picked == []  # food is for food shops, pro for front-runners, mom in May
    bakery = Person("food", {**SCORES, "innovatie": 90}, ("digitalisering",),
                    had={"d1", "d2"})
    assert {"food", "pro"} <= {t.id for t in choose(SMALL, bakery, WINTER, count=10)}


def test_a_timely_seasonal_tip_goes_first_and_only_before_its_day() -> None:
    person = Person("fashion", SCORES, ("digitalisering", "beleving"))
    assert choose(SMALL, person, date(2027, 4, 20))[0].id == "mom"
    assert "mom" not in {t.id for t in choose(SMALL, person, date(2027, 5, 10), count=20)}


def test_not_for_me_pushes_that_kind_back() -> None:
    person = Person("fashion", SCORES, ("digitalisering", "beleving"), had={"d1", "b1"},
                    per_theme={"digitalisering": 1, "beleving": 1},
                    unwanted={"etalage": 1})
    picked = [t.id for t in choose(SMALL, person, WINTER, count=6)]
    assert picked.index("v1") < picked.index("d2") and picked.index("v1") < picked.index("b2")


def test_without_focus_the_lowest_theme_comes_first() -> None:
    person = Person(None, SCORES, ())
    assert choose(SMALL, person, WINTER)[0].theme == "digitalisering"


def test_seasonal_tips_never_come_twice_in_a_row() -> None:
    library = TipLibrary((*SMALL.tips, _tip("mom2", "anders_denken", season="moederdag")),
                         SMALL.seasons)
    person = Person("fashion", SCORES, ("digitalisering", "beleving"))
    picked = [t.id for t in choose(library, person, date(2027, 4, 20), count=4)]
    assert picked[0] in {"mom", "mom2"} and picked[1] not in {"mom", "mom2"}
    assert picked[2] in {"mom", "mom2"}
    after_one = Person("fashion", SCORES, ("digitalisering", "beleving"), had={"mom"},
                       last="mom")
    assert choose(library, after_one, date(2027, 4, 20))[0].id == "d1"
