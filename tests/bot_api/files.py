"""Files: image sizes, the photo sizes Telegram keeps, sendPhoto and sendDocument, and
getFile with the download it allows.

A sent or received file can be sent again by its file_id (as a broadcast of one picture
would). ``getFile`` answers a ``file_path`` for files up to 20 MB; the file is then served
at ``/file/bot<token>/<file_path>`` for an hour of the emulator's clock, as the Bot API
promises "at least 1 hour" (a wrong token or an old path gets 404)."""

from __future__ import annotations

import struct
from typing import Any

from .keyboards import read_reply_markup
from .messages import MessageStore
from .params import ApiError, Params, Upload, bad_request
from .rules import MAX_DOWNLOAD_BYTES, MAX_PHOTO_BYTES, MAX_UPLOAD_BYTES
from .state import StoredFile

#: How long a file_path from getFile serves the file (the Bot API: at least 1 hour).
FILE_PATH_SECONDS = 3600


def _image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG or JPEG, or None when it is neither."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data.startswith(b"\xff\xd8\xff"):
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            (length,) = struct.unpack(">H", data[i + 2:i + 4])
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[i + 5:i + 9])
                return width, height
            i += 2 + length
    return None


def _photo_sizes(width: int, height: int) -> list[tuple[int, int]]:
    """The sizes Telegram keeps of a photo: thumbnails up to the (at most 2560 px) original."""
    sizes: list[tuple[int, int]] = []
    for limit in (90, 320, 800, 1280, 2560):
        scale = min(1.0, limit / max(width, height))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        if not sizes or size != sizes[-1]:
            sizes.append(size)
        if scale == 1.0:
            break
    return sizes


