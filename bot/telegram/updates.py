"""Telegram updates in: what to store (:func:`received`) and what one means (:class:`Reader`).

Updates are stored as the raw JSON Telegram sent, before python-telegram-bot parses them,
so an update the library cannot parse is stored too, and becomes poison instead of being
fetched again and again. Text is cleaned at this edge: a NUL byte (which PostgreSQL cannot
store in text) or another control character never reaches a flow.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from telegram import ChatMember

from bot.inbox import Interpreted
from bot.telegram import render
from bot.telegram.channel import TelegramChannel
from bot.telegram.formatting import entities_to_html
from flows.messages import Reply
from handlers.dispatcher import After, Handled
from handlers.inbound import Inbound
from storage.inbox import Received

log = logging.getLogger(__name__)

CHANNEL = "telegram"
#: Chat types that are groups: only coaches' ticket work is read there.
GROUPS = ("group", "supergroup")
#: What a coach may type in the coaches' group (the rest of a group's talk is not ours).
GROUP_COMMANDS = ("reply", "close", "tickets")
#: Control characters a person cannot mean to send (tab and newline stay).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean(text: str) -> str:
    """``text`` without control characters. (The raw update is stored as JSON, where they
    are escaped; only what a flow reads is cleaned.)"""
    return _CONTROL.sub("", text)


def received(raw: Any) -> Received | None:
    """How to store one raw update; None for something that is not a Telegram update
    (no integer ``update_id``: there is nothing to key it on)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("update_id"), int):
        return None
    return Received(key=str(raw["update_id"]), chat=_chat_of(raw), seq=raw["update_id"],
                    payload=raw)


def _chat_of(raw: dict[str, Any]) -> str | None:
    """The private chat an update is about, read from the raw JSON (it may not parse)."""
    for kind in ("message", "my_chat_member", "edited_message"):
        chat = raw.get(kind, {}).get("chat", {}) if isinstance(raw.get(kind), dict) else {}
        if isinstance(chat, dict) and isinstance(chat.get("id"), int):
            return str(chat["id"])
    query = raw.get("callback_query")
    if isinstance(query, dict):
        sender = query.get("from")
        if isinstance(sender, dict) and isinstance(sender.get("id"), int):
            return str(sender["id"])  # in a private chat, the chat id is the user id
    return None


class UnreadableError(ValueError):
    """An update without the fields the Bot API promises: it becomes poison."""


def _field(data: Any, key: str, kind: type) -> Any:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
        raise UnreadableError(f"{key!r} is not a {kind.__name__}")
    return value


class Reader:
    """Reads stored updates into inbound messages (the inbox's
    :class:`~bot.inbox.Reader` for Telegram).

    It reads the few fields a turn needs straight from the stored JSON, checking each one:
    building python-telegram-bot's full ``Update`` objects was a tenth of the bot's CPU.
    An update missing what the Bot API promises raises :class:`UnreadableError` (poison).

    Args:
        channel: Makes the cosmetic calls after a button press.
    """

    def __init__(self, channel: TelegramChannel) -> None:
        self.channel = channel

    def interpret(self, payload: dict[str, Any]) -> Interpreted | None:
        if "my_chat_member" in payload:
            change = _field(payload, "my_chat_member", dict)
            chat = _field(_field(change, "chat", dict), "id", int)
            status = _field(_field(change, "new_chat_member", dict), "status", str)
            if status not in (ChatMember.BANNED, ChatMember.MEMBER):
                return None
            return Interpreted(Inbound(CHANNEL, str(chat),
                                       reachable=status == ChatMember.MEMBER))
        if "callback_query" in payload:
            return self._press(_field(payload, "callback_query", dict))
        message = payload.get("message")
        if message is None:
            return None  # edits, channel posts: not a conversation with a shopkeeper
        chat = _field(message, "chat", dict)
        kind = _field(chat, "type", str)
        if kind in GROUPS:
            return _in_group(message, str(_field(chat, "id", int)))
        if kind != "private":
            return None  # channels
        chat_id = str(_field(chat, "id", int))
        hint = _hint(message.get("from"))
        text = clean(message.get("text") or "") if isinstance(message.get("text"), str) else ""
        if text.startswith("/") and len(text) > 1:
            word, _, argument = text[1:].partition(" ")
            command = word.split("@", 1)[0].lower()
            return Interpreted(Inbound(CHANNEL, chat_id, command=command,
                                       argument=argument.strip(), language_hint=hint,
                                       display_name=_name(message.get("from"))),
                               self._typing(chat_id))
        photo = _photo(message.get("photo"))
        if photo is not None:  # a caption is the photo's text (a coach's broadcast)
            text = clean(message["caption"]) if isinstance(message.get("caption"), str) else ""
        entities = message.get("caption_entities" if photo else "entities")
        # Stickers, voice notes get Reply(text=""): the conversation asks for text kindly.
        return Interpreted(Inbound(CHANNEL, chat_id, reply=Reply(
            text=text, photo=photo, formatted=entities_to_html(text, entities),
            replying_to=_replying_to(message)), language_hint=hint), self._typing(chat_id))

    def _typing(self, chat_id: str) -> After:
        """Shows "typing…" while the turn's slow work (a question to the language model)
        runs after it; the answer that follows ends it."""
        async def after(handled: Handled) -> None:
            if handled.afterwards:
                await _cosmetic(self.channel.bot.send_chat_action(int(chat_id), "typing"),
                                "show typing", chat_id)

        return after

    def _press(self, query: dict[str, Any]) -> Interpreted:
        press = _field(query, "id", str)
        sender = _field(query, "from", dict)
        data: str = query["data"] if isinstance(query.get("data"), str) else ""
        parsed = render.parse_callback_data(data)
        # Data this bot did not make is answered like a button from an old question.
        ref, choice = parsed if parsed is not None else ("?", "?")
        question = query.get("message")
        inbound = Inbound(CHANNEL, str(_field(sender, "id", int)),
                          reply=Reply(choice=choice, ref=ref), language_hint=_hint(sender),
                          press=press, display_name=_name(sender), group=_group_of(question))

        async def after(handled: Handled) -> None:
            if handled.notice:
                return  # the notice row answers the press, as its pop-up
            await _cosmetic(self.channel.call("answerCallbackQuery", callback_query_id=press),
                            "answer button press", press)
            edit = _answered(question, data)
            if handled.delivered and edit is not None:  # else the old buttons stay usable
                await _cosmetic(self.channel.call("editMessageText", **edit), "mark the answer",
                                press)

        return Interpreted(inbound, after)


