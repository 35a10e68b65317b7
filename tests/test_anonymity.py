"""k-anonymity: no figure describes fewer than 5 shops, on its own, as "other", by
subtracting shown groups from the total or from a shown parent, or as a table cell."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from flows.anonymity import Folding, K, fold, fold_cells, fold_nested


def hidden_shops(counts: dict[str, int], folding: Folding) -> int:
    return sum(counts[key] for key in folding.folded)


@pytest.mark.parametrize(("counts", "shown", "folded", "withheld"), [
    # every group large enough: all shown, nothing folded
    ({"A": 10, "B": 7}, {"A", "B"}, set(), False),
    ({"A": 5}, {"A"}, set(), False),
    # small groups together reach k: they are "other"
    ({"A": 10, "B": 3, "C": 2}, {"A"}, {"B", "C"}, False),
    # "other" would be 2 shops (total minus shown reveals them): fold the next-smallest
    ({"A": 10, "B": 6, "C": 2}, {"A"}, {"B", "C"}, False),
    # one small group beside one large: only "other" (the whole) can be shown
    ({"A": 10, "B": 3}, set(), {"A", "B"}, False),
    # ties in size: the first by name is folded, so a view is the same every time
    ({"A": 6, "B": 6, "C": 1}, {"B"}, {"A", "C"}, False),
    # everything small, together k: shown as "other" only
    ({"A": 4, "B": 1}, set(), {"A", "B"}, False),
    # fewer than k altogether: nothing at all
    ({"A": 3}, set(), {"A"}, True),
    ({"A": 2, "B": 2}, set(), {"A", "B"}, True),
    ({}, set(), set(), False),
    # an empty group is no group
    ({"A": 0, "B": 5}, {"B"}, set(), False),
])
def test_small_groups_fold_into_other(counts: dict[str, int], shown: set[str],
                                      folded: set[str], withheld: bool) -> None:
    folding = fold(counts)
    assert (set(folding.shown), set(folding.folded), folding.withheld) == (
        shown, folded, withheld)


def test_a_larger_k_folds_more() -> None:
    assert fold({"A": 10, "B": 7}, k=8) == Folding(frozenset(), frozenset({"A", "B"}))


ARRONDISSEMENT = {"m1": "X", "m2": "X", "m3": "Y", "m4": "Y", "m5": "Y"}


@pytest.mark.parametrize(("counts", "shown", "folded"), [
    # X (12) is shown; X minus m1 (8) would reveal m2 (4): m1 is folded too
    ({"m1": 8, "m2": 4, "m3": 6}, {"m3"}, {"m1", "m2"}),
    # Y (10): m5 alone (4) is too few, so Y's municipalities are all folded
    ({"m1": 8, "m2": 7, "m3": 6, "m5": 4}, {"m1", "m2"}, {"m3", "m5"}),
    # inside a shown parent the folded part reaches k: nothing more to do
    ({"m1": 9, "m3": 7, "m4": 3, "m5": 2}, {"m1", "m3"}, {"m4", "m5"}),
    # a folded parent folds all its children, even a child of k shops
    ({"m1": 12, "m3": 1, "m4": 2}, set(), {"m1", "m3", "m4"}),
])
def test_a_shown_parent_minus_its_shown_children_never_reveals_a_small_group(
        counts: dict[str, int], shown: set[str], folded: set[str]) -> None:
    parents_counts: dict[str, int] = defaultdict(int)
    for key, n in counts.items():
        parents_counts[ARRONDISSEMENT[key]] += n
    parents = fold(parents_counts)
    folding = fold_nested(counts, ARRONDISSEMENT, parents)
    assert (set(folding.shown), set(folding.folded)) == (shown, folded)
    for parent in parents.shown:
        inside = sum(n for key, n in counts.items()
                     if ARRONDISSEMENT[key] == parent and key in folding.folded)
        assert inside == 0 or inside >= K, parent


def test_the_flat_rule_alone_would_reveal_the_small_group_by_subtraction() -> None:
    """Why the nesting matters: with arrondissement X (12) shown and m1 (8) shown, X - m1
    is m2's 4 shops."""
    counts = {"m1": 8, "m2": 4, "m3": 6}
    flat = fold(counts)
    assert flat.shown == {"m1"}  # m2 and m3 make "other" (10): fine on its own …
    x_minus_shown = 8 + 4 - sum(counts[m] for m in flat.shown if ARRONDISSEMENT[m] == "X")
    assert 0 < x_minus_shown < K  # … but arrondissement X minus m1 is m2 alone


