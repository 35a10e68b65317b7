"""The radar chart of the six theme scores, as PNG bytes.

Drawing takes about 60 ms of CPU. :func:`draw` does it in a separate process, so the event
loop (and its GIL) keeps serving other shopkeepers meanwhile, the other core does the work,
and matplotlib's memory stays out of the bot's process.
"""

from __future__ import annotations

import asyncio
import io
import math
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor

#: matplotlib's pyplot state is global; the object API below avoids it, but font caches are
#: shared too, so one chart at a time.
_RENDER_LOCK = threading.Lock()

BRAND = "#0b6e4f"

_painter: ProcessPoolExecutor | None = None


async def draw(labels: list[str], scores: list[int], title: str) -> bytes:
    """:func:`render_radar` in the drawing process (started on first use, shared)."""
    global _painter  # one small worker for the whole process, whatever uses it
    if _painter is None:
        _painter = ProcessPoolExecutor(max_workers=1,
                                       mp_context=multiprocessing.get_context("spawn"))
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_painter, render_radar, labels, scores, title)


def render_radar(labels: list[str], scores: list[int], title: str) -> bytes:
    """A 6-axis radar chart (0-100) with the scores written at each point."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # slow import: only when used
    from matplotlib.figure import Figure
    from matplotlib.projections.polar import PolarAxes

    count = len(labels)
    angles = [2 * math.pi * i / count for i in range(count)]
    closed_angles = [*angles, angles[0]]
    closed_scores = [*scores, scores[0]]

    with _RENDER_LOCK:
        figure = Figure(figsize=(6, 6), dpi=100)
        FigureCanvasAgg(figure)
        # Fixed margins: tight_layout would cost a third of the drawing time.
        axes = figure.add_axes((0.2, 0.16, 0.6, 0.6), projection="polar")
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
        axes.set_xticklabels([f"{label}\n{score}" for label, score in zip(labels, scores,
                                                                           strict=True)],
                             fontsize=11)
        axes.plot(closed_angles, closed_scores, color=BRAND, linewidth=2)
        axes.fill(closed_angles, closed_scores, color=BRAND, alpha=0.25)
        figure.suptitle(title, fontsize=15, y=0.96)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    return buffer.getvalue()
