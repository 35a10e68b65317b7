"""GraphState: what the emulator holds (messages sent, media, users' windows, webhook
answers), its clock, and what every Graph API endpoint shares: the bearer token check and the
Graph error answer."""

from __future__ import annotations

import asyncio
import hmac
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from .limits import ERRORS, VERSION, RefusalError
from .sent import Fault, Sent


@dataclass
class GraphState:
    """``templates``: name → languages it is approved in and its number of body
    parameters."""

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

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock on (windows close, days pass)."""
        self.offset += seconds

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
