"""The offline answer: which tips the full-text search finds for a shopkeeper's question.

The evaluation set (``tests/data/tip_questions.toml``) holds real-sounding questions and the
tips a coach would accept among the first three; :func:`evaluate` scores a search on it, and
``benchmarks/tip_search.py`` prints the same figures per language.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flows.tips import load_tips
from storage.tip_search import TipSearch

QUESTIONS_FILE = Path(__file__).resolve().parent / "data" / "tip_questions.toml"
#: A coach reads the first three tips found (handlers/questions.py shows three).
TOP = 3


@dataclass(frozen=True, slots=True)
class Question:
    """A question of the evaluation set and the tips a coach accepts for it (none: the
    honest answer is that no tip fits)."""

    lang: str
    text: str
    tips: frozenset[str]
    shop_type: str = "other"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the search returned for one question."""

    question: Question
    found: tuple[str, ...]

    @property
    def rank(self) -> int | None:
        """1-based rank of the first accepted tip among those found."""
        return next((i for i, tip in enumerate(self.found, start=1)
                     if tip in self.question.tips), None)


@dataclass(frozen=True, slots=True)
class Figures:
    """Recall@3 and MRR over the questions that have an answer, and the share of the tips
    found for them that a coach accepts; how often a question without one still got tips."""

    answerable: int
    recall: float
    mrr: float
    precision: float
    unanswerable: int
    false_found: float


def load_questions(path: Path = QUESTIONS_FILE) -> list[Question]:
    """The evaluation set, checked: every tip it names exists in the library."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data["spec_version"] == 1
    known = {tip.id for tip in load_tips().tips}
    questions = []
    for item in data["questions"]:
        unknown = set(item["tips"]) - known
        assert not unknown, f"{item['text']!r} names unknown tips {sorted(unknown)}"
        questions.append(Question(item["lang"], item["text"], frozenset(item["tips"]),
                                  item.get("shop_type", "other")))
    return questions


def run(search: TipSearch, questions: Sequence[Question]) -> list[Outcome]:
    """Ask ``search`` every question, as handlers/questions.py does."""
    return [Outcome(q, tuple(tip.id for tip in search.find(q.text, q.lang,
                                                           shop_type=q.shop_type, limit=TOP)))
            for q in questions]


def figures(outcomes: Sequence[Outcome]) -> Figures:
    """The figures of some outcomes (e.g. one language's)."""
    answerable = [o for o in outcomes if o.question.tips]
    unanswerable = [o for o in outcomes if not o.question.tips]
    ranks = [o.rank for o in answerable]
    shown = [tip in o.question.tips for o in answerable for tip in o.found]
    return Figures(
        answerable=len(answerable),
        recall=sum(r is not None for r in ranks) / len(answerable) if answerable else 0.0,
        mrr=sum(1 / r for r in ranks if r is not None) / len(answerable) if answerable else 0.0,
        precision=sum(shown) / len(shown) if shown else 0.0,
        unanswerable=len(unanswerable),
        false_found=(sum(bool(o.found) for o in unanswerable) / len(unanswerable)
                     if unanswerable else 0.0))
