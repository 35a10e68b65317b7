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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

VERSION = "v23.0"
WINDOW_SECONDS = 24 * 3600
#: How long media ids last (Cloud API, "Media"): uploaded 30 days, from webhooks 7 days.
UPLOADED_SECONDS = 30 * 24 * 3600
RECEIVED_SECONDS = 7 * 24 * 3600
#: How long a media URL serves the file.
URL_SECONDS = 5 * 60

#: Documented limits of interactive messages (Cloud API reference, "Interactive object").
MAX_TEXT = 4096
MAX_BODY = 1024
MAX_BUTTONS = 3
MAX_BUTTON_TITLE = 20
MAX_BUTTON_ID = 256
MAX_ROWS = 10
MAX_ROW_TITLE = 24
MAX_ROW_DESCRIPTION = 72
MAX_ROW_ID = 200
MAX_LIST_BUTTON = 20
MAX_HEADER = 60
MAX_FOOTER = 60
MAX_CAPTION = 1024
#: A template parameter may not hold these (error 132018).
_BAD_PARAMETER = re.compile(r"[\n\t]| {5,}")

#: Error codes and what Meta calls them.
ERRORS = {
    190: "Invalid OAuth access token",
    100: "Invalid parameter",
    130429: "Rate limit hit",
    131026: "Message undeliverable",
    131047: "Re-engagement message",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
    132018: "There was an issue with the parameters in your template",
    131053: "Media upload error",
}


class RefusalError(Exception):
    """A call the Cloud API refuses: HTTP status and Graph error code."""

    def __init__(self, code: int, details: str, status: int = 400) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
        self.status = status


@dataclass
class Fault:
    code: int
    status: int
    count: int


@dataclass
class Sent:
    """A message the emulator accepted."""

    wamid: str
    to: str
    type: str
    body: dict[str, Any]
    at: float

    @property
    def text(self) -> str:
        """What the person reads first: the text, the body, the caption or the template's
        parameters."""
        kind = self.body.get(self.type, {})
        if self.type == "text":
            return str(kind.get("body", ""))
        if self.type == "interactive":
            return str(kind.get("body", {}).get("text", ""))
        if self.type in ("image", "document"):
            return str(kind.get("caption", ""))
        if self.type == "template":
            return " ".join(p.get("text", "") for c in kind.get("components", [])
                            for p in c.get("parameters", []))
        return ""

    @property
    def choices(self) -> list[tuple[str, str]]:
        """(id, title) of each reply button or list row."""
        interactive = self.body.get("interactive", {})
        action = interactive.get("action", {})
        if interactive.get("type") == "button":
            return [(b["reply"]["id"], b["reply"]["title"]) for b in action.get("buttons", [])]
        if interactive.get("type") == "list":
            return [(r["id"], r["title"]) for s in action.get("sections", [])
                    for r in s.get("rows", [])]
        return []

    def row(self, row_id: str) -> dict[str, Any]:
        for section in self.body.get("interactive", {}).get("action", {}).get("sections", []):
            for row in section.get("rows", []):
                if row["id"] == row_id:
                    return dict(row)
        raise KeyError(row_id)


