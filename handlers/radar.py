"""The radar chart of the six theme scores, as PNG bytes.

:func:`render_radar` is what the chart painter (:mod:`bot.painter`) runs in its own process.
"""

from __future__ import annotations

import io
import math
import textwrap
import threading

#: matplotlib's pyplot state is global; the object API below avoids it, but font caches are
#: shared too, so one chart at a time.
_RENDER_LOCK = threading.Lock()

BRAND = "#0b6e4f"
#: Labels wrap at this width, so "Toekomstgericht denken" or "Expérience client" stay
#: beside the chart instead of running over the outer ring.
LABEL_WIDTH = 13
#: An all-zero result still draws a small visible shape at the centre (the label keeps 0).
MIN_DRAWN = 6


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
        axes = self.figure.add_axes((0.22, 0.17, 0.56, 0.56), projection="polar")
        assert isinstance(axes, PolarAxes)
        axes.set_theta_offset(math.pi / 2)  # first theme at the top, then clockwise
        axes.set_theta_direction(-1)
        axes.set_thetalim(0, 2 * math.pi)
        axes.set_ylim(0, 100)
        axes.set_rlabel_position(180 / count)  # ring labels between the first two axes
        axes.set_yticks([25, 50, 75, 100])
        axes.set_yticklabels(["25", "50", "75", ""], color="#888888", fontsize=8)
        axes.tick_params(axis="x", pad=14)
        axes.set_xticks(angles)
        self.axes = axes
        zeros = [0] * len(self.closed_angles)
        (self.line,) = axes.plot(self.closed_angles, zeros, color=BRAND, linewidth=2)
        (self.area,) = axes.fill(self.closed_angles, zeros, color=BRAND, alpha=0.25)
        self.title = self.figure.suptitle("", fontsize=15, y=0.96)

    def render(self, labels: list[str], scores: list[int], title: str) -> bytes:
        drawn = [max(score, MIN_DRAWN) for score in scores]
        closed_scores = [*drawn, drawn[0]]
        self.axes.set_xticklabels(
            [f"{textwrap.fill(label, LABEL_WIDTH, break_long_words=False)}\n{score}"
             for label, score in zip(labels, scores, strict=True)],
            fontsize=11, linespacing=1.1)
        # Centred labels on the sides reach back over the ring: anchor them outward.
        for text, angle in zip(self.axes.get_xticklabels(), self.closed_angles, strict=False):
            side = math.sin(angle)  # first axis at the top, clockwise: + is the right half
            text.set_horizontalalignment("left" if side > 0.1 else
                                         "right" if side < -0.1 else "center")
        self.line.set_ydata(closed_scores)
        self.area.set_xy(list(zip(self.closed_angles, closed_scores, strict=True)))
        self.title.set_text(title)
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        return buffer.getvalue()

    def label_overlaps(self) -> list[str]:
        """Labels of the last chart whose box reaches into the outer ring or off the figure
        (in pixels); for tests: what a shopkeeper would see as text over the chart."""
        renderer = self.figure.canvas.get_renderer()  # type: ignore[attr-defined]
        ring = self.axes.get_window_extent(renderer)
        cx, cy, radius = (ring.x0 + ring.x1) / 2, (ring.y0 + ring.y1) / 2, ring.width / 2
        figure = self.figure.bbox
        bad = []
        for label in self.axes.get_xticklabels():
            box = label.get_window_extent(renderer)
            nearest_x = min(max(cx, box.x0), box.x1)
            nearest_y = min(max(cy, box.y0), box.y1)
            inside_ring = math.hypot(nearest_x - cx, nearest_y - cy) < radius
            off_figure = (box.x0 < figure.x0 or box.x1 > figure.x1
                          or box.y0 < figure.y0 or box.y1 > figure.y1)
            if inside_ring or off_figure:
                bad.append(label.get_text())
        return bad


_charts: dict[int, _RadarChart] = {}


def label_overlaps(count: int) -> list[str]:
    """The overlapping labels of the last chart drawn with ``count`` axes (see above)."""
    with _RENDER_LOCK:
        return _charts[count].label_overlaps()
