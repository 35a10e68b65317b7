"""Everything the bot says outside a flow, per language, from ``flows/texts/<lang>.toml``
and one folder per area (``flows/texts/privacy/<lang>.toml``, …), so a feature's sentences
sit together. A key is defined once across all files.

The Dutch file is the reference: the other languages must have exactly its keys and the
same ``{placeholders}``, checked at load, so a missing French sentence is caught by
``kiss-coach flows check`` and not by a shopkeeper in Mesen.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flows.definition import DEFAULT_LANGUAGE, LANGUAGES
from flows.loader import FlowError, FlowProblem

TEXTS_DIR = Path(__file__).parent / "texts"


class _Lenient(dict[str, Any]):
    """Leaves an unknown ``{name}`` visible instead of crashing mid-conversation."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Texts:
    """Localized UI strings: ``texts.get("nl", "help")``."""

    def __init__(self, table: Mapping[str, Mapping[str, Any]]) -> None:
        self._table = table

    @classmethod
    def load(cls, directory: Path = TEXTS_DIR) -> Texts:
        table: dict[str, dict[str, Any]] = {}
        problems: list[FlowProblem] = []
        areas = sorted(p for p in directory.iterdir() if p.is_dir()) if directory.is_dir() else []
        for lang in LANGUAGES:
            table[lang] = {}
            origin: dict[str, Path] = {}
            for path in [directory / f"{lang}.toml", *(a / f"{lang}.toml" for a in areas)]:
                try:
                    part = tomllib.loads(path.read_text(encoding="utf-8"))
                except (OSError, tomllib.TOMLDecodeError) as exc:
                    problems.append(FlowProblem(str(path), 0, None,
                                                f"cannot read texts: {exc}"))
                    continue
                for key in sorted(set(part) & set(origin)):
                    problems.append(FlowProblem(str(path), 0, None,
                                                f"text '{key}' is also in {origin[key]}"))
                origin.update(dict.fromkeys(part, path))
                table[lang].update(part)
        if not problems:
            problems = _compare(table, directory)
        if problems:
            raise FlowError(problems)
        return cls(table)

    def get(self, lang: str, key: str, /, **values: Any) -> str:
        """The text for ``key`` in ``lang`` (Dutch when the language is unknown)."""
        table = self._table.get(lang, self._table[DEFAULT_LANGUAGE])
        template = table[key]
        if not isinstance(template, str):
            raise TypeError(f"text '{key}' is a {type(template).__name__}, not a string")
        return template.format_map(_Lenient(values)) if values else template

    def list(self, lang: str, key: str) -> list[str]:
        """A list entry in ``lang`` alone, in its order (weekday names: Monday first)."""
        table = self._table.get(lang, self._table[DEFAULT_LANGUAGE])
        return [str(item) for item in table[key]]

    def words(self, lang: str, key: str) -> tuple[str, ...]:
        """A list entry (keywords like ``terug``), in ``lang`` and in Dutch."""
        own = self._table.get(lang, {}).get(key, [])
        dutch = self._table[DEFAULT_LANGUAGE].get(key, [])
        return tuple(dict.fromkeys([*own, *dutch]))


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _compare(table: Mapping[str, Mapping[str, Any]], directory: Path) -> list[FlowProblem]:
    reference = table[DEFAULT_LANGUAGE]
    problems: list[FlowProblem] = []
    for lang in LANGUAGES:
        path = str(directory / f"{lang}.toml")
        own = table[lang]
        for key in sorted(set(reference) - set(own)):
            problems.append(FlowProblem(path, 0, None, f"text '{key}' is missing"))
        for key in sorted(set(own) - set(reference)):
            problems.append(FlowProblem(path, 0, None, f"text '{key}' is not in nl.toml"))
        for key in sorted(set(own) & set(reference)):
            mine, theirs = own[key], reference[key]
            if isinstance(theirs, str) and isinstance(mine, str):
                if _placeholders(mine) != _placeholders(theirs):
                    problems.append(FlowProblem(
                        path, 0, None, f"text '{key}' must use the placeholders "
                        f"{sorted(_placeholders(theirs))}"))
            elif type(mine) is not type(theirs):
                problems.append(FlowProblem(path, 0, None, f"text '{key}' has the wrong type"))
    return problems
