"""A broken flow is refused at load, naming the file, the line, the node and the reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.cli import main
from flows.loader import FlowError, load_library, parse_flow

HEADER = """spec_version = 1
id = "demo"
version = "1"
languages = ["nl", "en", "fr"]
"""
T = '{ nl = "Tekst", en = "Text", fr = "Texte" }'


def choice_node(node_id: str = "q1", extra: str = "", labels: tuple[str, str] = ("Ja", "Nee"),
                ) -> str:
    return f"""
[[nodes]]
id = "{node_id}"
type = "choice"
text = {T}
{extra}
[[nodes.choices]]
id = "a"
label = {{ nl = "{labels[0]}", en = "Yes", fr = "Oui" }}
[[nodes.choices]]
id = "b"
label = {{ nl = "{labels[1]}", en = "No", fr = "Non" }}
"""


def problems(source: str) -> list[str]:
    with pytest.raises(FlowError) as caught:
        parse_flow(source, "flows/demo.toml")
    return [str(p) for p in caught.value.problems]


def test_a_valid_flow_loads_with_a_stable_digest() -> None:
    flow = parse_flow(HEADER + choice_node(), "flows/demo.toml")
    assert [n.id for n in flow.nodes] == ["q1"]
    assert flow.digest == parse_flow(HEADER + choice_node(), "x").digest
    assert flow.digest != parse_flow(HEADER + choice_node("q2"), "x").digest


def test_invalid_toml_names_the_line() -> None:
    [problem] = problems(HEADER + "\n[[nodes]]\nid = \n")
    assert problem.startswith("flows/demo.toml:7")
    assert "not valid TOML" in problem


def test_unknown_spec_version() -> None:
    assert any("spec_version 9 is not supported" in p
               for p in problems(HEADER.replace("spec_version = 1", "spec_version = 9")
                                 + choice_node()))


def test_unknown_node_type_names_file_line_and_node() -> None:
    source = HEADER + choice_node() + f'\n[[nodes]]\nid = "bad"\ntype = "dance"\ntext = {T}\n'
    [problem] = problems(source)
    assert problem.startswith("flows/demo.toml:18 [node bad]: type 'dance' is not one of")


def test_missing_translation() -> None:
    source = HEADER + choice_node().replace(f"text = {T}", 'text = { nl = "Tekst", en = "Text" }')
    assert problems(source) == ["flows/demo.toml:6 [node q1]: text has no 'fr' text"]


def test_label_too_long_for_a_phone_list() -> None:
    [problem] = problems(HEADER + choice_node(labels=("Ja, dat doe ik elke week zeker", "Nee")))
    assert "choice 'a' label 'nl' is 30 characters, the limit is 24" in problem


def test_duplicate_node_id() -> None:
    assert "node id is used twice" in problems(HEADER + choice_node() + choice_node())[0]


def test_goto_to_a_node_that_does_not_exist() -> None:
    source = HEADER + choice_node().replace('id = "b"\n', 'id = "b"\ngoto = "nowhere"\n')
    assert problems(source) == [
        "flows/demo.toml:6 [node q1]: choice 'b' goes to unknown node 'nowhere'"]


def test_a_typo_in_a_key_is_not_silently_ignored() -> None:
    assert "unknown key 'chioces'" in problems(HEADER + choice_node(extra="chioces = 1"))[0]


def test_theme_must_be_declared_and_scored_questions_need_scores_and_actions() -> None:
    found = problems(HEADER + choice_node(extra='theme = "beleving"'))
    assert any("theme 'beleving' is not declared" in p for p in found)
    assert any("choice 'a' needs a score from 0 to 1" in p for p in found)


def test_theme_with_too_few_questions() -> None:
    themes = f'[[themes]]\nid = "beleving"\nname = {T}\nabout = {T}\n'
    levels = f"[[levels]]\nmax = 100\nname = {T}\nabout = {T}\n"
    node = choice_node(extra=f'theme = "beleving"\naction = {T}').replace(
        'id = "b"\n', 'id = "b"\nscore = 0.0\n').replace('id = "a"\n', 'id = "a"\nscore = 1.0\n')
    assert problems(HEADER + themes + levels + node) == [
        "flows/demo.toml: theme 'beleving' has 1 questions, at least 4 are needed to score it"]


def test_text_and_pick_nodes_need_what_they_store_into() -> None:
    source = (HEADER + f'\n[[nodes]]\nid = "name"\ntype = "text"\ntext = {T}\n'
              + f'\n[[nodes]]\nid = "where"\ntype = "pick"\noptions = "planets"\ntext = {T}\n')
    found = problems(source)
    assert "flows/demo.toml:6 [node name]: a text node needs save_as" in found
    assert any("[node where]: options 'planets' is not a known list" in p for p in found)


def test_skip_if_must_test_a_profile_field() -> None:
    found = problems(HEADER + choice_node(extra='skip_if = { field = "age", in = ["old"] }'))
    assert found == ["flows/demo.toml:6 [node q1]: skip_if field 'age' is not a profile field"]


def test_next_flow_must_exist(tmp_path: Path) -> None:
    (tmp_path / "demo.toml").write_text(
        HEADER + f'\n[[nodes]]\nid = "done"\ntype = "end"\nnext_flow = "ghost"\ntext = {T}\n')
    with pytest.raises(FlowError, match=r"demo.toml:6 \[node done\]: next_flow 'ghost'"):
        load_library(tmp_path)


def test_the_shipped_flows_pass() -> None:
    flows = load_library(Path(__file__).resolve().parent.parent / "flows")
    assert set(flows) == {"onboarding", "assessment"}


def test_flows_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shipped = Path(__file__).resolve().parent.parent / "flows"
    assert main(["flows", "check", str(shipped)]) == 0
    assert "26 questions" in capsys.readouterr().out

    broken = tmp_path / "flows"
    shutil.copytree(shipped, broken)
    path = broken / "assessment.toml"
    path.write_text(path.read_text().replace('type = "choice"', 'type = "chioce"', 1))
    assert main(["flows", "check", str(broken)]) == 1
    error = capsys.readouterr().err
    assert f"{path}:" in error
    assert "[node beleving_etalage]: type 'chioce' is not one of" in error


def test_an_unknown_outcome_is_refused() -> None:
    """A typo in ``refused`` would make the bot keep data it says it deletes."""
    end = f'\n[[nodes]]\nid = "no"\ntype = "end"\ntext = {T}\noutcome = "refuse"\n'
    source = HEADER + choice_node() + end
    [problem] = problems(source)
    assert problem.startswith("flows/demo.toml:18 [node no]: outcome 'refuse' is not one of")


def test_only_end_nodes_have_an_outcome() -> None:
    [problem] = problems(HEADER + choice_node(extra='outcome = "refused"'))
    assert "only an end node has an outcome" in problem


def test_flows_check_refuses_a_misspelled_refusal(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(Path(__file__).resolve().parent.parent / "flows", tmp_path / "flows")
    onboarding = tmp_path / "flows" / "onboarding.toml"
    onboarding.write_text(onboarding.read_text(encoding="utf-8").replace(
        'outcome = "refused"', 'outcome = "refuse"'), encoding="utf-8")
    assert main(["flows", "check", str(tmp_path / "flows")]) == 1
    assert "outcome 'refuse' is not one of" in capsys.readouterr().err


# -- scored questions: actions per answer, priorities, ways out, synonyms, audiences --------

THEMED = HEADER + """
[[themes]]
id = "t"
name = { nl = "Thema", en = "Theme", fr = "Thème" }
about = { nl = "Over", en = "About", fr = "Sujet" }
[[levels]]
max = 100
name = { nl = "Niveau", en = "Level", fr = "Niveau" }
about = { nl = "Uitleg", en = "About", fr = "Texte" }
"""
ACTION = '{ nl = "Doe dit", en = "Do this", fr = "Faites ceci" }'


def scored(node_id: str = "q1", *, extra: str = "", low: str = f"action = {ACTION}",
           high: str = "", third: str = "") -> str:
    return f"""
