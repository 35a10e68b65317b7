"""Scores, strengths, focus themes, actions and level texts: the words never contradict the
numbers. The pattern table runs every case in nl, en and fr through the rendered report."""

from __future__ import annotations

import pytest

from flows import report
from flows.definition import Flow
from flows.scoring import FLAT_SPREAD, STARTING_MAX, score
from flows.texts import Texts

THEMES = ("beleving", "vakkennis", "innovatie", "toekomst", "digitalisering", "anders_denken")
TEAM = {"team_size": "2_4", "shop_type": "food"}


def answers_scoring(flow: Flow, value: float, **per_theme: float) -> dict[str, str]:
    """Answer every question with the scored choice nearest ``value`` (or per theme)."""
    answers: dict[str, str] = {}
    for node in flow.questions():
        wanted = per_theme.get(node.theme or "", value)
        options = [c for c in node.choices if c.score is not None]
        answers[node.id] = min(options, key=lambda c: abs((c.score or 0) - wanted)).id
    return answers


# name: (default answer score, per-theme scores, expected strongest, focus, flat, starting)
PATTERNS: dict[str, tuple[float, dict[str, float], tuple[str, ...], tuple[str, ...], bool,
                          bool]] = {
    "all lowest": (0.0, {}, (), (), True, True),
    "all highest": (1.0, {}, (), (), True, False),
    "flat in the middle": (0.5, {}, (), (), True, False),
    # five themes tie at 0: the two with the most to gain (priority) are the focus
    "one strong theme": (0.0, {"innovatie": 1.0}, ("innovatie",),
                         ("digitalisering", "beleving"), False, False),
    # toekomst at 25 (one question of four at full marks), the rest at 0
    "low but uneven": (0.0, {}, (), ("digitalisering", "beleving"), False, True),
    "two at zero among strong": (1.0, {"digitalisering": 0.0, "beleving": 0.0},
                                 ("anders_denken", "toekomst", "innovatie", "vakkennis"),
                                 ("digitalisering", "beleving"), False, False),
}


@pytest.mark.parametrize("lang", ["nl", "en", "fr"])
@pytest.mark.parametrize("name", list(PATTERNS))
def test_answer_patterns(library: dict[str, Flow], texts: Texts, name: str, lang: str) -> None:
    flow = library["assessment"]
    default, per_theme, strongest, focus, flat, starting = PATTERNS[name]
    answers = answers_scoring(flow, default, **per_theme)
    if name == "low but uneven":
        answers["toekomst_marge"] = "tracked"
    result = score(flow, answers, TEAM)
    assert (result.flat, result.starting) == (flat, starting)
    assert result.focus == focus
    assert sorted(result.strongest) == sorted(strongest)  # exact ties are all named
    assert all(result.scores[t] > STARTING_MAX for t in result.strongest)
    assert all(result.scores[t] < 100 for t in result.focus)

    words = "\n".join(m.text for m in report.render(flow, result, texts, lang))
    names = report.theme_names(flow, lang)
    strong_line = texts.get(lang, "result_strong", themes="").strip()
    assert (strong_line in words) == bool(result.strongest)
    for theme in result.focus:
        assert f"{names[theme]}: {flow.theme(theme).about[lang]}" in words or (
            f"{names[theme]} : {flow.theme(theme).about[lang]}" in words)
    if result.overall == 100:
        assert texts.get(lang, "result_no_actions") in words
        assert texts.get(lang, "result_focus_title") not in words
    else:
        assert len(result.actions) == 3
        for action in result.actions:
            assert action.text[lang] in words
    if flat and result.overall < 100:
        low, high = min(result.scores.values()), max(result.scores.values())
        assert texts.get(lang, "result_flat", low=low, high=high) in words
    if starting:  # quick wins lead, before any other advice
        first_advice = report.render(flow, result, texts, lang)[1].text
        assert first_advice.startswith(texts.get(lang, "result_quick_wins_title"))


def test_every_theme_at_the_start_never_mentions_strengths(library: dict[str, Flow]) -> None:
    flow = library["assessment"]
    answers = answers_scoring(flow, 0.0)
    answers["toekomst_marge"] = "tracked"
    answers["innovatie_nieuw"] = "evaluated"
    result = score(flow, answers, TEAM)
    assert max(result.scores.values()) == STARTING_MAX
    assert result.strongest == () and result.starting


def test_flat_means_within_the_spread(library: dict[str, Flow]) -> None:
    flow = library["assessment"]
    result = score(flow, answers_scoring(flow, 0.5), TEAM)
    assert max(result.scores.values()) - min(result.scores.values()) <= FLAT_SPREAD
    assert result.flat and result.strongest == () and result.focus == ()


