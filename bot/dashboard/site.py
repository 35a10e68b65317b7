"""The dashboard as an aiohttp sub-application, mounted at ``/dashboard`` on the bot's one
web server (:class:`bot.web.WebServer`).

    web.mount("/dashboard", dashboard_app(app, public_url="https://coach.example.be"))

Templates and static files ship inside the package (no CDN: it works offline); Jinja
escapes everything it is given (``autoescape``), so no page renders user text unescaped.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot.app import App
from bot.dashboard import admin, broadcasting, figures, login, tickets
from bot.dashboard.desk import DESK, Desk
from flows.places import gazetteer
from handlers.composer import Labels
from storage.tables import utcnow

HERE = Path(__file__).resolve().parent
#: The prefix the dashboard is mounted at (cookies are scoped to it).
PREFIX = "/dashboard"
#: A photo for a broadcast is at most 10 MB (Telegram's limit), plus the form around it.
MAX_BODY = 11 * 1024 * 1024


def dashboard_app(app: App, *, public_url: str,
                  clock: Callable[[], datetime] = utcnow) -> web.Application:
    """The dashboard for the running ``app``: its database, texts and use cases."""
    flows = app.dispatcher.shopkeeper.flows
    labels = Labels.from_flows(flows.latest("onboarding"), flows.latest("assessment"))
    site = web.Application(client_max_size=MAX_BODY, middlewares=[login.session])
    site[DESK] = Desk(db=app.db, texts=app.texts, stats=app.dispatcher.admin.stats,
                      broadcasts=app.broadcasts, places=gazetteer(), labels=labels,
                      clock=clock, public_url=public_url.rstrip("/"),
                      bot_username=lambda: app.dispatcher.admin.bot_username)
    aiohttp_jinja2.setup(site, loader=jinja2.FileSystemLoader(HERE / "templates"),
                         autoescape=True, undefined=jinja2.StrictUndefined)
    site.router.add_static("/static", HERE / "static", name="static")
    for part in (login, figures, broadcasting, tickets, admin):
        part.add_routes(site)
    return site
