"""The progress chart (done tips per theme): a real PNG, readable labels, a reused figure that
carries nothing over, and drawn by the chart painter's process like the radar chart."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.painter import ChartPainter
from flows.definition import Flow
from handlers import progress_chart
from handlers.progress_chart import label_overflows, render_progress

THEMES = ["Beleving", "Vakkennis", "Innovatie", "Toekomstgericht denken", "Digitalisering",
          "Anders denken"]
BRAND = (0x0B, 0x6E, 0x4F)


def brand_rows(png: bytes) -> list[int]:
    """The pixel rows where a bar (the brand colour) shows."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return [y for y in range(image.height)
            if any(image.getpixel((x, y)) == BRAND for x in range(0, image.width, 3))]


def test_a_progress_chart_is_a_png_of_the_promised_size() -> None:
    png = render_progress(THEMES, [3, 0, 1, 0, 2, 5], "Jouw tips")
    image = Image.open(io.BytesIO(png))
    assert (image.format, image.size) == ("PNG", (600, 400))


def test_the_first_theme_is_at_the_top_in_the_brand_colour() -> None:
    first_only = brand_rows(render_progress(THEMES, [4, 0, 0, 0, 0, 0], "Jouw tips"))
    last_only = brand_rows(render_progress(THEMES, [0, 0, 0, 0, 0, 4], "Jouw tips"))
    assert first_only and last_only
    assert max(first_only) < min(last_only)


def test_no_tips_at_all_still_shows_every_theme_and_no_bar() -> None:
    png = render_progress(THEMES, [0] * 6, "Jouw tips")
    assert brand_rows(png) == []
    chart = progress_chart._charts[6]
    assert [t.get_text() for t in chart.counts] == ["0"] * 6
    assert [t.get_text().replace("\n", " ") for t in chart.axes.get_yticklabels()] == THEMES
    assert png != render_progress(["A", "B", "C", "D", "E", "F"], [0] * 6, "Jouw tips")


@pytest.mark.parametrize("counts", [[0] * 6, [1, 0, 0, 0, 0, 0], [3, 0, 1, 0, 2, 5],
                                    [17, 4, 0, 9, 1, 2]])
def test_the_x_axis_counts_in_whole_tips(counts: list[int]) -> None:
    render_progress(THEMES, counts, "Jouw tips")
    ticks = progress_chart._charts[6].axes.get_xticks()
    assert len(ticks) >= 2
    assert all(tick == int(tick) for tick in ticks)


def test_each_count_is_written_at_the_end_of_its_bar() -> None:
    render_progress(THEMES, [3, 0, 12, 1, 7, 2], "Jouw tips")
    chart = progress_chart._charts[6]
    renderer = chart.figure.canvas.get_renderer()  # type: ignore[attr-defined]
    for bar, text in zip(chart.bars, chart.counts, strict=True):
        end = bar.get_window_extent(renderer).x1
        box = text.get_window_extent(renderer)
        assert text.get_text() == str(int(bar.get_width()))
        assert 0 < box.x0 - end < 10  # just beside the bar's end


def test_the_reused_figure_forgets_the_previous_chart() -> None:
    first = render_progress(THEMES, [3, 0, 1, 0, 2, 5], "Jouw tips")
    other = render_progress(["A", "B", "C", "D", "E", "F"], [40, 30, 20, 10, 0, 1], "Tips")
    again = render_progress(THEMES, [3, 0, 1, 0, 2, 5], "Jouw tips")
    assert other != first
    assert again == first


def test_a_different_number_of_themes_gets_its_own_figure() -> None:
    png = render_progress(THEMES[:3], [1, 0, 2], "Drie")
    assert Image.open(io.BytesIO(png)).size == (600, 400)
    assert label_overflows(3) == []


@pytest.mark.parametrize("lang", ["nl", "en", "fr"])
def test_labels_and_counts_stay_on_the_figure_in_every_language(
        library: dict[str, Flow], lang: str) -> None:
    labels = [t.name[lang] for t in library["assessment"].themes]
    render_progress(labels, [0, 12, 3, 0, 120, 1], "Progrès")
    assert label_overflows(len(labels)) == []


async def test_the_painter_draws_bars_in_its_own_process() -> None:
    painter = ChartPainter()
    try:
        png = await painter.draw(THEMES, [3, 0, 1, 0, 2, 5], "Jouw tips", style="bars")
        assert painter.pid() is not None
        assert png == render_progress(THEMES, [3, 0, 1, 0, 2, 5], "Jouw tips")
        overlay = await painter.draw(THEMES, [40, 60, 30, 40, 50, 60], "Jouw profiel",
                                     before=(25, 20, 30, 10, 50, 55), legend=("Toen", "Nu"))
        assert Image.open(io.BytesIO(overlay)).size == (600, 600)
        with pytest.raises(ValueError, match="style"):
            await painter.draw(THEMES, [1] * 6, "t", style="pie")
    finally:
        painter.close()
