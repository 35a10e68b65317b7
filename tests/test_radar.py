"""The radar chart: a real PNG, and a reused figure that carries nothing over."""

from __future__ import annotations

import io

from PIL import Image

from handlers.radar import render_radar

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
