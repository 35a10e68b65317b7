"""Read flow files and refuse broken ones with the file, line, node id and reason.

Every rule here exists because a channel or a shopkeeper would otherwise hit the problem
at run time: a label too long for a WhatsApp list row, a ``goto`` to nowhere, a theme with
too few questions to score fairly.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.definition import (
    LANGUAGES,
    Choice,
    Flow,
    Level,
    Localized,
    Node,
    NodeType,
    Outcome,
    SkipIf,
    Theme,
)

SPEC_VERSIONS = frozenset({1})
ID_PATTERN = re.compile(r"^[a-z0-9_]{1,32}$")
CHOICE_ID_PATTERN = re.compile(r"^[a-z0-9_]{1,16}$")
#: WhatsApp list rows allow 24 characters; a phone screen is not much wider.
MAX_LABEL = 24
#: WhatsApp lists hold at most 10 rows.
MAX_CHOICES = 10
#: Keeps a message readable on a phone without scrolling.
MAX_TEXT = 600
MIN_QUESTIONS_PER_THEME = 4
#: Profile fields a flow may fill or test; anything else is a typo.
PROFILE_FIELDS = frozenset(
    {"consent", "language", "shop_name", "municipality", "shop_type", "team_size"}
)
PICK_LISTS = frozenset({"municipalities"})

_NODE_KEYS = frozenset(
    {
        "id", "type", "text", "theme", "choices", "save_as", "action", "skip_if", "skip_when_known",
        "min_length", "max_length", "options", "outcome", "next_flow",
    }
)
_CHOICE_KEYS = frozenset({"id", "label", "score", "value", "goto"})
_TOP_KEYS = frozenset({"spec_version", "id", "version", "languages", "themes", "levels", "nodes"})


@dataclass(frozen=True, slots=True)
class FlowProblem:
    """One reason a flow file is refused."""

    path: str
    line: int
    node: str | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        node = f" [node {self.node}]" if self.node else ""
        return f"{where}{node}: {self.reason}"


class FlowError(Exception):
    """Raised when one or more flow files are invalid; ``problems`` lists each one."""

    def __init__(self, problems: Iterable[FlowProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class _Checker:
    """Collects problems for one file so a check reports all of them at once."""

    def __init__(self, path: str, source: str) -> None:
        self.path = path
        self.problems: list[FlowProblem] = []
        self.node_lines = _node_lines(source)

    def fail(self, reason: str, *, node: str | None = None, line: int = 0) -> None:
        self.problems.append(FlowProblem(self.path, line, node, reason))

    def localized(self, value: Any, what: str, *, node: str | None, line: int,
                  max_length: int = MAX_TEXT) -> Localized:
        if not isinstance(value, Mapping):
            self.fail(f"{what} must be a table of texts per language", node=node, line=line)
            return {}
        text: Localized = {}
        for lang in LANGUAGES:
            item = value.get(lang)
            if not isinstance(item, str) or not item.strip():
                self.fail(f"{what} has no '{lang}' text", node=node, line=line)
            elif len(item) > max_length:
                self.fail(
                    f"{what} '{lang}' is {len(item)} characters, the limit is {max_length}",
                    node=node, line=line,
                )
            else:
                text[lang] = item
        return text


def _node_lines(source: str) -> list[int]:
    """Line number of each ``[[nodes]]`` header, in file order (tomllib keeps no positions)."""
    return [i for i, line in enumerate(source.splitlines(), start=1)
            if line.strip() == "[[nodes]]"]


def load_flow(path: Path) -> Flow:
    """Load and validate one flow file; raise :class:`FlowError` listing every problem."""
    source = path.read_text(encoding="utf-8")
    return parse_flow(source, str(path))


def parse_flow(source: str, path: str) -> Flow:
    """Validate a flow's TOML ``source``; ``path`` only names it in error messages."""
    check = _Checker(path, source)
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", 0) or _line_from_message(str(exc))
        raise FlowError([FlowProblem(path, line, None, f"not valid TOML: {exc}")]) from exc

    for key in sorted(set(data) - _TOP_KEYS):
        check.fail(f"unknown key '{key}'")
    spec = data.get("spec_version")
    if spec not in SPEC_VERSIONS:
        check.fail(f"spec_version {spec!r} is not supported (known: {sorted(SPEC_VERSIONS)})")
    flow_id = data.get("id")
    if not isinstance(flow_id, str) or not ID_PATTERN.match(flow_id):
        check.fail("id must be lower-case letters, digits or '_'")
        flow_id = "?"
    version = data.get("version")
    if not isinstance(version, str) or not version:
        check.fail("version must be a non-empty string")
        version = "?"
    languages = data.get("languages")
    if not isinstance(languages, list) or set(LANGUAGES) - set(languages):
        check.fail(f"languages must include {', '.join(LANGUAGES)}")

    themes = _themes(check, data.get("themes", []))
    levels = _levels(check, data.get("levels", []), needed=bool(themes))
    nodes = _nodes(check, data.get("nodes"), {t.id for t in themes})

    if themes:
        for theme in themes:
            count = sum(1 for n in nodes if n.theme == theme.id)
            if count < MIN_QUESTIONS_PER_THEME:
                check.fail(f"theme '{theme.id}' has {count} questions, "
                           f"at least {MIN_QUESTIONS_PER_THEME} are needed to score it")
    if check.problems:
        raise FlowError(check.problems)
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]
    return Flow(id=flow_id, version=version, digest=digest, source=source, path=path,
                nodes=tuple(nodes), themes=tuple(themes), levels=tuple(levels))