@dataclass
class GraphEmulator:
    """The Cloud API on loopback. ``templates``: name → languages it is approved in and its
    number of body parameters."""

    token: str = "EAAG-test-token"
    app_secret: str = "test-app-secret"
    phone_number_id: str = "109876543210"
    version: str = VERSION
    templates: dict[str, tuple[frozenset[str], int]] = field(default_factory=lambda: {
        name: (frozenset({"nl", "en", "fr"}), 1)
        for name in ("kiss_tip", "kiss_reminder", "kiss_broadcast", "kiss_check_in")})
    webhook_url: str = ""
    sent: list[Sent] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    #: Uploaded files by media id: (bytes, content type, file name).
    media: dict[str, tuple[bytes, str, str]] = field(default_factory=dict)
    #: Files users sent, by the media id their webhook carried: (bytes, content type).
    received: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    #: Media ids whose bytes were downloaded (through a media URL), in order.
    downloads: list[str] = field(default_factory=list)
    #: wa_id → the emulator's time of their last message (opens the 24-hour window).
    last_inbound: dict[str, float] = field(default_factory=dict)
    #: HTTP statuses the bot answered to each webhook post, in order.
    webhook_answers: list[int] = field(default_factory=list)
    offset: float = 0.0

    def __post_init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._changed = asyncio.Condition()
        # Per recipient, so that hundreds of simulated people waiting do not all wake for
        # every message (the benchmark).
        self._by_to: dict[str, list[Sent]] = {}
        self._changed_for: dict[str, asyncio.Condition] = {}
        #: media id -> when (the emulator's clock) it was uploaded or received
        self._media_at: dict[str, float] = {}
        #: a media URL's key -> (media id, until when it serves)
        self._urls: dict[str, tuple[str, float]] = {}
        self.port = 0

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

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock on (windows close, days pass)."""
        self.offset += seconds

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

    def _authorized(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode())

    def _refuse(self, refusal: RefusalError, request_body: Any = None,
                injected: bool = False) -> web.Response:
        self.errors.append({"code": refusal.code, "details": refusal.details,
                            "body": request_body, "injected": injected})
        return web.json_response({"error": {
            "message": f"({'#' + str(refusal.code)}) {ERRORS.get(refusal.code, 'Error')}",
            "type": "OAuthException", "code": refusal.code,
            "error_data": {"messaging_product": "whatsapp", "details": refusal.details},
            "fbtrace_id": "Aemulator"}}, status=refusal.status)

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
        check = {"text": self._text, "interactive": self._interactive,
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

    @staticmethod
    def _limit(text: Any, limit: int, what: str, required: bool = True) -> None:
        if text is None and not required:
            return
        if not isinstance(text, str) or (required and not text.strip()):
            raise RefusalError(100, f"{what} is required")
        if len(text) > limit:
            raise RefusalError(100, f"{what} is longer than {limit} characters")

    def _text(self, part: Any, _: str) -> None:
        self._limit((part or {}).get("body"), MAX_TEXT, "text.body")

    def _interactive(self, part: Any, _: str) -> None:
        if not isinstance(part, dict):
            raise RefusalError(100, "interactive is required")
        self._limit(part.get("body", {}).get("text"), MAX_BODY, "body.text")
        header = part.get("header")
        if header is not None:
            self._limit(header.get("text"), MAX_HEADER, "header.text")
        footer = part.get("footer")
        if footer is not None:
            self._limit(footer.get("text"), MAX_FOOTER, "footer.text")
        action = part.get("action") or {}
        if part.get("type") == "button":
            buttons = action.get("buttons") or []
            if not 1 <= len(buttons) <= MAX_BUTTONS:
                raise RefusalError(100, f"buttons: between 1 and {MAX_BUTTONS}")
            ids, titles = set(), set()
            for button in buttons:
                reply = button.get("reply") or {}
                self._limit(reply.get("title"), MAX_BUTTON_TITLE, "button title")
                self._limit(reply.get("id"), MAX_BUTTON_ID, "button id")
                if reply["id"] in ids or reply["title"] in titles:
                    raise RefusalError(100, "button ids and titles must be unique")
                ids.add(reply["id"])
                titles.add(reply["title"])
        elif part.get("type") == "list":
            self._limit(action.get("button"), MAX_LIST_BUTTON, "action.button")
            sections = action.get("sections") or []
            rows = [row for section in sections for row in section.get("rows") or []]
            if not sections or not 1 <= len(rows) <= MAX_ROWS:
                raise RefusalError(100, f"a list has between 1 and {MAX_ROWS} rows")
            if len(sections) > 1:
                for section in sections:
                    self._limit(section.get("title"), MAX_ROW_TITLE, "section title")
            ids = set()
            for row in rows:
                self._limit(row.get("title"), MAX_ROW_TITLE, "row title")
                self._limit(row.get("id"), MAX_ROW_ID, "row id")
                self._limit(row.get("description"), MAX_ROW_DESCRIPTION, "row description",
                            required=False)
                if row["id"] in ids:
                    raise RefusalError(100, "row ids must be unique")
                ids.add(row["id"])
        else:
            raise RefusalError(100, "interactive type must be button or list")

    def _media_message(self, part: Any, kind: str) -> None:
        if not isinstance(part, dict) or not (part.get("id") or part.get("link")):
            raise RefusalError(100, f"{kind}: an id or a link is required")
        if part.get("id") in self.received:
            raise RefusalError(131053, f"media id {part['id']} came with a received message: "
                                       "upload the file to send it")
        if part.get("id") and not self._alive(str(part["id"]), self.media, UPLOADED_SECONDS):
            raise RefusalError(131053, f"unknown media id {part['id']}")
        self._limit(part.get("caption"), MAX_CAPTION, "caption", required=False)

    def _template(self, part: Any, _: str) -> None:
        if not isinstance(part, dict):
            raise RefusalError(100, "template is required")
        known = self.templates.get(str(part.get("name")))
        language = (part.get("language") or {}).get("code")
        if known is None or language not in known[0]:
            raise RefusalError(132001, f"template {part.get('name')!r} ({language}) does not exist")
        parameters = [p for c in part.get("components") or [] if c.get("type") == "body"
                      for p in c.get("parameters") or []]
        if len(parameters) != known[1]:
            raise RefusalError(132000, f"expected {known[1]} parameters, got {len(parameters)}")
        for parameter in parameters:
            text = parameter.get("text")
            if not isinstance(text, str) or not text or _BAD_PARAMETER.search(text):
                raise RefusalError(132018, "a parameter may not be empty nor hold new lines, "
                                      "tabs or more than 4 consecutive spaces")

    async def _upload(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._refuse(RefusalError(190, "invalid access token", 401))
        fields: dict[str, Any] = {}
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, aiohttp.BodyPartReader):
                continue
            data = await part.read()
            fields[part.name or ""] = (data, part.headers.get("Content-Type", ""),
                                       part.filename or "")
        if fields.get("messaging_product", (b"",))[0] != b"whatsapp" or "file" not in fields:
            return self._refuse(RefusalError(100, "messaging_product and file are required"))
        data, content_type, name = fields["file"]
        if not data or not content_type:
            return self._refuse(RefusalError(131053, "empty file or no content type"))
        media_id = f"{next(self._ids) + 7_000_000_000}"
        self.media[media_id] = (bytes(data), content_type, name)
        self._media_at[media_id] = self.now()
        return web.json_response({"id": media_id})

    def _alive(self, media_id: str, where: dict[str, Any], lasts: float) -> bool:
        return media_id in where and self.now() - self._media_at.get(media_id, 0.0) <= lasts

    def _file(self, media_id: str) -> tuple[bytes, str] | None:
        """The bytes and type of a media id that has not expired."""
        if self._alive(media_id, self.media, UPLOADED_SECONDS):
            data, content_type, _ = self.media[media_id]
            return data, content_type
        if self._alive(media_id, self.received, RECEIVED_SECONDS):
            return self.received[media_id]
        return None

    async def _media_url(self, request: web.Request) -> web.Response:
        """``GET /{version}/{media-id}``: where to download the file, for 5 minutes."""
        if not self._authorized(request):
            return self._refuse(RefusalError(190, "invalid access token", 401))
        media_id = request.match_info["media_id"]
        found = self._file(media_id)
        if found is None:
            return self._refuse(RefusalError(
                100, f"Unsupported get request. Object with ID '{media_id}' does not exist, "
                     "cannot be loaded due to missing permissions, or does not support this "
                     "operation"))
        data, content_type = found
        key = hashlib.sha256(f"{media_id}:{next(self._ids)}".encode()).hexdigest()[:24]
        self._urls[key] = (media_id, self.now() + URL_SECONDS)
        return web.json_response({
            "messaging_product": "whatsapp", "id": media_id, "mime_type": content_type,
            "sha256": hashlib.sha256(data).hexdigest(), "file_size": str(len(data)),
            "url": f"http://127.0.0.1:{self.port}/whatsapp_business/attachments/?mid={key}"})

    async def _download(self, request: web.Request) -> web.Response:
        """A media URL: the bytes, with the bearer token, while the URL lasts."""
        if not self._authorized(request):
            return web.Response(status=401, text="unauthorized")
        media_id, until = self._urls.get(request.query.get("mid", ""), ("", 0.0))
        file = self._file(media_id) if self.now() <= until else None
        if file is None:
            return web.Response(status=404, text="not found")
        self.downloads.append(media_id)
        return web.Response(body=file[0], content_type=file[1])

    # -- webhooks to the bot -------------------------------------------------------------

    def sign(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self.app_secret.encode(), body, hashlib.sha256).hexdigest()

    async def post(self, body: bytes, signature: str | None) -> int:
        """Post ``body`` to the bot's webhook with ``signature`` (None: no header)."""
        assert self._session is not None and self.webhook_url, "set webhook_url first"
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        async with self._session.post(self.webhook_url, data=body, headers=headers) as answer:
            await answer.read()
            self.webhook_answers.append(answer.status)
            return answer.status

    def envelope(self, value: dict[str, Any]) -> bytes:
        value = {"messaging_product": "whatsapp",
                 "metadata": {"display_phone_number": "3250000000",
                              "phone_number_id": self.phone_number_id}, **value}
        return json.dumps({"object": "whatsapp_business_account", "entry": [{
            "id": "WABA-EMU", "changes": [{"value": value, "field": "messages"}]}]}).encode()

    async def deliver(self, body: bytes) -> int:
        """Post a signed body."""
        return await self.post(body, self.sign(body))

    def message(self, wa_id: str, kind: str, content: dict[str, Any], *,
                name: str = "An", context: str | None = None) -> tuple[str, bytes]:
        """A user's message as Meta posts it: (its wamid, the webhook body)."""
        wamid = f"wamid.IN{next(self._ids):08d}"
        self.last_inbound[wa_id] = self.now()
        message: dict[str, Any] = {"from": wa_id, "id": wamid,
                                   "timestamp": str(int(self.now())), "type": kind,
                                   kind: content}
        if context is not None:
            message["context"] = {"from": "3250000000", "id": context}
        return wamid, self.envelope({"contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
                                     "messages": [message]})

    async def user_sends_text(self, wa_id: str, text: str, **extra: Any) -> str:
        wamid, body = self.message(wa_id, "text", {"body": text}, **extra)
        await self.deliver(body)
        return wamid

    async def user_presses(self, wa_id: str, message: Sent, title: str) -> str:
        """Press the reply button called ``title`` on ``message``."""
        for button_id, button_title in message.choices:
            if button_title == title and message.body["interactive"]["type"] == "button":
                wamid, body = self.message(wa_id, "interactive", {
                    "type": "button_reply", "button_reply": {"id": button_id,
                                                              "title": button_title}},
                    context=message.wamid)
                await self.deliver(body)
                return wamid
        raise AssertionError(f"no button {title!r} in {message.choices}")

    async def user_picks(self, wa_id: str, message: Sent, title: str) -> str:
        """Pick the list row called ``title`` on ``message``."""
        for row_id, row_title in message.choices:
            if row_title == title and message.body["interactive"]["type"] == "list":
                row = message.row(row_id)
                wamid, body = self.message(wa_id, "interactive", {
                    "type": "list_reply", "list_reply": {
                        "id": row_id, "title": row_title,
                        "description": row.get("description", "")}}, context=message.wamid)
                await self.deliver(body)
                return wamid
        raise AssertionError(f"no row {title!r} in {message.choices}")

    async def answer(self, wa_id: str, message: Sent, title: str) -> str:
        """Press the button or pick the row called ``title``."""
        if message.body["interactive"]["type"] == "button":
            return await self.user_presses(wa_id, message, title)
        return await self.user_picks(wa_id, message, title)

    def receive_file(self, data: bytes) -> str:
        """Keep a picture a user sends (JPEG or PNG bytes); its media id, which is for
        downloading only."""
        media_id = f"{next(self._ids) + 8_000_000_000}"
        content_type = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
        self.received[media_id] = (data, content_type)
        self._media_at[media_id] = self.now()
        return media_id

    async def user_sends_image(self, wa_id: str, data: bytes, caption: str = "") -> str:
        """A user sends a picture (JPEG or PNG bytes) with a caption."""
        media_id = self.receive_file(data)
        content_type = self.received[media_id][1]
        wamid, body = self.message(wa_id, "image", {
            "caption": caption, "mime_type": content_type,
            "sha256": hashlib.sha256(data).hexdigest(), "id": media_id})
        await self.deliver(body)
        return wamid

    def status_body(self, wamid: str, status: str, *, code: int | None = None) -> bytes:
        sent = next(m for m in self.sent if m.wamid == wamid)
        entry: dict[str, Any] = {"id": wamid, "status": status,
                                 "timestamp": str(int(self.now())), "recipient_id": sent.to}
        if code is not None:
            entry["errors"] = [{"code": code, "title": ERRORS.get(code, "Error")}]
        return self.envelope({"statuses": [entry]})

    async def status(self, wamid: str, status: str, *, code: int | None = None) -> int:
        """Tell the bot what became of a message: sent, delivered, read or failed."""
        return await self.deliver(self.status_body(wamid, status, code=code))

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
