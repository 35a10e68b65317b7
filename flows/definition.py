"""Flow definitions: the typed, validated form of a flow file.

A flow is data (a TOML file in ``flows/``). :mod:`flows.loader` reads and validates it into
the frozen dataclasses below; the engine (:mod:`flows.engine`) only ever sees these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

#: Languages every shopkeeper-facing text must exist in, Dutch first.
LANGUAGES: tuple[str, ...] = ("nl", "en", "fr")
DEFAULT_LANGUAGE = "nl"

Localized = dict[str, str]
"""Text per language code."""


class NodeType(StrEnum):
    """What a node asks of the user."""

    MESSAGE = "message"  # says something, expects nothing, moves on
    CHOICE = "choice"  # single choice from 2-10 options
    TEXT = "text"  # free text with length validation
    PICK = "pick"  # pick from a named list by typing, fuzzy-matched
    END = "end"  # ends the flow with an outcome


class Outcome(StrEnum):
    """How a flow ended: a closed set, so the host handles each case (mypy checks it).

    An ``end`` node names one in ``outcome``; a flow that runs past its last node, or an
    ``end`` node without ``outcome``, ends ``completed``.
    """

    COMPLETED = "completed"  # nothing special: the flow is done
    ONBOARDED = "onboarded"  # consent given and profile filled in
    REFUSED = "refused"  # no consent: the host must keep nothing about the person


@dataclass(frozen=True, slots=True)
class Choice:
    """One answer option of a choice node."""

    id: str
    label: Localized
    score: float | None = None
    value: str | None = None  # what ``save_as`` stores; defaults to the id
    goto: str | None = None  # jump to this node instead of the next one

    @property
    def stored_value(self) -> str:
        return self.value if self.value is not None else self.id


@dataclass(frozen=True, slots=True)
class SkipIf:
    """Skip a node when a profile field has one of the listed values."""

    field: str
    values: frozenset[str]

    def applies(self, context: dict[str, str]) -> bool:
        return context.get(self.field) in self.values


@dataclass(frozen=True, slots=True)
class Node:
    """One step of a flow."""

    id: str
    type: NodeType
    text: Localized
    line: int = 0
    theme: str | None = None
    choices: tuple[Choice, ...] = ()
    save_as: str | None = None
    action: Localized | None = None  # first step to suggest when this question scores low
    skip_if: SkipIf | None = None
    skip_when_known: bool = False  # skip when the profile already has the save_as field
    min_length: int = 1
    max_length: int = 200
    options: str | None = None  # name of the list a pick node picks from
    outcome: Outcome = Outcome.COMPLETED  # for end nodes: what the host should do next
    next_flow: str | None = None

    @property
    def is_question(self) -> bool:
        """Scored questions count towards progress ("Vraag 7 van 24") and the result."""
        return self.type is NodeType.CHOICE and self.theme is not None

    @property
    def waits_for_input(self) -> bool:
        return self.type in (NodeType.CHOICE, NodeType.TEXT, NodeType.PICK)

    def choice(self, choice_id: str) -> Choice | None:
        return next((c for c in self.choices if c.id == choice_id), None)


@dataclass(frozen=True, slots=True)
class Theme:
    id: str
    name: Localized
    about: Localized


@dataclass(frozen=True, slots=True)
class Level:
    """A score band, like the EU Digital Maturity Assessment's four bands."""

    max: int
    name: Localized
    about: Localized


@dataclass(frozen=True, slots=True)
class Flow:
    """A validated flow definition.

    ``digest`` identifies the exact content: a run pins it, so editing a file never changes
    the questions under someone who is halfway through.
    """

    id: str
    version: str
    digest: str
    source: str  # the file's text, kept so a pinned version can be rebuilt later
    path: str
    nodes: tuple[Node, ...]
    themes: tuple[Theme, ...] = ()
    levels: tuple[Level, ...] = ()
    _index: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({n.id: i for i, n in enumerate(self.nodes)})

    @property
    def key(self) -> str:
        """``id@digest``: the pin a run stores."""
        return f"{self.id}@{self.digest}"

    def node(self, node_id: str) -> Node:
        return self.nodes[self._index[node_id]]

    def has_node(self, node_id: str) -> bool:
        return node_id in self._index

    def position(self, node_id: str) -> int:
        return self._index[node_id]

    def questions(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.is_question)

    def level_for(self, score: int) -> Level:
        return next(lv for lv in self.levels if score <= lv.max)
