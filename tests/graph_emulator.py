"""A loopback WhatsApp Cloud API (Graph API) emulator for end-to-end tests and benchmarks.

The bot's real HTTP client talks to it through ``WHATSAPP_API_BASE_URL``; the emulator answers
the way the Cloud API does, including its refusals, so tests catch what production would
reject:

* ``POST /{version}/{phone_number_id}/messages``: text (≤ 4,096), interactive reply buttons
  (≤ 3, titles ≤ 20 characters and unique, ids ≤ 256), interactive lists (≤ 10 rows in all,
  row title ≤ 24, description ≤ 72, button text ≤ 20, body ≤ 1,024, header/footer ≤ 60),
  image and document by media id or link, templates (known names and languages only; a
  parameter may not hold a newline, a tab or more than four spaces in a row). Free-form
  messages only within 24 hours of the person's last message (the emulator's clock, which
  :meth:`advance` moves on): else error 131047. Answers carry ``wamid``\\ s.
* ``POST /{version}/{phone_number_id}/media``: a multipart upload; answers a media id,
  which messages may use for 30 days.
* ``GET /{version}/{media-id}``: the media's ``url``, ``mime_type``, ``sha256`` and
  ``file_size``, for an uploaded file (30 days) or one a user sent (7 days); the ``url``
  serves the bytes for 5 minutes, to the same bearer token only (else 401; later, 404).
* A media id that came with a user's message is for downloading only: a message that
  sends it is refused (131053), as the Cloud API documents sending by the id of an
  *uploaded* file; the bot must upload the bytes.
* A wrong or missing bearer token gets 401 (code 190).

Faults: :meth:`fail_next` makes the next calls fail with a Graph error code (130429, 131056,
131026, …) or a 5xx. Webhooks: :meth:`user_sends_text`, :meth:`user_presses`,
:meth:`user_picks`, :meth:`user_sends_image` and :meth:`status` post what Meta posts to the
bot's webhook, signed (``X-Hub-Signature-256``: HMAC-SHA256 of the raw body with the app
secret); :meth:`post` sends any body with any signature (for the refusals).

In a test::

    async with GraphEmulator() as graph:
        graph.webhook_url = "http://127.0.0.1:8080/whatsapp/webhook"
        await graph.user_sends_text("32470000001", "hallo")
        await graph.wait_for_sent(1)

The emulator itself is the package ``tests/graph_api``: the limits and error codes and the
checks of a message body (``limits.py``), what it accepted (``sent.py``), its state and clock
(``state.py``), media (``media.py``) and what users do (``users.py``); this module puts them
together as :class:`GraphEmulator`, re-exports their public names, and runs the emulator as a
process (``python tests/graph_emulator.py --port 8082``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web
from graph_api.limits import (
    ERRORS,
    MAX_BODY,
    MAX_BUTTON_ID,
    MAX_BUTTON_TITLE,
    MAX_BUTTONS,
    MAX_CAPTION,
    MAX_FOOTER,
    MAX_HEADER,
    MAX_LIST_BUTTON,
    MAX_ROW_DESCRIPTION,
    MAX_ROW_ID,
    MAX_ROW_TITLE,
    MAX_ROWS,
    MAX_TEXT,
    VERSION,
    WINDOW_SECONDS,
    RefusalError,
    check_interactive,
    check_template,
    check_text,
)
from graph_api.media import RECEIVED_SECONDS, UPLOADED_SECONDS, URL_SECONDS
from graph_api.sent import Fault, Sent
from graph_api.users import UserActions

__all__ = ["ERRORS", "MAX_BODY", "MAX_BUTTONS", "MAX_BUTTON_ID", "MAX_BUTTON_TITLE",
           "MAX_CAPTION", "MAX_FOOTER", "MAX_HEADER", "MAX_LIST_BUTTON", "MAX_ROWS",
           "MAX_ROW_DESCRIPTION", "MAX_ROW_ID", "MAX_ROW_TITLE", "MAX_TEXT", "RECEIVED_SECONDS",
           "UPLOADED_SECONDS", "URL_SECONDS", "VERSION", "WINDOW_SECONDS", "Fault",
           "GraphEmulator", "RefusalError", "Sent", "main"]


class GraphEmulator(UserActions):
    """The Cloud API on loopback. ``templates``: name → languages it is approved in and its
    number of body parameters."""

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self, port: int = 0) -> None:
        app = web.Application(client_max_size=100 * 1024 * 1024)
        app.router.add_post("/{version}/{phone}/messages", self._messages)
        app.router.add_post("/{version}/{phone}/media", self._upload)
        app.router.add_get("/whatsapp_business/attachments/", self._download)
        app.router.add_get("/{version}/{media_id}", self._media_url)
        app.router.add_post("/_emulator/{action}", self._control)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> GraphEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """What the bot takes as ``WHATSAPP_API_BASE_URL``."""
        return f"http://127.0.0.1:{self.port}/{self.version}"

    def fail_next(self, code: int, count: int = 1, status: int | None = None) -> None:
        """The next ``count`` message calls fail with Graph error ``code`` (or, for a code
        from 500 to 599, that HTTP status)."""
        http = code if 500 <= code < 600 else (status or 400)
        self._faults.append(Fault(code, http, count))

    # -- what tests read ---------------------------------------------------------------

    def messages_to(self, wa_id: str) -> list[Sent]:
        return list(self._by_to.get(wa_id, ()))

    def _condition(self, wa_id: str) -> asyncio.Condition:
        return self._changed_for.setdefault(wa_id, asyncio.Condition())

    async def wait_for_sent(self, count: int, *, to: str | None = None,
                            within: float = 15.0) -> list[Sent]:
        """Wait until ``count`` messages (to ``to``) were accepted; returns them."""
        if to is not None:
            return await self.settle(to, lambda ms: len(ms) >= count, within)
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.sent) >= count)
        return list(self.sent)

    async def settle(self, to: str, predicate: Callable[[list[Sent]], bool],
                     within: float = 15.0) -> list[Sent]:
        """Wait until the messages to ``to`` satisfy ``predicate``."""
        changed = self._condition(to)
        async with asyncio.timeout(within), changed:
            await changed.wait_for(lambda: predicate(self._by_to.get(to, [])))
        return self.messages_to(to)

    # -- the Graph API -----------------------------------------------------------------

    async def _messages(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._refuse(RefusalError(190, "invalid access token", 401))
        try:
            body = await request.json()
        except ValueError:
            return self._refuse(RefusalError(100, "the body is not JSON"))
        if request.match_info["phone"] != self.phone_number_id:
            return self._refuse(RefusalError(100, "unknown phone number id"), body)
        if self._faults:
            fault = self._faults[0]
            fault.count -= 1
            if fault.count <= 0:
                self._faults.pop(0)
            return self._refuse(RefusalError(fault.code, "injected", fault.status), body, True)
        try:
            kind = self._check(body)
        except RefusalError as refusal:
            return self._refuse(refusal, body)
        wamid = f"wamid.EMU{next(self._ids):08d}"
        sent = Sent(wamid, str(body["to"]), kind, body, self.now())
        self._by_to.setdefault(sent.to, []).append(sent)
        async with self._changed:
            self.sent.append(sent)
            self._changed.notify_all()
        changed = self._condition(sent.to)
        async with changed:
            changed.notify_all()
        return web.json_response({"messaging_product": "whatsapp",
                                  "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                                  "messages": [{"id": wamid}]})

    def _check(self, body: Any) -> str:
        """The message's type, or the refusal the Cloud API gives it."""
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            raise RefusalError(100, "messaging_product must be whatsapp")
        to = body.get("to")
        if not isinstance(to, str) or not to.isdigit():
            raise RefusalError(100, "to must be a phone number")
        kind = body.get("type", "text")
        check = {"text": check_text, "interactive": check_interactive,
                 "image": self._media_message, "document": self._media_message,
                 "template": self._template}.get(kind)
        if check is None:
            raise RefusalError(100, f"unsupported message type {kind!r}")
        check(body.get(kind), kind)
        if kind != "template":
            last = self.last_inbound.get(to)
            if last is None or self.now() - last > WINDOW_SECONDS:
                raise RefusalError(131047, "more than 24 hours have passed since the customer "
                                      "last replied to this number")
        return str(kind)

    def _template(self, part: Any, _: str) -> None:
        check_template(part, self.templates)

    # -- control over HTTP (the benchmark runs the emulator as a process) ----------------

    async def _control(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        args = await request.json() if request.can_read_body else {}
        if action == "count":
            return web.json_response({"sent": len(self.sent)})
        if action == "webhook":
            self.webhook_url = args["url"]
            return web.json_response({})
        if action == "text":
            await self.user_sends_text(args["wa_id"], args["text"])
            return web.json_response({})
        return web.json_response({"error": f"unknown action {action}"}, status=404)


async def _serve(port: int) -> None:
    emulator = GraphEmulator()
    await emulator.start(port)
    print(f"listening on 127.0.0.1:{emulator.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(asyncio.CancelledError):
        await stop.wait()
    await emulator.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8082)
    asyncio.run(_serve(parser.parse_args(argv).port))


if __name__ == "__main__":
    main()