def _line_from_message(message: str) -> int:
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else 0


def _themes(check: _Checker, raw: Any) -> list[Theme]:
    if not isinstance(raw, list):
        check.fail("themes must be a list of [[themes]] tables")
        return []
    themes: list[Theme] = []
    for item in raw:
        theme_id = item.get("id") if isinstance(item, Mapping) else None
        if not isinstance(theme_id, str) or not ID_PATTERN.match(theme_id):
            check.fail(f"theme id {theme_id!r} must be lower-case letters, digits or '_'")
            continue
        name = check.localized(item.get("name"), f"theme '{theme_id}' name", node=None,
                               line=0, max_length=40)
        about = check.localized(item.get("about"), f"theme '{theme_id}' about", node=None,
                                line=0, max_length=200)
        themes.append(Theme(theme_id, name, about))
    if len({t.id for t in themes}) != len(themes):
        check.fail("theme ids must be unique")
    return themes


def _levels(check: _Checker, raw: Any, *, needed: bool) -> list[Level]:
    if not isinstance(raw, list) or (needed and not raw):
        if needed:
            check.fail("a flow with themes needs [[levels]] to name its score bands")
        return []
    levels: list[Level] = []
    for item in raw:
        top = item.get("max") if isinstance(item, Mapping) else None
        if not isinstance(top, int) or not 0 < top <= 100:
            check.fail(f"level max {top!r} must be a whole number from 1 to 100")
            continue
        levels.append(Level(
            top,
            check.localized(item.get("name"), f"level {top} name", node=None, line=0,
                            max_length=MAX_LABEL),
            check.localized(item.get("about"), f"level {top} about", node=None, line=0,
                            max_length=200),
        ))
    tops = [lv.max for lv in levels]
    if tops != sorted(set(tops)) or (tops and tops[-1] != 100):
        check.fail("levels must have increasing max values ending at 100")
    return levels


def _nodes(check: _Checker, raw: Any, theme_ids: set[str]) -> list[Node]:
    if not isinstance(raw, list) or not raw:
        check.fail("a flow needs at least one [[nodes]] table")
        return []
    nodes: list[Node] = []
    for position, item in enumerate(raw):
        line = check.node_lines[position] if position < len(check.node_lines) else 0
        node = _node(check, item, line, theme_ids)
        if node is not None:
            nodes.append(node)
    seen: set[str] = set()
    for node in nodes:
        if node.id in seen:
            check.fail("node id is used twice", node=node.id, line=node.line)
        seen.add(node.id)
    for node in nodes:
        for choice in node.choices:
            if choice.goto is not None and choice.goto not in seen:
                check.fail(f"choice '{choice.id}' goes to unknown node '{choice.goto}'",
                           node=node.id, line=node.line)
    return nodes