def test_ties_are_broken_by_action_priority_not_theme_order(library: dict[str, Flow]) -> None:
    """Two themes at 0: the one whose best action gains most for least effort comes first,
    whichever comes first in the file."""
    flow = library["assessment"]
    result = score(flow, answers_scoring(flow, 1.0, beleving=0.0, digitalisering=0.0), TEAM)
    assert result.scores["beleving"] == result.scores["digitalisering"] == 0
    # both have a priority-5 question; digitalisering has more to gain in all
    beleving = [n.priority for n in flow.questions() if n.theme == "beleving"]
    digital = [n.priority for n in flow.questions() if n.theme == "digitalisering"]
    assert max(beleving) == max(digital) == 5 and sum(digital) > sum(beleving)
    assert result.focus == ("digitalisering", "beleving")
    assert [a.priority for a in result.actions][:2] == [5, 5]
    assert [a.theme for a in result.actions] == ["digitalisering", "digitalisering", "beleving"]


def test_actions_follow_the_answer_given(library: dict[str, Flow]) -> None:
    """A paper stamp card gets the next step, not "start a stamp card"; an existing but
    outdated Google profile is not told to create one."""
    flow = library["assessment"]
    answers = answers_scoring(flow, 1.0)
    answers["innovatie_spaarkaart"] = "paper"
    answers["digitalisering_google"] = "outdated"
    result = score(flow, answers, TEAM)
    texts = {a.node_id: a.text["nl"] for a in result.actions}
    assert "stempelkaart werkt al" in texts["innovatie_spaarkaart"]
    assert "Start met een eenvoudige stempelkaart" not in texts["innovatie_spaarkaart"]
    assert "profiel bestaat al" in texts["digitalisering_google"]
    assert "maak je het aan" not in texts["digitalisering_google"]


def test_the_level_text_names_a_weakest_theme_at_the_start(library: dict[str, Flow],
                                                           texts: Texts) -> None:
    flow = library["assessment"]
    result = score(flow, answers_scoring(flow, 0.5, toekomst=0.0, innovatie=1.0,
                                         vakkennis=1.0), TEAM)
    assert 25 < result.overall <= 75 and result.scores["toekomst"] == 0
    words = "\n".join(m.text for m in report.render(flow, result, texts, "nl"))
    assert "in Toekomstgericht denken sta je nog aan het begin" in words
    assert "De basis staat er" not in words


def test_worst_answers_score_0_and_the_bands_follow_the_eu_dma(library: dict[str, Flow]) -> None:
    flow = library["assessment"]
    assert score(flow, answers_scoring(flow, 0.0), TEAM).overall == 0
    assert [flow.level_for(s).max for s in (0, 25, 26, 50, 51, 75, 76, 100)] == [
        25, 25, 50, 50, 75, 75, 100, 100]


def test_overall_is_the_mean_of_the_themes(library: dict[str, Flow]) -> None:
    flow = library["assessment"]
    result = score(flow, answers_scoring(flow, 1.0, beleving=0.0, vakkennis=0.0), TEAM)
    assert result.scores["beleving"] == 0
    assert result.overall == round(4 * 100 / 6)


def test_skipped_questions_and_ways_out_do_not_count(library: dict[str, Flow]) -> None:
    flow = library["assessment"]
    answers = answers_scoring(flow, 1.0)
    answers["vakkennis_team"] = "rarely"
    assert score(flow, answers, {"team_size": "solo"}).scores["vakkennis"] == 100
    assert score(flow, answers, TEAM).scores["vakkennis"] < 100
    answers["anders_denken_vereniging"] = "none_here"  # "there is none here / don't know"
    assert score(flow, answers, TEAM).scores["anders_denken"] == 100


def test_horeca_and_services_get_their_own_wording_and_actions(
        library: dict[str, Flow]) -> None:
    flow = library["assessment"]
    service = {"team_size": "2_4", "shop_type": "horeca_services"}
    node = flow.node("vakkennis_advies")
    assert "diensten" in node.text_for(flow.audience_of(service))["nl"]
    answers = answers_scoring(flow, 1.0, vakkennis=0.0)
    actions = {a.node_id: a.text["nl"] for a in score(flow, answers, service).actions}
    assert "meest gevraagde diensten" in actions["vakkennis_advies"]


def test_same_answers_same_result(library: dict[str, Flow]) -> None:
    flow = library["assessment"]
    answers = answers_scoring(flow, 0.5, beleving=0.0)
    assert score(flow, answers, TEAM) == score(flow, dict(reversed(answers.items())), TEAM)
