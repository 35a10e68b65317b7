"""The programme's figures as they were computed before the database added them up: one
:class:`Assessed` per shop, averaged shop by shop (``flows/insight.py`` up to the grouped
path). Kept here only as the reference :mod:`test_insight_grouped` compares the grouped
path with; the k-anonymity rules are the product's own (:mod:`flows.anonymity`)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from flows.anonymity import Folding, K, fold, fold_cells, fold_nested
from flows.insight import (
    BASES,
    DIMENSIONS,
    OTHER,
    UNKNOWN,
    Averages,
    Breakdown,
    Change,
    CrossTab,
    Insight,
)


@dataclass(frozen=True, slots=True)
class Scores:
    """One assessment's result: the overall score and a score 0-100 per theme id."""

    overall: int
    themes: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Assessed:
    """One shop that finished the check: where and what it is, its first and latest
    result, and how many times it did the check."""

    municipality: str | None
    shop_type: str | None
    team_size: str | None
    first: Scores
    latest: Scores
    rounds: int = 1


def summarise(shops: Sequence[Assessed], themes: Sequence[str],
              arrondissement_of: Mapping[str, str], *, basis: str = "latest",
              k: int = K) -> Insight:
    """The averages of ``shops`` (on each one's ``basis`` result), per breakdown."""
    if basis not in BASES:
        raise ValueError(f"basis {basis!r}: expected one of {BASES}")
    key = _keys(arrondissement_of)
    everyone = fold({"all": len(shops)}, k)
    overall = _averages(shops, themes, basis, k) if "all" in everyone.shown else None
    foldings = _foldings(shops, key, arrondissement_of, k)
    breakdowns = tuple(_breakdown(shops, themes, basis, k, name, key[name], foldings[name])
                       for name in ("municipality", "arrondissement", "shop_type"))
    again = [shop for shop in shops if shop.rounds > 1]
    both = fold({"again": len(again), "once": len(shops) - len(again)}, k)
    change = (Change(_averages(again, themes, "first", k), _averages(again, themes, "latest", k))
              if "again" in both.shown else None)
    return Insight(basis, len(shops), overall, breakdowns, change)


def crosstab(shops: Sequence[Assessed], themes: Sequence[str],
             arrondissement_of: Mapping[str, str], rows: str, columns: str, *,
             basis: str = "latest", k: int = K) -> CrossTab:
    """``rows`` by ``columns`` (two of :data:`DIMENSIONS`): each line is a group its own
    breakdown shows (or "other"), each cell k-anonymous (see :func:`fold_cells`)."""
    if rows == columns or not {rows, columns} <= set(DIMENSIONS):
        raise ValueError(f"a cross-tabulation of two different ones of {DIMENSIONS}")
    key = _keys(arrondissement_of)
    foldings = _foldings(shops, key, arrondissement_of, k)

    def line(dimension: str, shop: Assessed) -> str:
        group = key[dimension](shop)
        return OTHER if group in foldings[dimension].folded else group

    members: dict[tuple[str, str], list[Assessed]] = defaultdict(list)
    if not (foldings[rows].withheld or foldings[columns].withheld):
        for shop in shops:
            members[(line(rows, shop), line(columns, shop))].append(shop)
    cells = fold_cells({cell: len(group) for cell, group in members.items()}, k)
    row_shops: Counter[str] = Counter()
    column_shops: Counter[str] = Counter()
    for (row, column), group in members.items():
        row_shops[row] += len(group)
        column_shops[column] += len(group)
    row_keys, column_keys = _ordered(row_shops), _ordered(column_shops)
    folded = (len(foldings[rows].folded), len(foldings[columns].folded))
    if cells.withheld or not members:
        return CrossTab((rows, columns), folded, row_keys, column_keys, {}, withheld=True)
    return CrossTab((rows, columns), folded, row_keys, column_keys, {
        cell: _averages(group, themes, basis, k) if cell in cells.shown else None
        for cell, group in members.items()})


def _keys(arrondissement_of: Mapping[str, str]) -> dict[str, Callable[[Assessed], str]]:
    """How each dimension names a shop's group."""
    return {
        "municipality": lambda shop: shop.municipality or UNKNOWN,
        "arrondissement": lambda shop: arrondissement_of.get(shop.municipality or "", UNKNOWN),
        "shop_type": lambda shop: shop.shop_type or UNKNOWN,
        "team_size": lambda shop: shop.team_size or UNKNOWN,
    }


def _foldings(shops: Sequence[Assessed], key: Mapping[str, Callable[[Assessed], str]],
              arrondissement_of: Mapping[str, str], k: int) -> dict[str, Folding]:
    counts = {name: Counter(key[name](shop) for shop in shops) for name in DIMENSIONS}
    arrondissements = fold(counts["arrondissement"], k)
    parent_of = {municipality: arrondissement_of.get(municipality, UNKNOWN)
                 for municipality in counts["municipality"]}
    return {"arrondissement": arrondissements,
            "municipality": fold_nested(counts["municipality"], parent_of, arrondissements, k),
            "shop_type": fold(counts["shop_type"], k),
            "team_size": fold(counts["team_size"], k)}


def _breakdown(shops: Sequence[Assessed], themes: Sequence[str], basis: str, k: int,
               name: str, key: Callable[[Assessed], str], folding: Folding) -> Breakdown:
    if folding.withheld:
        return Breakdown(name, (), None, 0, withheld=True)
    members: dict[str, list[Assessed]] = defaultdict(list)
    for shop in shops:
        group = key(shop)
        members[OTHER if group in folding.folded else group].append(shop)
    other = members.pop(OTHER, None)
    groups = tuple((group, _averages(members[group], themes, basis, k))
                   for group in _ordered(Counter({g: len(m) for g, m in members.items()})))
    return Breakdown(name, groups,
                     _averages(other, themes, basis, k) if other else None,
                     len(folding.folded))


def _ordered(counts: Counter[str]) -> tuple[str, ...]:
    """Most shops first, then by name; "other" always last."""
    return tuple(sorted(counts, key=lambda group: (group == OTHER, -counts[group], group)))


def _averages(shops: Sequence[Assessed], themes: Sequence[str], basis: str,
              k: int) -> Averages:
    total, sums, counts = 0, dict.fromkeys(themes, 0), dict.fromkeys(themes, 0)
    for shop in shops:  # one pass: this runs over every shop several times per view
        result = shop.first if basis == "first" else shop.latest
        total += result.overall
        for theme, value in result.themes.items():
            if theme in sums:
                sums[theme] += value
                counts[theme] += 1
    return Averages(len(shops), total / len(shops),
                    {theme: sums[theme] / counts[theme] for theme in themes
                     if counts[theme] >= k})
