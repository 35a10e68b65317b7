"""MessageStore: building, checking and storing the bot's messages, for the Bot API methods."""

from __future__ import annotations

from typing import Any

from .entities import EntityParseError, utf16_len
from .formatting import parse_formatted_text
from .params import ApiError, Params, bad_request
from .rules import BLOCKED, MAX_CAPTION_LENGTH, MAX_TEXT_LENGTH
from .state import Chat, EmulatorState


class MessageStore(EmulatorState):
    """The pieces the Bot API methods share: chats, texts, captions, records of messages."""

    def _bot_from(self) -> dict[str, Any]:
        user = self.bot_user
        return {"id": user["id"], "is_bot": True, "first_name": user["first_name"],
                "username": user["username"]}

    def _next_message_id(self, chat: Chat) -> int:
        chat.last_message_id += 1
        return chat.last_message_id

    def _chat(self, params: Params) -> Chat:
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise bad_request("chat_id is empty")
        try:
            chat_id = int(raw)
        except (TypeError, ValueError):
            raise bad_request("chat not found") from None
        chat = self._chats.get(chat_id)
        if chat is None:
            raise bad_request("chat not found")
        if chat.blocked:
            raise ApiError(403, BLOCKED)
        return chat

    def _formatted(self, params: Params, text: str, entities_field: str) -> tuple[
            str, list[dict[str, Any]]]:
        entities = params.get_json(entities_field, f"can't parse {entities_field} JSON object")
        if entities:
            if not isinstance(entities, list) or not all(
                    isinstance(e, dict) and {"type", "offset", "length"} <= e.keys()
                    for e in entities):
                raise bad_request(f"can't parse {entities_field} JSON object")
            return text, entities
        try:
            return parse_formatted_text(text, params.get_str("parse_mode"),
                                        strict_html=self.strict_html)
        except EntityParseError as error:
            raise bad_request(f"can't parse entities: {error}") from None
        except ValueError:
            raise bad_request("unsupported parse_mode (the emulator knows only HTML)") from None

    def _text(self, params: Params) -> tuple[str, str, list[dict[str, Any]]]:
        source = params.get_str("text") or ""
        if not source.strip():
            raise bad_request("message text is empty")
        text, entities = self._formatted(params, source, "entities")
        if not text.strip():
            raise bad_request("message text is empty")
        if utf16_len(text) > MAX_TEXT_LENGTH:
            raise bad_request("message is too long")
        return source, text, entities

    def _caption(self, params: Params) -> tuple[str | None, str | None, list[dict[str, Any]]]:
        source = params.get_str("caption")
        if not source:
            return None, None, []
        caption, entities = self._formatted(params, source, "caption_entities")
        if utf16_len(caption) > MAX_CAPTION_LENGTH:
            raise bad_request("message caption is too long")
        return source, caption or None, entities

    def _reply_to(self, chat: Chat, params: Params) -> dict[str, Any] | None:
        reply = params.get_json("reply_parameters", "can't parse reply parameters JSON object")
        if reply is None:
            message_id = params.get_int("reply_to_message_id", "message to be replied not found")
            if message_id is None:
                return None
            reply = {"message_id": message_id,
                     "allow_sending_without_reply": params.get_bool("allow_sending_without_reply")}
        if not isinstance(reply, dict) or not isinstance(reply.get("message_id"), int):
            raise bad_request("can't parse reply parameters JSON object")
        record = chat.history.get(reply["message_id"])
        if record is None:
            if reply.get("allow_sending_without_reply"):
                return None
            raise bad_request("message to be replied not found")
        message: dict[str, Any] = record["message"]
        return message

    def _record(self, method: str, chat: Chat, message: dict[str, Any], *,
                text: str | None = None, caption: str | None = None,
                entities: list[dict[str, Any]] | None = None, source: str | None = None,
                reply_markup: dict[str, Any] | None = None, parse_mode: str | None = None,
                photo: bytes | None = None, document: bytes | None = None,
                filename: str | None = None) -> dict[str, Any]:
        return {"method": method, "chat_id": chat.id, "message_id": message["message_id"],
                "text": text, "caption": caption, "entities": entities or [], "source": source,
                "reply_markup": reply_markup, "parse_mode": parse_mode, "photo": photo,
                "document": document, "filename": filename, "message": message}

    def _new_message(self, chat: Chat, **content: Any) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat), "from": self._bot_from(),
            "chat": chat.obj, "date": int(self.now()),
        }
        message.update({k: v for k, v in content.items() if v})
        return message

    def _store(self, chat: Chat, record: dict[str, Any]) -> dict[str, Any]:
        chat.history[record["message_id"]] = record
        self.sent.append(record)
        if self._stored is not None:
            self._stored.set()
        if record["method"].startswith("send"):
            key = (record["method"], record["text"], record["caption"], record["reply_markup"],
                   record["photo"], record["document"])
            if key == chat.last_send:
                self._duplicates.append(record)
            chat.last_send = key
            self._sends[chat.id] += 1
            waiters = self._chat_waiters.get(chat.id, [])
            for wanted, future in list(waiters):
                if self._sends[chat.id] >= wanted and not future.done():
                    future.set_result(self._sends[chat.id])
                    waiters.remove((wanted, future))
        message: dict[str, Any] = record["message"]
        return message

    def _editable(self, params: Params) -> tuple[Chat, dict[str, Any]]:
        if params.get("inline_message_id"):
            raise bad_request("inline messages are not emulated")
        chat = self._chat(params)
        message_id = params.get_int("message_id", "message identifier is not specified")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        record = chat.history.get(message_id)
        if record is None:
            raise bad_request("message to edit not found")
        if record["method"] == "user":
            raise bad_request("message can't be edited")
        return chat, record

    def _edited(self, chat: Chat, record: dict[str, Any], method: str,
                markup: dict[str, Any] | None, message_changes: dict[str, Any],
                **record_changes: Any) -> dict[str, Any]:
        """Store the edited state of ``record`` as a new record; return the new Message."""
        message = {k: v for k, v in record["message"].items()
                   if k not in ("reply_markup", "edit_date", *message_changes)}
        message.update({k: v for k, v in message_changes.items() if v})
        if markup is not None:
            message["reply_markup"] = markup
        message["edit_date"] = int(self.now())
        return self._store(chat, {**record, **record_changes, "method": method,
                                  "reply_markup": markup, "message": message})
