"""The radar chart: a real PNG, and a reused figure that carries nothing over."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from flows.definition import Flow
from handlers.radar import label_overlaps, render_radar

THEMES = ["Beleving", "Vakkennis", "Innovatie", "Toekomstgericht", "Digitalisering",
          "Anders-denken"]


def test_a_chart_is_a_png_of_the_promised_size() -> None:
    png = render_radar(THEMES, [10, 20, 30, 40, 50, 60], "Jouw profiel")
    image = Image.open(io.BytesIO(png))
    assert (image.format, image.size) == ("PNG", (600, 600))


def test_the_reused_figure_forgets_the_previous_chart() -> None:
    first = render_radar(THEMES, [10, 20, 30, 40, 50, 60], "Jouw profiel")
    other = render_radar(["A", "B", "C", "D", "E", "F"], [90, 80, 70, 60, 50, 40], "Your profile")
    again = render_radar(THEMES, [10, 20, 30, 40, 50, 60], "Jouw profiel")
    assert other != first
    assert again == first


def test_a_different_number_of_themes_gets_its_own_figure() -> None:
    png = render_radar(THEMES[:5], [10, 20, 30, 40, 50], "Vijf")
    assert Image.open(io.BytesIO(png)).format == "PNG"


@pytest.mark.parametrize("lang", ["nl", "en", "fr"])
def test_labels_stay_off_the_outer_ring_in_every_language(
        library: dict[str, Flow], lang: str) -> None:
    flow = library["assessment"]
    labels = [t.name[lang] for t in flow.themes]
    render_radar(labels, [100, 0, 55, 100, 25, 100], "Profil")
    assert label_overlaps(len(labels)) == []


def test_an_all_zero_result_still_shows_a_shape() -> None:
    png = render_radar(THEMES, [0] * 6, "Jouw profiel")
    image = Image.open(io.BytesIO(png)).convert("RGB")
    centre = image.getpixel((image.width // 2, int(image.height * (1 - 0.17 - 0.28))))
    assert centre != (255, 255, 255)  # the filled brand-coloured shape, not blank paper
    assert png != render_radar(THEMES, [100] * 6, "Jouw profiel")
