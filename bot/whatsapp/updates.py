"""WhatsApp webhooks in: what to store (:func:`parse`) and what a stored message means
(:class:`Reader`).

One webhook post can carry several messages and statuses. Each message is stored in the
inbox keyed on its ``wamid`` (Meta redelivers for days: the key is the dedupe), with the
sender's profile name beside it; statuses update the outbox (:mod:`storage.whatsapp`).
Typed command words ("stop", "hulp", "aide", …, from ``flows/texts/whatsapp``) and
``/commands`` become the commands the dispatcher knows: WhatsApp has no command menu.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.inbox import Interpreted
from bot.whatsapp import render
from flows.definition import LANGUAGES
from flows.messages import Reply
from flows.texts import Texts
from handlers.inbound import Inbound
from storage.inbox import Received
from storage.whatsapp import Status

CHANNEL = "whatsapp"
#: The commands a typed word may stand for (the dispatcher's, without the slash).
COMMANDS = ("start", "help", "stop", "privacy", "results", "tips", "progress", "restart",
            "language", "mydata", "delete", "coach")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean(text: str) -> str:
    """``text`` without control characters (tab and newline stay)."""
    return _CONTROL.sub("", text)


def normalize(text: str) -> str:
    """How a typed word is compared: case, accents of the ends and punctuation aside."""
    folded = unicodedata.normalize("NFC", text).casefold().strip(" \t\n.!?¡¿,;:")
    return " ".join(folded.split())


@dataclass(slots=True)
class Webhook:
    """What one webhook post carried."""

    messages: list[Received] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    #: wa_id → when they last wrote (opens their 24-hour window).
    wrote: dict[str, datetime] = field(default_factory=dict)
    #: (the "Meer…" pick, as stored, and the list's wamid, the offset to show).
    pages: list[tuple[Received, str, int]] = field(default_factory=list)


def parse(body: Any) -> Webhook | None:
    """Read a webhook body; None when it is not a WhatsApp Business Account notification."""
    if not isinstance(body, dict) or body.get("object") != "whatsapp_business_account":
        return None
    found = Webhook()
    for value in _values(body):
        names = {c.get("wa_id"): (c.get("profile") or {}).get("name")
                 for c in value.get("contacts") or [] if isinstance(c, dict)}
        for message in value.get("messages") or []:
            if not isinstance(message, dict) or not isinstance(message.get("id"), str) \
                    or not isinstance(message.get("from"), str):
                continue
            sender = message["from"]
            stamp = _timestamp(message.get("timestamp"))
            received = Received(key=message["id"], chat=sender, seq=int(stamp.timestamp()),
                                payload={"message": message, "name": names.get(sender)})
            found.wrote[sender] = max(stamp, found.wrote.get(sender, stamp))
            more = _more(message)
            if more is not None:
                found.pages.append((received, *more))
            else:
                found.messages.append(received)
        for status in value.get("statuses") or []:
            if isinstance(status, dict) and isinstance(status.get("id"), str):
                found.statuses.append(Status(
                    status["id"], str(status.get("recipient_id", "")),
                    str(status.get("status", "")), _error(status.get("errors"))))
    return found


def _values(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for entry in body.get("entry") or []:
        for change in (entry or {}).get("changes") or []:
            value = (change or {}).get("value")
            if isinstance(value, dict):
                yield value


def _timestamp(raw: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(raw), UTC)
    except (TypeError, ValueError, OverflowError):
        return datetime.now(UTC)


def _error(errors: Any) -> str | None:
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return None
    first = errors[0]
    return f"whatsapp {first.get('code')}: {first.get('title') or first.get('message')}"


def _more(message: dict[str, Any]) -> tuple[str, int] | None:
    """(the list's wamid, offset) when this is the pick of a list's "Meer…" row."""
    picked = (message.get("interactive") or {}).get("list_reply") or {}
    parsed = render.parse_choice(str(picked.get("id", "")))
    context = (message.get("context") or {}).get("id")
    if parsed is None or parsed[1] != render.MORE or not isinstance(context, str):
        return None
    return context, int(parsed[2] or 0)


class Reader:
    """Reads stored WhatsApp messages into inbound messages (the inbox's reader).

    Args:
        texts: The command words.
    """

    def __init__(self, texts: Texts) -> None:
        self.words = {normalize(word): command for command in COMMANDS
                      for lang in LANGUAGES for word in texts.words(lang, f"wa_words_{command}")}

    def interpret(self, payload: dict[str, Any]) -> Interpreted | None:
        message = payload["message"]
        sender = str(message["from"])
        name = payload.get("name")
        display = clean(name)[:40] if isinstance(name, str) and name.strip() else None
        kind = message.get("type")
        if kind == "text":
            text = clean(str(message["text"]["body"]))
            command = self._command(text)
            if command is not None:
                word, argument = command
                return Interpreted(Inbound(CHANNEL, sender, command=word, argument=argument,
                                           display_name=display))
            return Interpreted(Inbound(CHANNEL, sender, reply=Reply(text=text),
                                       display_name=display))
        if kind == "interactive":
            return self._answer(sender, message["interactive"], display)
        if kind == "button":  # a template's quick-reply button: its text is the answer
            text = clean(str((message.get("button") or {}).get("text", "")))
            return Interpreted(Inbound(CHANNEL, sender, reply=Reply(text=text),
                                       display_name=display))
        if kind == "image":
            image = message["image"]
            caption = clean(str(image.get("caption") or ""))
            return Interpreted(Inbound(CHANNEL, sender, reply=Reply(
                text=caption, photo=(str(image["id"]), str(image.get("sha256") or image["id"]))),
                display_name=display))
        if kind in ("reaction", "system", "request_welcome"):
            return None  # an emoji on a message, a number change: nothing to answer
        # Voice notes, stickers, locations: the conversation asks for text, kindly.
        return Interpreted(Inbound(CHANNEL, sender, reply=Reply(text=""), display_name=display))

    def _command(self, text: str) -> tuple[str, str] | None:
        if text.startswith("/") and len(text) > 1:
            word, _, argument = text[1:].partition(" ")
            return word.lower(), argument.strip()
        found = self.words.get(normalize(text))
        return (found, "") if found is not None else None

    def _answer(self, sender: str, interactive: dict[str, Any],
                display: str | None) -> Interpreted | None:
        picked = interactive.get("button_reply") or interactive.get("list_reply")
        if not isinstance(picked, dict):  # a kind of answer the bot never asks for
            return Interpreted(Inbound(CHANNEL, sender, reply=Reply(text=""),
                                       display_name=display))
        parsed = render.parse_choice(str(picked.get("id", "")))
        if parsed is not None and parsed[1] == render.MORE:
            return None  # the webhook showed the next page
        ref, choice = (parsed[0], parsed[1]) if parsed is not None else ("?", "?")
        title = str(picked.get("title", ""))
        description = str(picked.get("description") or "")
        label = description if title.endswith("…") and description else title
        return Interpreted(Inbound(CHANNEL, sender, reply=Reply(choice=choice, ref=ref),
                                   display_name=display, answered=label or None))
