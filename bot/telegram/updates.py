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

from telegram import Bot, CallbackQuery, ChatMember, Message, Update

from bot.inbox import Interpreted
from bot.telegram import render
from flows.messages import Reply
from handlers.dispatcher import Handled
from handlers.inbound import Inbound
from storage.inbox import Received

log = logging.getLogger(__name__)

CHANNEL = "telegram"
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


class Reader:
    """Reads stored updates into inbound messages (the inbox's
    :class:`~bot.inbox.Reader` for Telegram).

    Args:
        bot: Parses updates (python-telegram-bot needs a bot for that) and makes the
            cosmetic calls after a button press.
    """

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    def interpret(self, payload: dict[str, Any]) -> Interpreted | None:
        update = Update.de_json(payload, self.bot)
        chat = update.effective_chat
        user = update.effective_user
        hint = user.language_code if user else None
        if update.my_chat_member is not None:
            status = update.my_chat_member.new_chat_member.status
            if status not in (ChatMember.BANNED, ChatMember.MEMBER):
                return None
            return Interpreted(Inbound(CHANNEL, str(update.my_chat_member.chat.id),
                                       reachable=status == ChatMember.MEMBER))
        query = update.callback_query
        if query is not None:
            return self._press(query, hint)
        message = update.message
        if message is None or chat is None or chat.type != chat.PRIVATE:
            return None  # groups, channels, edits: not a conversation with a shopkeeper
        text = clean(message.text or "")
        if text.startswith("/") and len(text) > 1:
            word, _, argument = text[1:].partition(" ")
            command = word.split("@", 1)[0].lower()
            return Interpreted(Inbound(CHANNEL, str(chat.id), command=command,
                                       argument=argument.strip(), language_hint=hint))
        # Stickers, photos, voice get Reply(text=""): the conversation asks for text kindly.
        return Interpreted(Inbound(CHANNEL, str(chat.id), reply=Reply(text=text),
                                   language_hint=hint))

    def _press(self, query: CallbackQuery, hint: str | None) -> Interpreted:
        parsed = render.parse_callback_data(query.data or "")
        # Data this bot did not make is answered like a button from an old question.
        ref, choice = parsed if parsed is not None else ("?", "?")
        inbound = Inbound(CHANNEL, str(query.from_user.id), reply=Reply(choice=choice, ref=ref),
                          language_hint=hint, press=query.id)

        async def after(handled: Handled) -> None:
            if handled.notice:
                return  # the notice row answers the press, as its pop-up
            await _cosmetic(query.answer(), "answer button press", query.id)
            if handled.delivered:  # else the person still needs the old question's buttons
                await _cosmetic(_show_choice(self.bot, query), "mark the answer", query.id)

        return Interpreted(inbound, after)


async def _show_choice(bot: Bot, query: CallbackQuery) -> None:
    """Rewrite the question with the chosen answer under it and drop its keyboard."""
    message = query.message
    if not isinstance(message, Message) or not message.text:
        return  # inaccessible (too old) or not a text message
    markup = message.reply_markup
    label = next((button.text for row in (markup.inline_keyboard if markup else ())
                  for button in row if button.callback_data == query.data), None)
    if label is not None:
        await bot.do_api_request("editMessageText", api_kwargs={
            "chat_id": message.chat_id, "message_id": message.message_id,
            "text": render.answered(message.text, label)})


async def _cosmetic(call: Any, what: str, press: str) -> None:
    """A call that makes things look right but changes nothing the person relies on: a
    failure is logged, never turned into an error message."""
    try:
        await call
    except Exception as exc:
        log.info("could not %s (%s): %r", what, press, exc)
