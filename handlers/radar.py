"""The radar chart of the six theme scores, as PNG bytes.

:func:`render_radar` is what the chart painter (:mod:`bot.painter`) runs in its own process.
After a re-assessment it also shows the earlier profile, in grey under the current one.
"""

from __future__ import annotations

import io
import math
import textwrap
import threading
from collections.abc import Sequence

#: matplotlib's pyplot state is global; the object API below avoids it, but font caches are
#: shared too, so one chart at a time (every chart module takes this lock).
RENDER_LOCK = threading.Lock()

BRAND = "#0b6e4f"
#: The earlier profile of a re-assessment: grey, dashed, lightly filled, under the current.
BEFORE = "#8a8a8a"
#: Labels wrap at this width, so "Toekomstgericht denken" or "Expérience client" stay
#: beside the chart instead of running over the outer ring.
LABEL_WIDTH = 13
#: An all-zero result still draws a small visible shape at the centre (the label keeps 0).
MIN_DRAWN = 6


def render_radar(labels: list[str], scores: list[int], title: str,
                 before: Sequence[int] | None = None,
                 legend: tuple[str, str] = ("", "")) -> bytes:
    """A radar chart (0-100) with the scores written at each point.

    With ``before`` (earlier scores, in the order of ``labels``) the earlier profile is drawn
    under the current one, each label reads "Name\n40 → 55", and ``legend`` names the two
    (before, now) under the title.
    """
    with RENDER_LOCK:
        chart = _charts.get(len(labels))
        if chart is None:
            chart = _charts[len(labels)] = _RadarChart(len(labels))
        return chart.render(labels, scores, title, before, legend)


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
        # The earlier profile first, so the current one is drawn over it.
        (self.before_line,) = axes.plot(self.closed_angles, zeros, color=BEFORE, linewidth=1.5,
                                        linestyle="--")
        (self.before_area,) = axes.fill(self.closed_angles, zeros, color=BEFORE, alpha=0.12)
        (self.line,) = axes.plot(self.closed_angles, zeros, color=BRAND, linewidth=2)
        (self.area,) = axes.fill(self.closed_angles, zeros, color=BRAND, alpha=0.25)
        self.title = self.figure.suptitle("", fontsize=15, y=0.96)
        # The legend copies its handles' looks now, so it is made while they are visible.
        self.legend = self.figure.legend(
            [self.before_line, self.line], ["", ""], loc="upper center",
            bbox_to_anchor=(0.5, 0.925), ncols=2, frameon=False, fontsize=10,
            handlelength=2.5, columnspacing=2.0)
        # Hidden until a chart has an earlier profile (a hidden artist is not drawn, so a
        # chart without one stays exactly as it was).
        for artist in (self.before_line, self.before_area, self.legend):
            artist.set_visible(False)

    def render(self, labels: list[str], scores: list[int], title: str,
               before: Sequence[int] | None = None,
               legend: tuple[str, str] = ("", "")) -> bytes:
        closed_scores = _closed(scores)
        if before is None:
            values = [str(score) for score in scores]
        else:
            values = [f"{earlier} → {score}"
                      for earlier, score in zip(before, scores, strict=True)]
            self.before_line.set_ydata(_closed(before))
            self.before_area.set_xy(
                list(zip(self.closed_angles, _closed(before), strict=True)))
            for text, name in zip(self.legend.get_texts(), legend, strict=True):
                text.set_text(name)
        # Shown for this chart only: the next chart without one hides them again.
        for artist in (self.before_line, self.before_area, self.legend):
            artist.set_visible(before is not None)
        self.axes.set_xticklabels(
            [f"{textwrap.fill(label, LABEL_WIDTH, break_long_words=False)}\n{value}"
             for label, value in zip(labels, values, strict=True)],
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
        """Labels of the last chart whose box reaches into the outer ring, off the figure or
        over the title or legend (in pixels); for tests: what a shopkeeper would see as text
        over the chart."""
        renderer = self.figure.canvas.get_renderer()  # type: ignore[attr-defined]
        ring = self.axes.get_window_extent(renderer)
        cx, cy, radius = (ring.x0 + ring.x1) / 2, (ring.y0 + ring.y1) / 2, ring.width / 2
        figure = self.figure.bbox
        above = [self.title.get_window_extent(renderer)]
        if self.legend.get_visible():
            above.append(self.legend.get_window_extent(renderer))
        bad = []
        for label in self.axes.get_xticklabels():
            box = label.get_window_extent(renderer)
            nearest_x = min(max(cx, box.x0), box.x1)
            nearest_y = min(max(cy, box.y0), box.y1)
            inside_ring = math.hypot(nearest_x - cx, nearest_y - cy) < radius
            off_figure = (box.x0 < figure.x0 or box.x1 > figure.x1
                          or box.y0 < figure.y0 or box.y1 > figure.y1)
            if inside_ring or off_figure or any(box.overlaps(other) for other in above):
                bad.append(label.get_text())
        return bad


def _closed(scores: Sequence[int]) -> list[int]:
    """The scores as drawn (a zero still shows), back to the first to close the shape."""
    drawn = [max(score, MIN_DRAWN) for score in scores]
    return [*drawn, drawn[0]]


_charts: dict[int, _RadarChart] = {}


def label_overlaps(count: int) -> list[str]:
    """The overlapping labels of the last chart drawn with ``count`` axes (see above)."""
    with RENDER_LOCK:
        return _charts[count].label_overlaps()
