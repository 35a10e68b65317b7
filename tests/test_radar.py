"""The radar chart: a real PNG, and a reused figure that carries nothing over; after a
re-assessment the earlier profile under the current one; the chart as outbox data."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from PIL import Image

from flows.definition import Flow
from flows.messages import Chart, Outbound
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


# -- after a re-assessment: the earlier profile under the current one ----------------------

BEFORE = [25, 20, 30, 10, 50, 55]
NOW = [40, 60, 30, 40, 50, 60]
LEGEND = ("Vorige keer", "Nu")


def test_a_chart_with_an_earlier_profile_is_a_png_of_the_promised_size() -> None:
    png = render_radar(THEMES, NOW, "Jouw profiel", before=BEFORE, legend=LEGEND)
    image = Image.open(io.BytesIO(png))
    assert (image.format, image.size) == ("PNG", (600, 600))


def test_the_earlier_profile_and_legend_change_the_picture() -> None:
    plain = render_radar(THEMES, NOW, "Jouw profiel")
    overlay = render_radar(THEMES, NOW, "Jouw profiel", before=BEFORE, legend=LEGEND)
    assert overlay != plain
    assert overlay != render_radar(THEMES, NOW, "Jouw profiel", before=BEFORE,
                                   legend=("Avant", "Maintenant"))
    assert overlay != render_radar(THEMES, NOW, "Jouw profiel", before=[90] * 6, legend=LEGEND)


def test_the_earlier_profile_is_drawn_in_grey_under_the_current_one() -> None:
    def pixel(png: bytes, up: float) -> tuple[int, ...]:
        """The colour ``up`` of the radius above the centre, just beside the top axis."""
        image = Image.open(io.BytesIO(png)).convert("RGB")
        cx, cy, radius = image.width // 2, image.height * (1 - 0.17 - 0.28), image.height * 0.28
        return tuple(image.getpixel((cx + 8, int(cy - up * radius))))  # type: ignore[arg-type]

    plain = render_radar(THEMES, [50] * 6, "Jouw profiel")
    overlay = render_radar(THEMES, [50] * 6, "Jouw profiel", before=[100] * 6, legend=LEGEND)
    assert pixel(plain, 0.8) == (255, 255, 255)
    r, g, b = pixel(overlay, 0.8)  # only the earlier (larger) profile reaches up there
    assert r == g == b < 255  # grey, neither paper nor the brand colour
    assert pixel(overlay, 0.3) != pixel(plain, 0.3)  # both fills: the grey shows through
    assert pixel(overlay, 0.3)[1] > pixel(overlay, 0.3)[0]  # but the brand colour on top


def test_the_reused_figure_forgets_the_earlier_profile() -> None:
    plain = render_radar(THEMES, NOW, "Jouw profiel")
    render_radar(THEMES, NOW, "Jouw profiel", before=BEFORE, legend=LEGEND)
    assert render_radar(THEMES, NOW, "Jouw profiel") == plain  # no grey shape, no legend


def test_the_reused_figure_forgets_the_previous_earlier_profile() -> None:
    first = render_radar(THEMES, NOW, "Jouw profiel", before=BEFORE, legend=LEGEND)
    render_radar(THEMES, BEFORE, "Profil", before=NOW, legend=("Avant", "Maintenant"))
    assert render_radar(THEMES, NOW, "Jouw profiel", before=BEFORE, legend=LEGEND) == first


@pytest.mark.parametrize("lang", ["nl", "en", "fr"])
def test_labels_with_before_and_now_stay_off_the_ring_and_the_legend(
        library: dict[str, Flow], lang: str) -> None:
    flow = library["assessment"]
    labels = [t.name[lang] for t in flow.themes]
    render_radar(labels, [55, 100, 55, 100, 55, 100], "Profil", before=[40, 0, 40, 100, 40, 100],
                 legend=("Évaluation précédente", "Aujourd'hui"))
    assert label_overlaps(len(labels)) == []


# -- the chart as outbox data --------------------------------------------------------------

def test_a_chart_round_trips_through_the_outbox_with_and_without_the_new_fields() -> None:
    plain = Chart("Jouw profiel", tuple(THEMES), (10, 20, 30, 40, 50, 60), "c", "r.png")
    again = Chart("Jouw profiel", tuple(THEMES), tuple(NOW), "c", "r.png",
                  before=tuple(BEFORE), legend=LEGEND)
    bars = Chart("Tips", tuple(THEMES), (3, 0, 1, 0, 2, 5), style="bars")
    for chart in (plain, again, bars):
        message = Outbound("t", chart=chart)
        data = json.loads(json.dumps(message.to_data()))
        assert Outbound.from_data(data) == message
    assert set(plain.to_data()) == {"title", "labels", "scores", "caption", "name"}


def test_a_chart_stored_before_the_new_fields_still_loads() -> None:
    stored = {"text": "c", "chart": {"title": "Jouw profiel", "labels": THEMES,
                                     "scores": [10, 20, 30, 40, 50, 60], "caption": "c",
                                     "name": "kiss-coach-resultaat.png"}}
    chart = Outbound.from_data(stored).chart
    assert chart is not None
    assert (chart.before, chart.legend, chart.style) == (None, ("", ""), "radar")
    assert chart.scores == (10, 20, 30, 40, 50, 60)


@pytest.mark.parametrize("changes", [
    {"style": "pie"},
    {"scores": (1, 2, 3)},
    {"before": (1, 2, 3)},
    {"before": tuple(BEFORE), "style": "bars"},
    {"legend": ("only one",)},
])
def test_a_chart_that_cannot_be_drawn_is_refused(changes: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"title": "t", "labels": tuple(THEMES), "scores": tuple(NOW)}
    with pytest.raises(ValueError, match="chart"):
        Chart(**(fields | changes))
