"""UserDriving: what tests do to the emulator (users writing, pressing, blocking; webhook
delivery; waits), what they read from it, and the faults they inject."""

from __future__ import annotations

import asyncio
import bisect
import collections
import time
from typing import Any
from urllib.parse import urlsplit

from aiohttp import ClientError, ClientSession, ClientTimeout

from .entities import char_at
from .messages import MessageStore
from .rules import BOT_COMMAND_RE, LOOPBACK_HOSTS, MENTION_RE, SECRET_RE
from .state import Chat, Fault, Pending, Webhook


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
            "date": int(time.time()), "text": text,
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
        update_id = update["update_id"]
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

    def set_webhook_target(self, url: str | None, secret: str | None) -> None:
        """Deliver updates by POST to ``url`` (None: back to getUpdates), as setWebhook does.

        Nothing is posted until ``deliver_pending_webhooks`` is awaited.
        """
        if url is None:
            self._webhook = None
            return
        if secret is not None and not SECRET_RE.fullmatch(secret):
            raise ValueError("secret token: 1-256 characters of A-Z, a-z, 0-9, _ and -")
        self._webhook = Webhook(url, secret)
        self._wake()  # a waiting getUpdates now answers 409, as Telegram's would

    async def deliver_pending_webhooks(self) -> list[int]:
        """POST every pending update, in order, to the webhook; returns the HTTP statuses.

        Stops at the first answer outside 2xx (that update stays pending, as Telegram retries
        it later); a connection failure counts as status 0.
        """
        webhook = self._webhook
        if webhook is None:
            raise RuntimeError("no webhook is set")
        if urlsplit(webhook.url).hostname not in LOOPBACK_HOSTS:
            raise RuntimeError(f"refusing to post to {webhook.url}: not a loopback address")
        if self._session is None:
            self._session = ClientSession(timeout=ClientTimeout(total=30))
        headers = {"X-Telegram-Bot-Api-Secret-Token": webhook.secret} if webhook.secret else {}
        statuses: list[int] = []
        while self._queue and self._webhook is webhook:
            pending = self._queue[0]
            try:
                async with self._session.post(webhook.url, json=pending.update,
                                              headers=headers) as response:
                    status = response.status
                    await response.read()
            except (ClientError, TimeoutError) as error:
                status, message = 0, f"Connection failed: {error.__class__.__name__}"
            else:
                message = f"Wrong response from the webhook: {status} {response.reason}"
            statuses.append(status)
            if not 200 <= status < 300:
                webhook.last_error_date = int(time.time())
                webhook.last_error_message = message
                break
            if self._queue and self._queue[0] is pending:
                self._queue.popleft()
        return statuses

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

    def unanswered_callbacks(self) -> list[str]:
        return [qid for qid in self._callbacks if qid not in self.answered_callbacks]

    @property
    def pending_updates(self) -> int:
        return len(self._queue)

    # ---- fault injection ------------------------------------------------------------------

    def fail_next(self, method: str, *, status: int, description: str = "",
                  retry_after: int | None = None, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` ("*": any method) fail with ``status``."""
        parameters = None
        if status == 429:
            retry_after = 5 if retry_after is None else retry_after
            parameters = {"retry_after": retry_after}
            description = description or f"Too Many Requests: retry after {retry_after}"
        elif retry_after is not None:
            parameters = {"retry_after": retry_after}
        if not description:
            description = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
                           404: "Not Found", 409: "Conflict", 500: "Internal Server Error",
                           502: "Bad Gateway", 503: "Service Unavailable",
                           504: "Gateway Timeout"}.get(status, "Error")
        self._faults.setdefault(method.lower(), collections.deque()).append(
            Fault(status, description, parameters, times))

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
        return {"chat": chat.obj, "from": chat.user, "date": int(time.time()),
                "old_chat_member": member(old), "new_chat_member": member(new)}
