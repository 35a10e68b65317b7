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
    Audience,
    Choice,
    Flow,
    Level,
    Localized,
    Node,
    NodeType,
    Outcome,
    SkipIf,
    Theme,
    Variant,
)
from flows.places import normalize, place_problems

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
#: Lists a pick node can pick from, and the data file under ``flows/data`` that holds each.
PICK_LISTS = {"municipalities": "places.toml"}

#: Action priority: impact against effort, 5 = a big gain for little work.
PRIORITIES = range(1, 6)
#: A synonym is a word or a short phrase, not a sentence.
MAX_SYNONYM = 40

_NODE_KEYS = frozenset(
    {
        "id", "type", "text", "theme", "choices", "save_as", "action", "skip_if", "skip_when_known",
        "min_length", "max_length", "options", "outcome", "next_flow", "priority", "variants",
        "fits",
    }
)
_CHOICE_KEYS = frozenset({"id", "label", "score", "value", "goto", "action", "synonyms",
                          "way_out"})
_VARIANT_KEYS = frozenset({"text", "action", "skip"})
_TOP_KEYS = frozenset({"spec_version", "id", "version", "languages", "themes", "levels",
                       "audiences", "nodes"})


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
    audiences = _audiences(check, data.get("audiences", []))
    nodes = _nodes(check, data.get("nodes"), {t.id for t in themes},
                   {a.id: a for a in audiences})

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
                nodes=tuple(nodes), themes=tuple(themes), levels=tuple(levels),
                audiences=tuple(audiences))


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
        uneven = None
        if "about_uneven" in item:
            uneven = check.localized(item["about_uneven"], f"level {top} about_uneven",
                                     node=None, line=0, max_length=240)
            if any("{weakest}" not in text for text in uneven.values()):
                check.fail(f"level {top} about_uneven must name the {{weakest}} theme")
        levels.append(Level(
            top,
            check.localized(item.get("name"), f"level {top} name", node=None, line=0,
                            max_length=MAX_LABEL),
            check.localized(item.get("about"), f"level {top} about", node=None, line=0,
                            max_length=240),
            uneven,
        ))
    tops = [lv.max for lv in levels]
    if tops != sorted(set(tops)) or (tops and tops[-1] != 100):
        check.fail("levels must have increasing max values ending at 100")
    return levels


def _audiences(check: _Checker, raw: Any) -> list[Audience]:
    if not isinstance(raw, list):
        check.fail("audiences must be a list of [[audiences]] tables")
        return []
    audiences: list[Audience] = []
    for item in raw:
        if (not isinstance(item, Mapping) or set(item) != {"id", "field", "in"}
                or not isinstance(item["in"], list)):
            check.fail('an audience is { id = "...", field = "...", in = ["..."] }')
            continue
        if not isinstance(item["id"], str) or not ID_PATTERN.match(item["id"]):
            check.fail(f"audience id {item['id']!r} must be lower-case letters, digits or '_'")
        elif item["field"] not in PROFILE_FIELDS:
            check.fail(f"audience '{item['id']}' field '{item['field']}' is not a profile field")
        else:
            audiences.append(Audience(item["id"], item["field"],
                                      frozenset(str(v) for v in item["in"])))
    return audiences


def _nodes(check: _Checker, raw: Any, theme_ids: set[str],
           audiences: Mapping[str, Audience]) -> list[Node]:
    if not isinstance(raw, list) or not raw:
        check.fail("a flow needs at least one [[nodes]] table")
        return []
    nodes: list[Node] = []
    for position, item in enumerate(raw):
        line = check.node_lines[position] if position < len(check.node_lines) else 0
        node = _node(check, item, line, theme_ids, audiences)
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


def _node(check: _Checker, item: Any, line: int, theme_ids: set[str],
          audiences: Mapping[str, Audience]) -> Node | None:
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
    scored = node_type is NodeType.CHOICE and theme is not None
    if scored:
        _check_actions(fail, choices, action)
    elif action is not None:
        fail("only a scored question has an action")
    priority = item.get("priority", 3)
    if scored and (not isinstance(priority, int) or priority not in PRIORITIES):
        fail(f"priority must be a whole number from {PRIORITIES[0]} to {PRIORITIES[-1]} "
             "(impact against effort, 5 = a big gain for little work)")
        priority = 3
    variants = _variants(check, fail, item.get("variants"), item.get("fits"), node_id, line,
                         audiences, scored=scored)

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
        next_flow=item.get("next_flow"), priority=priority, variants=variants,
    )


def _check_actions(fail: Any, choices: tuple[Choice, ...], default: Localized | None) -> None:
    """Every answer that scores below full marks needs a next step, and only those: a
    shopkeeper who already has a Google profile must not be told to make one."""
    way_outs = [c for c in choices if c.score is None]
    if len(way_outs) > 1:
        fail("a question offers at most one way out (a choice without a score)")
    if len(way_outs) == len(choices):
        fail("a scored question needs choices with a score")
    for choice in choices:
        if choice.score is not None and choice.score < 1 and not (choice.action or default):
            fail(f"choice '{choice.id}' scores {choice.score:g} but has no action "
                 "(give the choice an action, or the question a default one)")
        if choice.action is not None and (choice.score is None or choice.score >= 1):
            fail(f"choice '{choice.id}' has an action but never needs one (it scores full "
                 "marks or not at all)")


