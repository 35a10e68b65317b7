"""Telegram's limits are respected before anything is sent."""

from __future__ import annotations

from bot.telegram import render
from flows.definition import Flow
from flows.engine import RETYPE, SUGGESTION
from flows.messages import BACK, PAUSE, Button, Image, Outbound


def test_long_text_is_split_at_paragraphs_and_keeps_every_character() -> None:
    paragraphs = [f"Alinea {i}: " + "woord " * 150 for i in range(12)]
    text = "\n\n".join(paragraphs)
    chunks = render.split_text(text)
    assert len(chunks) > 1
    assert all(render.utf16_length(c) <= render.MAX_TEXT for c in chunks)
    assert all(c.startswith("Alinea") for c in chunks)  # cut between paragraphs
    assert "\n\n".join(chunks) == text


def test_emoji_count_double_in_utf16_and_an_unbreakable_text_is_cut_hard() -> None:
    text = "🙂" * 3000  # 6000 UTF-16 code units
    chunks = render.split_text(text)
    assert [render.utf16_length(c) for c in chunks] == [4096, 1904]
    assert "".join(chunks) == text


def test_the_keyboard_goes_on_the_last_chunk_only() -> None:
    message = Outbound("x " * 3000, (Button("a", "Ja"), Button(PAUSE, "Later")), ref="12.3")
    sends = render.sends(message)
    assert [s.markup is not None for s in sends] == [False, True]
    rows = sends[-1].markup.inline_keyboard  # type: ignore[union-attr]
    assert [[b.callback_data for b in row] for row in rows] == [["12.3|a"], ["12.3|_pause"]]


def test_callback_data_of_every_shipped_button_fits_64_bytes(library: dict[str, Flow]) -> None:
    ref = f"{2**31}.{10**6}"  # a very large run id and step number
    ids = [c.id for flow in library.values() for n in flow.nodes for c in n.choices]
    ids += [BACK, PAUSE, RETYPE, f"{SUGGESTION}2", "nl", "en", "fr"]
    for button_id in ids:
        data = render.callback_data(ref, Button(button_id, "x"))
        assert len(data.encode()) <= render.MAX_CALLBACK_DATA
        assert render.parse_callback_data(data) == (ref, button_id)


def test_foreign_callback_data_is_not_parsed() -> None:
    assert render.parse_callback_data("something else") is None
    assert render.parse_callback_data("|x") is None


def test_a_photo_caption_is_cut_to_1024() -> None:
    message = Outbound("t", image=Image("chart.png", b"\x89PNG", "c" * 2000))
    [send] = render.sends(message)
    assert send.photo == b"\x89PNG"
    assert render.utf16_length(send.text) == render.MAX_CAPTION and send.text.endswith("…")


def test_an_answered_question_shows_the_choice() -> None:
    assert render.answered("Vraag 1 van 24\n\nHeb je een etalage?", "Ja") == (
        "Vraag 1 van 24\n\nHeb je een etalage?\n\n✅ Ja")
