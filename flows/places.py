"""Find a West-Flemish municipality from what a shopkeeper types.

People type their municipality ("Kortrijk"), their deelgemeente ("Heule"), an old or French
name ("Courtrai", "Passchendaele", "Meulebeke" since the 2025 merger) or a place just over
the border ("Moeskroen"). Matching ignores case, accents, spaces and hyphens. An exact name
always wins; a name that exists twice in the province ("Zandvoorde") gets a choice between
the candidates; a place outside the province gets its own answer; only a real typo gets
fuzzy suggestions, and only close ones. The data and its sources: ``data/places.toml``.
"""

from __future__ import annotations

import difflib
import tomllib
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DATA_FILE = Path(__file__).parent / "data" / "places.toml"
#: Regions an outside place can be in; each has a text ``region_<id>`` in flows/texts.
REGIONS = ("hainaut", "east_flanders", "france", "netherlands", "elsewhere")
#: How alike a typo must be to a real name before it is suggested (difflib's ratio):
#: "Kortryk" is 0.93 from Kortrijk; unrelated names of similar length stay below 0.8.
CLOSE_ENOUGH = 0.8
MUNICIPALITY_COUNT = 62


def normalize(text: str) -> str:
    """Casefold, drop accents and everything that is not a letter or digit."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if ch.isalnum() and not unicodedata.combining(ch))


@dataclass(frozen=True, slots=True)
class Place:
    """A municipality, and the name within it that was meant (a deelgemeente, say)."""

    municipality: str
    name: str

    @property
    def label(self) -> str:
        """"Heule (Kortrijk)", or just "Kortrijk"."""
        if normalize(self.name) == normalize(self.municipality):
            return self.municipality
        return f"{self.name} ({self.municipality})"

    def encode(self) -> str:
        """A compact form to keep in a run's state between turns."""
        return f"{self.municipality}|{self.name}"

    @classmethod
    def decode(cls, text: str) -> Place:
        municipality, _, name = text.partition("|")
        return cls(municipality, name or municipality)


@dataclass(frozen=True, slots=True)
class Match:
    """What a typed name means.

    ``name`` is the municipality when there is exactly one; ``alias_of`` then holds the name
    typed when it was not the municipality's own (kept: "Heule" says more than "Kortrijk").
    Otherwise ``candidates`` are the places an ambiguous name can mean, ``suggestions``
    close names for a typo, or ``outside`` the region of a place outside the province.
    """

    name: str | None
    suggestions: tuple[Place, ...] = ()
    alias_of: str | None = None
    candidates: tuple[Place, ...] = ()
    outside: str | None = None  # a region id from REGIONS
    outside_name: str | None = None


class Gazetteer:
    """The municipalities, their deelgemeenten, and the other names people use for them."""

    def __init__(self, arrondissement_of: dict[str, str], places: dict[str, list[Place]],
                 outside: dict[str, tuple[str, str]]) -> None:
        self.municipalities = tuple(sorted(arrondissement_of))
        self.arrondissement_of = arrondissement_of
        self._places = places  # normalized name -> the places it can mean
        self._outside = outside  # normalized name -> (region, name as written)

    @classmethod
    def load(cls, path: Path = DATA_FILE) -> Gazetteer:
        problems = place_problems(path)
        if problems:
            raise ValueError(f"{path}: " + "; ".join(problems))
        return cls(*_build(tomllib.loads(path.read_text(encoding="utf-8"))))

    def find(self, text: str) -> Match:
        key = normalize(text)
        if not key:
            return Match(None)
        if key in self._places:
            return self._exact(self._places[key])
        if key in self._outside:
            region, name = self._outside[key]
            return Match(None, outside=region, outside_name=name)
        # A unique prefix ("langemark-poel", "knokke-he") is as good as the full name.
        if len(key) >= 4:
            prefixed = {p for k, ps in self._places.items() if k.startswith(key) for p in ps}
            if len({p.municipality for p in prefixed}) == 1:
                municipality = next(iter(prefixed)).municipality
                return Match(municipality)
        return self._close(key)

    def _exact(self, places: list[Place]) -> Match:
        if len({p.municipality for p in places}) > 1:
            return Match(None, candidates=tuple(places))
        place = places[0]
        typed = None if place.name == place.municipality else place.name
        return Match(place.municipality, alias_of=typed)

    def _close(self, key: str) -> Match:
        keys = [*self._places, *self._outside]
        close = difflib.get_close_matches(key, keys, n=6, cutoff=CLOSE_ENOUGH)
        if close and close[0] in self._outside:
            region, name = self._outside[close[0]]
            return Match(None, outside=region, outside_name=name)
        found: dict[str, Place] = {}  # one suggestion per municipality, the closest name
        for place in (p for k in close if k in self._places for p in self._places[k]):
            found.setdefault(place.municipality, place)
        return Match(None, suggestions=tuple(found.values())[:3])