[[nodes]]
id = "{node_id}"
type = "choice"
theme = "t"
text = {T}
{extra}
[[nodes.choices]]
id = "good"
label = {{ nl = "Goed", en = "Good", fr = "Bien" }}
score = 1
{high}
[[nodes.choices]]
id = "bad"
label = {{ nl = "Slecht", en = "Bad", fr = "Mal" }}
score = 0
{low}
{third}
"""


def four(**kwargs: str) -> str:
    return "".join(scored(f"q{i}", **kwargs) for i in range(1, 5))


def test_a_valid_scored_theme_loads_with_per_choice_actions() -> None:
    flow = parse_flow(THEMED + four(), "flows/demo.toml")
    node = flow.node("q1")
    bad = node.choice("bad")
    assert bad is not None and node.action_for(bad, None) == {
        "nl": "Doe dit", "en": "Do this", "fr": "Faites ceci"}
    assert node.priority == 3


def test_a_low_scoring_choice_without_an_action_is_refused() -> None:
    found = problems(THEMED + four(low=""))
    assert any("[node q1]: choice 'bad' scores 0 but has no action" in p for p in found)


def test_an_action_on_a_full_marks_choice_is_refused() -> None:
    found = problems(THEMED + four(high=f"action = {ACTION}"))
    assert any("choice 'good' has an action but never needs one" in p for p in found)


def test_priority_must_be_1_to_5() -> None:
    found = problems(THEMED + four(extra="priority = 9"))
    assert any("priority must be a whole number from 1 to 5" in p for p in found)


def test_a_way_out_has_no_score_and_there_is_one_per_question() -> None:
    way_out = """[[nodes.choices]]
