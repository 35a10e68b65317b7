"""The radar chart of the six theme scores, as PNG bytes.

:func:`render_radar` is what the chart painter (:mod:`bot.painter`) runs in its own process.
"""

from __future__ import annotations

import io
import math
import threading

#: matplotlib's pyplot state is global; the object API below avoids it, but font caches are
#: shared too, so one chart at a time.
_RENDER_LOCK = threading.Lock()

BRAND = "#0b6e4f"


def render_radar(labels: list[str], scores: list[int], title: str) -> bytes:
    """A radar chart (0-100) with the scores written at each point."""
    with _RENDER_LOCK:
        chart = _charts.get(len(labels))
        if chart is None:
            chart = _charts[len(labels)] = _RadarChart(len(labels))
        return chart.render(labels, scores, title)


class _RadarChart:
    """One figure per number of axes, drawn once and then only relabelled and redrawn:
    building polar axes costs a third of a chart, so the drawing process keeps them."""

    def __init__(self, count: int) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # slow import: on use
        from matplotlib.figure import Figure
        from matplotlib.projections.polar import PolarAxes

        angles = [2 * math.pi * i / count for i in range(count)]
        self.closed_angles = [*angles, angles[0]]
        self.figure = Figure(figsize=(6, 6), dpi=100)
        FigureCanvasAgg(self.figure)
        # Fixed margins: tight_layout would cost a third of the drawing time.
        axes = self.figure.add_axes((0.2, 0.16, 0.6, 0.6), projection="polar")
        assert isinstance(axes, PolarAxes)
        axes.set_theta_offset(math.pi / 2)  # first theme at the top, then clockwise
        axes.set_theta_direction(-1)
        axes.set_thetalim(0, 2 * math.pi)
        axes.set_ylim(0, 100)
        axes.set_rlabel_position(180 / count)  # ring labels between the first two axes
        axes.set_yticks([25, 50, 75, 100])
        axes.set_yticklabels(["25", "50", "75", ""], color="#888888", fontsize=8)
        axes.tick_params(axis="x", pad=10)
        axes.set_xticks(angles)
        self.axes = axes
        zeros = [0] * len(self.closed_angles)
        (self.line,) = axes.plot(self.closed_angles, zeros, color=BRAND, linewidth=2)
        (self.area,) = axes.fill(self.closed_angles, zeros, color=BRAND, alpha=0.25)
        self.title = self.figure.suptitle("", fontsize=15, y=0.96)

    def render(self, labels: list[str], scores: list[int], title: str) -> bytes:
        closed_scores = [*scores, scores[0]]
        self.axes.set_xticklabels(
            [f"{label}\n{score}" for label, score in zip(labels, scores, strict=True)],
            fontsize=11)
        self.line.set_ydata(closed_scores)
        self.area.set_xy(list(zip(self.closed_angles, closed_scores, strict=True)))
        self.title.set_text(title)
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        return buffer.getvalue()


_charts: dict[int, _RadarChart] = {}
