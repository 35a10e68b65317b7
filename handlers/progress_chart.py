"""The progress chart: how many tips a shopkeeper has done per theme, as PNG bytes.

:func:`render_progress` is what the chart painter (:mod:`bot.painter`) runs for a chart of
style ``"bars"``, in the same process and under the same lock as the radar chart.
"""

from __future__ import annotations

import io
import textwrap

from handlers.radar import BRAND, RENDER_LOCK

#: Theme names wrap at this width, so "Toekomstgericht denken" fits left of the bars.
LABEL_WIDTH = 18
#: Room right of the longest bar for its count, as a share of that bar.
HEADROOM = 0.15


def render_progress(labels: list[str], counts: list[int], title: str) -> bytes:
    """Horizontal bars of done tips per theme (first theme at the top), each count written
    at the end of its bar; a theme with none keeps its label and shows 0."""
    with RENDER_LOCK:
        chart = _charts.get(len(labels))
        if chart is None:
            chart = _charts[len(labels)] = _ProgressChart(len(labels))
        return chart.render(labels, counts, title)


class _ProgressChart:
    """One figure per number of themes, built once and then only relabelled and redrawn
    (like the radar chart): the bars' lengths, the counts and the labels change, not the
    artists."""

    def __init__(self, count: int) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # slow import: on use
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
        from matplotlib.transforms import ScaledTranslation

        self.figure = Figure(figsize=(6, 4), dpi=100)
        FigureCanvasAgg(self.figure)
        # Fixed margins, as in the radar chart: tight_layout costs more than the drawing.
        axes = self.figure.add_axes((0.32, 0.12, 0.62, 0.72))
        positions = list(range(count))
        self.bars = axes.barh(positions, [0] * count, height=0.6, color=BRAND)
        axes.set_yticks(positions)
        axes.set_ylim(count - 0.5, -0.5)  # the first theme at the top
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.tick_params(axis="y", length=0, labelsize=11)
        axes.tick_params(axis="x", colors="#888888", labelsize=9)
        axes.grid(axis="x", color="#dddddd", linewidth=0.8)
        axes.set_axisbelow(True)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        # Each count a few points right of its bar's end, wherever the x axis ends.
        beside = axes.transData + ScaledTranslation(4 / 72, 0, self.figure.dpi_scale_trans)
        self.counts = [axes.text(0, y, "", transform=beside, va="center", fontsize=11)
                       for y in positions]
        self.axes = axes
        self.title = self.figure.suptitle("", fontsize=15, y=0.96)

    def render(self, labels: list[str], counts: list[int], title: str) -> bytes:
        for bar, text, count in zip(self.bars, self.counts, counts, strict=True):
            bar.set_width(count)
            text.set_x(count)
            text.set_text(str(count))
        self.axes.set_yticklabels(
            [textwrap.fill(label, LABEL_WIDTH, break_long_words=False) for label in labels],
            linespacing=1.1)
        self.axes.set_xlim(0, max(1, max(counts, default=0) * (1 + HEADROOM)))
        self.title.set_text(title)
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        return buffer.getvalue()

    def label_overflows(self) -> list[str]:
        """Texts of the last chart (labels, counts) that reach off the figure or into
        another; for tests, in pixels."""
        renderer = self.figure.canvas.get_renderer()  # type: ignore[attr-defined]
        figure = self.figure.bbox
        texts = [*self.axes.get_yticklabels(), *self.counts]
        boxes = [text.get_window_extent(renderer) for text in texts]
        bad = []
        for i, (text, box) in enumerate(zip(texts, boxes, strict=True)):
            off_figure = (box.x0 < figure.x0 or box.x1 > figure.x1
                          or box.y0 < figure.y0 or box.y1 > figure.y1)
            if off_figure or any(box.overlaps(other) for j, other in enumerate(boxes) if j != i):
                bad.append(text.get_text())
        return bad


_charts: dict[int, _ProgressChart] = {}


def label_overflows(count: int) -> list[str]:
    """The crowded texts of the last chart drawn with ``count`` themes (see above)."""
    with RENDER_LOCK:
        return _charts[count].label_overflows()