def _in_group(message: dict[str, Any], group: str) -> Interpreted | None:
    """A message in a group (the coaches' group): a coach's command about tickets, or a
    reply to a message; anything else is not for the bot. Who wrote it is the person."""
    sender = _field(message, "from", dict)
    text = clean(message["text"]) if isinstance(message.get("text"), str) else ""
    person = str(_field(sender, "id", int))
    if text.startswith("/") and len(text) > 1:
        word, _, argument = text[1:].partition(" ")
        command = word.split("@", 1)[0].lower()
        if command not in GROUP_COMMANDS:
            return None
        return Interpreted(Inbound(CHANNEL, person, command=command, argument=argument.strip(),
                                   language_hint=_hint(sender), display_name=_name(sender),
                                   group=group))
    replying_to = _replying_to(message)
    if replying_to is None or not text:
        return None
    return Interpreted(Inbound(CHANNEL, person, reply=Reply(text=text, replying_to=replying_to),
                               language_hint=_hint(sender), display_name=_name(sender),
                               group=group))


def _replying_to(message: dict[str, Any]) -> str | None:
    """The id of the message this one replies to, as the outbox keeps it (text)."""
    replied = message.get("reply_to_message")
    if isinstance(replied, dict) and isinstance(replied.get("message_id"), int):
        return str(replied["message_id"])
    return None


def _group_of(question: Any) -> str | None:
    """The group a pressed button's message is in; None in a private chat."""
    chat = question.get("chat") if isinstance(question, dict) else None
    if isinstance(chat, dict) and chat.get("type") in GROUPS and isinstance(chat.get("id"), int):
        return str(chat["id"])
    return None


def _photo(sizes: Any) -> tuple[str, str] | None:
    """The largest size of a photo (Telegram lists them smallest first): its file id and
    its stable unique id."""
    if not isinstance(sizes, list) or not sizes or not isinstance(sizes[-1], dict):
        return None
    largest = sizes[-1]
    file_id, unique = largest.get("file_id"), largest.get("file_unique_id")
    if not isinstance(file_id, str) or not isinstance(unique, str):
        return None
    return file_id, unique


def _name(sender: Any) -> str | None:
    name = sender.get("first_name") if isinstance(sender, dict) else None
    return clean(name)[:40] if isinstance(name, str) and name.strip() else None


def _hint(sender: Any) -> str | None:
    code = sender.get("language_code") if isinstance(sender, dict) else None
    return code if isinstance(code, str) else None


def _answered(question: Any, data: str) -> dict[str, Any] | None:
    """The edit that rewrites the question with the chosen answer under it and drops its
    keyboard; None when the question is too old to edit (inaccessible) or not text."""
    if not isinstance(question, dict) or not isinstance(question.get("text"), str):
        return None
    rows = (question.get("reply_markup") or {}).get("inline_keyboard") or []
    label = next((button.get("text") for row in rows for button in row
                  if isinstance(button, dict) and button.get("callback_data") == data), None)
    chat = question.get("chat") or {}
    if not isinstance(label, str) or not isinstance(chat.get("id"), int):
        return None
    return {"chat_id": chat["id"], "message_id": question.get("message_id"),
            "text": render.answered(question["text"], label)}


async def _cosmetic(call: Any, what: str, press: str) -> None:
    """A call that makes things look right but changes nothing the person relies on: a
    failure is logged, never turned into an error message."""
    try:
        await call
    except Exception as exc:
        log.info("could not %s (%s): %r", what, press, exc)
