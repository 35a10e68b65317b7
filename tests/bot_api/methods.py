"""BotAPIMethods: the Bot API methods the emulator answers, apart from the file ones.

Only what the bot calls, or the coming issues will (commands per chat scope, chat actions):
what nothing exercises is left out, so that a call the emulator does not know fails loudly
(404) instead of being answered by a half-kept imitation."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from typing import Any
from urllib.parse import urlsplit

from .entities import utf16_len
from .keyboards import read_reply_markup
from .messages import MessageStore
from .params import ApiError, Params, bad_request
from .rules import (
    CHAT_ACTIONS,
    COMMAND_RE,
    DEFAULT_UPDATE_TYPES,
    LANGUAGE_RE,
    LOOPBACK_HOSTS,
    MAX_CALLBACK_ANSWER_LENGTH,
    MAX_COMMANDS,
    NOT_MODIFIED,
    POLL_CONFLICT,
    QUERY_TOO_OLD,
    SCOPE_TYPES,
    SECRET_RE,
    WEBHOOK_CONFLICT,
)
from .state import Webhook


class BotAPIMethods(MessageStore):
    """getMe, getUpdates, the webhook, messages, callback answers, chat actions, commands."""

    def _get_me(self, params: Params) -> dict[str, Any]:
        return {**self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False, "can_connect_to_business": False,
                "has_main_web_app": False}

    async def _get_updates(self, params: Params) -> list[dict[str, Any]]:
        if self._webhook is not None:
            raise ApiError(409, WEBHOOK_CONFLICT)
        offset = params.get_int("offset", "wrong parameter offset specified")
        limit = params.get_int("limit", "wrong parameter limit specified") or 100
        timeout = params.get_int("timeout", "wrong parameter timeout specified") or 0
        allowed = params.get_json("allowed_updates", "can't parse allowed_updates JSON object")
        if allowed is not None:
            if not isinstance(allowed, list):
                raise bad_request("can't parse allowed_updates JSON object")
            self._allowed_updates = frozenset(allowed) or DEFAULT_UPDATE_TYPES
        if offset is not None:
            self._confirm(offset)
        self._poll_generation += 1
        generation = self._poll_generation
        if self._pollers:
            self._wake()  # an older long poll is terminated by this one
        if not self._queue and timeout > 0 and not self._closing:
            await self._long_poll(generation, timeout)
            if generation != self._poll_generation:
                raise ApiError(409, POLL_CONFLICT)
            if self._webhook is not None:
                raise ApiError(409, WEBHOOK_CONFLICT)
        batch = list(itertools.islice(self._queue, max(1, min(limit, 100))))
        for pending in batch:
            pending.delivered = True
        return [pending.update for pending in batch]

    async def _long_poll(self, generation: int, seconds: int) -> None:
        assert self._wakeup is not None and self._poll_waiting is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        self._pollers += 1
        self._poll_waiting.set()
        try:
            while (not self._queue and not self._closing and self._webhook is None
                   and generation == self._poll_generation):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
        finally:
            self._pollers -= 1
            if not self._pollers:
                self._poll_waiting.clear()

    def _set_webhook(self, params: Params) -> tuple[bool, str]:
        url = params.get_str("url") or ""
        if not url:
            return self._delete_webhook(params)
        parts = urlsplit(url)
        loopback = parts.hostname in LOOPBACK_HOSTS
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if not loopback and (parts.port or 443) not in (80, 88, 443, 8443):
            raise bad_request(
                "bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        secret = params.get_str("secret_token") or None
        if secret is not None and not SECRET_RE.fullmatch(secret):
            raise bad_request("secret token contains unallowed characters")
        allowed = params.get_json("allowed_updates", "can't parse allowed_updates JSON object")
        if allowed is not None:
            self._allowed_updates = frozenset(allowed) or DEFAULT_UPDATE_TYPES
        if params.get_bool("drop_pending_updates"):
            self._queue.clear()
        max_connections = params.get_int("max_connections", "wrong max_connections specified") or 40
        self._replace_webhook(Webhook(url, secret, max_connections, allowed))
        return True, "Webhook was set"

    def _delete_webhook(self, params: Params) -> tuple[bool, str]:
        if params.get_bool("drop_pending_updates"):
            self._queue.clear()
        was_set = self._webhook is not None
        self._replace_webhook(None)
        return True, "Webhook was deleted" if was_set else "Webhook is already deleted"

    def _get_webhook_info(self, params: Params) -> dict[str, Any]:
        info: dict[str, Any] = {"url": "", "has_custom_certificate": False,
                                "pending_update_count": len(self._queue)}
        webhook = self._webhook
        if webhook is not None:
            info.update(url=webhook.url, max_connections=webhook.max_connections,
                        ip_address="127.0.0.1")
            if webhook.allowed_updates:
                info["allowed_updates"] = webhook.allowed_updates
            if webhook.last_error_date is not None:
                info.update(last_error_date=webhook.last_error_date,
                            last_error_message=webhook.last_error_message)
        return info

    def _send_message(self, params: Params) -> dict[str, Any]:
        chat = self._chat(params)
        source, text, entities = self._text(params)
        markup = read_reply_markup(params)
        reply_to = self._reply_to(chat, params)
        preview = params.get_json("link_preview_options", "can't parse link preview options")
        if preview is not None and not isinstance(preview, dict):
            raise bad_request("can't parse link preview options")
        message = self._new_message(
            chat, text=text, entities=entities, reply_to_message=reply_to,
            reply_markup=markup, link_preview_options=preview)
        return self._store(chat, self._record(
            "sendMessage", chat, message, text=text, entities=entities, source=source,
            reply_markup=markup, parse_mode=params.get_str("parse_mode")))

    def _edit_message_text(self, params: Params) -> dict[str, Any]:
        chat, record = self._editable(params)
        if record["text"] is None:
            raise bad_request("there is no text in the message to edit")
        source, text, entities = self._text(params)
        markup = read_reply_markup(params)
        if (text, entities, markup) == (record["text"], record["entities"],
                                        record["reply_markup"]):
            raise ApiError(400, NOT_MODIFIED)
        return self._edited(chat, record, "editMessageText", markup,
                            {"text": text, "entities": entities}, text=text, entities=entities,
                            source=source, parse_mode=params.get_str("parse_mode"))

    def _answer_callback_query(self, params: Params) -> bool:
        query_id = params.get_str("callback_query_id")
        if not query_id or query_id not in self._callbacks or query_id in self.answered_callbacks:
            raise ApiError(400, QUERY_TOO_OLD)
        text = params.get_str("text")
        if text is not None and utf16_len(text) > MAX_CALLBACK_ANSWER_LENGTH:
            raise bad_request("MESSAGE_TOO_LONG")
        self.answered_callbacks[query_id] = {
            "text": text, "show_alert": params.get_bool("show_alert"), "url": params.get_str("url"),
            "cache_time": params.get_int("cache_time", "wrong cache_time specified")}
        return True

    def _send_chat_action(self, params: Params) -> bool:
        chat = self._chat(params)
        action = params.get_str("action")
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self.chat_actions.append((chat.id, action))
        return True

    def _command_key(self, params: Params) -> tuple[str, str]:
        scope = params.get_json("scope", "can't parse BotCommandScope JSON object")
        if scope is None:
            scope_key = "default"
        else:
            if not isinstance(scope, dict) or scope.get("type") not in SCOPE_TYPES or any(
                    field_name not in scope for field_name in SCOPE_TYPES[scope["type"]]):
                raise bad_request("can't parse BotCommandScope JSON object")
            scope_key = ("default" if scope == {"type": "default"}
                         else json.dumps(scope, sort_keys=True))
        language = params.get_str("language_code") or ""
        if language and not LANGUAGE_RE.fullmatch(language):
            raise bad_request("invalid language code specified")
        return scope_key, language

    def _set_my_commands(self, params: Params) -> bool:
        commands = params.get_json("commands", "can't parse commands JSON object") or []
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > MAX_COMMANDS:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        checked: list[dict[str, str]] = []
        for command in commands:
            if not isinstance(command, dict):
                raise bad_request("can't parse BotCommand: expected an Object")
            for name in ("command", "description"):
                if name not in command:
                    raise bad_request(f'can\'t parse BotCommand: Can\'t find field "{name}"')
                if not isinstance(command[name], str):
                    raise bad_request(
                        f'can\'t parse BotCommand: Field "{name}" must be of type String')
            if not COMMAND_RE.fullmatch(command["command"]):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(command["description"].strip()) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            checked.append({"command": command["command"], "description": command["description"]})
        key = self._command_key(params)
        if checked:
            self.commands[key] = checked
        else:
            self.commands.pop(key, None)
        return True

    def _get_my_commands(self, params: Params) -> list[dict[str, str]]:
        return self.commands.get(self._command_key(params), [])

    def _delete_my_commands(self, params: Params) -> bool:
        self.commands.pop(self._command_key(params), None)
        return True
