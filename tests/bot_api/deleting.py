"""deleteMessage and deleteMessages, with Telegram's rules for a bot in a private chat.

A bot may delete its own messages there for 48 hours after they were sent (older: 400
"message can't be deleted"); the user's messages are refused the same way (the emulator
does not model the cases where a bot may delete those). An id that is not (or no longer) in the
chat answers 400 "message to delete not found" from deleteMessage; deleteMessages skips
such ids, as the Bot API documents, and answers that 400 only when none of its ids is
there. The age is measured on the emulator's clock (``advance_clock`` moves it on).
"""

from __future__ import annotations

from typing import Any

from .messages import MessageStore
from .params import Params, bad_request

#: How long a bot may delete its own messages in a private chat.
DELETE_WITHIN = 48 * 3600
MAX_DELETE_IDS = 100
NOT_FOUND = "message to delete not found"
TOO_OLD = "message can't be deleted"


class DeleteMethods(MessageStore):
    """The deleting side of BotAPIEmulator."""

    def _delete_message(self, params: Params) -> bool:
        chat = self._chat(params)
        message_id = params.get_int("message_id", "message identifier is not specified")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        record = chat.history.get(message_id)
        if record is None:
            raise bad_request(NOT_FOUND)
        self._check_deletable(record)
        self._remove(chat.id, chat.history, [message_id])
        return True

    def _delete_messages(self, params: Params) -> bool:
        chat = self._chat(params)
        ids = params.get_json("message_ids", "can't parse message identifiers JSON object")
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool)
                                                for i in ids):
            raise bad_request("can't parse message identifiers JSON object")
        if not 1 <= len(ids) <= MAX_DELETE_IDS:
            raise bad_request("too many messages to delete" if ids
                              else "message identifiers are not specified")
        present = [i for i in dict.fromkeys(ids) if i in chat.history]
        if not present:
            raise bad_request(NOT_FOUND)
        for message_id in present:
            self._check_deletable(chat.history[message_id])
        self._remove(chat.id, chat.history, present)
        return True

    def _check_deletable(self, record: dict[str, Any]) -> None:
        if record["method"] == "user":
            raise bad_request(TOO_OLD)  # a bot cannot delete the user's private messages
        if self.now() - record["message"]["date"] > DELETE_WITHIN:
            raise bad_request(TOO_OLD)

    def _remove(self, chat_id: int, history: dict[int, dict[str, Any]],
                message_ids: list[int]) -> None:
        for message_id in message_ids:
            del history[message_id]
            self.deleted.append((chat_id, message_id))
