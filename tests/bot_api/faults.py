"""FaultInjection: the failures tests ask for, the way the Bot API (or the network) fails.

- ``fail_next``: the next calls of a method are refused with a status (before the body is read).
- ``fail_fraction``: a seeded share of the calls is refused (5xx, as Telegram's front end does
  under load): deterministic, so a failing run can be replayed.
- ``drop_next``: the whole request is read, then the connection is closed without an answer.
  The client sees a disconnect after having written its request: it cannot know whether the
  call took effect (the "uncertain" case). With ``processed`` it did: a resend duplicates it.
- ``flood``: a 429 window; every send-like call inside it is refused, and any that arrives
  after the first 429 was answered is recorded in ``flood_violations``: a bot that honours
  ``retry_after`` sends nothing into the window once told.

Every refusal these make is marked ``injected`` in ``errors``, so that a test can assert that
every other refusal is a bug of the bot.
"""

from __future__ import annotations

import collections
import math
import random
import time
from typing import Any

from .params import ApiError, Params
from .state import Drop, EmulatorState, Fault, Flood, FractionFault

#: The calls that put something in front of a user ("*" in fail_fraction, and what flood stops).
SEND_LIKE = frozenset({"sendmessage", "sendphoto", "senddocument", "editmessagetext",
                       "answercallbackquery", "sendchataction"})
_DESCRIPTIONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                 409: "Conflict", 500: "Internal Server Error", 502: "Bad Gateway",
                 503: "Service Unavailable", 504: "Gateway Timeout"}


def _refusal(status: int, description: str, retry_after: int | None) -> tuple[
        str, dict[str, Any] | None]:
    """(description, parameters) of an injected refusal, with the Bot API's defaults."""
    if status == 429:
        retry_after = 5 if retry_after is None else retry_after
        return (description or f"Too Many Requests: retry after {retry_after}",
                {"retry_after": retry_after})
    parameters = None if retry_after is None else {"retry_after": retry_after}
    return description or _DESCRIPTIONS.get(status, "Error"), parameters


class FaultInjection(EmulatorState):
    """The fault-injection side of BotAPIEmulator."""

    def fail_next(self, method: str, *, status: int, description: str = "",
                  retry_after: int | None = None, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` ("*": any method) fail with ``status``."""
        description, parameters = _refusal(status, description, retry_after)
        self._faults.setdefault(method.lower(), collections.deque()).append(
            Fault(status, description, parameters, times))

    def fail_fraction(self, method: str, fraction: float, status: int = 502,
                      description: str = "Bad Gateway", seed: int = 0, *,
                      retry_after: int | None = None) -> None:
        """Refuse ``fraction`` (0..1) of the calls of ``method`` with ``status``.

        ``method`` "*" means every send-like call (SEND_LIKE); a method's own setting comes
        first. Which calls fail is drawn from ``random.Random(seed)`` per setting, so the same
        order of calls fails the same way every run. ``fraction`` 0 turns it off.
        """
        if not 0 <= fraction <= 1:
            raise ValueError(f"fraction must be within 0..1, not {fraction}")
        key = method.lower()
        if fraction == 0:
            self._fractions.pop(key, None)
            return
        if status == 429 and description == "Bad Gateway":
            description = ""
        description, parameters = _refusal(status, description, retry_after)
        self._fractions[key] = FractionFault(fraction, status, description, parameters,
                                             random.Random(seed))

    def drop_next(self, method: str, times: int = 1, processed: bool = False) -> None:
        """Answer the next ``times`` calls of ``method`` ("*": any) by closing the connection.

        The request body is read first, so the client has written it all and cannot tell
        whether it arrived. ``processed``: the call takes effect (the message is stored, the
        chat sees it) and only the answer is lost. Each drop is recorded in ``dropped``.
        """
        if times < 1:
            raise ValueError("times must be at least 1")
        self._drops.setdefault(method.lower(), collections.deque()).append(
            Drop(times, processed))

    def flood(self, seconds: float, chat_id: int | None = None) -> None:
        """For ``seconds`` from now, refuse every send-like call (to ``chat_id``, or to any
        chat) with 429 and ``retry_after`` = the seconds left, rounded up.

        Calls that arrive after the window's first 429 are recorded in ``flood_violations``
        (method, chat_id, and ``at``: seconds after that first 429). ``seconds`` 0 ends the
        floods of that scope.
        """
        self._floods = [f for f in self._floods if f.chat_id != chat_id]
        if seconds > 0:
            self._floods.append(Flood(time.monotonic() + seconds, chat_id))

    # ---- deciding a call's fate -----------------------------------------------------------

    def _take_fault(self, method: str) -> Fault | None:
        for key in (method, "*"):
            faults = self._faults.get(key)
            if faults:
                fault = faults[0]
                fault.times -= 1
                if fault.times <= 0:
                    faults.popleft()
                return fault
        return None

    def _take_drop(self, method: str) -> Drop | None:
        for key in (method, "*"):
            drops = self._drops.get(key)
            if drops:
                drop = drops[0]
                drop.times -= 1
                if drop.times <= 0:
                    drops.popleft()
                return drop
        return None

    def _check_injected(self, method: str, name: str, params: Params) -> None:
        """Raise the injected refusal this call meets (flood first, then fail_fraction)."""
        if self._floods and method in SEND_LIKE:
            self._check_flood(name, self._call_chat_id(method, params))
        fault = self._fractions.get(method)
        if fault is None and method in SEND_LIKE:
            fault = self._fractions.get("*")
        if fault is not None and fault.rng.random() < fault.fraction:
            raise ApiError(fault.status, fault.description, fault.parameters, injected=True)

    def _check_flood(self, name: str, chat_id: int | None) -> None:
        now = time.monotonic()
        self._floods = [f for f in self._floods if f.until > now]
        for flood in self._floods:
            if flood.chat_id is not None and flood.chat_id != chat_id:
                continue
            if flood.told_at is None:
                flood.told_at = now
            else:
                self.flood_violations.append({"method": name, "chat_id": chat_id,
                                              "at": round(now - flood.told_at, 6)})
            retry_after = max(1, math.ceil(flood.until - now))
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}",
                           {"retry_after": retry_after}, injected=True)

    def _call_chat_id(self, method: str, params: Params) -> int | None:
        """The chat a call is about (a callback answer: the chat of the user who pressed)."""
        if method == "answercallbackquery":
            query = self._callbacks.get(params.get_str("callback_query_id") or "")
            return query["from"]["id"] if query is not None else None
        try:
            return int(params.get("chat_id"))
        except (TypeError, ValueError):
            return None
