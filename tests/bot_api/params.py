"""Reading a Bot API request's parameters, and ApiError, the refusal a method raises."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web


class ApiError(Exception):
    """A refusal as the Bot API answers it: HTTP status, description, optional parameters.

    ``injected``: a fault a test asked for, not a refusal of what the bot sent.
    """

    def __init__(self, status: int, description: str,
                 parameters: dict[str, Any] | None = None, *, injected: bool = False) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters
        self.injected = injected


def bad_request(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


@dataclass
class Upload:
    """A file sent in a multipart request."""

    data: bytes
    filename: str | None
    mime_type: str | None


class Params:
    """Request parameters from the query string and a JSON, urlencoded or multipart body."""

    __slots__ = ("data", "files")

    def __init__(self, data: dict[str, Any], files: dict[str, Upload]) -> None:
        self.data = data
        self.files = files

    def get(self, name: str) -> Any:
        return self.data.get(name)

    def get_str(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        return value if isinstance(value, str) else json.dumps(value)

    def get_int(self, name: str, description: str) -> int | None:
        value = self.data.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise bad_request(description)
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_request(description) from None

    def get_bool(self, name: str) -> bool:
        value = self.data.get(name)
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1")
        return bool(value)

    def get_json(self, name: str, description: str) -> Any:
        value = self.data.get(name)
        if isinstance(value, str):
            if value == "":
                return None
            try:
                return json.loads(value)
            except ValueError:
                raise bad_request(description) from None
        return value


async def read_params(request: web.Request) -> Params:
    data: dict[str, Any] = dict(request.query)
    files: dict[str, Upload] = {}
    if request.can_read_body:
        content_type = request.content_type
        if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            for key, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    files[key] = Upload(value.file.read(), value.filename,
                                        value.content_type)
                else:
                    data[key] = value
        else:
            body = await request.read()
            if body:
                try:
                    parsed = json.loads(body)
                except ValueError:
                    raise bad_request("can't parse JSON encoded request") from None
                if not isinstance(parsed, dict):
                    raise bad_request("JSON object expected")
                data.update(parsed)
    return Params(data, files)
