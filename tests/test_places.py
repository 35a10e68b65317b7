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
    assert match.suggestions[0].label == "Kortrijk"
    assert len(match.suggestions) <= 3


def test_nonsense_gets_no_suggestions() -> None:
    assert gazetteer().find("Amsterdam 🌷") == gazetteer().find("zzzz")
    assert gazetteer().find("").name is None


@pytest.mark.parametrize(("typed", "municipality"), [
    ("Heule", "Kortrijk"), ("Rumbeke", "Roeselare"), ("Westende", "Middelkerke"),
    ("Passchendaele", "Zonnebeke"), ("Le Coq", "De Haan"), ("Thourout", "Torhout"),
    ("Rollegem", "Kortrijk"), ("Rollegem-Kapelle", "Ledegem"), ("Lo", "Lo-Reninge"),
    ("Beveren-Leie", "Waregem"), ("Zeebrugge", "Brugge"), ("De Klijte", "Heuvelland"),
])
def test_deelgemeenten_and_historic_names_end_at_their_municipality(
        typed: str, municipality: str) -> None:
    match = gazetteer().find(typed)
    assert (match.name, match.suggestions) == (municipality, ())


def test_every_deelgemeente_maps_without_suggesting_another_municipality() -> None:
    """An exact name never gets a fuzzy suggestion: 190 deelgemeenten, all found."""
    import tomllib

    from flows.places import DATA_FILE
    data = tomllib.loads(DATA_FILE.read_text(encoding="utf-8"))
    duplicates = {"Oostkerke", "Ramskapelle", "Sint-Joris", "Zandvoorde", "Beveren"}
    for municipality, names in data["deelgemeenten"].items():
        for name in names:
            match = gazetteer().find(name)
            if name in duplicates:
                assert municipality in {p.municipality for p in match.candidates}, name
            else:
                assert match.name == municipality, name


@pytest.mark.parametrize(("typed", "candidates"), [
    ("Beveren", {"Roeselare", "Waregem", "Alveringem"}),
    ("Zandvoorde", {"Oostende", "Zonnebeke"}),
    ("Ramskapelle", {"Knokke-Heist", "Nieuwpoort"}),
    ("Oostkerke", {"Damme", "Diksmuide"}),
    ("Sint-Joris", {"Beernem", "Nieuwpoort"}),
])
def test_ambiguous_names_offer_the_candidates(typed: str, candidates: set[str]) -> None:
    match = gazetteer().find(typed)
    assert match.name is None
    assert {p.municipality for p in match.candidates} == candidates


@pytest.mark.parametrize(("typed", "region"), [
    ("Moeskroen", "hainaut"), ("Mouscron", "hainaut"), ("Komen-Waasten", "hainaut"),
    ("Aalter", "east_flanders"), ("Deinze", "east_flanders"), ("Armentières", "france"),
])
def test_places_outside_west_flanders_are_recognised(typed: str, region: str) -> None:
    match = gazetteer().find(typed)
    assert (match.name, match.outside, match.suggestions) == (None, region, ())
