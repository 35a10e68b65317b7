"""The UI texts: one table per language, gathered from the main file and the area folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.definition import LANGUAGES
from flows.loader import FlowError
from flows.texts import Texts


def _write(directory: Path, texts: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    body = "".join(f'{key} = "{value}"\n' for key, value in texts.items())
    for lang in LANGUAGES:
        (directory / f"{lang}.toml").write_text(body, encoding="utf-8")


def test_an_area_folder_adds_its_texts(tmp_path: Path) -> None:
    _write(tmp_path, {"help": "Hulp"})
    _write(tmp_path / "privacy", {"mydata": "Jouw gegevens, {name}"})
    texts = Texts.load(tmp_path)
    assert texts.get("nl", "help") == "Hulp"
    assert texts.get("fr", "mydata", name="Ann") == "Jouw gegevens, Ann"


def test_a_key_in_two_files_is_refused_with_both_files(tmp_path: Path) -> None:
    _write(tmp_path, {"help": "Hulp"})
    _write(tmp_path / "privacy", {"help": "Nog eens"})
    with pytest.raises(FlowError) as caught:
        Texts.load(tmp_path)
    message = str(caught.value)
    assert "'help' is also in" in message and "privacy" in message


def test_an_area_missing_a_language_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, {"help": "Hulp"})
    _write(tmp_path / "privacy", {"mydata": "x"})
    (tmp_path / "privacy" / "fr.toml").unlink()
    with pytest.raises(FlowError, match="cannot read texts"):
        Texts.load(tmp_path)
