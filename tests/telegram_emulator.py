"""A loopback Telegram Bot API emulator for end-to-end tests (and the benchmarks).

The real python-telegram-bot client talks to it over HTTP through ``base_url``; the emulator
answers the way the Bot API does, including its refusals (text too long, HTML it cannot parse,
unknown chats, blocked users), so that tests catch what production would reject. It keeps
what the bot uses and what the coming issues will: plain text and HTML (strictly checked),
inline keyboards, photos and documents (sent again by file_id; getFile and the file's
download, for an hour, with the bot's token), deleting messages (within
48 hours of the emulator's clock, which ``advance_clock`` moves on), chat actions, commands
per scope, polling and webhooks. Anything else is refused, so that a first use shows up in
a test. Error wording follows the Bot API (and, for HTML, tdlib's ``MessageEntity.cpp``).

Faults, for tests of the delivery path (each refusal is marked ``injected`` in ``errors``):
``fail_next`` (the next calls fail), ``fail_fraction`` (a seeded share of calls fails),
``drop_next`` (the connection closes after the request was read: the "uncertain" case, with
or without the call having taken effect), ``flood`` (a 429 window; calls sent into it after
the first 429 land in ``flood_violations``). ``duplicates()`` lists messages sent twice in a
row. ``set_webhook_targets`` posts updates round-robin to several bot replicas.

In a test::

    async with BotAPIEmulator() as emu, Bot(emu.token, base_url=emu.base_url) as bot:
        emu.user_sends_text(42, "/start")
        ...

As a separate process (for the benchmarks)::

    python tests/telegram_emulator.py --port 8081

prints ``listening on 127.0.0.1:8081`` once it serves, and runs until killed. That process is
driven over HTTP: ``POST /_emulator/<action>`` with a JSON body naming the arguments of the
method of the same name (``user_sends_text``, ``user_presses``, ``user_blocks_bot``,
``user_unblocks_bot``, ``enqueue_raw_update``, ``register_chat``, ``set_webhook_target``,
``set_webhook_targets``, ``deliver_pending_webhooks``, ``fail_next``, ``fail_fraction``,
``drop_next``, ``flood``, ``duplicates``, ``webhook_counts``, ``advance_clock``,
``wait_for_chat``,
``wait_for_sent`` (answers the count)),
``GET /_emulator/state`` and ``GET /_emulator/messages_to?chat_id=N`` (bytes are given as
``{"bytes": length}``).

The emulator itself is the package ``tests/bot_api`` (BotAPIEmulator in ``server.py``); this
module re-exports its public names and runs it as a process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from dataclasses import dataclass
from typing import Any

from bot_api.entities import EntityParseError, utf16_len
from bot_api.formatting import parse_formatted_text
from bot_api.rules import BOT_COMMAND_RE
from bot_api.server import BotAPIEmulator
from bot_api.state import Chat

__all__ = ["BotAPIEmulator", "EntityParseError", "GroupChat", "GroupsEmulator",
           "parse_formatted_text", "utf16_len"]


@dataclass
class GroupChat(Chat):
    """A supergroup the bot is a member of (the coaches' group): its members write there."""

    @property
    def obj(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.first_name, "type": "supergroup"}


class GroupsEmulator(BotAPIEmulator):
    """The emulator plus what a coach does beyond a private chat: replying to one of the
    bot's messages (``reply_to_message``), and writing and pressing buttons in a group.

    Members are users (``user_id``, ``first_name``); the group's chat id is negative, as on
    Telegram. As with a real bot in privacy mode, only commands and replies reach the bot
    from a group: that is for the bot to cope with, so every member message is delivered.
    """

    def create_group(self, group_id: int, title: str = "KERNpunt coaches") -> None:
        """A group with the bot in it (without an update: it was added earlier)."""
        if group_id >= 0:
            raise ValueError("a group's chat id is negative")
        self._chats[group_id] = GroupChat(group_id, title, None)

    def user_replies(self, chat_id: int, message_id: int, text: str, *,
                     first_name: str = "Test") -> int:
        """User ``chat_id`` replies in their private chat to the bot's ``message_id``."""
        chat = self._user_chat(chat_id, first_name)
        return self._member_message(chat, chat.user, text, reply_to=message_id)

    def member_sends(self, group_id: int, user_id: int, text: str, *, first_name: str = "Test",
                     reply_to: int | None = None) -> int:
        """A member writes in the group, optionally as a reply to message ``reply_to``."""
        return self._member_message(self._group(group_id), _user(user_id, first_name), text,
                                    reply_to=reply_to)

    def member_presses(self, group_id: int, user_id: int, message_id: int, data: str, *,
                       first_name: str = "Test") -> tuple[int, str]:
        """A member presses a button with ``data`` under the bot's message in the group;
        returns (update_id, callback_query_id)."""
        group = self._group(group_id)
        record = group.history.get(message_id)
        if record is None or record["method"] == "user":
            raise ValueError(f"the bot sent no message {message_id} to group {group_id}")
        datas = [button.get("callback_data") for row in
                 (record["reply_markup"] or {}).get("inline_keyboard", []) for button in row]
        if data not in datas:
            raise ValueError(f"message {message_id} has no button {data!r} (it has {datas!r})")
        query_id = str(next(self._callback_ids))
        query = {"id": query_id, "from": _user(user_id, first_name),
                 "message": record["message"], "chat_instance": str(group_id * 1_000_003),
                 "data": data}
        self._callbacks[query_id] = query
        group.last_send = None
        return self._enqueue({"callback_query": query}), query_id

    def _group(self, group_id: int) -> Chat:
        group = self._chats.get(group_id)
        if not isinstance(group, GroupChat):
            raise ValueError(f"no group {group_id}: create_group() it first")
        return group

    def _member_message(self, chat: Chat, sender: dict[str, Any], text: str, *,
                        reply_to: int | None) -> int:
        message: dict[str, Any] = {"message_id": self._next_message_id(chat), "from": sender,
                                   "chat": chat.obj, "date": int(self.now()), "text": text}
        command = BOT_COMMAND_RE.match(text)
        if command is not None:
            message["entities"] = [{"type": "bot_command", "offset": 0,
                                    "length": command.end()}]
        if reply_to is not None:
            replied = chat.history.get(reply_to)
            if replied is None:
                raise ValueError(f"no message {reply_to} in chat {chat.id} to reply to")
            message["reply_to_message"] = replied["message"]
        chat.history[message["message_id"]] = self._record(
            "user", chat, message, text=text, entities=message.get("entities", []), source=text)
        chat.last_send = None
        return self._enqueue({"message": message})


def _user(user_id: int, first_name: str) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "nl"}


async def _serve(port: int, token: str, bot_username: str) -> None:
    emulator = BotAPIEmulator(token, bot_username=bot_username)
    await emulator.start(port)
    print(f"listening on 127.0.0.1:{emulator.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await emulator.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Loopback Telegram Bot API emulator")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--token", default="123456:TEST-TOKEN")
    parser.add_argument("--bot-username", default="kiss_coach_test_bot")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, args.token, args.bot_username))


if __name__ == "__main__":
    main()
