"""Rendering for WhatsApp within its limits, and the ``[whatsapp]`` settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, Settings
from bot.whatsapp.render import (
    MAX_BODY,
    MAX_TEXT,
    Renderer,
    one_line,
    parse_choice,
    shorten,
    split_text,
)
from flows.messages import BACK, PAUSE, Button, Document, Outbound
from flows.texts import Texts


@pytest.fixture(scope="module")
def renderer(texts: Texts) -> Renderer:
    return Renderer(texts)


def test_three_short_answers_are_reply_buttons(renderer: Renderer) -> None:
    message = Outbound("Nederlands of Frans?", (Button("nl", "Nederlands"),
                                                Button("fr", "Français")), ref="1.1")
    (call,) = renderer.calls(message, "nl")
    interactive = call.body["interactive"]
    assert interactive["type"] == "button"
    assert [b["reply"] for b in interactive["action"]["buttons"]] == [
        {"id": "1.1|nl", "title": "Nederlands"}, {"id": "1.1|fr", "title": "Français"}]


def test_a_label_over_twenty_characters_makes_a_list_with_the_whole_label(
        renderer: Renderer) -> None:
    long = "Ja, en ik meet ook wat het opbrengt"  # 35 characters
    message = Outbound("Vraag 3 van 26", (Button("a", "Nee"), Button("b", long)), ref="q3")
    (call,) = renderer.calls(message, "nl")
    rows = call.body["interactive"]["action"]["sections"][0]["rows"]
    assert call.body["interactive"]["type"] == "list"
    assert call.body["interactive"]["action"]["button"] == "Kies je antwoord"
    assert rows[1] == {"id": "q3|b", "title": "Ja, en ik meet ook wat…", "description": long}
    assert rows[0] == {"id": "q3|a", "title": "Nee"}


def test_back_and_later_count_toward_the_ten_rows(renderer: Renderer) -> None:
    answers = tuple(Button(str(n), f"Antwoord {n}") for n in range(10))
    message = Outbound("Kies", (*answers, Button(BACK, "⬅️ Terug"), Button(PAUSE, "⏸ Later")),
                       ref="r")
    (first,) = renderer.calls(message, "nl")
    rows = first.body["interactive"]["action"]["sections"][0]["rows"]
    assert [r["title"] for r in rows] == [*(f"Antwoord {n}" for n in range(7)), "⬅️ Terug",
                                          "⏸ Later", "Meer…"]
    assert rows[-1]["id"] == "r|_more|7" and parse_choice(rows[-1]["id"]) == ("r", "_more", 7)
    (second,) = renderer.calls(message, "nl", page=7)
    assert second.body["interactive"]["body"]["text"] == "En nog deze:"
    assert [r["title"] for r in second.body["interactive"]["action"]["sections"][0]["rows"]
            ] == ["Antwoord 7", "Antwoord 8", "Antwoord 9", "⬅️ Terug", "⏸ Later"]


def test_a_long_question_goes_first_and_the_choices_follow(renderer: Renderer) -> None:
    text = "Een lange uitleg. " * 100  # 1,800 characters: over a body's 1,024
    calls = renderer.calls(Outbound(text, (Button("a", "Ja"),), ref="r"), "nl")
    assert [c.body["type"] for c in calls] == ["text", "interactive"]
    assert calls[0].body["text"]["body"] == text
    assert calls[1].body["interactive"]["body"]["text"] == "Maak je keuze:"
    assert len(calls[1].body["interactive"]["body"]["text"]) <= MAX_BODY


def test_text_is_split_at_4096_between_paragraphs() -> None:
    text = "\n\n".join(["a" * 3000, "b" * 3000, "c" * 10])
    parts = split_text(text)
    assert parts == ["a" * 3000, "b" * 3000 + "\n\n" + "c" * 10]
    assert all(len(p) <= MAX_TEXT for p in split_text("x" * 10_000))
    assert "".join(split_text("x" * 10_000)) == "x" * 10_000


def test_broadcast_html_becomes_whatsapp_markup_and_the_answer_is_confirmed(
        renderer: Renderer) -> None:
    message = Outbound('<b>Koopavond</b> op <i>vrijdag</i>: <a href="https://kernpunt.be">'
                       'info</a>', html=True, answered="Voeding")
    (call,) = renderer.calls(message, "nl")
    body = call.body["text"]["body"]
    assert body.startswith("✅ Voeding\n\n*Koopavond* op _vrijdag_")
    assert "<" not in body and "https://kernpunt.be" in body


def test_a_document_is_uploaded_with_its_caption(renderer: Renderer) -> None:
    document = Document("mijn-gegevens.json", "application/json", b"{}",
                        caption="Alles wat ik bewaar")
    (call,) = renderer.calls(Outbound("", document=document), "nl")
    assert call.body == {"type": "document", "document": {
        "filename": "mijn-gegevens.json", "caption": "Alles wat ik bewaar"}}
    assert call.upload is not None and call.upload.content_type == "application/json"


def test_a_template_parameter_is_one_line() -> None:
    assert one_line("Tip\n\nZet\tje uren     juist") == "Tip Zet je uren juist"
    assert len(one_line("woord " * 500)) <= 900
    assert shorten("Deelgemeente nummer 12 van de stad", 24) == "Deelgemeente nummer 12…"


def _config(tmp_path: Path, extra: str) -> Path:
    shipped = (Path(__file__).resolve().parent.parent / "config.toml").read_text("utf-8")
    path = tmp_path / "config.toml"
    path.write_text(shipped.replace("daily_tier = 250", extra), "utf-8")
    return path


def test_whatsapp_settings_come_from_the_file_and_secrets_from_the_environment(
        tmp_path: Path) -> None:
    env = {"WHATSAPP_ACCESS_TOKEN": "EAAG-secret-token", "WHATSAPP_APP_SECRET": "app-secret-1",
           "WHATSAPP_VERIFY_TOKEN": "verify-1", "WHATSAPP_PHONE_NUMBER_ID": "1098",
           "KISS_WHATSAPP_DAILY_TIER": "2000"}
    settings = Settings.load(_config(tmp_path, "daily_tier = 250"), env).whatsapp
    assert settings.configured and settings.daily_tier == 2000 and settings.rate == 80
    assert settings.api_base_url == "https://graph.facebook.com/v23.0"
    assert settings.policy("tip") == "template" and settings.policy("check_in") == "wait"
    assert settings.templates["broadcast"].name == "kiss_broadcast"
    assert "secret" not in repr(settings) and "verify-1" not in repr(settings)
    assert not Settings.load(_config(tmp_path, "daily_tier = 250"), {}).whatsapp.configured
    with pytest.raises(ConfigError, match="daily_tier 300"):
        Settings.load(_config(tmp_path, "daily_tier = 300"), {})
