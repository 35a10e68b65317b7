"""The overview (funnel, averages per theme and per municipality, arrondissement and shop
type) and progress (first check → latest, per theme, overall and per municipality).

Every figure comes from the use case behind ``/stats`` (:class:`handlers.stats.StatsView`,
:mod:`flows.insight`, :mod:`storage.insight`): the same k-anonymity (groups under
:data:`flows.anonymity.K` shops folded into "other"), and the same audit entry per view.
Charts are SVG drawn here on the server from those figures (:func:`bars`): no script, no
picture to fetch, readable by a screen reader (each bar has its title and the table
beside it holds the same numbers).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from aiohttp import web

from bot.dashboard.desk import Desk, desk_of, language_of, render, say, visitor_of
from bot.dashboard.login import requires
from bot.exports import start_of
from flows.insight import ONCE_OR_AGAIN, OTHER, Averages, Breakdown, Tally, crosstab, whole
from flows.report import theme_names
from handlers.stats import Report
from storage import audit, dashboard
from storage import insight as figures
from storage.tables import Role

#: ``?round=`` → the basis of :func:`flows.insight.summarise`: everyone's latest check
#: (T1 for whoever did it again) or everyone's first (T0).
ROUNDS = {"latest": "latest", "t0": "first"}


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of a chart: a label, a score 0-100, and how many shops it describes."""

    label: str
    value: int
    shops: int | None = None


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a table: a group, its shops, its overall score and each theme's
    (None: hidden, fewer than k shops have a score for it)."""

    label: str
    shops: int
    overall: int
    themes: tuple[int | None, ...]


@requires(Role.COACH)
async def overview(request: web.Request) -> web.Response:
    """``GET /``: the funnel, the averages per theme, and the breakdowns as tables and
    charts; ``?round=t0`` for everyone's first check."""
    desk, lang = desk_of(request), language_of(request)
    chosen = request.query.get("round", "latest")
    basis = ROUNDS.get(chosen, "latest")
    period = _period(request.query.get("since", ""), request.query.get("until", ""))
    since = start_of(period.since)
    until = start_of(period.until + timedelta(days=1) if period.until else None)
    actor = visitor_of(request).address
    began = time.perf_counter()
    async with desk.db.transaction() as tx:
        key = (await dashboard.figures_version(tx), basis, since, until)
        kept = desk.figures.get(key)
        if kept is None:
            report = await desk.stats.gather(tx, actor=actor, via="dashboard", basis=basis,
                                             since=since, until=until)
            desk.keep(key, report.insight)
        else:  # nothing changed since it was computed: the same figures, audited again
            report = Report(await figures.funnel(tx), kept)
            await audit.record(tx, actor=actor, action="stats", detail={
                "via": "dashboard", "basis": basis, "cross": None,
                **({"since": since.isoformat() if since else None,
                    "until": until.isoformat() if until else None} if since or until else {}),
                "shops": kept.shops})
    # For benchmarks/dashboard.py: how long the figures took, and whether they were kept.
    figures_timing = (f'figures;dur={(time.perf_counter() - began) * 1000:.1f};'
                      f'desc="{"computed" if kept is None else "kept"}"')
    themes = [theme.id for theme in desk.stats.assessment.themes]
    names = theme_names(desk.stats.assessment, lang)
    insight = report.insight
    overall = insight.overall
    breakdowns = []
    for breakdown in insight.breakdowns:
        rows = _rows(desk.stats.label, breakdown, themes, lang)
        breakdowns.append({
            "dimension": breakdown.dimension, "withheld": breakdown.withheld, "rows": rows,
            "bars": [Bar(row.label, row.overall, row.shops) for row in rows]})
    response = render(request, "overview.html", {
        "round": "t0" if basis == "first" else "latest", "period": period,
        "funnel": report.funnel,
        "shops": insight.shops, "k": desk.stats.k,
        "theme_names": [names[t] for t in themes],
        "overall": None if overall is None else _row(say(request)("overall"), overall,
                                                     themes),
        "theme_bars": [] if overall is None else [
            Bar(names[t], whole(overall.themes[t])) for t in themes if t in overall.themes],
        "breakdowns": breakdowns})
    response.headers["Server-Timing"] = figures_timing
    return response