@pytest.mark.parametrize("seed", range(40))
def test_random_populations_never_show_a_small_group(seed: int) -> None:
    rng = random.Random(seed)
    counts = {f"m{i}": rng.choice([0, 1, 1, 2, 3, 4, 5, 6, 9, 20])
              for i in range(rng.randint(1, 12))}
    parent_of = {key: f"A{rng.randint(1, 4)}" for key in counts}
    parents_counts: dict[str, int] = defaultdict(int)
    for key, n in counts.items():
        parents_counts[parent_of[key]] += n
    parents = fold(parents_counts)
    for folding in (fold(counts), fold_nested(counts, parent_of, parents)):
        assert all(counts[key] >= K for key in folding.shown)
        other = hidden_shops(counts, folding)
        if folding.withheld:
            assert not folding.shown and sum(counts.values()) < K
        else:
            assert other == 0 or other >= K
    nested = fold_nested(counts, parent_of, parents)
    for parent in parents.shown:
        inside = sum(n for key, n in counts.items()
                     if parent_of[key] == parent and key in nested.folded)
        assert inside == 0 or inside >= K


@pytest.mark.parametrize(("cells", "shown", "withheld"), [
    # every cell large enough
    ({("a", "x"): 5, ("a", "y"): 6, ("b", "x"): 7, ("b", "y"): 8},
     {("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")}, False),
    # a block of small cells whose rows and columns each hide k or more: the rest shown
    ({("a", "x"): 3, ("a", "y"): 3, ("b", "x"): 3, ("b", "y"): 3, ("c", "x"): 10,
      ("c", "y"): 10}, {("c", "x"), ("c", "y")}, False),
    # one small cell per row: its row partner and column partner are hidden too
    ({("a", "x"): 10, ("a", "y"): 2, ("b", "x"): 3, ("b", "y"): 10}, set(), False),
    # shop type by team size where the small cells form a chain: the margins give (b, x)
    # = 1 exactly, however the cells are hidden: the table is withheld
    ({("a", "x"): 5, ("b", "x"): 1, ("b", "y"): 9}, set(), True),
    # a line of fewer than k shops: its total would reveal it
    ({("a", "x"): 3, ("b", "x"): 10}, set(), True),
])
def test_cross_tabulations_respect_k_in_each_cell(
        cells: dict[tuple[str, str], int], shown: set[tuple[str, str]],
        withheld: bool) -> None:
    folding = fold_cells(cells)
    assert (set(folding.shown), folding.withheld) == (shown, withheld)
    if not withheld:
        assert all(cells[cell] >= K for cell in folding.shown)
        for index in (0, 1):
            for line in {cell[index] for cell in cells}:
                hidden = sum(n for cell, n in cells.items()
                             if cell[index] == line and cell in folding.hidden)
                assert hidden == 0 or hidden >= K, line


@pytest.mark.parametrize("seed", range(40))
def test_random_tables_never_show_or_pin_down_a_small_cell(seed: int) -> None:
    rng = random.Random(seed)
    cells = {(f"r{i}", f"c{j}"): rng.choice([0, 1, 2, 3, 4, 6, 9, 15])
             for i in range(rng.randint(2, 6)) for j in range(rng.randint(2, 4))}
    folding = fold_cells(cells)
    if folding.withheld:
        return
    assert all(cells[cell] >= K for cell in folding.shown)
    small = [cell for cell in folding.hidden if cells[cell] < K]
    for cell in small:  # on a cycle of hidden cells: the margins leave it open
        assert _on_cycle(cell, folding.hidden)


@pytest.mark.parametrize("seed", range(40))
def test_a_table_is_folded_the_same_whatever_order_its_cells_come_in(seed: int) -> None:
    rng = random.Random(seed)
    cells = [((f"r{i}", f"c{j}"), rng.choice([0, 1, 2, 3, 4, 6, 9, 15]))
             for i in range(rng.randint(2, 6)) for j in range(rng.randint(2, 4))]
    shuffled = cells.copy()
    rng.shuffle(shuffled)
    assert fold_cells(dict(shuffled)) == fold_cells(dict(cells))
    assert fold_cells(dict(reversed(cells))) == fold_cells(dict(cells))


def _on_cycle(cell: tuple[str, str], hidden: frozenset[tuple[str, str]]) -> bool:
    """Brute force: some other hidden cells join the cell's row to its column."""
    reach = {("r", cell[0])}
    changed = True
    while changed:
        changed = False
        for other in hidden - {cell}:
            ends = {("r", other[0]), ("c", other[1])}
            if ends & reach and not ends <= reach:
                reach |= ends
                changed = True
    return ("c", cell[1]) in reach
