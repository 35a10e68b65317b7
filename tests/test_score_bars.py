"""The average-scores chart (/stats): bars on a fixed 0-100 axis, the first at the top."""

from __future__ import annotations

import io

from PIL import Image

from flows.messages import Chart
from handlers.score_bars import render_score_bars

THEMES = ["Beleving", "Vakkennis", "Innovatie", "Toekomstgericht denken", "Digitalisering",
          "Anders denken"]
BRAND = (0x0B, 0x6E, 0x4F)


def bar_lengths(png: bytes) -> list[int]:
    """The length in pixels of each run of brand-coloured rows (one per bar), top first."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    lengths: list[int] = []
    inside = False
    for y in range(image.height):
        row = [x for x in range(image.width) if image.getpixel((x, y)) == BRAND]
        if row and not inside:
            lengths.append(len(row))
        inside = bool(row)
    return lengths


def test_the_axis_ends_at_100_whatever_the_scores() -> None:
    png = render_score_bars(THEMES, [100, 50, 25, 0, 50, 10], "Gemiddelde per thema")
    assert Image.open(io.BytesIO(png)).size == (600, 400)
    full, half, quarter, *rest = bar_lengths(png)
    assert abs(half * 2 - full) <= 2 and abs(quarter * 4 - full) <= 8
    assert len(rest) == 2  # 0 draws no bar
    low = bar_lengths(render_score_bars(THEMES, [50] * 6, "x"))
    assert abs(low[0] - half) <= 1  # 50 is half the axis, not the longest bar


def test_a_chart_of_average_scores_keeps_its_style_in_the_outbox() -> None:
    chart = Chart("Gemiddelde", tuple(THEMES), (52, 52, 52, 52, 26, 52), style="score_bars")
    assert Chart.from_data(chart.to_data()) == chart
