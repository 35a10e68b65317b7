"""Insight for the programme's admins: average scores overall, per municipality,
arrondissement and shop type, and the change from the first check to the latest, every
figure k-anonymous (:mod:`flows.anonymity`).

Pure: it takes :class:`Tally` rows, the sums per profile that :mod:`storage.insight` has
the database add up (a few hundred rows for 10,000 shops), and returns figures; saying
them in chat or in the terminal is :mod:`handlers.stats`'s job. Every figure is an
average or a count, so per-profile sums give exactly what shop-by-shop averaging gave.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from flows.anonymity import Folding, K, fold, fold_cells, fold_nested

#: The group key of shops folded into "other" (no municipality or shop type is called so).
OTHER = "*other*"
#: The group key of shops whose municipality (or shop type, …) is not known.
UNKNOWN = ""
#: What can be broken down by; the cross-tabulations take two of them.
DIMENSIONS = ("municipality", "arrondissement", "shop_type", "team_size")
#: What is stored with a shop that tallies can be grouped by (an arrondissement is not:
#: it follows from the municipality, see :mod:`flows.places`).
PROFILE = ("municipality", "shop_type", "team_size")
#: One more dimension for a cross-tabulation: whether shops did the check ``"once"`` or
#: ``"again"`` (the progress page's table per municipality).
ONCE_OR_AGAIN = "rounds"
#: Which result of a person counts: their latest check (the default) or their first (T0).
BASES = ("latest", "first")


@dataclass(frozen=True, slots=True)
class Sums:
    """What the averages of some shops' results are made of: their overall scores added
    up, and per theme id the scores added up and how many of the shops have one (a result
    of an older flow may lack a theme)."""

    overall: int
    themes: Mapping[str, tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Tally:
    """The shops that finished the check and share one profile: ``profile`` maps what they
    were grouped by (``municipality``, ``shop_type``, ``team_size``: a subset, see
    :data:`PROFILE`) to its value (None: not known); ``again`` whether they did the check
    more than once. ``first`` and ``latest``: the sums of their first and latest results
    (the same for shops that did it once).

    Every figure here is an average, so the sums of a group's tallies are all it takes:
    the database adds up each profile (:func:`storage.insight.tallies`), a few hundred
    rows, and this module adds those up per group."""

    profile: Mapping[str, str | None]
    again: bool
    shops: int
    first: Sums
    latest: Sums


@dataclass(frozen=True, slots=True)
class Averages:
    """The average scores of a group of ``shops``; a theme some of them have no score
    for (a result of an older flow) is left out when fewer than k have one."""

    shops: int
    overall: float
    themes: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Breakdown:
    """One breakdown: ``groups`` shown on their own (most shops first, then by key),
    ``other`` for the folded ones together (None when nothing was folded), and how many
    groups ``other`` holds. ``withheld``: too few shops to show any of it."""

    dimension: str
    groups: tuple[tuple[str, Averages], ...]
    other: Averages | None
    folded: int
    withheld: bool = False


@dataclass(frozen=True, slots=True)
class Change:
    """The shops that did the check more than once: their first and latest averages."""

    first: Averages
    latest: Averages


@dataclass(frozen=True, slots=True)
class Insight:
    """Everything a stats view shows besides the funnel. ``overall`` is None when fewer
    than k shops finished the check; ``change`` when fewer than k did it again (or the
    shops that did it once are 1 to k-1: comparing both would reveal them)."""

    basis: str
    shops: int
    overall: Averages | None
    breakdowns: tuple[Breakdown, ...]
    change: Change | None


@dataclass(frozen=True, slots=True)
class CrossTab:
    """Two dimensions at once (``dimensions``: rows, columns): ``cells`` maps (row,
    column) to averages, or to None for a hidden cell; an empty cell is absent. ``folded``:
    how many groups each dimension's "other" holds. ``withheld``: nothing is shown."""

    dimensions: tuple[str, str]
    folded: tuple[int, int]
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    cells: Mapping[tuple[str, str], Averages | None]
    withheld: bool = False


def whole(value: float) -> int:
    """An average as people round it: half up (32.5 is 33, not Python's 32)."""
    return math.floor(value + 0.5)


def profile_for(dimensions: Collection[str] = ()) -> tuple[str, ...]:
    """What tallies must be grouped by (of :data:`PROFILE`) for :func:`summarise` and for a
    :func:`crosstab` of ``dimensions`` (an arrondissement is found from its municipality)."""
    needed = {"municipality", "shop_type", *dimensions}
    return tuple(field for field in PROFILE if field in needed)


def summarise(tallies: Sequence[Tally], themes: Sequence[str],
              arrondissement_of: Mapping[str, str], *, basis: str = "latest",
              k: int = K) -> Insight:
    """The averages of the shops of ``tallies`` (on each one's ``basis`` result), per
    breakdown. The tallies must be grouped by municipality and shop type at least."""
    if basis not in BASES:
        raise ValueError(f"basis {basis!r}: expected one of {BASES}")
    key = _keys(arrondissement_of)
    shops = sum(tally.shops for tally in tallies)
    everyone = fold({"all": shops}, k)
    overall = _averages(tallies, themes, basis, k) if "all" in everyone.shown else None
    names = ("municipality", "arrondissement", "shop_type")
    foldings = _foldings(tallies, key, arrondissement_of, k, names)
    breakdowns = tuple(_breakdown(tallies, themes, basis, k, name, key[name], foldings[name])
                       for name in names)
    again = [tally for tally in tallies if tally.again]
    twice = sum(tally.shops for tally in again)
    both = fold({"again": twice, "once": shops - twice}, k)
    change = (Change(_averages(again, themes, "first", k),
                     _averages(again, themes, "latest", k)) if "again" in both.shown else None)
    return Insight(basis, shops, overall, breakdowns, change)


