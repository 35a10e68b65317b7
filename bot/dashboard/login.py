"""Logging in without a password, the session, and who may open what.

``/dashboard`` in a coach's or admin's chat gives a one-time link
(:mod:`handlers.dashboard_link`). Opening it shows a page with one button: the link's
token is used only when that button is pressed (a POST), so a link preview or a mail
scanner that fetches the page uses nothing. Pressing it opens a session: a random token in
a cookie that is HttpOnly, SameSite=Strict, Secure behind HTTPS, valid until 8 hours pass
without a request (:data:`storage.dashboard.IDLE`).

Every request reads the session and the person's roles *now* (:func:`session`), so a role
revoked ends access at the next click. Routes declare what they need with
:func:`requires`; everyone else gets 403 (no session: the login page, 401). Every POST but
the login itself carries the session's CSRF token (:func:`bot.dashboard.desk.csrf_token`).
"""

from __future__ import annotations

import functools
import hmac
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.dashboard.desk import (
    COOKIE,
    SESSION,
    VISITOR,
    csrf_token,
    desk_of,
    render,
    see_other,
    visitor_of,
)
from storage import audit, dashboard
from storage.tables import Role

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Paths served without a session (relative to the dashboard's prefix).
OPEN_PATHS = ("/login", "/static/")
#: What every answer carries: no caching of personal pages, no framing, no referrer (a
#: login URL holds a token), and scripts and styles only from the dashboard itself.
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data:; "
                                "style-src 'self'; script-src 'self'; "
                                "frame-ancestors 'none'; form-action 'self'; "
                                "base-uri 'none'"),
}


def requires(role: Role) -> Callable[[Handler], Handler]:
    """Only for visitors with ``role`` (admins may do what coaches may)."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            if request.get(VISITOR) is None:
                return _login_needed(request)
            granted = visitor_of(request).roles
            if role not in granted and Role.ADMIN not in granted:
                return render(request, "refused.html", {}, status=403)
            return await handler(request)

        return checked

    return decorate


@web.middleware
async def session(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Find the visitor of the session cookie (roles as they are now), check the CSRF
    token of every POST, and add :data:`HEADERS` to the answer."""
    began = time.perf_counter()
    desk = desk_of(request)
    token = request.cookies.get(COOKIE)
    if token:
        async with desk.db.transaction() as tx:
            found = await dashboard.visitor(tx, token=token, now=desk.clock())
        if found is not None and (Role.COACH in found.roles or Role.ADMIN in found.roles):
            request[VISITOR] = found
            request[SESSION] = token
    # Without a session the route answers 401 itself; with one, a POST must carry its token.
    if (request.method == "POST" and SESSION in request and not _open(request)
            and not await _csrf_ok(request)):
        response: web.StreamResponse = render(request, "refused.html",
                                              {"reason": "csrf"}, status=403)
    else:
        response = await handler(request)
    if not response.prepared:  # a download sets them itself before it streams
        response.headers.update(HEADERS)
        # The server's own time for the page (what benchmarks/dashboard.py reports), after
        # what the page said of its parts.
        timing = f"app;dur={(time.perf_counter() - began) * 1000:.1f}"
        parts = response.headers.get("Server-Timing")
        response.headers["Server-Timing"] = f"{timing}, {parts}" if parts else timing
    return response


def _open(request: web.Request) -> bool:
    relative = request.path.removeprefix("/dashboard")
    return relative.startswith(OPEN_PATHS)


async def _csrf_ok(request: web.Request) -> bool:
    token = request[SESSION]
    sent = request.headers.get("X-CSRF-Token")
    if sent is None:
        form = await request.post()
        field = form.get("csrf")
        sent = field if isinstance(field, str) else ""
    return hmac.compare_digest(sent, csrf_token(token))


def _login_needed(request: web.Request) -> web.Response:
    return render(request, "login_needed.html", {}, status=401)


async def login_page(request: web.Request) -> web.Response:
    """``GET /login/{token}``: one button that logs in (the token is not used yet)."""
    return render(request, "login.html", {"token": request.match_info["token"]})


async def log_in(request: web.Request) -> web.StreamResponse:
    """``POST /login``: use the token; a coach or admin gets a session and the overview,
    anyone else (unknown, used or expired link, no role) the same refusal."""
    desk = desk_of(request)
    form = await request.post()
    token = form.get("token")
    now = desk.clock()
    async with desk.db.transaction() as tx:
        person = (await dashboard.redeem_login(tx, token=token, now=now)
                  if isinstance(token, str) and token else None)
        visitor = None
        if person is not None:
            session_token = await dashboard.open_session(tx, shopkeeper_id=person, now=now)
            visitor = await dashboard.visitor(tx, token=session_token, now=now)
        if visitor is None or not ({Role.COACH, Role.ADMIN} & visitor.roles):
            return render(request, "login_refused.html", {}, status=403)
        await audit.record(tx, actor=visitor.address, action="dashboard_login",
                           detail={"via": "dashboard"}, now=now)
    response = see_other(request, "overview")
    response.set_cookie(COOKIE, session_token, path="/dashboard", httponly=True,
                        samesite="Strict", secure=desk.secure)
    return response


async def log_out(request: web.Request) -> web.StreamResponse:
    """``POST /logout``: the session ends here and in the database."""
    desk = desk_of(request)
    token = request.get(SESSION)
    if isinstance(token, str):
        async with desk.db.transaction() as tx:
            await dashboard.end_session(tx, token=token)
    response = see_other(request, "logged_out")
    response.del_cookie(COOKIE, path="/dashboard")
    return response


async def logged_out(request: web.Request) -> web.Response:
    return render(request, "logged_out.html", {})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/login/{token}", login_page, name="login_page")
    app.router.add_post("/login", log_in, name="login")
    app.router.add_post("/logout", log_out, name="logout")
    app.router.add_get("/login", logged_out, name="logged_out")
