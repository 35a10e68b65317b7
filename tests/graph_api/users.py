"""What users do, as Meta posts it to the bot's webhook: messages (text, a button pressed, a
list row picked, a picture) and the statuses of what the bot sent.

Every post is signed (``X-Hub-Signature-256``: HMAC-SHA256 of the raw body with the app
secret); :meth:`UserActions.post` sends any body with any signature (for the refusals). A
user's message opens their 24-hour window (``last_inbound``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from .limits import ERRORS
from .media import MediaFiles
from .sent import Sent


class UserActions(MediaFiles):
    """The webhook side of the emulator: users writing to the bot, and message statuses."""

    # -- webhooks to the bot -------------------------------------------------------------

    def sign(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self.app_secret.encode(), body, hashlib.sha256).hexdigest()

    async def post(self, body: bytes, signature: str | None) -> int:
        """Post ``body`` to the bot's webhook with ``signature`` (None: no header)."""
        assert self._session is not None and self.webhook_url, "set webhook_url first"
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        async with self._session.post(self.webhook_url, data=body, headers=headers) as answer:
            await answer.read()
            self.webhook_answers.append(answer.status)
            return answer.status

    def envelope(self, value: dict[str, Any]) -> bytes:
        value = {"messaging_product": "whatsapp",
                 "metadata": {"display_phone_number": "3250000000",
                              "phone_number_id": self.phone_number_id}, **value}
        return json.dumps({"object": "whatsapp_business_account", "entry": [{
            "id": "WABA-EMU", "changes": [{"value": value, "field": "messages"}]}]}).encode()

    async def deliver(self, body: bytes) -> int:
        """Post a signed body."""
        return await self.post(body, self.sign(body))

    def message(self, wa_id: str, kind: str, content: dict[str, Any], *,
                name: str = "An", context: str | None = None) -> tuple[str, bytes]:
        """A user's message as Meta posts it: (its wamid, the webhook body)."""
        wamid = f"wamid.IN{next(self._ids):08d}"
        self.last_inbound[wa_id] = self.now()
        message: dict[str, Any] = {"from": wa_id, "id": wamid,
                                   "timestamp": str(int(self.now())), "type": kind,
                                   kind: content}
        if context is not None:
            message["context"] = {"from": "3250000000", "id": context}
        return wamid, self.envelope({"contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
                                     "messages": [message]})

    async def user_sends_text(self, wa_id: str, text: str, **extra: Any) -> str:
        wamid, body = self.message(wa_id, "text", {"body": text}, **extra)
        await self.deliver(body)
        return wamid

    async def user_presses(self, wa_id: str, message: Sent, title: str) -> str:
        """Press the reply button called ``title`` on ``message``."""
        for button_id, button_title in message.choices:
            if button_title == title and message.body["interactive"]["type"] == "button":
                wamid, body = self.message(wa_id, "interactive", {
                    "type": "button_reply", "button_reply": {"id": button_id,
                                                              "title": button_title}},
                    context=message.wamid)
                await self.deliver(body)
                return wamid
        raise AssertionError(f"no button {title!r} in {message.choices}")

    async def user_picks(self, wa_id: str, message: Sent, title: str) -> str:
        """Pick the list row called ``title`` on ``message``."""
        for row_id, row_title in message.choices:
            if row_title == title and message.body["interactive"]["type"] == "list":
                row = message.row(row_id)
                wamid, body = self.message(wa_id, "interactive", {
                    "type": "list_reply", "list_reply": {
                        "id": row_id, "title": row_title,
                        "description": row.get("description", "")}}, context=message.wamid)
                await self.deliver(body)
                return wamid
        raise AssertionError(f"no row {title!r} in {message.choices}")

    async def answer(self, wa_id: str, message: Sent, title: str) -> str:
        """Press the button or pick the row called ``title``."""
        if message.body["interactive"]["type"] == "button":
            return await self.user_presses(wa_id, message, title)
        return await self.user_picks(wa_id, message, title)

    async def user_sends_image(self, wa_id: str, data: bytes, caption: str = "") -> str:
        """A user sends a picture (JPEG or PNG bytes) with a caption."""
        media_id = self.receive_file(data)
        content_type = self.received[media_id][1]
        wamid, body = self.message(wa_id, "image", {
            "caption": caption, "mime_type": content_type,
            "sha256": hashlib.sha256(data).hexdigest(), "id": media_id})
        await self.deliver(body)
        return wamid

    def status_body(self, wamid: str, status: str, *, code: int | None = None) -> bytes:
        sent = next(m for m in self.sent if m.wamid == wamid)
        entry: dict[str, Any] = {"id": wamid, "status": status,
                                 "timestamp": str(int(self.now())), "recipient_id": sent.to}
        if code is not None:
            entry["errors"] = [{"code": code, "title": ERRORS.get(code, "Error")}]
        return self.envelope({"statuses": [entry]})

    async def status(self, wamid: str, status: str, *, code: int | None = None) -> int:
        """Tell the bot what became of a message: sent, delivered, read or failed."""
        return await self.deliver(self.status_body(wamid, status, code=code))