@dataclass(frozen=True, slots=True)
class Period:
    """The overview's period: Brussels days, both included; ``unreadable`` when a typed
    date was not one (then that end is left open, and the page says so)."""

    since: date | None = None
    until: date | None = None
    unreadable: bool = False


def _period(since: str, until: str) -> Period:
    days: list[date | None] = []
    unreadable = False
    for typed in (since, until):
        try:
            days.append(date.fromisoformat(typed) if typed.strip() else None)
        except ValueError:
            days.append(None)
            unreadable = True
    return Period(days[0], days[1], unreadable)


@requires(Role.COACH)
async def progress(request: web.Request) -> web.Response:
    """``GET /progress``: the shops that did the check again, first → latest per theme, for
    the programme and per municipality. Per municipality is a cross-tabulation of
    municipality by "did it again or not" (:func:`flows.insight.crosstab`): a town's shops
    that did it once are a figure too (its overview total minus these), so both cells must
    pass the same k-anonymity rules, or the table is withheld."""
    desk, lang, t = desk_of(request), language_of(request), say(request)
    themes = [theme.id for theme in desk.stats.assessment.themes]
    names = theme_names(desk.stats.assessment, lang)
    async with desk.db.transaction() as tx:
        report = await desk.stats.gather(tx, actor=visitor_of(request).address,
                                         via="dashboard:progress")
    change = report.insight.change
    programme = None
    if change is not None:
        programme = [_change(t("overall"), change.first.overall, change.latest.overall)]
        programme += [_change(names[theme], change.first.themes[theme],
                              change.latest.themes[theme])
                      for theme in themes
                      if theme in change.first.themes and theme in change.latest.themes]
    towns = _towns(desk, report.tallies, themes, names, lang) if change is not None else None
    return render(request, "progress.html", {
        "k": desk.stats.k, "programme": programme,
        "again": change.latest.shops if change is not None else 0,
        "towns": towns})


def _towns(desk: Desk, tallies: Sequence[Tally], themes: Sequence[str],
           names: Mapping[str, str], lang: str) -> list[dict[str, Any]] | None:
    """Per municipality, first → latest of the shops that did the check again; None when
    the table is withheld."""
    places = desk.places.arrondissement_of
    first = crosstab(tallies, themes, places, "municipality", ONCE_OR_AGAIN, basis="first",
                     k=desk.stats.k)
    latest = crosstab(tallies, themes, places, "municipality", ONCE_OR_AGAIN, basis="latest",
                      k=desk.stats.k)
    if latest.withheld or "again" not in latest.columns:
        return None
    towns = []
    for municipality in latest.rows:
        before, now = first.cells.get((municipality, "again")), latest.cells.get(
            (municipality, "again"))
        if before is None or now is None:
            continue  # hidden or empty: not shown on its own
        label = desk.stats.label("municipality", municipality, lang, latest.folded[0])
        towns.append({"label": label, "shops": now.shops,
                      "rows": [_change(names[theme], before.themes[theme], now.themes[theme])
                               for theme in themes
                               if theme in before.themes and theme in now.themes],
                      "overall": _change("", before.overall, now.overall),
                      "other": municipality == OTHER})
    return towns


def _change(label: str, first: float, latest: float) -> dict[str, Any]:
    return {"label": label, "first": whole(first), "latest": whole(latest),
            "delta": whole(latest) - whole(first)}


def _row(label: str, averages: Averages, themes: Sequence[str]) -> Row:
    return Row(label, averages.shops, whole(averages.overall),
               tuple(whole(averages.themes[t]) if t in averages.themes else None
                     for t in themes))


def _rows(label: Callable[..., str], breakdown: Breakdown, themes: Sequence[str],
          lang: str) -> list[Row]:
    rows = [_row(label(breakdown.dimension, key, lang), averages, themes)
            for key, averages in breakdown.groups]
    if breakdown.other is not None:
        rows.append(_row(label(breakdown.dimension, OTHER, lang, breakdown.folded),
                         breakdown.other, themes))
    return rows


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", overview, name="overview")
    app.router.add_get("/progress", progress, name="progress")