def _node(check: _Checker, item: Any, line: int, theme_ids: set[str]) -> Node | None:
    if not isinstance(item, Mapping):
        check.fail("a node must be a table", line=line)
        return None
    node_id = item.get("id")
    if not isinstance(node_id, str) or not ID_PATTERN.match(node_id):
        check.fail(f"node id {node_id!r} must be 1-32 lower-case letters, digits or '_'",
                   line=line)
        return None
    problems_before = len(check.problems)

    def fail(reason: str) -> None:
        check.fail(reason, node=node_id, line=line)

    for key in sorted(set(item) - _NODE_KEYS):
        fail(f"unknown key '{key}'")
    try:
        node_type = NodeType(str(item.get("type")))
    except ValueError:
        fail(f"type {item.get('type')!r} is not one of {', '.join(t.value for t in NodeType)}")
        return None
    text = check.localized(item.get("text"), "text", node=node_id, line=line)

    theme = item.get("theme")
    if theme is not None and theme not in theme_ids:
        fail(f"theme '{theme}' is not declared in [[themes]]")
    save_as = item.get("save_as")
    if save_as is not None and save_as not in PROFILE_FIELDS:
        fail(f"save_as '{save_as}' is not a profile field ({', '.join(sorted(PROFILE_FIELDS))})")
    action = None
    if "action" in item:
        action = check.localized(item["action"], "action", node=node_id, line=line,
                                 max_length=280)
    skip_if = _skip_if(fail, item.get("skip_if"))
    skip_when_known = item.get("skip_when_known", False)
    if not isinstance(skip_when_known, bool) or (skip_when_known and save_as is None):
        fail("skip_when_known must be true or false, and needs save_as")

    choices: tuple[Choice, ...] = ()
    if node_type is NodeType.CHOICE:
        choices = _choices(check, fail, item.get("choices"), node_id, line,
                           scored=theme is not None)
    elif "choices" in item:
        fail(f"a {node_type} node has no choices")
    if node_type is NodeType.CHOICE and theme is not None and action is None:
        fail("a scored question needs an action to suggest when it scores low")

    min_length = item.get("min_length", 1)
    max_length = item.get("max_length", 200)
    if node_type is NodeType.TEXT:
        if not (isinstance(min_length, int) and isinstance(max_length, int)
                and 0 < min_length <= max_length <= 1000):
            fail("min_length and max_length must satisfy 0 < min_length <= max_length <= 1000")
        if save_as is None:
            fail("a text node needs save_as")
    options = item.get("options")
    if node_type is NodeType.PICK:
        if options not in PICK_LISTS:
            fail(f"options {options!r} is not a known list ({', '.join(sorted(PICK_LISTS))})")
        if save_as is None:
            fail("a pick node needs save_as")
    outcome = Outcome.COMPLETED
    if "outcome" in item:
        if node_type is not NodeType.END:
            fail("only an end node has an outcome")
        elif item["outcome"] not in set(Outcome):
            fail(f"outcome {item['outcome']!r} is not one of "
                 f"{', '.join(o.value for o in Outcome)}")
        else:
            outcome = Outcome(item["outcome"])
    if len(check.problems) > problems_before:
        return None
    return Node(
        id=node_id, type=node_type, text=text, line=line, theme=theme, choices=choices,
        save_as=save_as, action=action, skip_if=skip_if, skip_when_known=skip_when_known,
        min_length=min_length,
        max_length=max_length, options=options, outcome=outcome,
        next_flow=item.get("next_flow"),
    )


def _skip_if(fail: Any, raw: Any) -> SkipIf | None:
    if raw is None:
        return None
    if (not isinstance(raw, Mapping) or set(raw) != {"field", "in"}
            or not isinstance(raw["in"], list)):
        fail("skip_if must be { field = \"...\", in = [\"...\"] }")
        return None
    if raw["field"] not in PROFILE_FIELDS:
        fail(f"skip_if field '{raw['field']}' is not a profile field")
        return None
    return SkipIf(raw["field"], frozenset(str(v) for v in raw["in"]))


def _choices(check: _Checker, fail: Any, raw: Any, node_id: str, line: int, *,
             scored: bool) -> tuple[Choice, ...]:
    if not isinstance(raw, list) or not 2 <= len(raw) <= MAX_CHOICES:
        fail(f"a choice node needs 2 to {MAX_CHOICES} [[nodes.choices]]")
        return ()
    choices: list[Choice] = []
    for item in raw:
        choice_id = item.get("id") if isinstance(item, Mapping) else None
        if not isinstance(choice_id, str) or not CHOICE_ID_PATTERN.match(choice_id):
            fail(f"choice id {choice_id!r} must be 1-16 lower-case letters, digits or '_'")
            continue
        for key in sorted(set(item) - _CHOICE_KEYS):
            fail(f"choice '{choice_id}' has unknown key '{key}'")
        label = check.localized(item.get("label"), f"choice '{choice_id}' label", node=node_id,
                                line=line, max_length=MAX_LABEL)
        score = item.get("score")
        if scored and not (isinstance(score, int | float) and 0 <= score <= 1):
            fail(f"choice '{choice_id}' needs a score from 0 to 1")
            score = None
        value = item.get("value")
        choices.append(Choice(choice_id, label, float(score) if score is not None else None,
                              str(value) if value is not None else None, item.get("goto")))
    if len({c.id for c in choices}) != len(choices):
        fail("choice ids must be unique within a node")
    return tuple(choices)


def load_library(directory: Path) -> dict[str, Flow]:
    """Load every ``*.toml`` flow in ``directory``; refuse them all if any one is broken."""
    flows: dict[str, Flow] = {}
    problems: list[FlowProblem] = []
    for path in sorted(directory.glob("*.toml")):
        try:
            flow = load_flow(path)
        except FlowError as exc:
            problems.extend(exc.problems)
            continue
        if flow.id in flows:
            problems.append(FlowProblem(str(path), 0, None, f"flow id '{flow.id}' is used twice"))
        flows[flow.id] = flow
    for flow in flows.values():
        for node in flow.nodes:
            if node.next_flow is not None and node.next_flow not in flows:
                problems.append(FlowProblem(flow.path, node.line, node.id,
                                            f"next_flow '{node.next_flow}' does not exist"))
    if problems:
        raise FlowError(problems)
    return flows
