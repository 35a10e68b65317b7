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
    assert any("needs an action" in p for p in found)


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
    assert "24 questions" in capsys.readouterr().out

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
