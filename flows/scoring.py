"""Turn assessment answers into scores, levels, focus themes and first actions.

Scores follow the EU Digital Maturity Assessment: each question 0-1, each theme 0-100, the
overall score the mean of the themes, four bands. Ties are broken by theme order so the
same answers always give the same result.
"""

from __future__ import annotations

from dataclasses import dataclass

from flows.definition import Flow, Node

ACTIONS_FOR_FIRST_FOCUS = 2
ACTIONS_IN_TOTAL = 3


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one assessment; ``scores`` is in theme order."""

    scores: dict[str, int]
    overall: int
    strongest: tuple[str, ...]
    focus: tuple[str, ...]
    actions: tuple[str, ...]  # node ids whose action to suggest, most urgent first


def score(flow: Flow, answers: dict[str, str], profile: dict[str, str]) -> Result:
    """Score ``answers`` (node id → choice id) on ``flow``'s themes."""
    per_question: dict[str, float] = {}
    for node in flow.questions():
        if node.skip_if is not None and node.skip_if.applies(profile):
            continue
        choice = node.choice(answers.get(node.id, ""))
        if choice is not None and choice.score is not None:
            per_question[node.id] = choice.score

    scores: dict[str, int] = {}
    for theme in flow.themes:
        values = [v for nid, v in per_question.items() if flow.node(nid).theme == theme.id]
        scores[theme.id] = round(100 * sum(values) / len(values)) if values else 0
    overall = round(sum(scores.values()) / len(scores)) if scores else 0

    order = {t.id: i for i, t in enumerate(flow.themes)}
    strongest = tuple(sorted(scores, key=lambda t: (-scores[t], order[t]))[:2])
    # Focus themes are never also strengths, even when several themes score the same.
    focus = tuple(sorted((t for t in scores if t not in strongest),
                         key=lambda t: (scores[t], order[t]))[:2])
    return Result(scores, overall, strongest, focus,
                  _actions(flow, per_question, focus, order))


def _actions(flow: Flow, per_question: dict[str, float], focus: tuple[str, ...],
             order: dict[str, int]) -> tuple[str, ...]:
    """Pick the weakest questions: two from the first focus theme, then the rest."""

    def weakest(nodes: list[Node]) -> list[str]:
        low = [n for n in nodes if per_question.get(n.id, 1.0) < 1.0]
        return [n.id for n in sorted(low, key=lambda n: per_question[n.id])]

    by_theme = {t: [n for n in flow.questions() if n.theme == t] for t in order}
    first = weakest(by_theme[focus[0]])[:ACTIONS_FOR_FIRST_FOCUS] if focus else []
    rest_themes = sorted(order, key=lambda t: (t not in focus, order[t]))
    rest = [nid for t in rest_themes for nid in weakest(by_theme[t]) if nid not in first]
    if len(focus) > 1:
        # the second focus theme comes first among the rest
        rest.sort(key=lambda nid: flow.node(nid).theme != focus[1])
    return tuple([*first, *rest][:ACTIONS_IN_TOTAL])
