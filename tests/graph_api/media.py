"""Media: uploads, media ids and how long they last, the media URL and its download, the
files users send (``receive_file``), and the check of an image or document message.

An uploaded file's id lasts 30 days and may be sent; a received file's id lasts 7 days and
is for downloading only (the Cloud API documents sending by the id of an *uploaded* file, so
the bot must upload the bytes). A media URL serves the bytes for 5 minutes, to the same
bearer token only.
"""

from __future__ import annotations

import hashlib
from typing import Any

import aiohttp
from aiohttp import web

from .limits import MAX_CAPTION, RefusalError, check_length
from .state import GraphState

#: How long media ids last (Cloud API, "Media"): uploaded 30 days, from webhooks 7 days.
UPLOADED_SECONDS = 30 * 24 * 3600
RECEIVED_SECONDS = 7 * 24 * 3600
#: How long a media URL serves the file.
URL_SECONDS = 5 * 60


class MediaFiles(GraphState):
    """``POST /{version}/{phone}/media``, ``GET /{version}/{media-id}``, the media URL, and
    the files users send."""

    def _media_message(self, part: Any, kind: str) -> None:
        if not isinstance(part, dict) or not (part.get("id") or part.get("link")):
            raise RefusalError(100, f"{kind}: an id or a link is required")
        if part.get("id") in self.received:
            raise RefusalError(131053, f"media id {part['id']} came with a received message: "
                                       "upload the file to send it")
        if part.get("id") and not self._alive(str(part["id"]), self.media, UPLOADED_SECONDS):
            raise RefusalError(131053, f"unknown media id {part['id']}")
        check_length(part.get("caption"), MAX_CAPTION, "caption", required=False)

    async def _upload(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._refuse(RefusalError(190, "invalid access token", 401))
        fields: dict[str, Any] = {}
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, aiohttp.BodyPartReader):
                continue
            data = await part.read()
            fields[part.name or ""] = (data, part.headers.get("Content-Type", ""),
                                       part.filename or "")
        if fields.get("messaging_product", (b"",))[0] != b"whatsapp" or "file" not in fields:
            return self._refuse(RefusalError(100, "messaging_product and file are required"))
        data, content_type, name = fields["file"]
        if not data or not content_type:
            return self._refuse(RefusalError(131053, "empty file or no content type"))
        media_id = f"{next(self._ids) + 7_000_000_000}"
        self.media[media_id] = (bytes(data), content_type, name)
        self._media_at[media_id] = self.now()
        return web.json_response({"id": media_id})

    def _alive(self, media_id: str, where: dict[str, Any], lasts: float) -> bool:
        return media_id in where and self.now() - self._media_at.get(media_id, 0.0) <= lasts

    def _file(self, media_id: str) -> tuple[bytes, str] | None:
        """The bytes and type of a media id that has not expired."""
        if self._alive(media_id, self.media, UPLOADED_SECONDS):
            data, content_type, _ = self.media[media_id]
            return data, content_type
        if self._alive(media_id, self.received, RECEIVED_SECONDS):
            return self.received[media_id]
        return None

    async def _media_url(self, request: web.Request) -> web.Response:
        """``GET /{version}/{media-id}``: where to download the file, for 5 minutes."""
        if not self._authorized(request):
            return self._refuse(RefusalError(190, "invalid access token", 401))
        media_id = request.match_info["media_id"]
        found = self._file(media_id)
        if found is None:
            return self._refuse(RefusalError(
                100, f"Unsupported get request. Object with ID '{media_id}' does not exist, "
                     "cannot be loaded due to missing permissions, or does not support this "
                     "operation"))
        data, content_type = found
        key = hashlib.sha256(f"{media_id}:{next(self._ids)}".encode()).hexdigest()[:24]
        self._urls[key] = (media_id, self.now() + URL_SECONDS)
        return web.json_response({
            "messaging_product": "whatsapp", "id": media_id, "mime_type": content_type,
            "sha256": hashlib.sha256(data).hexdigest(), "file_size": str(len(data)),
            "url": f"http://127.0.0.1:{self.port}/whatsapp_business/attachments/?mid={key}"})

    async def _download(self, request: web.Request) -> web.Response:
        """A media URL: the bytes, with the bearer token, while the URL lasts."""
        if not self._authorized(request):
            return web.Response(status=401, text="unauthorized")
        media_id, until = self._urls.get(request.query.get("mid", ""), ("", 0.0))
        file = self._file(media_id) if self.now() <= until else None
        if file is None:
            return web.Response(status=404, text="not found")
        self.downloads.append(media_id)
        return web.Response(body=file[0], content_type=file[1])

    def receive_file(self, data: bytes) -> str:
        """Keep a picture a user sends (JPEG or PNG bytes); its media id, which is for
        downloading only."""
        media_id = f"{next(self._ids) + 8_000_000_000}"
        content_type = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
        self.received[media_id] = (data, content_type)
        self._media_at[media_id] = self.now()
        return media_id
