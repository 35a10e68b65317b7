"""UserDriving: what tests do to the emulator (users writing, pressing, blocking; waits), and
what they read from it (messages, callbacks, duplicates)."""

from __future__ import annotations

import asyncio
import bisect
from typing import Any

from .entities import char_at
from .messages import MessageStore
from .rules import BOT_COMMAND_RE, MENTION_RE
from .state import Chat, Pending


class UserDriving(MessageStore):
    """The driving and inspection side of BotAPIEmulator."""

    # ---- driving the bot as users do ------------------------------------------------------

    def user_sends_text(self, chat_id: int, text: str, *, first_name: str = "Test",
                        language_code: str | None = "nl") -> int:
        """A private message from user ``chat_id``; returns its update_id.

        A user who had blocked the bot unblocks it by writing ("Restart bot"): as on Telegram,
        a my_chat_member update back to "member" comes first.
        """
        chat = self._user_chat(chat_id, first_name, language_code)
        if chat.blocked:
            self.user_unblocks_bot(chat_id)
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat), "from": chat.user, "chat": chat.obj,
            "date": int(self.now()), "text": text,
        }
        command = BOT_COMMAND_RE.match(text)
        if command is not None:
            end = command.end()
            if char_at(text, end) == "@":
                mention = MENTION_RE.match(text, end)
                end = mention.end() if mention is not None else -1
            if end > 0 and not (text[end:end + 1].isalnum() or char_at(text, end) in "_/<>"):
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": end}]
        chat.history[message["message_id"]] = self._record(
            "user", chat, message, text=text, entities=message.get("entities", []), source=text)
        chat.last_send = None
        return self._enqueue({"message": message})

    def user_presses(self, chat_id: int, message_id: int, data: str, *,
                     language_code: str | None = "nl",
                     require_button: bool = True) -> tuple[int, str]:
        """The user presses an inline button with ``data`` under a message the bot sent.

        Returns (update_id, callback_query_id). Unless ``require_button`` is false, the message
        must currently show a button with that callback_data, as it must for a real user.
        """
        chat = self._chats.get(chat_id)
        record = chat.history.get(message_id) if chat is not None else None
        if chat is None or record is None or record["method"] == "user":
            raise ValueError(f"the bot sent no message {message_id} to chat {chat_id}")
        if require_button:
            markup = record["reply_markup"] or {}
            datas = [button.get("callback_data") for row in markup.get("inline_keyboard", [])
                     for button in row]
            if data not in datas:
                raise ValueError(
                    f"message {message_id} in chat {chat_id} has no button with callback_data "
                    f"{data!r} (it has {datas!r})")
        chat.language_code = language_code
        query_id = str(next(self._callback_ids))
        query = {"id": query_id, "from": chat.user, "message": record["message"],
                 "chat_instance": str(chat_id * 1_000_003), "data": data}
        self._callbacks[query_id] = query
        chat.last_send = None
        return self._enqueue({"callback_query": query}), query_id

    def user_blocks_bot(self, chat_id: int) -> int:
        """The user blocks the bot: a my_chat_member update, and later sends answer 403."""
        chat = self._user_chat(chat_id)
        chat.blocked = True
        return self._enqueue({"my_chat_member": self._member_update(chat, "member", "kicked")})

    def user_unblocks_bot(self, chat_id: int) -> int:
        chat = self._user_chat(chat_id)
        chat.blocked = False
        return self._enqueue({"my_chat_member": self._member_update(chat, "kicked", "member")})

    def enqueue_raw_update(self, update: dict[str, Any]) -> int:
        """Deliver ``update`` verbatim (same update_id), e.g. to test duplicate handling.

        It is queued in update_id order, and delivered even if an offset already confirmed
        that id, as Telegram re-delivers updates a bot did not get to confirm.
        """
        update_id = int(update["update_id"])
        self._next_update_id = max(self._next_update_id, update_id + 1)
        pending = Pending(update_id, update, raw=True)
        index = bisect.bisect_right([p.update_id for p in self._queue], update_id)
        self._queue.insert(index, pending)
        self._wake()
        return update_id

    def register_chat(self, chat_id: int, *, first_name: str = "Test",
                      language_code: str | None = "nl") -> None:
        """Make ``chat_id`` known (as if the user had written before) without an update."""
        self._user_chat(chat_id, first_name, language_code)

    async def wait_for_long_poll(self) -> None:
        """Return once a getUpdates call is waiting for updates (wrap it in a timeout)."""
        if self._poll_waiting is None:
            raise RuntimeError("start() the emulator first")
        await self._poll_waiting.wait()

    async def wait_for_sent(self, count: int = 1, *,
                            chat_id: int | None = None) -> list[dict[str, Any]]:
        """Wait until ``sent`` holds at least ``count`` records (to ``chat_id``, if given).

        Returns those records. Wrap it in a timeout: it waits for as long as it takes.
        """
        if self._stored is None:
            raise RuntimeError("start() the emulator first")
        while True:
            records = self.sent if chat_id is None else [
                r for r in self.sent if r["chat_id"] == chat_id]
            if len(records) >= count:
                return records
            self._stored.clear()
            await self._stored.wait()

    async def wait_for_chat(self, chat_id: int, sends: int) -> int:
        """Wait until the bot has sent ``sends`` messages (not edits) to ``chat_id`` in all.

        Per-chat and O(1) per message, so a load test with thousands of chats can use it.
        Returns the count reached. Wrap it in a timeout.
        """
        if self._sends[chat_id] >= sends:
            return self._sends[chat_id]
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._chat_waiters.setdefault(chat_id, []).append((sends, future))
        return await future

    # ---- what the bot did -----------------------------------------------------------------

    def messages_to(self, chat_id: int, *, include_user: bool = False) -> list[dict[str, Any]]:
        """The bot's messages in that chat as they are now (edits applied, deletions gone)."""
        chat = self._chats.get(chat_id)
        if chat is None:
            return []
        return [r for r in chat.history.values() if include_user or r["method"] != "user"]

    def duplicates(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Messages the bot sent twice in a row to one chat, the same text, caption, picture
        and buttons, with nothing from the user in between: what resending after an
        uncertain call, or two replicas handling one update, looks like. Returns the second
        copies (to ``chat_id``, or to any chat), as records like those in ``sent``.
        """
        return [r for r in self._duplicates if chat_id is None or r["chat_id"] == chat_id]

    def unanswered_callbacks(self) -> list[str]:
        return [qid for qid in self._callbacks if qid not in self.answered_callbacks]

    @property
    def pending_updates(self) -> int:
        return len(self._queue)

    # ---- internals: chats ------------------------------------------------------------------

    def _user_chat(self, chat_id: int, first_name: str | None = None,
                   language_code: str | None = "nl") -> Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = self._chats[chat_id] = Chat(chat_id, first_name or "Test", language_code)
        elif first_name is not None:
            chat.first_name = first_name
            chat.language_code = language_code
        return chat

    def _member_update(self, chat: Chat, old: str, new: str) -> dict[str, Any]:
        def member(status: str) -> dict[str, Any]:
            state: dict[str, Any] = {"user": self._bot_from(), "status": status}
            if status == "kicked":
                state["until_date"] = 0
            return state
        return {"chat": chat.obj, "from": chat.user, "date": int(self.now()),
                "old_chat_member": member(old), "new_chat_member": member(new)}
