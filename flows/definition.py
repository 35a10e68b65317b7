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
    """One answer option of a choice node.

    In a scored question a choice without a ``score`` is an honest way out ("there is no
    traders' association here"): the question then does not count towards the theme.
    """

    id: str
    label: Localized
    score: float | None = None
    value: str | None = None  # what ``save_as`` stores; defaults to the id
    goto: str | None = None  # jump to this node instead of the next one
    action: Localized | None = None  # the next step for someone who gave this answer
    synonyms: dict[str, tuple[str, ...]] = field(default_factory=dict)  # typed words, per language

    @property
    def stored_value(self) -> str:
        return self.value if self.value is not None else self.id

    @property
    def words(self) -> tuple[str, ...]:
        """Everything a user may type for this choice: its labels and synonyms."""
        return (*self.label.values(), *(w for ws in self.synonyms.values() for w in ws))


@dataclass(frozen=True, slots=True)
class Audience:
    """A group of users who get their own wording, e.g. horeca and services
    (``shop_type`` in a list): questions written for shops read oddly to a hairdresser."""

    id: str
    field: str
    values: frozenset[str]

    def includes(self, context: dict[str, str]) -> bool:
        return context.get(self.field) in self.values


@dataclass(frozen=True, slots=True)
class Variant:
    """How a question reads for one audience: another text and action, or not asked."""

    text: Localized | None = None
    action: Localized | None = None  # replaces every action of the question for them
    skip: bool = False


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
    action: Localized | None = None  # default step to suggest when an answer scores low
    skip_if: SkipIf | None = None
    skip_when_known: bool = False  # skip when the profile already has the save_as field
    min_length: int = 1
    max_length: int = 200
    options: str | None = None  # name of the list a pick node picks from
    outcome: Outcome = Outcome.COMPLETED  # for end nodes: what the host should do next
    next_flow: str | None = None
    #: Impact against effort, 1-5 (5: a big gain for little work). Breaks ties between themes
    #: and orders the first actions, so the result never depends on the order of the file.
    priority: int = 3
    variants: dict[str, Variant] = field(default_factory=dict)  # per audience id

    @property
    def is_question(self) -> bool:
        """Scored questions count towards progress ("Vraag 7 van 24") and the result."""
        return self.type is NodeType.CHOICE and self.theme is not None

    @property
    def waits_for_input(self) -> bool:
        return self.type in (NodeType.CHOICE, NodeType.TEXT, NodeType.PICK)

    def choice(self, choice_id: str) -> Choice | None:
        return next((c for c in self.choices if c.id == choice_id), None)

    def text_for(self, audience: str | None) -> Localized:
        variant = self.variants.get(audience or "")
        return variant.text if variant is not None and variant.text else self.text

    def action_for(self, choice: Choice, audience: str | None) -> Localized | None:
        """The step to suggest to someone in ``audience`` who answered ``choice``."""
        variant = self.variants.get(audience or "")
        if variant is not None and variant.action is not None:
            return variant.action
        return choice.action or self.action


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
    #: Said instead of ``about`` when some theme is still at the start ({weakest} names it),
    #: so "the basics are in place" is never said over three themes at 0-25.
    about_uneven: Localized | None = None


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
    audiences: tuple[Audience, ...] = ()
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

    def audience_of(self, profile: dict[str, str]) -> str | None:
        """The audience this profile belongs to, if any (the first that matches)."""
        return next((a.id for a in self.audiences if a.includes(profile)), None)

    def asks(self, node: Node, profile: dict[str, str]) -> bool:
        """Whether ``node`` is for this profile: no ``skip_if`` hit, no skipping variant."""
        if node.skip_if is not None and node.skip_if.applies(profile):
            return False
        variant = node.variants.get(self.audience_of(profile) or "")
        return variant is None or not variant.skip

    def theme(self, theme_id: str) -> Theme:
        return next(t for t in self.themes if t.id == theme_id)
