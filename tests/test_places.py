"""Typed municipality names: case, accents, old names after the 2025 mergers, typos."""

from __future__ import annotations

import pytest

from flows.places import gazetteer


def test_there_are_62_municipalities_in_8_arrondissements() -> None:
    places = gazetteer()
    assert len(places.municipalities) == 62
    assert len(set(places.arrondissement_of.values())) == 8
    assert "Meulebeke" not in places.municipalities  # merged into Tielt on 1 January 2025


@pytest.mark.parametrize(("typed", "expected"), [
    ("Kortrijk", "Kortrijk"),
    ("  KORTRIJK ", "Kortrijk"),
    ("knokke heist", "Knokke-Heist"),
    ("dehaan", "De Haan"),
    ("Lo-Rénínge", "Lo-Reninge"),
    ("langemark", "Langemark-Poelkapelle"),
    ("Ypres", "Ieper"),
    ("Courtrai", "Kortrijk"),
])
def test_names_people_type(typed: str, expected: str) -> None:
    assert gazetteer().find(typed).name == expected


@pytest.mark.parametrize(("old", "now"), [("Meulebeke", "Tielt"), ("ruiselede", "Wingene")])
def test_old_names_of_merged_municipalities(old: str, now: str) -> None:
    match = gazetteer().find(old)
    assert match.name == now
    assert match.alias_of is not None and match.alias_of.casefold() == old.casefold()


def test_a_typo_gets_the_closest_names_as_suggestions() -> None:
    match = gazetteer().find("Kortryk")
    assert match.name is None
    assert match.suggestions[0] == "Kortrijk"
    assert len(match.suggestions) <= 3


def test_nonsense_gets_no_suggestions() -> None:
    assert gazetteer().find("Amsterdam 🌷") == gazetteer().find("zzzz")
    assert gazetteer().find("").name is None
