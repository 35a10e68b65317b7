"""Tickets and leads: the shopkeepers who asked for a human coach (open, claimed by a
coach, closed) and those who asked to be contacted. Personal data: each view is written to
the audit trail."""

from __future__ import annotations

from aiohttp import web

from bot.dashboard.desk import desk_of, language_of, render, visitor_of
from bot.dashboard.login import requires
from flows.definition import DEFAULT_LANGUAGE
from storage import audit, dashboard
from storage.tables import Role, TicketStatus

#: Tickets listed per status.
LISTED = 100


@requires(Role.COACH)
async def tickets(request: web.Request) -> web.Response:
    """``GET /tickets``: open and claimed tickets, the latest closed ones, and the leads
    (a ticket opened by "yes, a coach may contact me")."""
    desk = desk_of(request)
    # The contact request is stored as this sentence (see handlers.tickets).
    lead = desk.texts.get(DEFAULT_LANGUAGE, "tk_contact_request")
    async with desk.db.transaction() as tx:
        active = await dashboard.tickets(tx, statuses=(TicketStatus.OPEN,
                                                       TicketStatus.CLAIMED), limit=LISTED)
        closed = await dashboard.tickets(tx, statuses=(TicketStatus.CLOSED,), limit=LISTED)
        await audit.record(tx, actor=visitor_of(request).address, action="dashboard_view",
                           detail={"page": "tickets", "tickets": len(active) + len(closed)},
                           now=desk.clock())
    label = desk.stats.label
    lang = language_of(request)
    return render(request, "tickets.html", {
        "open": [t for t in active if t.status == TicketStatus.OPEN],
        "claimed": [t for t in active if t.status == TicketStatus.CLAIMED],
        "closed": closed,
        "leads": [t for t in (*active, *closed) if t.question == lead],
        "shop_type": lambda key: label("shop_type", key, lang) if key else ""})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/tickets", tickets, name="tickets")