def _build(data: dict[str, Any]) -> tuple[dict[str, str], dict[str, list[Place]],
                                          dict[str, tuple[str, str]]]:
    arrondissement_of = {name: arr for arr, names in data["arrondissements"].items()
                         for name in names}
    places: dict[str, list[Place]] = defaultdict(list)

    def add(name: str, place: Place) -> None:
        if place not in places[normalize(name)]:
            places[normalize(name)].append(place)

    for municipality in arrondissement_of:
        add(municipality, Place(municipality, municipality))
    for municipality, names in data["deelgemeenten"].items():
        for name in names:
            add(name, Place(municipality, name))
    for name, options in data.get("ambiguous", {}).items():
        places[normalize(name)] = [Place.decode(option.replace("/", "|")) for option in options]
    for alias, target in data.get("aliases", {}).items():
        for place in places[normalize(target)]:
            add(alias, Place(place.municipality, alias))
    outside = {normalize(name): (region, name)
               for region, names in data.get("outside", {}).items() for name in names}
    return arrondissement_of, dict(places), outside


def place_problems(path: Path) -> list[str]:
    """Why the place data at ``path`` cannot be used; empty when it is sound."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return [f"cannot read place data: {exc}"]
    problems: list[str] = []
    for table in ("arrondissements", "deelgemeenten"):
        if not isinstance(data.get(table), dict):
            problems.append(f"[{table}] is missing")
    if problems:
        return problems
    municipalities = {m for names in data["arrondissements"].values() for m in names}
    if len(municipalities) != MUNICIPALITY_COUNT:
        problems.append(f"{len(municipalities)} municipalities, West Flanders has "
                        f"{MUNICIPALITY_COUNT} since 2025")
    known = {normalize(m) for m in municipalities}
    for municipality, names in data["deelgemeenten"].items():
        if municipality not in municipalities:
            problems.append(f"deelgemeenten of unknown municipality '{municipality}'")
        known.update(normalize(n) for n in names)
    for name, options in data.get("ambiguous", {}).items():
        for option in options:
            municipality, _, place = option.partition("/")
            if municipality not in municipalities or not place:
                problems.append(f"ambiguous '{name}': '{option}' is not municipality/place")
        known.add(normalize(name))
    for alias, target in data.get("aliases", {}).items():
        if normalize(target) not in known:
            problems.append(f"alias '{alias}' points to unknown place '{target}'")
        if normalize(alias) in known:
            problems.append(f"alias '{alias}' is already a name in the province")
    for region, names in data.get("outside", {}).items():
        if region not in REGIONS:
            problems.append(f"[outside] region '{region}' is not one of {', '.join(REGIONS)}")
        for name in names:
            if normalize(name) in known or normalize(name) in {
                    normalize(a) for a in data.get("aliases", {})}:
                problems.append(f"outside place '{name}' is also a West-Flemish name")
    return problems


@cache
def gazetteer() -> Gazetteer:
    """The shipped list, loaded once."""
    return Gazetteer.load()