class FileMethods(MessageStore):
    """The methods that take or give files."""

    def _input_file(self, params: Params, field_name: str) -> tuple[Upload, StoredFile | None]:
        value = params.get(field_name)
        upload = params.files.get(field_name)
        if upload is None and isinstance(value, str) and value.startswith("attach://"):
            upload = params.files.get(value[9:])
            if upload is None:
                raise bad_request(f"wrong remote file identifier specified: can't find {value}")
        if upload is not None:
            if not upload.data:
                raise bad_request("file must be non-empty")
            if len(upload.data) > MAX_UPLOAD_BYTES:
                raise ApiError(413, "Request Entity Too Large")
            return upload, None
        if isinstance(value, str) and value:
            stored = self._files.get(value)
            if stored is not None:
                return Upload(stored.data, stored.filename, stored.mime_type), stored
            if value.startswith(("http://", "https://")):
                raise bad_request("failed to get HTTP URL content")
            raise bad_request("wrong file identifier/HTTP URL specified")
        raise bad_request(f"there is no {field_name} in the request")

    def _new_file(self, kind: str, upload: Upload,
                  size: tuple[int, int] | None = None) -> StoredFile:
        number = next(self._file_ids)
        return StoredFile(f"{kind[:2].upper()}AC{number:012d}", f"AQAD{number:08d}",
                          upload.data, upload.mime_type, upload.filename, size)

    def _send_photo(self, params: Params) -> dict[str, Any]:
        chat = self._chat(params)
        upload, stored = self._input_file(params, "photo")
        if stored is None:
            size = _image_size(upload.data)
            if size is None or 0 in size:
                raise bad_request("IMAGE_PROCESS_FAILED")
            if len(upload.data) > MAX_PHOTO_BYTES:
                raise ApiError(413, "Request Entity Too Large")
            width, height = size
            if width + height > 10000 or max(width, height) > 20 * min(width, height):
                raise bad_request("PHOTO_INVALID_DIMENSIONS")
            stored = self._new_file("photos", upload, size)
        source, caption, entities = self._caption(params)
        markup = read_reply_markup(params)
        photo = self._photo_entries(stored)
        return self._store_file_message("sendPhoto", chat, params, stored, source, caption,
                                        entities, markup, {"photo": photo})

    def _photo_entries(self, stored: StoredFile) -> list[dict[str, Any]]:
        """The PhotoSize list of a stored photo; each size's file_id can be sent again."""
        assert stored.size is not None
        sizes = _photo_sizes(*stored.size)
        photo = []
        for index, (width, height) in enumerate(sizes):
            file_id = stored.file_id if index == len(sizes) - 1 else f"{stored.file_id}_{index}"
            self._files[file_id] = stored
            share = width * height / (sizes[-1][0] * sizes[-1][1])
            photo.append({"file_id": file_id, "file_unique_id": f"{stored.file_unique_id}{index}",
                          "width": width, "height": height,
                          "file_size": max(1, int(len(stored.data) * share))})
        return photo

    def user_sends_photo(self, chat_id: int, data: bytes, *, caption: str = "",
                         caption_entities: list[dict[str, Any]] | None = None) -> int:
        """User ``chat_id`` sends a photo (PNG or JPEG bytes) with a caption; returns the
        update_id. As on Telegram, the bot may send the photo on by its file_id."""
        size = _image_size(data)
        if size is None:
            raise ValueError("a photo must be PNG or JPEG bytes")
        stored = self._new_file("photos", Upload(data, "photo.jpg", "image/jpeg"), size)
        chat = self._user_chat(chat_id)  # type: ignore[attr-defined]
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat), "from": chat.user, "chat": chat.obj,
            "date": int(self.now()), "photo": self._photo_entries(stored)}
        if caption:
            message["caption"] = caption
        if caption_entities:
            message["caption_entities"] = caption_entities
        chat.history[message["message_id"]] = self._record(
            "user", chat, message, caption=caption, entities=caption_entities or [],
            source=caption, photo=data)
        chat.last_send = None
        return self._enqueue({"message": message})  # type: ignore[attr-defined,no-any-return]

    def _get_file(self, params: Params) -> dict[str, Any]:
        file_id = params.get_str("file_id")
        if not file_id:
            raise bad_request("file_id is empty")
        stored = self._files.get(file_id)
        if stored is None:
            raise bad_request("invalid file_id")
        answer: dict[str, Any] = {"file_id": file_id, "file_unique_id": stored.file_unique_id,
                                  "file_size": len(stored.data)}
        if len(stored.data) > MAX_DOWNLOAD_BYTES:
            raise bad_request("file is too big")
        path = f"{'photos' if stored.size else 'documents'}/file_{next(self._file_ids)}" + (
            ".jpg" if stored.size else "")
        self._file_paths[path] = (stored, self.now() + FILE_PATH_SECONDS)
        answer["file_path"] = path
        return answer

    def download_file(self, token: str, path: str) -> bytes | None:
        """What ``GET /file/bot<token>/<path>`` serves: the file, or None (404) for a wrong
        token, an unknown path or one older than an hour."""
        found = self._file_paths.get(path)
        if token != self.token or found is None or self.now() > found[1]:
            return None
        self.downloads.append(path)
        return found[0].data

    def _send_document(self, params: Params) -> dict[str, Any]:
        chat = self._chat(params)
        upload, stored = self._input_file(params, "document")
        if stored is None:
            stored = self._new_file("documents", upload)
            self._files[stored.file_id] = stored
        source, caption, entities = self._caption(params)
        markup = read_reply_markup(params)
        document: dict[str, Any] = {"file_id": stored.file_id,
                                    "file_unique_id": stored.file_unique_id,
                                    "file_size": len(stored.data)}
        if stored.filename:
            document["file_name"] = stored.filename
        if stored.mime_type:
            document["mime_type"] = stored.mime_type
        return self._store_file_message("sendDocument", chat, params, stored, source, caption,
                                        entities, markup, {"document": document})

    def _store_file_message(self, method: str, chat: Any, params: Params, stored: Any,
                            source: str | None, caption: str | None,
                            entities: list[dict[str, Any]], markup: dict[str, Any] | None,
                            content: dict[str, Any]) -> dict[str, Any]:
        """Build, record and store the message a sendPhoto/sendDocument call creates."""
        message = self._new_message(
            chat, **content, caption=caption, caption_entities=entities,
            reply_to_message=self._reply_to(chat, params),
            reply_markup=markup)
        uploaded = {"photo" if method == "sendPhoto" else "document": stored.data}
        return self._store(chat, self._record(
            method, chat, message, caption=caption, entities=entities, source=source,
            reply_markup=markup, parse_mode=params.get_str("parse_mode"),
            filename=stored.filename, **uploaded))
