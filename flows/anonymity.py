"""k-anonymity for every aggregate the bot shows: no figure describes fewer than K shops.

This module only decides *which groups may be shown*, from how many shops each holds; it
knows nothing of scores, storage or chat, so every aggregate (``/stats``, ``kiss-coach
stats``, exports, a dashboard later) can put its figures through the same rules.

**One breakdown** (:func:`fold`): a group of fewer than ``k`` shops is never shown on its own;
it is folded into "other". The total is public too (the funnel, the overall average), so
"other" is the total minus the shown groups, and it must not be a small group found by
subtraction either: while "other" holds 1 to ``k - 1`` shops, the smallest shown group
(ties: the first by key) is folded into it as well. When everything is folded and the
whole still counts fewer than ``k`` shops, the breakdown is withheld: nothing is shown.

**A breakdown inside another** (:func:`fold_nested`: municipalities inside arrondissements):
an arrondissement shown on its own minus its municipalities shown on their own is a
figure too. So inside every shown parent the folded children count 0 or at least ``k``
shops (the same rule as above, per parent), and the children of a folded parent are all
folded. "Other" is then a sum of parts that each count 0 or at least ``k`` shops.

**A cross-tabulation** (:func:`fold_cells`: shop type by team size): its rows and columns
are groups already folded by :func:`fold` (so each counts at least ``k`` shops and its
total is public), and every cell is a group. A cell of fewer than ``k`` shops is hidden;
in every row and every column the hidden cells together count 0 or at least ``k`` shops
(else the smallest shown cell of that line is hidden too, until they do). Hidden cells
can still be pinned down by combining rows and columns: a hidden cell that is a bridge of
the graph of hidden cells (rows and columns as vertices, cells as edges; empty cells are
taken as known) is determined exactly by the margins. If a small cell is, the whole table
is withheld.

What this does not promise: when a shown group of ``k`` shops is all of one kind (every
shop in a municipality a bakery), what the group shows is true of each of them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass

#: The fewest shops a shown figure may describe.
K = 5


@dataclass(frozen=True, slots=True)
class Folding:
    """How one breakdown may be shown.

    ``shown`` are the groups shown on their own (each has at least k shops); ``folded``
    the groups shown together as "other" (together 0 or at least k shops); ``withheld``:
    the breakdown counts fewer than k shops altogether and nothing of it is shown.
    """

    shown: frozenset[str]
    folded: frozenset[str]
    withheld: bool = False


def fold(counts: Mapping[str, int], k: int = K) -> Folding:
    """Which groups of one breakdown (group → shops) are shown, and which go to "other"."""
    present = {key: n for key, n in counts.items() if n > 0}
    return _settle(present, {key for key, n in present.items() if n < k}, k)


def fold_nested(counts: Mapping[str, int], parent_of: Mapping[str, str],
                parents: Folding, k: int = K) -> Folding:
    """Like :func:`fold`, for groups inside the groups of ``parents`` (each child's parent in
    ``parent_of``): a shown parent minus its shown children never reveals a small group."""
    present = {key: n for key, n in counts.items() if n > 0}
    children: dict[str, dict[str, int]] = defaultdict(dict)
    for key, n in present.items():
        children[parent_of[key]][key] = n
    folded: set[str] = set()
    for parent, family in children.items():
        if parent in parents.shown:
            folded |= fold(family, k).folded
        else:
            folded |= set(family)
    return _settle(present, folded, k)


def _settle(present: Mapping[str, int], folded: set[str], k: int) -> Folding:
    """Fold the smallest shown groups into ``folded`` until it counts 0 or at least k."""
    shown = sorted((key for key in present if key not in folded),
                   key=lambda key: (present[key], key))
    hidden = sum(present[key] for key in folded)
    while 0 < hidden < k and shown:
        smallest = shown.pop(0)
        folded.add(smallest)
        hidden += present[smallest]
    if 0 < hidden < k:
        return Folding(frozenset(), frozenset(folded), withheld=True)
    return Folding(frozenset(shown), frozenset(folded))


@dataclass(frozen=True, slots=True)
class CellFolding:
    """How a cross-tabulation may be shown: ``shown`` cells with their figures, ``hidden``
    cells without; ``withheld``: the table is not shown at all."""

    shown: frozenset[tuple[str, str]]
    hidden: frozenset[tuple[str, str]]
    withheld: bool = False


def fold_cells(cells: Mapping[tuple[str, str], int], k: int = K) -> CellFolding:
    """Which cells of a table ((row, column) → shops) are shown (see the module docstring).

    Rows and columns must be groups that :func:`fold` shows (or its "other"): a line of
    fewer than k shops withholds the table, since its total would reveal a small group.
    """
    present = {cell: n for cell, n in cells.items() if n > 0}
    lines: dict[tuple[int, str], list[tuple[str, str]]] = defaultdict(list)
    for cell in present:
        lines[(0, cell[0])].append(cell)
        lines[(1, cell[1])].append(cell)
    if any(sum(present[c] for c in line) < k for line in lines.values()):
        return CellFolding(frozenset(), frozenset(present), withheld=True)
    hidden = {cell for cell, n in present.items() if n < k}
    changed = True
    while changed:  # each pass hides more or stops: it ends
        changed = False
        # Rows then columns, by key: which cells are hidden follows from the counts alone,
        # not from the order the cells came in (rows of a database have none).
        for _, line in sorted(lines.items()):
            hidden_shops = sum(present[c] for c in line if c in hidden)
            if 0 < hidden_shops < k:
                smallest = min((c for c in line if c not in hidden),
                               key=lambda c: (present[c], c))
                hidden.add(smallest)
                changed = True
    if any(present[cell] < k and _bridge(cell, hidden) for cell in hidden):
        return CellFolding(frozenset(), frozenset(present), withheld=True)
    return CellFolding(frozenset(set(present) - hidden), frozenset(hidden))


def _bridge(cell: tuple[str, str], hidden: Collection[tuple[str, str]]) -> bool:
    """Whether ``cell`` is on no cycle of hidden cells: the margins then give it exactly."""
    neighbours: dict[tuple[int, str], set[tuple[int, str]]] = defaultdict(set)
    for other in hidden:
        if other != cell:
            row, column = (0, other[0]), (1, other[1])
            neighbours[row].add(column)
            neighbours[column].add(row)
    start, goal = (0, cell[0]), (1, cell[1])
    seen, todo = {start}, [start]
    while todo:
        vertex = todo.pop()
        if vertex == goal:
            return False
        for following in neighbours[vertex] - seen:
            seen.add(following)
            todo.append(following)
    return True
