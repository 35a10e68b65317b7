"""For admins only: exports as downloads, roles (grant, revoke, invite links) and the audit
trail.

An export is the one the chat and the command line make (:func:`handlers.export_files.produce`
on a reader connection of its own, in a worker thread), streamed to the browser as it is
written: memory stays flat and the event loop free. It is written to the audit trail once
the last byte went out, as the command line does; a download broken off is not an export.
Every view of the roles and of the audit trail is audited too.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import IO, Any, cast

from aiohttp import web

from bot.dashboard.desk import desk_of, language_of, render, see_other, visitor_of
from bot.dashboard.login import HEADERS, requires
from handlers.admin import invite_link
from handlers.export_files import CONTENT_TYPES, FORMATS, ExportRequest, produce
from handlers.export_tables import TABLES
from storage import audit, exports, invites, roles, shopkeepers
from storage.tables import Role

#: Bytes in flight between the export's thread and the download.
CHUNKS_AHEAD = 16
#: The audit trail's page: this far back.
AUDIT_DAYS = 90
AUDIT_SHOWN = 500


class _Pipe:
    """A file the export thread writes to; the chunks go to the event loop's queue, and
    the thread waits when the browser reads slower than the export writes. Not seekable:
    the XLSX writer streams its zip then."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 queue: asyncio.Queue[bytes | None]) -> None:
        self._loop = loop
        self._queue = queue

    def write(self, data: bytes) -> int:
        if data:
            asyncio.run_coroutine_threadsafe(self._queue.put(bytes(data)), self._loop).result()
        return len(data)

    def flush(self) -> None:
        pass


@requires(Role.ADMIN)
async def exports_page(request: web.Request) -> web.Response:
    """``GET /exports``: what can be downloaded, in which format."""
    return render(request, "exports.html", {"tables": list(TABLES), "formats": FORMATS})


@requires(Role.ADMIN)
async def download(request: web.Request) -> web.StreamResponse:
    """``GET /exports/file?what=answers&format=csv``: the export, streamed."""
    desk = desk_of(request)
    try:
        wanted = ExportRequest((request.query.get("what", ""),),
                               request.query.get("format", ""))
    except ValueError:
        return render(request, "exports.html", {
            "tables": list(TABLES), "formats": FORMATS, "refused": True}, status=400)
    async with desk.db.transaction() as tx:
        url = exports.reader_url(tx)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=CHUNKS_AHEAD)
    pipe = _Pipe(loop, queue)

    def work() -> int:
        try:
            return produce(url, wanted, cast(IO[bytes], pipe))
        finally:
            asyncio.run_coroutine_threadsafe(queue.put(None), loop).result()

    making = asyncio.ensure_future(asyncio.to_thread(work))
    response = web.StreamResponse(headers={
        **HEADERS, "Content-Type": CONTENT_TYPES[wanted.format],
        "Content-Disposition": f'attachment; filename="{wanted.file_name(desk.clock())}"'})
    try:
        await response.prepare(request)
        while (chunk := await queue.get()) is not None:
            await response.write(chunk)
        rows = await making
    finally:
        if not making.done():  # the browser went away: let the thread finish writing
            while not making.done():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                await asyncio.wait({making}, timeout=0.05)
    async with desk.db.transaction() as tx:
        await audit.record(tx, actor=visitor_of(request).address, action="export",
                           detail={**wanted.describe(), "rows": rows, "via": "dashboard"},
                           now=desk.clock())
    await response.write_eof()
    return response


@requires(Role.ADMIN)
async def roles_page(request: web.Request) -> web.Response:
    """``GET /roles``: who is coach or admin; forms to grant, revoke and invite."""
    return await _roles(request, problem=request.query.get("problem") == "unknown")


async def _roles(request: web.Request, *, invite: str | None = None,
                 problem: bool = False) -> web.Response:
    desk = desk_of(request)
    async with desk.db.transaction() as tx:
        granted = await roles.everyone(tx)
        await audit.record(tx, actor=visitor_of(request).address, action="dashboard_view",
                           detail={"page": "roles"}, now=desk.clock())
    return render(request, "roles.html", {
        "granted": [{"address": f"{channel}:{ext}", "role": str(role), "by": by}
                    for channel, ext, role, by in granted],
        "invite": invite, "problem": problem, "roles": [str(r) for r in Role]},
        status=400 if problem else 200)


@requires(Role.ADMIN)
async def change_role(request: web.Request) -> web.StreamResponse:
    """``POST /roles``: grant or revoke a role of ``telegram:ID``."""
    desk = desk_of(request)
    form = await request.post()
    address, role, action = (str(form.get(name, "")).strip()
                             for name in ("address", "role", "action"))
    channel, _, external_id = address.partition(":")
    if role not in {r.value for r in Role} or action not in ("grant", "revoke"):
        return _roles_again(request, "unknown")
    async with desk.db.transaction() as tx:
        person = await shopkeepers.find_by_identity(tx, channel=channel,
                                                    external_id=external_id)
        if person is None:
            return _roles_again(request, "unknown")
        by = visitor_of(request).address
        if action == "grant":
            await roles.grant(tx, shopkeeper_id=person.id, role=Role(role), by=by)
        else:
            await roles.revoke(tx, shopkeeper_id=person.id, role=Role(role), by=by)
    return see_other(request, "roles")


@requires(Role.ADMIN)
async def invite(request: web.Request) -> web.StreamResponse:
    """``POST /roles/invite``: a one-time invite link to a role (7 days)."""
    desk = desk_of(request)
    form = await request.post()
    role = str(form.get("role", ""))
    if role not in {r.value for r in Role}:
        return _roles_again(request, "unknown")
    visitor = visitor_of(request)
    async with desk.db.transaction() as tx:
        code = await invites.create(tx, role=Role(role), via=visitor.address,
                                    created_by=visitor.shopkeeper_id, now=desk.clock())
    bot = desk.bot_username()
    # Shown once, on this answer (never in a URL: it is a key to a role).
    return await _roles(request, invite=invite_link(bot, code) if bot
                        else f"/start {invites.payload(code)}")


def _roles_again(request: web.Request, problem: str) -> web.Response:
    url = request.app.router["roles"].url_for().with_query(problem=problem)
    return web.Response(status=303, headers={"Location": str(url)})


@requires(Role.ADMIN)
async def audit_page(request: web.Request) -> web.Response:
    """``GET /audit``: the latest entries of the audit trail (this view is one too)."""
    desk = desk_of(request)
    now = desk.clock()
    async with desk.db.transaction() as tx:
        await audit.record(tx, actor=visitor_of(request).address, action="dashboard_view",
                           detail={"page": "audit"}, now=now)
        found = await audit.entries(tx, since=now - timedelta(days=AUDIT_DAYS))
    entries: list[Any] = list(reversed(found[-AUDIT_SHOWN:]))
    return render(request, "audit.html", {"entries": entries, "days": AUDIT_DAYS,
                                          "lang": language_of(request)})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/exports", exports_page, name="exports")
    app.router.add_get("/exports/file", download, name="export_file")
    app.router.add_get("/roles", roles_page, name="roles")
    app.router.add_post("/roles", change_role, name="role_change")
    app.router.add_post("/roles/invite", invite, name="role_invite")
    app.router.add_get("/audit", audit_page, name="audit")