def _variants(check: _Checker, fail: Any, raw: Any, fits: Any, node_id: str, line: int,
              audiences: Mapping[str, Audience], *, scored: bool) -> dict[str, Variant]:
    """Per-audience wording; a flow with audiences must say for every question whether its
    text fits each audience as it is (``fits``), reads differently, or is skipped."""
    variants: dict[str, Variant] = {}
    if raw is not None and not isinstance(raw, Mapping):
        fail("variants must be a table per audience")
        raw = None
    for audience, body in (raw or {}).items():
        if audience not in audiences:
            fail(f"variant for unknown audience '{audience}'")
            continue
        if not isinstance(body, Mapping) or set(body) - _VARIANT_KEYS:
            fail(f"variant '{audience}' may only have {', '.join(sorted(_VARIANT_KEYS))}")
            continue
        skip = body.get("skip", False)
        if skip is True and set(body) != {"skip"}:
            fail(f"variant '{audience}' skips the question, so it has no text or action")
            continue
        if skip is not True and "text" not in body:
            fail(f"variant '{audience}' needs a text (or skip = true)")
            continue
        text = (check.localized(body["text"], f"variant '{audience}' text", node=node_id,
                                line=line) if "text" in body else None)
        action = (check.localized(body["action"], f"variant '{audience}' action",
                                  node=node_id, line=line, max_length=280)
                  if "action" in body else None)
        variants[audience] = Variant(text, action, skip is True)
    fitting: set[str] = set()
    if fits is not None:
        if not isinstance(fits, list) or any(a not in audiences for a in fits):
            fail(f"fits must list declared audiences ({', '.join(sorted(audiences))})")
        else:
            fitting = set(fits)
    if fitting & set(variants):
        fail(f"audience(s) {', '.join(sorted(fitting & set(variants)))} both fit the question "
             "and have a variant")
    if scored:
        for audience in sorted(set(audiences) - fitting - set(variants)):
            fail(f"say whether this question fits audience '{audience}': add it to fits, "
                 "or give it a variant")
    return variants


def _synonyms(fail: Any, raw: Any, choice_id: str) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or set(raw) - set(LANGUAGES):
        fail(f"choice '{choice_id}' synonyms must be a table per language "
             f"({', '.join(LANGUAGES)})")
        return {}
    synonyms: dict[str, tuple[str, ...]] = {}
    for lang, words in raw.items():
        good = isinstance(words, list) and all(
            isinstance(w, str) and normalize(w) and not normalize(w).isdigit()
            and len(w) <= MAX_SYNONYM for w in words)
        if not good:
            fail(f"choice '{choice_id}' synonyms '{lang}' must be a list of words or short "
                 f"phrases (letters, at most {MAX_SYNONYM} characters, not a number)")
            continue
        synonyms[lang] = tuple(words)
    return synonyms


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
        way_out = item.get("way_out", False)
        if way_out is True:
            if not scored or score is not None:
                fail(f"choice '{choice_id}' is a way out: only in a scored question, "
                     "and without a score")
                score = None
        elif way_out is not False:
            fail(f"choice '{choice_id}' way_out must be true or false")
        elif scored and not (isinstance(score, int | float) and 0 <= score <= 1):
            fail(f"choice '{choice_id}' needs a score from 0 to 1 (or way_out = true)")
            score = None
        action = None
        if "action" in item:
            action = check.localized(item["action"], f"choice '{choice_id}' action",
                                     node=node_id, line=line, max_length=280)
        value = item.get("value")
        choices.append(Choice(choice_id, label, float(score) if score is not None else None,
                              str(value) if value is not None else None, item.get("goto"),
                              action, _synonyms(fail, item.get("synonyms"), choice_id)))
    if len({c.id for c in choices}) != len(choices):
        fail("choice ids must be unique within a node")
    owners: dict[str, str] = {}
    for choice in choices:
        for word in {normalize(w) for w in choice.words}:
            other = owners.setdefault(word, choice.id)
            if other != choice.id:
                fail(f"'{word}' would mean both choice '{other}' and '{choice.id}'")
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
    lists: set[str] = set()
    for flow in flows.values():
        for node in flow.nodes:
            if node.next_flow is not None and node.next_flow not in flows:
                problems.append(FlowProblem(flow.path, node.line, node.id,
                                            f"next_flow '{node.next_flow}' does not exist"))
            if node.options is not None:
                lists.add(node.options)
    for name in sorted(lists):  # the place names a pick node offers must load too
        path = directory / "data" / PICK_LISTS.get(name, f"{name}.toml")
        problems.extend(FlowProblem(str(path), 0, None, reason)
                        for reason in place_problems(path))
    if problems:
        raise FlowError(problems)
    return flows
