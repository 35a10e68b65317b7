"""Average scores per theme as horizontal bars on a fixed 0-100 axis, as PNG bytes.

:func:`render_score_bars` is what the chart painter (:mod:`bot.painter`) runs for a chart
of style ``"score_bars"`` (the admins' ``/stats``). Unlike the progress chart's counts, the
axis always ends at 100, so two views side by side compare at a glance.
"""

from __future__ import annotations

import io
import textwrap

from handlers.radar import BRAND, RENDER_LOCK

#: Theme names wrap at this width, so "Toekomstgericht denken" fits left of the bars.
LABEL_WIDTH = 18


def render_score_bars(labels: list[str], scores: list[int], title: str) -> bytes:
    """One bar per label (the first at the top), each score written at its end."""
    with RENDER_LOCK:
        chart = _charts.get(len(labels))
        if chart is None:
            chart = _charts[len(labels)] = _ScoreBars(len(labels))
        return chart.render(labels, scores, title)


class _ScoreBars:
    """One figure per number of bars, built once and then only relabelled and redrawn."""

    def __init__(self, count: int) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # slow import: on use
        from matplotlib.figure import Figure
        from matplotlib.transforms import ScaledTranslation

        self.figure = Figure(figsize=(6, 4), dpi=100)
        FigureCanvasAgg(self.figure)
        axes = self.figure.add_axes((0.32, 0.12, 0.6, 0.72))
        positions = list(range(count))
        self.bars = axes.barh(positions, [0] * count, height=0.6, color=BRAND)
        axes.set_yticks(positions)
        axes.set_ylim(count - 0.5, -0.5)  # the first label at the top
        axes.set_xlim(0, 100)
        axes.set_xticks([0, 25, 50, 75, 100])
        axes.tick_params(axis="y", length=0, labelsize=11)
        axes.tick_params(axis="x", colors="#888888", labelsize=9)
        axes.grid(axis="x", color="#dddddd", linewidth=0.8)
        axes.set_axisbelow(True)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        beside = axes.transData + ScaledTranslation(4 / 72, 0, self.figure.dpi_scale_trans)
        self.values = [axes.text(0, y, "", transform=beside, va="center", fontsize=11)
                       for y in positions]
        self.axes = axes
        self.title = self.figure.suptitle("", fontsize=15, y=0.96)

    def render(self, labels: list[str], scores: list[int], title: str) -> bytes:
        for bar, text, score in zip(self.bars, self.values, scores, strict=True):
            shown = max(0, min(100, score))
            bar.set_width(shown)
            text.set_x(shown)
            text.set_text(str(score))
        self.axes.set_yticklabels(
            [textwrap.fill(label, LABEL_WIDTH, break_long_words=False) for label in labels],
            linespacing=1.1)
        self.title.set_text(title)
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        return buffer.getvalue()


_charts: dict[int, _ScoreBars] = {}
