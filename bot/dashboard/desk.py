"""What every dashboard page works with (:class:`Desk`, one per sub-application) and how a
page is rendered: a Jinja template with autoescape, the visitor's language, and the CSRF
token every form carries."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from flows.definition import DEFAULT_LANGUAGE, LANGUAGES
from flows.insight import Insight
from flows.places import Gazetteer
from flows.texts import Texts
from flows.timing import BRUSSELS
from handlers.broadcasts import Broadcasts
from handlers.composer import Labels
from handlers.stats import StatsView
from storage.dashboard import Visitor
from storage.database import Database
from storage.tables import Role

#: Overview figures kept (one per round and period asked for lately).
KEPT_FIGURES = 8


@dataclass(slots=True)
class Desk:
    """The dashboard's parts: the database, the texts, the use cases it calls (the same
    the chat and the command line call), and the clock."""

    db: Database
    texts: Texts
    stats: StatsView
    broadcasts: Broadcasts
    places: Gazetteer
    labels: Labels
    clock: Callable[[], datetime]
    #: Login links start with it; ``https://`` makes the session cookie Secure.
    public_url: str
    #: The bot's name on Telegram, once known (invite links become t.me links).
    bot_username: Callable[[], str | None] = lambda: None
    #: The overview's figures per (data version, round, period): computing them for 10,000
    #: shops takes 50-150 ms (mostly the database adding up); reading the version, a few.
    #: A new result, consent, profile change or erasure changes the version (see
    #: :func:`storage.dashboard.figures_version`), so nothing stale is shown.
    figures: dict[tuple[object, ...], Insight] = field(default_factory=dict)

    def keep(self, key: tuple[object, ...], insight: Insight) -> None:
        """Remember the figures of ``key``; only the latest few are kept."""
        while len(self.figures) >= KEPT_FIGURES:
            self.figures.pop(next(iter(self.figures)))
        self.figures[key] = insight

    @property
    def secure(self) -> bool:
        return self.public_url.startswith("https://")


DESK: web.AppKey[Desk] = web.AppKey("desk", Desk)
#: Where the middleware puts the visitor of a request (absent: nobody logged in).
VISITOR: web.RequestKey[Visitor] = web.RequestKey("visitor", Visitor)
#: Where it puts the session token (for the CSRF token and logout).
SESSION: web.RequestKey[str] = web.RequestKey("session", str)
#: The session cookie's name.
COOKIE = "kiss_dashboard"


def desk_of(request: web.Request) -> Desk:
    return request.app[DESK]


def visitor_of(request: web.Request) -> Visitor:
    """The logged-in visitor (routes behind :func:`bot.dashboard.login.requires`)."""
    return request[VISITOR]


def language_of(request: web.Request) -> str:
    found = request.get(VISITOR)
    if isinstance(found, Visitor) and found.language in LANGUAGES:
        return found.language
    return DEFAULT_LANGUAGE


def csrf_token(session_token: str) -> str:
    """The token a session's forms carry: derived from the session's secret, so a page of
    another site can neither read nor guess it."""
    return hmac.new(session_token.encode(), b"kiss-dashboard-csrf",
                    hashlib.sha256).hexdigest()


def say(request: web.Request) -> Callable[..., str]:
    """``t("key", name=value)``: the dashboard text ``dash_key`` in the visitor's
    language."""
    texts, lang = desk_of(request).texts, language_of(request)

    def text(key: str, **values: Any) -> str:
        return texts.get(lang, f"dash_{key}", **values)

    return text


def local_time(moment: datetime | None) -> str:
    """A moment as a coach in Kortrijk reads it: ``27/11/2026 14:05``."""
    return moment.astimezone(BRUSSELS).strftime("%d/%m/%Y %H:%M") if moment else ""


def render(request: web.Request, template: str, context: Mapping[str, Any],
           *, status: int = 200) -> web.Response:
    """A page: ``template`` with ``context`` and what every page shows (the menu, the
    visitor's roles, the CSRF token, the texts)."""
    session = request.get(SESSION)
    visitor = request.get(VISITOR)
    response = aiohttp_jinja2.render_template(template, request, {
        "t": say(request), "lang": language_of(request), "visitor": visitor,
        "is_admin": isinstance(visitor, Visitor) and Role.ADMIN in visitor.roles,
        "csrf": csrf_token(session) if isinstance(session, str) else "",
        "when": local_time, "path": request.path, **context}, status=status)
    return response


def see_other(request: web.Request, route: str, **parts: str) -> web.Response:
    """Go on to the page of ``route`` after a POST (303: the browser GETs it)."""
    url = request.app.router[route].url_for(**parts)
    return web.Response(status=303, headers={"Location": str(url)})
