"""The chart painter: draws result charts in a separate process that the app owns.

Drawing a radar chart takes tens of milliseconds of CPU. In a process of its own it runs on
the other core, off the event loop's GIL, and matplotlib's memory stays out of the bot.
The app warms it at start (so the first result after a restart does not wait for a spawn),
rebuilds it when its process dies, gives up on one chart after :data:`TIMEOUT` seconds, and
the process dies with the bot, even on SIGKILL (it watches its parent).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from flows.messages import Chart
from handlers.progress_chart import render_progress
from handlers.radar import render_radar
from handlers.score_bars import render_score_bars

log = logging.getLogger(__name__)

#: Seconds one chart may take before the result goes out without it.
TIMEOUT = 20.0


class PainterError(Exception):
    """No chart this time: the drawing process died, timed out or could not start."""


class ChartPainter:
    """``await painter.draw(labels, scores, title)`` → PNG bytes, or :class:`PainterError`.

    ``style="radar"`` (the default) draws scores 0-100, over ``before`` when given (see
    :func:`handlers.radar.render_radar`); ``style="bars"`` draws counts per theme (see
    :func:`handlers.progress_chart.render_progress`); ``style="score_bars"`` draws scores
    0-100 as bars (see :func:`handlers.score_bars.render_score_bars`).

    Args:
        timeout: Seconds one chart may take.
    """

    def __init__(self, timeout: float = TIMEOUT) -> None:
        self.timeout = timeout
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_die_with_parent, initargs=(os.getpid(),))
        return self._pool

    async def warm(self) -> None:
        """Start the drawing process and draw once, so matplotlib is imported and ready."""
        try:
            await self.draw(["a", "b", "c", "d", "e", "f"], [0] * 6, "")
        except PainterError:
            log.warning("the chart painter did not start; results go out as text for now")

    async def draw(self, labels: list[str], scores: list[int], title: str, *,
                   before: Sequence[int] | None = None, legend: tuple[str, str] = ("", ""),
                   style: str = "radar") -> bytes:
        earlier = list(before) if before is not None else None
        # What a Chart refuses (ValueError) is refused here too, before the process sees it.
        Chart(title, tuple(labels), tuple(scores), before=None if earlier is None
              else tuple(earlier), legend=legend, style=style)
        loop = asyncio.get_running_loop()
        pool = self._executor()
        try:
            future = loop.run_in_executor(pool, _paint, style, labels, scores, title,
                                          earlier, legend)
            return await asyncio.wait_for(future, self.timeout)
        except (BrokenProcessPool, TimeoutError, OSError) as exc:
            # A dead or stuck process is replaced; the next chart gets a fresh one.
            log.warning("chart painter failed (%s): starting a new one",
                        type(exc).__name__ or exc)
            self._discard(pool)
            raise PainterError(str(exc) or type(exc).__name__) from exc

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        if self._pool is pool:
            self._pool = None
        # A pool that broke or shut down already has ``_processes = None``.
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.kill()  # a stuck drawing would otherwise keep its core and memory
        pool.shutdown(wait=False, cancel_futures=True)

    def pid(self) -> int | None:
        """The drawing process's pid, if one runs (for tests and operators)."""
        processes = getattr(self._pool, "_processes", None) or {}
        return next(iter(processes), None)

    def close(self) -> None:
        if self._pool is not None:
            self._discard(self._pool)


def _paint(style: str, labels: list[str], scores: list[int], title: str,
           before: list[int] | None, legend: tuple[str, str]) -> bytes:
    """In the drawing process: one chart of ``style``, as PNG bytes (module-level, so the
    pool can send it there by name)."""
    if style == "bars":
        return render_progress(labels, scores, title)
    if style == "score_bars":
        return render_score_bars(labels, scores, title)
    return render_radar(labels, scores, title, before, legend)


def _die_with_parent(parent: int) -> None:
    """In the drawing process: exit as soon as the bot is gone, however it went."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()