id = "{id}"
label = {{ nl = "{nl}", en = "{nl}", fr = "{nl}" }}
way_out = true
"""
    ok = parse_flow(THEMED + four(third=way_out.format(id="dunno", nl="Weet niet")), "x")
    choice = ok.node("q1").choice("dunno")
    assert choice is not None and choice.score is None
    two = way_out.format(id="w1", nl="Weet niet") + way_out.format(id="w2", nl="Geen")
    assert any("at most one way out" in p for p in problems(THEMED + four(third=two)))
    with_score = way_out.format(id="w1", nl="Weet niet") + "score = 0\n"
    assert any("is a way out: only in a scored question, and without a score" in p
               for p in problems(THEMED + four(third=with_score)))


def test_synonyms_must_be_words_per_language_and_unambiguous() -> None:
    good = 'synonyms = { nl = ["oké", "ja hoor"], fr = ["d\'accord"] }'
    flow = parse_flow(HEADER + choice_node(extra="").replace(
        'en = "Yes", fr = "Oui" }', 'en = "Yes", fr = "Oui" }\n' + good, 1), "x")
    yes = flow.node("q1").choice("a")
    assert yes is not None and yes.synonyms["nl"] == ("oké", "ja hoor")
    for bad, reason in [('synonyms = { de = ["ja"] }', "must be a table per language"),
                        ('synonyms = { nl = ["2"] }', "not a number"),
                        ('synonyms = { nl = "ja" }', "must be a list of words"),
                        ('synonyms = { en = ["no"] }', "would mean both choice 'a' and 'b'")]:
        source = HEADER + choice_node().replace('en = "Yes", fr = "Oui" }',
                                                'en = "Yes", fr = "Oui" }\n' + bad, 1)
        assert any(reason in p for p in problems(source)), bad


AUDIENCE = """
[[audiences]]
id = "service"
field = "shop_type"
in = ["horeca_services"]
"""
VARIANT = """[nodes.variants.service]
text = { nl = "Anders", en = "Other", fr = "Autre" }
"""


def test_with_audiences_every_question_says_whether_it_fits_them() -> None:
    found = problems(THEMED + AUDIENCE + four())
    assert any("[node q1]: say whether this question fits audience 'service'" in p
               for p in found)
    fits = parse_flow(THEMED + AUDIENCE + four(extra='fits = ["service"]'), "x")
    assert fits.node("q1").text_for("service") == fits.node("q1").text
    varied = parse_flow(THEMED + AUDIENCE + four(third=VARIANT), "x")
    assert varied.node("q1").text_for("service")["nl"] == "Anders"
    assert varied.audience_of({"shop_type": "horeca_services"}) == "service"
    assert varied.audience_of({"shop_type": "food"}) is None


def test_variants_name_declared_audiences_and_skip_alone() -> None:
    unknown = VARIANT.replace("variants.service", "variants.garage")
    assert any("variant for unknown audience 'garage'" in p
               for p in problems(THEMED + AUDIENCE + four(extra='fits = ["service"]',
                                                          third=unknown)))
    skip_and_text = VARIANT + "skip = true\n"
    assert any("skips the question, so it has no text" in p
               for p in problems(THEMED + AUDIENCE + four(third=skip_and_text)))
    skipped = parse_flow(THEMED + AUDIENCE + four(
        third="[nodes.variants.service]\nskip = true\n"), "x")
    assert not skipped.asks(skipped.node("q1"), {"shop_type": "horeca_services"})
    assert skipped.asks(skipped.node("q1"), {"shop_type": "food"})


def test_the_uneven_level_text_must_name_the_weakest_theme() -> None:
    source = THEMED.replace('about = { nl = "Uitleg", en = "About", fr = "Texte" }',
                            'about = { nl = "Uitleg", en = "About", fr = "Texte" }\n'
                            'about_uneven = { nl = "Zwak", en = "{weakest}", fr = "{weakest}" }')
    assert any("about_uneven must name the {weakest} theme" in p
               for p in problems(source + four()))


def test_flows_check_refuses_broken_place_data(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "flows"
    shutil.copytree(Path(__file__).resolve().parent.parent / "flows", broken)
    places = broken / "data" / "places.toml"
    places.write_text(places.read_text().replace('Passchendaele = "Passendale"',
                                                 'Passchendaele = "Passendael"'))
    assert main(["flows", "check", str(broken)]) == 1
    assert "alias 'Passchendaele' points to unknown place 'Passendael'" in (
        capsys.readouterr().err)