def crosstab(tallies: Sequence[Tally], themes: Sequence[str],
             arrondissement_of: Mapping[str, str], rows: str, columns: str, *,
             basis: str = "latest", k: int = K) -> CrossTab:
    """``rows`` by ``columns`` (two of :data:`DIMENSIONS` and :data:`ONCE_OR_AGAIN`): each
    line is a group its own breakdown shows (or "other"), each cell k-anonymous (see
    :func:`fold_cells`). The tallies must be grouped by what both need
    (:func:`profile_for`)."""
    if rows == columns or not {rows, columns} <= {*DIMENSIONS, ONCE_OR_AGAIN}:
        raise ValueError(f"a cross-tabulation of two different ones of {DIMENSIONS} "
                         f"or {ONCE_OR_AGAIN!r}")
    key = _keys(arrondissement_of)
    foldings = _foldings(tallies, key, arrondissement_of, k, (rows, columns))

    def line(dimension: str, tally: Tally) -> str:
        group = key[dimension](tally)
        return OTHER if group in foldings[dimension].folded else group

    members: dict[tuple[str, str], list[Tally]] = defaultdict(list)
    if not (foldings[rows].withheld or foldings[columns].withheld):
        for tally in tallies:
            members[(line(rows, tally), line(columns, tally))].append(tally)
    sizes = {cell: sum(tally.shops for tally in group) for cell, group in members.items()}
    cells = fold_cells(sizes, k)
    row_shops: Counter[str] = Counter()
    column_shops: Counter[str] = Counter()
    for (row, column), size in sizes.items():
        row_shops[row] += size
        column_shops[column] += size
    row_keys, column_keys = _ordered(row_shops), _ordered(column_shops)
    folded = (len(foldings[rows].folded), len(foldings[columns].folded))
    if cells.withheld or not members:
        return CrossTab((rows, columns), folded, row_keys, column_keys, {}, withheld=True)
    return CrossTab((rows, columns), folded, row_keys, column_keys, {
        cell: _averages(group, themes, basis, k) if cell in cells.shown else None
        for cell, group in members.items()})


def _keys(arrondissement_of: Mapping[str, str]) -> dict[str, Callable[[Tally], str]]:
    """How each dimension names a tally's group."""
    return {
        "municipality": lambda tally: tally.profile["municipality"] or UNKNOWN,
        "arrondissement": lambda tally: arrondissement_of.get(
            tally.profile["municipality"] or "", UNKNOWN),
        "shop_type": lambda tally: tally.profile["shop_type"] or UNKNOWN,
        "team_size": lambda tally: tally.profile["team_size"] or UNKNOWN,
        ONCE_OR_AGAIN: lambda tally: "again" if tally.again else "once",
    }


def _foldings(tallies: Sequence[Tally], key: Mapping[str, Callable[[Tally], str]],
              arrondissement_of: Mapping[str, str], k: int,
              dimensions: Collection[str]) -> dict[str, Folding]:
    """How each of ``dimensions`` is folded; municipalities inside their arrondissements."""
    names = {*dimensions, *(("arrondissement",) if "municipality" in dimensions else ())}
    counts: dict[str, Counter[str]] = {name: Counter() for name in names}
    for tally in tallies:
        for name in names:
            counts[name][key[name](tally)] += tally.shops
    foldings = {name: fold(counts[name], k) for name in names if name != "municipality"}
    if "municipality" in names:
        parent_of = {municipality: arrondissement_of.get(municipality, UNKNOWN)
                     for municipality in counts["municipality"]}
        foldings["municipality"] = fold_nested(counts["municipality"], parent_of,
                                               foldings["arrondissement"], k)
    return foldings


def _breakdown(tallies: Sequence[Tally], themes: Sequence[str], basis: str, k: int,
               name: str, key: Callable[[Tally], str], folding: Folding) -> Breakdown:
    if folding.withheld:
        return Breakdown(name, (), None, 0, withheld=True)
    members: dict[str, list[Tally]] = defaultdict(list)
    for tally in tallies:
        group = key(tally)
        members[OTHER if group in folding.folded else group].append(tally)
    other = members.pop(OTHER, None)
    sizes = Counter({group: sum(tally.shops for tally in found)
                     for group, found in members.items()})
    groups = tuple((group, _averages(members[group], themes, basis, k))
                   for group in _ordered(sizes))
    return Breakdown(name, groups,
                     _averages(other, themes, basis, k) if other else None,
                     len(folding.folded))


def _ordered(counts: Counter[str]) -> tuple[str, ...]:
    """Most shops first, then by name; "other" always last."""
    return tuple(sorted(counts, key=lambda group: (group == OTHER, -counts[group], group)))


def _averages(tallies: Sequence[Tally], themes: Sequence[str], basis: str,
              k: int) -> Averages:
    shops, total = 0, 0
    sums, counts = dict.fromkeys(themes, 0), dict.fromkeys(themes, 0)
    for tally in tallies:
        result = tally.first if basis == "first" else tally.latest
        shops += tally.shops
        total += result.overall
        for theme, (added, scored) in result.themes.items():
            if theme in sums:
                sums[theme] += added
                counts[theme] += scored
    # Whole numbers added up, divided once: the same float as averaging shop by shop.
    return Averages(shops, total / shops,
                    {theme: sums[theme] / counts[theme] for theme in themes
                     if counts[theme] >= k})
