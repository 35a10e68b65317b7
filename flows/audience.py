"""Who a broadcast reaches: a segment of shopkeepers, as data.

A segment maps keys to accepted values: ``municipality=Kortrijk``,
``arrondissement=Roeselare``, ``shop_type=food``, ``focus=digitalisering`` (a focus theme of
their latest result), ``level=digitalisering:start`` (a level band on a theme),
``unfinished=yes`` (no result yet), ``language=fr``. Different keys must all match; several
values of one key are alternatives. No key at all is everyone. Values are checked when the
segment is made, so a typo never silently reaches nobody.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from flows.definition import LANGUAGES
from flows.places import Gazetteer, normalize
from flows.tips import LEVELS, SHOP_TYPES, THEMES, level_of

KEYS = ("municipality", "arrondissement", "shop_type", "focus", "level", "unfinished",
        "language")


class SegmentError(ValueError):
    """A segment that names something unknown; the message says what is accepted."""


@dataclass(frozen=True, slots=True)
class Member:
    """What a segment looks at of one shopkeeper."""

    municipality: str | None
    shop_type: str | None
    language: str
    scores: Mapping[str, int] | None  # the latest result; None: no result yet
    focus: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Segment:
    """Accepted values per key (see the module docstring)."""

    values: Mapping[str, frozenset[str]] = field(default_factory=dict)
    arrondissement_of: Mapping[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def parse(cls, pairs: Iterable[str], places: Gazetteer) -> Segment:
        """From ``KEY=VALUE`` texts (the CLI's ``--segment``)."""
        found: dict[str, set[str]] = {}
        for pair in pairs:
            key, separator, value = pair.partition("=")
            if not separator or not value.strip():
                raise SegmentError(f"{pair!r} is not KEY=VALUE (keys: {', '.join(KEYS)})")
            found.setdefault(key.strip(), set()).add(_canonical(key.strip(), value.strip(),
                                                                places))
        return cls({key: frozenset(values) for key, values in found.items()},
                   places.arrondissement_of)

    @classmethod
    def from_data(cls, data: Mapping[str, list[str]], places: Gazetteer) -> Segment:
        """The segment a broadcast row stored (see :meth:`to_data`)."""
        return cls.parse((f"{key}={value}" for key, values in data.items() for value in values),
                         places)

    def to_data(self) -> dict[str, list[str]]:
        return {key: sorted(values) for key, values in sorted(self.values.items())}

    def matches(self, member: Member) -> bool:
        return all(self._matches(key, accepted, member)
                   for key, accepted in self.values.items())

    def _matches(self, key: str, accepted: frozenset[str], member: Member) -> bool:
        match key:
            case "municipality":
                return member.municipality in accepted
            case "arrondissement":
                return self.arrondissement_of.get(member.municipality or "") in accepted
            case "shop_type":
                return member.shop_type in accepted
            case "language":
                return member.language in accepted
            case "unfinished":
                return (member.scores is None) == ("yes" in accepted)
            case "focus":
                return bool(set(member.focus) & accepted)
            case "level":
                scores = member.scores or {}
                return any(theme in scores and level_of(scores[theme]) == band
                           for theme, _, band in (v.partition(":") for v in accepted))
        return False

    def describe(self) -> str:
        """``municipality=Kortrijk, shop_type=food|fashion`` (for lists and logs)."""
        return ", ".join(f"{key}={'|'.join(sorted(values))}"
                         for key, values in sorted(self.values.items())) or "everyone"


def _canonical(key: str, value: str, places: Gazetteer) -> str:
    """The stored form of a value, or :class:`SegmentError` naming what is accepted."""
    match key:
        case "municipality":
            found = {normalize(m): m for m in places.municipalities}.get(normalize(value))
            if found is None:
                raise SegmentError(f"municipality {value!r} is not one of the 62 of West "
                                   "Flanders (type its name, e.g. Kortrijk)")
            return found
        case "arrondissement":
            names = sorted(set(places.arrondissement_of.values()))
            found = {normalize(a): a for a in names}.get(normalize(value))
            if found is None:
                raise SegmentError(f"arrondissement {value!r} is not one of {', '.join(names)}")
            return found
        case "shop_type":
            return _one_of(key, value, SHOP_TYPES)
        case "language":
            return _one_of(key, value, LANGUAGES)
        case "focus":
            return _one_of(key, value, THEMES)
        case "unfinished":
            return _one_of(key, value.lower(), ("yes", "no"))
        case "level":
            theme, _, band = value.partition(":")
            _one_of("level theme", theme, THEMES)
            _one_of("level band", band, LEVELS)
            return f"{theme}:{band}"
    raise SegmentError(f"unknown segment key {key!r} (keys: {', '.join(KEYS)})")


def _one_of(key: str, value: str, accepted: Iterable[str]) -> str:
    if value not in set(accepted):
        raise SegmentError(f"{key} {value!r} is not one of {', '.join(sorted(accepted))}")
    return value
