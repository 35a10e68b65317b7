"""The Cloud API over aiohttp: send a message, upload a file, download one. Errors come
back as :class:`GraphError` with Meta's code, or :class:`GraphLostError` when no answer
came."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

#: Seconds a call may take (an upload included) before it counts as lost.
TIMEOUT = 30.0


class GraphError(Exception):
    """The Cloud API answered with an error: HTTP ``status`` and Graph ``code``."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"whatsapp {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class GraphUnreachedError(Exception):
    """The request did not go out (no connection): it surely did not arrive."""


class GraphLostError(Exception):
    """The request went out and no answer came back: it may have arrived."""


class Graph:
    """Calls to one phone number's endpoints.

    Args:
        base_url: ``https://graph.facebook.com/v23.0`` (the version is part of it).
        phone_number_id: The business number's id.
        token: The access token (sent as a bearer token, never logged).
    """

    def __init__(self, base_url: str, phone_number_id: str, token: str) -> None:
        self.base_url = base_url
        self.messages_url = f"{base_url}/{phone_number_id}/messages"
        self.media_url = f"{base_url}/{phone_number_id}/media"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=aiohttp.ClientTimeout(total=TIMEOUT),
                connector=aiohttp.TCPConnector(limit=128))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, to: str, body: dict[str, Any]) -> str:
        """Send one message; its wamid."""
        answer = await self._post(self.messages_url, json={
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
            **body})
        try:
            return str(answer["messages"][0]["id"])
        except (KeyError, IndexError, TypeError):
            raise GraphError(200, 0, f"no message id in {str(answer)[:200]}") from None

    async def upload(self, data: bytes, content_type: str, name: str) -> str:
        """Upload a file; its media id."""
        form = aiohttp.FormData()
        form.add_field("messaging_product", "whatsapp")
        form.add_field("type", content_type)
        form.add_field("file", data, filename=name, content_type=content_type)
        answer = await self._post(self.media_url, data=form)
        try:
            return str(answer["id"])
        except (KeyError, TypeError):
            raise GraphError(200, 0, f"no media id in {str(answer)[:200]}") from None

    async def download(self, media_id: str) -> bytes:
        """The bytes of a file by its media id: ``GET {base}/{media-id}`` answers a URL
        (valid for minutes), which is fetched with the same bearer token."""
        answer = self._answer(*await self._request("GET", f"{self.base_url}/{media_id}"))
        url = answer.get("url") if isinstance(answer, dict) else None
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise GraphError(200, 0, f"no download url in {str(answer)[:200]}")
        status, raw = await self._request("GET", url)
        if status >= 400:
            self._answer(status, raw)  # raises GraphError, with Meta's code when it gave one
        return raw

    async def _post(self, url: str, **request: Any) -> Any:
        return self._answer(*await self._request("POST", url, **request))

    async def _request(self, method: str, url: str, **request: Any) -> tuple[int, bytes]:
        try:
            async with self._open().request(method, url, **request) as response:
                return response.status, await response.read()
        except (aiohttp.ClientConnectorError, aiohttp.ClientConnectionResetError) as exc:
            if isinstance(exc, aiohttp.ClientConnectorError):
                raise GraphUnreachedError(str(exc)) from exc
            raise GraphLostError(str(exc)) from exc
        except (TimeoutError, aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
            raise GraphLostError(f"{type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _answer(status: int, raw: bytes) -> Any:
        """The JSON answer; raises :class:`GraphError` for an error."""
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = {}
        if status >= 400 or (isinstance(answer, dict) and "error" in answer):
            error = answer.get("error", {}) if isinstance(answer, dict) else {}
            details = (error.get("error_data") or {}).get("details") if isinstance(
                error, dict) else None
            raise GraphError(status, int(error.get("code", 0) or 0) if isinstance(
                error, dict) else 0, str(details or (error.get("message") if isinstance(
                    error, dict) else "") or raw[:200].decode(errors="replace")))
        return answer
