"""What the language model is told: the system prompt (a data file per language,
``flows/prompts/<lang>.toml``), this one person's facts, the tips found for the question,
and the question itself, in that order.

Only the bot's own data goes into the system role (the rules, the person's profile as the
onboarding stored it, their scores, the tip library's texts); what the person typed is the
one user message, so no question can rewrite the rules.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from openai.types.chat import ChatCompletionMessageParam

from flows.definition import LANGUAGES
from flows.loader import FlowError, FlowProblem
from flows.tips import Tip, TipLibrary

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "flows" / "prompts"
_KEYS = ("system", "profile", "shop_type", "municipality", "scores", "focus", "history",
         "commitment", "tips", "unknown", "none", "outcome_done", "outcome_later",
         "outcome_not_for_me", "outcome_none")
#: The last tips a person had that the model hears of (older ones add little).
HISTORY_SHOWN = 8


@dataclass(frozen=True, slots=True)
class Facts:
    """What the bot knows of the one person asking (never anyone else)."""

    shop_type: str | None = None
    municipality: str | None = None
    #: Theme name (in the person's language) → latest score.
    scores: Mapping[str, int] = field(default_factory=dict)
    focus: Sequence[str] = ()
    #: (tip id, outcome or None) of the tips they had, oldest first.
    history: Sequence[tuple[str, str | None]] = ()
    commitment: str | None = None


class Prompts:
    """The system prompt and headings per language (:meth:`load`)."""

    def __init__(self, table: Mapping[str, Mapping[str, str]]) -> None:
        self._table = table

    @classmethod
    def load(cls, directory: Path = PROMPTS_DIR) -> Prompts:
        """Read ``<lang>.toml`` for every language; a missing file or key stops the bot
        at start-up (``file:0: reason``), not mid-conversation."""
        table: dict[str, dict[str, str]] = {}
        problems: list[FlowProblem] = []
        for lang in LANGUAGES:
            path = directory / f"{lang}.toml"
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                problems.append(FlowProblem(str(path), 0, None, f"cannot read prompt: {exc}"))
                continue
            for key in _KEYS:
                if not isinstance(data.get(key), str) or not data[key].strip():
                    problems.append(FlowProblem(str(path), 0, None, f"'{key}' is missing"))
            table[lang] = {key: str(data.get(key, "")).strip() for key in _KEYS}
        if problems:
            raise FlowError(problems)
        return cls(table)

    def system(self, lang: str) -> str:
        """The rules the model follows, in ``lang``."""
        return self._table[lang]["system"]

    def messages(self, lang: str, facts: Facts, found: Sequence[Tip], library: TipLibrary,
                 question: str) -> list[ChatCompletionMessageParam]:
        """The chat to send: the rules and the person's context (system), the question
        (user)."""
        return [{"role": "system", "content": self.system(lang)},
                {"role": "system", "content": self.context(lang, facts, found, library)},
                {"role": "user", "content": question}]

    def context(self, lang: str, facts: Facts, found: Sequence[Tip],
                library: TipLibrary) -> str:
        """The person's facts and the tips found, under the headings of ``lang``."""
        say = self._table[lang]
        unknown, none = say["unknown"], say["none"]
        scores = ", ".join(f"{name} {value}" for name, value in facts.scores.items())
        lines = [f"## {say['profile']}",
                 f"- {say['shop_type']}: {(facts.shop_type or unknown).replace('_', ' ')}",
                 f"- {say['municipality']}: {facts.municipality or unknown}",
                 f"- {say['scores']}: {scores or none}",
                 f"- {say['focus']}: {', '.join(facts.focus) or none}",
                 f"- {say['commitment']}: {facts.commitment or none}",
                 f"## {say['history']}"]
        had = [(library.get(tip_id), outcome)
               for tip_id, outcome in facts.history[-HISTORY_SHOWN:]]
        lines += [f"- {tip.action[lang]} ({say['outcome_' + (outcome or 'none')]})"
                  for tip, outcome in had if tip is not None] or [f"- {none}"]
        lines.append(f"## {say['tips']}")
        lines += [f"- {tip.action[lang]} {tip.why[lang]}" + (f" ({tip.link})" if tip.link else "")
                  for tip in found] or [f"- {none}"]
        return "\n".join(lines)
