"""BotAPIEmulator: the aiohttp server, its dispatch of Bot API calls, and the control API."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .deleting import DeleteMethods
from .driving import UserDriving
from .faults import FaultInjection
from .files import FileMethods
from .methods import BotAPIMethods
from .params import ApiError, Params, read_params
from .rules import MAX_UPLOAD_BYTES
from .webhooks import WebhookDelivery

#: Control actions that call the emulator's method of the same name with the JSON body.
_PLAIN_ACTIONS = frozenset({
    "user_sends_text", "user_presses", "user_blocks_bot", "user_unblocks_bot",
    "enqueue_raw_update", "set_webhook_target", "set_webhook_targets", "fail_next",
    "fail_fraction", "drop_next", "flood", "register_chat", "duplicates", "webhook_counts",
    "advance_clock",
})


def _json_response(payload: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
                        status=status, content_type="application/json")


def _jsonable(value: Any) -> Any:
    """``value`` with bytes replaced by their length, for the control API."""
    if isinstance(value, bytes):
        return {"bytes": len(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class BotAPIEmulator(UserDriving, BotAPIMethods, FileMethods, DeleteMethods, FaultInjection,
                     WebhookDelivery):
    """Stands in for api.telegram.org on 127.0.0.1; see the docstring of telegram_emulator.py."""

    def __init__(self, token: str = "123456:TEST-TOKEN", *,
                 bot_username: str = "kiss_coach_test_bot", strict_html: bool = True) -> None:
        super().__init__(token, bot_username=bot_username, strict_html=strict_html)
        handlers: list[tuple[str, Callable[..., Any]]] = [
            ("getMe", self._get_me), ("getUpdates", self._get_updates),
            ("setWebhook", self._set_webhook), ("deleteWebhook", self._delete_webhook),
            ("getWebhookInfo", self._get_webhook_info), ("sendMessage", self._send_message),
            ("editMessageText", self._edit_message_text),
            ("answerCallbackQuery", self._answer_callback_query),
            ("sendPhoto", self._send_photo), ("sendDocument", self._send_document),
            ("getFile", self._get_file),
            ("sendChatAction", self._send_chat_action), ("setMyCommands", self._set_my_commands),
            ("getMyCommands", self._get_my_commands),
            ("deleteMyCommands", self._delete_my_commands),
            ("deleteMessage", self._delete_message), ("deleteMessages", self._delete_messages),
        ]
        self._methods = {name.lower(): (name, handler) for name, handler in handlers}

    # ---- lifecycle ------------------------------------------------------------------------

    async def start(self, port: int = 0) -> None:
        """Serve on 127.0.0.1:``port`` (0 picks a free port, see ``port``)."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        self._closing = False
        self._wakeup = asyncio.Event()
        self._poll_waiting = asyncio.Event()
        self._stored = asyncio.Event()
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES + 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True,
                               shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        self._runner = runner
        self.port = runner.addresses[0][1]

    async def stop(self) -> None:
        self._closing = True
        if self._pump is not None:
            self._pump.cancel()
            self._pump = None
        if self._wakeup is not None:
            self._wakeup.set()  # long polls return at once
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> BotAPIEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port()}/bot"

    def _port(self) -> int:
        if self.port is None:
            raise RuntimeError("start() the emulator first")
        return self.port

    # ---- HTTP ---------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/bot"):
            token, _, method = path[4:].partition("/")
            return await self._api(request, token, method)
        if path.startswith("/file/bot") and request.method == "GET":
            token, _, file_path = path[9:].partition("/")
            data = self.download_file(token, file_path)
            if data is None:
                return _json_response({"ok": False, "error_code": 404,
                                       "description": "Not Found"}, 404)
            return web.Response(body=data, content_type="application/octet-stream")
        if path.startswith("/_emulator/"):
            return await self._control(request, path[11:])
        return _json_response({"ok": False, "error_code": 404, "description": "Not Found"}, 404)

    async def _api(self, request: web.Request, token: str, method: str) -> web.StreamResponse:
        entry = self._methods.get(method.lower())
        name = entry[0] if entry is not None else method
        self.calls[name] += 1
        try:
            if token != self.token:
                raise ApiError(401, "Unauthorized")
            if entry is None:
                raise ApiError(404, "Not Found")
            fault = self._take_fault(method.lower())
            if fault is not None:
                raise ApiError(fault.status, fault.description, fault.parameters, injected=True)
            params = await read_params(request)
            drop = self._take_drop(method.lower())
            if drop is not None:
                await self._drop_connection(request, name, params, entry[1], drop.processed)
            self._check_injected(method.lower(), name, params)
            result = await self._call(entry[1], params)
        except ApiError as error:
            return self._error(request, name, error.status, error.description, error.parameters,
                               injected=error.injected)
        if isinstance(result, tuple):  # (result, description), as setWebhook answers
            return _json_response({"ok": True, "result": result[0], "description": result[1]})
        return _json_response({"ok": True, "result": result})

    @staticmethod
    async def _call(handler: Callable[..., Any], params: Params) -> Any:
        result = handler(params)
        if asyncio.iscoroutine(result):
            result = await result
        return result

    async def _drop_connection(self, request: web.Request, name: str, params: Params,
                               handler: Callable[..., Any], processed: bool) -> None:
        """Close the connection without an answer (after the call took effect, if
        ``processed``): the client has written its request and sees a disconnect at once."""
        if processed:
            with contextlib.suppress(ApiError):
                await self._call(handler, params)
        self.dropped.append({"method": name, "processed": processed,
                             "chat_id": self._call_chat_id(name.lower(), params)})
        if request.transport is not None:
            request.transport.close()
        # aiohttp takes this as the client having gone away: no answer, nothing logged.
        raise asyncio.CancelledError

    def _error(self, request: web.Request, method: str, status: int, description: str,
               parameters: dict[str, Any] | None = None, *,
               injected: bool = False) -> web.Response:
        transport = request.transport
        if transport is not None and not transport.is_closing():  # nobody listens otherwise
            self.errors.append({"method": method, "status": status, "description": description,
                                "injected": injected})
        payload: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            payload["parameters"] = parameters
        return _json_response(payload, status)

    async def _control(self, request: web.Request, action: str) -> web.Response:
        """The HTTP face of the driving and inspection methods, for a separate process."""
        args: dict[str, Any] = dict(request.query)
        try:
            if request.can_read_body:
                body = await request.read()
                if body:
                    args.update(json.loads(body))
            if action == "state":
                result: Any = {
                    "calls": dict(self.calls), "errors": self.errors,
                    "sent_count": len(self.sent), "pending_updates": len(self._queue),
                    "unanswered_callbacks": self.unanswered_callbacks(),
                    "answered_callbacks": self.answered_callbacks,
                    "commands": [[list(k), v] for k, v in self.commands.items()],
                    "flood_violations": self.flood_violations, "dropped": self.dropped,
                    "deleted": self.deleted, "downloads": self.downloads,
                    "duplicates": len(self._duplicates), "webhook_counts": self.webhook_counts(),
                }
            elif action == "messages_to":
                result = self.messages_to(int(args["chat_id"]),
                                          include_user=bool(args.get("include_user")))
            elif action == "wait_for_chat":
                chat_id = int(args["chat_id"])
                await self.wait_for_chat(chat_id, int(args["sends"]))
                history = self.messages_to(chat_id)
                result = [{"message_id": r["message_id"], "text": r["text"],
                           "caption": r["caption"], "reply_markup": r["reply_markup"],
                           "photo": r["photo"] is not None}
                          for r in history[int(args.get("since", 0)):]]
            elif action == "wait_for_sent":
                result = len(await self.wait_for_sent(int(args.get("count", 1))))
            elif action == "deliver_pending_webhooks":
                result = await self.deliver_pending_webhooks()
            elif action in _PLAIN_ACTIONS:
                result = getattr(self, action)(**args)
            else:
                return _json_response({"ok": False, "description": f"no action {action!r}"}, 404)
        except (ValueError, TypeError, KeyError, RuntimeError) as error:
            return _json_response({"ok": False, "description": repr(error)}, 400)
        return _json_response({"ok": True, "result": _jsonable(result)})
