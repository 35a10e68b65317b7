"""Scores per theme, overall, levels, strongest and focus themes, first actions."""

from __future__ import annotations

from flows.definition import Flow
from flows.scoring import score


def answers_scoring(flow: Flow, value: float, **per_theme: float) -> dict[str, str]:
    """Answer every question with the choice whose score is ``value`` (or per theme)."""
    answers = {}
    for node in flow.questions():
        wanted = per_theme.get(node.theme or "", value)
        best = min(node.choices, key=lambda c: abs((c.score or 0) - wanted))
        answers[node.id] = best.id
    return answers


def test_best_answers_score_100_everywhere(library: dict[str, Flow]) -> None:
    flow = library["assessment"]
    result = score(flow, answers_scoring(flow, 1.0), {})
    assert set(result.scores.values()) == {100}
    assert result.overall == 100
    assert result.actions == ()
    assert flow.level_for(result.overall).max == 100


def test_worst_answers_score_0_and_the_bands_follow_the_eu_dma(library: dict[str, Flow]) -> None:
    flow = library["assessment"]
    result = score(flow, answers_scoring(flow, 0.0), {})
    assert result.overall == 0
    assert [flow.level_for(s).max for s in (0, 25, 26, 50, 51, 75, 76, 100)] == [
        25, 25, 50, 50, 75, 75, 100, 100]


def test_overall_is_the_mean_of_the_themes(library: dict[str, Flow]) -> None:
    flow = library["assessment"]
    result = score(flow, answers_scoring(flow, 1.0, beleving=0.0, vakkennis=0.0), {})
    assert result.scores["beleving"] == 0
    assert result.overall == round(4 * 100 / 6)


def test_focus_is_the_two_weakest_and_actions_come_from_them(library: dict[str, Flow]) -> None:
    flow = library["assessment"]
    answers = answers_scoring(flow, 1.0, digitalisering=0.0, toekomst=0.5)
    result = score(flow, answers, {})
    assert result.focus == ("digitalisering", "toekomst")
    assert result.strongest == ("beleving", "vakkennis")  # ties go by theme order
    themes = [flow.node(a).theme for a in result.actions]
    assert themes == ["digitalisering", "digitalisering", "toekomst"]


def test_skipped_questions_do_not_count(library: dict[str, Flow]) -> None:
    flow = library["assessment"]
    skipped = [n for n in flow.questions() if n.skip_if is not None]
    assert skipped, "the assessment skips the staff question for one-person shops"
    answers = answers_scoring(flow, 1.0)
    answers[skipped[0].id] = min(skipped[0].choices, key=lambda c: c.score or 0).id
    theme = skipped[0].theme or ""
    assert score(flow, answers, {"team_size": "solo"}).scores[theme] == 100
    assert score(flow, answers, {"team_size": "5_9"}).scores[theme] < 100


def test_same_answers_same_result(library: dict[str, Flow]) -> None:
    flow = library["assessment"]
    answers = answers_scoring(flow, 0.5)
    assert score(flow, answers, {}) == score(flow, dict(reversed(answers.items())), {})
