"""Turn assessment answers into scores, strengths, focus themes and first actions.

Scores follow the EU Digital Maturity Assessment: each question 0-1, each theme 0-100, the
overall score the mean of the themes, four bands. The words around them must never
contradict the numbers, so the rules are explicit here:

- a theme at 25 or less is never a strength; a theme at 100 is never a focus theme;
- when every theme lies within ``FLAT_SPREAD`` points, no theme is singled out;
- ties are broken by what there is to gain (each question's ``priority``: impact against
  effort), never by the order of the themes in the file;
- the actions follow the answer given: someone with a paper loyalty card gets the next step,
  not "start a stamp card".
"""

from __future__ import annotations

from dataclasses import dataclass

from flows.definition import Flow, Localized

ACTIONS_FOR_FIRST_FOCUS = 2
ACTIONS_IN_TOTAL = 3
#: The top of the first band ("Aan de start"): a theme this low is never called a strength.
STARTING_MAX = 25
#: Themes closer together than this are "about the same": naming one strong and another
#: weak would be reading noise (one answer moves a theme by 12-25 points).
FLAT_SPREAD = 10


@dataclass(frozen=True, slots=True)
class Action:
    """A first step to suggest: for which question, in which theme, and how urgent."""

    node_id: str
    theme: str
    text: Localized
    priority: int  # impact against effort, 1-5
    gap: float  # 1 - the answer's score: how much there is to gain

    @property
    def weight(self) -> float:
        return self.priority * self.gap


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one assessment; ``scores`` is in theme order.

    ``strongest`` and ``focus`` are empty when naming them would mislead (a flat result,
    everything at the start, everything at 100). ``weakest`` names the lowest theme below
    100, for the level text.
    """

    scores: dict[str, int]
    overall: int
    strongest: tuple[str, ...]
    focus: tuple[str, ...]
    actions: tuple[Action, ...]  # most urgent first
    flat: bool = False
    starting: bool = False  # every theme at 25 or less: lead with quick wins
    weakest: str | None = None


def score(flow: Flow, answers: dict[str, str], profile: dict[str, str]) -> Result:
    """Score ``answers`` (node id → choice id) on ``flow``'s themes for this ``profile``."""
    audience = flow.audience_of(profile)
    per_question: dict[str, float] = {}
    candidates: list[Action] = []
    for node in flow.questions():
        if not flow.asks(node, profile):
            continue  # a skipped question does not lower the theme
        choice = node.choice(answers.get(node.id, ""))
        if choice is None or choice.score is None:
            continue  # unanswered, or an honest "doesn't exist here / I don't know"
        per_question[node.id] = choice.score
        text = node.action_for(choice, audience)
        if choice.score < 1 and text is not None and node.theme is not None:
            candidates.append(Action(node.id, node.theme, text, node.priority,
                                     1 - choice.score))

    scores: dict[str, int] = {}
    for theme in flow.themes:
        values = [v for nid, v in per_question.items() if flow.node(nid).theme == theme.id]
        scores[theme.id] = round(100 * sum(values) / len(values)) if values else 0
    overall = round(sum(scores.values()) / len(scores)) if scores else 0
    if not scores:
        return Result(scores, overall, (), (), ())

    def urgency(theme: str) -> tuple[float, float]:
        """What there is to gain in a theme: its best action, then all its actions."""
        own = [a.weight for a in candidates if a.theme == theme]
        return (max(own, default=0.0), sum(own))

    # Lowest first; among equal scores the theme with the most to gain first; the theme id
    # only settles themes with exactly the same actions left (it never favours a theme).
    ascending = sorted(scores, key=lambda t: (scores[t], *(-u for u in urgency(t)), t))
    weakest = next((t for t in ascending if scores[t] < 100), None)
    flat = max(scores.values()) - min(scores.values()) <= FLAT_SPREAD
    starting = max(scores.values()) <= STARTING_MAX
    strongest: tuple[str, ...] = ()
    focus: tuple[str, ...] = ()
    if not flat:
        strong = [t for t in reversed(ascending) if scores[t] > STARTING_MAX]
        if len(strong) > 2:
            # Themes that tie exactly with the second strength (same score, same work left)
            # are named too: choosing between them would be arbitrary.
            second = (scores[strong[1]], urgency(strong[1]))
            strong = strong[:2] + [t for t in strong[2:] if (scores[t], urgency(t)) == second]
        strongest = tuple(strong)
        focus = tuple(t for t in ascending if scores[t] < 100 and t not in strongest)[:2]
    return Result(scores, overall, strongest, focus,
                  _actions(candidates, focus, quick_wins=flat or starting),
                  flat, starting, weakest)


def _actions(candidates: list[Action], focus: tuple[str, ...], *,
             quick_wins: bool) -> tuple[Action, ...]:
    """The first steps: two from the first focus theme and one from the second, each the
    most to gain for the effort; with no clear focus, the best quick wins from different
    themes."""
    ranked = sorted(candidates, key=lambda a: (-a.weight, -a.priority, a.node_id))
    if quick_wins or not focus:
        picked: list[Action] = []
        for action in ranked:  # one per theme first, so the steps are not all alike
            if action.theme not in {a.theme for a in picked}:
                picked.append(action)
        picked += [a for a in ranked if a not in picked]
        return tuple(picked[:ACTIONS_IN_TOTAL])
    first = [a for a in ranked if a.theme == focus[0]][:ACTIONS_FOR_FIRST_FOCUS]
    second = [a for a in ranked if len(focus) > 1 and a.theme == focus[1]]
    rest = [a for a in ranked if a not in first and a not in second]
    return tuple([*first, *second, *rest][:ACTIONS_IN_TOTAL])
