"""``/stats`` for admins and ``kiss-coach stats``: the funnel, the average scores per theme
and per municipality, arrondissement and shop type, and the change from the first check
to the latest, with a chart in chat and tables in the terminal.

Every figure goes through :mod:`flows.insight` (k-anonymous); every view, in chat or in
the terminal, is written to the audit trail in the transaction that read the figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from sqlalchemy.ext.asyncio import AsyncConnection

from flows.anonymity import K
from flows.definition import Flow
from flows.insight import (
    OTHER,
    UNKNOWN,
    Averages,
    Breakdown,
    CrossTab,
    Insight,
    Tally,
    crosstab,
    profile_for,
    summarise,
    whole,
)
from flows.loader import load_library
from flows.messages import Chart, Outbound
from flows.places import Gazetteer, gazetteer
from flows.report import theme_names
from flows.texts import TEXTS_DIR, Texts
from handlers.turn import Turn
from storage import audit, shopkeepers
from storage import insight as figures
from storage.insight import Funnel


@cache
def shipped_flows() -> dict[str, Flow]:
    """The flows as shipped: theme names and the labels of shop types and team sizes."""
    return load_library(TEXTS_DIR.parent)


@dataclass(frozen=True, slots=True)
class Report:
    """What one stats view shows: the funnel, the averages, and a cross-tabulation when
    one was asked for."""

    funnel: Funnel
    insight: Insight
    cross: CrossTab | None = None
    #: What the figures were computed from (the progress page tabulates them once more).
    tallies: tuple[Tally, ...] = ()


class StatsView:
    """Reads the figures (:meth:`gather`) and says them: :meth:`messages` for a phone,
    :meth:`table` for a terminal.

    Args:
        texts: What the admin reads (``flows/texts/stats``).
        flows: The assessment flow (themes) and the onboarding flow (shop types, team
            sizes); the shipped ones by default.
        places: Which arrondissement each municipality is in.
        k: The fewest shops a figure may describe.
    """

    def __init__(self, texts: Texts, flows: Mapping[str, Flow] | None = None,
                 places: Gazetteer | None = None, k: int = K) -> None:
        self.texts = texts
        self._flows = flows
        self._places = places
        self.k = k

    @property
    def assessment(self) -> Flow:
        return (self._flows or shipped_flows())["assessment"]

    @property
    def onboarding(self) -> Flow:
        return (self._flows or shipped_flows())["onboarding"]

    async def gather(self, tx: AsyncConnection, *, actor: str, via: str,
                     basis: str = "latest", cross: tuple[str, str] | None = None,
                     since: datetime | None = None, until: datetime | None = None) -> Report:
        """Read the figures now and write the view to the audit trail, in ``tx``.
        ``since``/``until``: only shops whose ``basis`` check was made in that period."""
        places = self._places or gazetteer()
        themes = [theme.id for theme in self.assessment.themes]
        tallies = await figures.tallies(tx, themes=themes, profile=profile_for(cross or ()),
                                        since=since, until=until, basis=basis)
        funnel = await figures.funnel(tx)
        # A few hundred tallies, not a row per shop: milliseconds, on the event loop.
        insight = summarise(tallies, themes, places.arrondissement_of, basis=basis, k=self.k)
        table = (crosstab(tallies, themes, places.arrondissement_of, *cross, basis=basis,
                          k=self.k) if cross is not None else None)
        await audit.record(tx, actor=actor, action="stats", detail={
            "via": via, "basis": basis, "cross": list(cross) if cross else None,
            **({"since": since.isoformat() if since else None,
                "until": until.isoformat() if until else None} if since or until else {}),
            "shops": insight.shops})
        return Report(funnel, insight, table, tuple(tallies))

    async def command(self, turn: Turn) -> list[Outbound]:
        """``/stats`` in an admin's chat."""
        assert turn.shopkeeper is not None
        address = await shopkeepers.address_of(turn.tx, shopkeeper_id=turn.shopkeeper.id)
        actor = f"{address[0]}:{address[1]}" if address else f"shopkeeper:{turn.shopkeeper.id}"
        report = await self.gather(turn.tx, actor=actor, via="chat")
        return self.messages(report, turn.lang)

    # -- on a phone ---------------------------------------------------------------------

    def messages(self, report: Report, lang: str) -> list[Outbound]:
        """The funnel; the averages per theme with a chart; arrondissements and shop types;
        municipalities. Each message stays far below Telegram's 4,096 characters."""
        say = self.texts.get
        messages = [Outbound(self._funnel(report.funnel, lang))]
        insight = report.insight
        if insight.overall is None:
            messages.append(Outbound(say(lang, "stats_too_few", k=self.k)))
            return messages
        names = theme_names(self.assessment, lang)
        lines = [self._themes_title(insight, lang),
                 say(lang, "stats_score_line", name=say(lang, "stats_overall"),
                     score=whole(insight.overall.overall))]
        lines += [say(lang, "stats_score_line", name=names[theme], score=whole(value))
                  for theme, value in insight.overall.themes.items()]
        parts = ["\n".join(lines), self._change(insight, lang, names),
                 say(lang, "stats_fold_note", k=self.k)]
        chart = Chart(say(lang, "stats_chart_title"),
                      tuple(names[theme] for theme in insight.overall.themes),
                      tuple(whole(v) for v in insight.overall.themes.values()),
                      name="stats.png", style="score_bars")
        messages.append(Outbound("\n\n".join(parts), chart=chart))
        by_name = {b.dimension: b for b in insight.breakdowns}
        messages.append(Outbound("\n\n".join(
            self._breakdown(by_name[name], lang) for name in ("arrondissement", "shop_type"))))
        messages.append(Outbound(self._breakdown(by_name["municipality"], lang)))
        return messages

    def _funnel(self, funnel: Funnel, lang: str) -> str:
        return self.texts.get(lang, "stats_funnel", started=funnel.started,
                              consented=funnel.consented, finished=funnel.finished,
                              on_tips=funnel.on_tips, opted_out=funnel.opted_out)

    def _themes_title(self, insight: Insight, lang: str) -> str:
        say = self.texts.get
        return say(lang, "stats_themes_title", shops=insight.shops,
                   basis=say(lang, f"stats_basis_{insight.basis}"))

    def _change(self, insight: Insight, lang: str, names: Mapping[str, str]) -> str:
        say = self.texts.get
        change = insight.change
        if change is None:
            return say(lang, "stats_change_too_few", k=self.k)
        rows = [(say(lang, "stats_overall"), change.first.overall, change.latest.overall)]
        rows += [(names[theme], change.first.themes[theme], change.latest.themes[theme])
                 for theme in change.latest.themes if theme in change.first.themes]
        return "\n".join([say(lang, "stats_change_title", shops=change.latest.shops), *(
            say(lang, "stats_change_line", name=name, first=whole(first),
                latest=whole(latest), delta=f"{whole(latest) - whole(first):+d}")
            for name, first, latest in rows)])

    def _breakdown(self, breakdown: Breakdown, lang: str) -> str:
        say = self.texts.get
        title = say(lang, f"stats_by_{breakdown.dimension}")
        if breakdown.withheld:
            return f"{title}\n{say(lang, 'stats_too_few', k=self.k)}"
        lines = [say(lang, "stats_group_line", name=self.label(breakdown.dimension, key, lang),
                     score=whole(averages.overall), shops=averages.shops)
                 for key, averages in breakdown.groups]
        if breakdown.other is not None:
            lines.append(say(lang, "stats_group_line",
                             name=say(lang, "stats_other", groups=breakdown.folded),
                             score=whole(breakdown.other.overall),
                             shops=breakdown.other.shops))
        return "\n".join([title, *lines])

    def label(self, dimension: str, key: str, lang: str, folded: int = 0) -> str:
        """What a group is called for the admin (a shop type's label, not its id)."""
        if key == OTHER:
            return self.texts.get(lang, "stats_other", groups=folded)
        if key == UNKNOWN:
            return self.texts.get(lang, "stats_unknown")
        if dimension in ("shop_type", "team_size"):
            choices = {c.id: c.label for c in self.onboarding.node(dimension).choices}
            return choices[key][lang] if key in choices else key
        return key

    # -- in a terminal ------------------------------------------------------------------

    def table(self, report: Report, lang: str) -> str:
        """The same figures as tables: every theme per group, for a wide screen."""
        say = self.texts.get
        out = [self._funnel(report.funnel, lang), ""]
        insight = report.insight
        if insight.overall is None:
            return "\n".join([*out, say(lang, "stats_too_few", k=self.k)])
        names = theme_names(self.assessment, lang)
        themes = [theme.id for theme in self.assessment.themes]
        header = [say(lang, "stats_column_group"), say(lang, "stats_column_shops"),
                  say(lang, "stats_overall"), *(names[t] for t in themes)]
        out += [self._themes_title(insight, lang),
                *_columns(header, [self._row(say(lang, "stats_overall"), insight.overall,
                                             themes, lang)]), ""]
        for breakdown in insight.breakdowns:
            out.append(say(lang, f"stats_by_{breakdown.dimension}"))
            if breakdown.withheld:
                out += [say(lang, "stats_too_few", k=self.k), ""]
                continue
            rows = [self._row(self.label(breakdown.dimension, key, lang), averages, themes,
                              lang) for key, averages in breakdown.groups]
            if breakdown.other is not None:
                rows.append(self._row(say(lang, "stats_other", groups=breakdown.folded),
                                      breakdown.other, themes, lang))
            out += [*_columns(header, rows), ""]
        out += [self._change(insight, lang, names), "", say(lang, "stats_fold_note", k=self.k)]
        if report.cross is not None:
            out += ["", *self._cross(report.cross, lang)]
        return "\n".join(out)

    def _row(self, name: str, averages: Averages, themes: Sequence[str],
             lang: str) -> list[str]:
        hidden = self.texts.get(lang, "stats_hidden")
        return [name, str(averages.shops), str(whole(averages.overall)),
                *(str(whole(averages.themes[t])) if t in averages.themes else hidden
                  for t in themes)]

    def _cross(self, cross: CrossTab, lang: str) -> list[str]:
        say = self.texts.get
        rows_name, columns_name = (say(lang, f"stats_dimension_{d}") for d in cross.dimensions)
        title = say(lang, "stats_cross_title", rows=rows_name, columns=columns_name)
        if cross.withheld:
            return [title, say(lang, "stats_too_few", k=self.k)]
        hidden = say(lang, "stats_hidden")
        header = ["", *(self.label(cross.dimensions[1], c, lang, cross.folded[1])
                        for c in cross.columns)]
        rows = []
        for row in cross.rows:
            cells = []
            for column in cross.columns:
                if (row, column) not in cross.cells:
                    cells.append("")
                    continue
                found = cross.cells[(row, column)]
                cells.append(hidden if found is None
                             else f"{whole(found.overall)} ({found.shops})")
            rows.append([self.label(cross.dimensions[0], row, lang, cross.folded[0]), *cells])
        return [title, *_columns(header, rows)]


def _columns(header: list[str], rows: list[list[str]]) -> list[str]:
    """A plain text table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                      for i, (cell, w) in enumerate(zip(line, widths, strict=True))).rstrip()
            for line in [header, *rows]]
