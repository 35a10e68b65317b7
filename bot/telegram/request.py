"""python-telegram-bot's HTTP transport on aiohttp.

PTB's default transport (httpx) costs about 2 ms of CPU per request on our 2-core machine;
this one, on a single shared ``aiohttp.ClientSession``, about a seventh of that. Same contract
as :class:`telegram.request.HTTPXRequest`: form-encoded parameters, multipart when there are
files, :class:`telegram.error.TimedOut` and :class:`telegram.error.NetworkError` on failure.
"""

from __future__ import annotations

import re

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

_TOKEN_IN_URL = re.compile(r"/bot[^/\s]+/")


class RequestNotSent(NetworkError):  # noqa: N818  (PTB's errors have no suffix either)
    """The request surely did not reach the server (no connection could be made)."""


class ResponseLost(NetworkError):  # noqa: N818
    """The request was sent and the connection broke before an answer: it may have arrived."""


_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class AiohttpRequest(BaseRequest):
    """One connection pool for all Bot API calls of one kind (sending or polling).

    Args:
        connection_pool_size: Connections kept open to the Bot API server.
        read_timeout: Seconds to wait for a response (long polling adds its own timeout).
        write_timeout: Seconds to send a request; ``media_write_timeout`` for uploads.
        connect_timeout: Seconds to open a connection.
    """

    def __init__(self, *, connection_pool_size: int = 64, read_timeout: float | None = 5.0,
                 write_timeout: float | None = 5.0, connect_timeout: float | None = 5.0,
                 media_write_timeout: float | None = 20.0) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": self.USER_AGENT})

    async def shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        files = request_data.multipart_data if request_data else None
        read = self._read_timeout if isinstance(read_timeout, DefaultValue) else read_timeout
        connect = (self._connect_timeout if isinstance(connect_timeout, DefaultValue)
                   else connect_timeout)
        write = (write_timeout if not isinstance(write_timeout, DefaultValue)
                 else self._media_write_timeout if files else self._write_timeout)
        # aiohttp has no separate write timeout: a request may take connect + write + read.
        total = None if None in (read, connect, write) else (read or 0) + (connect or 0) + (
            write or 0)
        timeout = aiohttp.ClientTimeout(total=total, connect=connect, sock_read=read)

        body: aiohttp.FormData | bytes | None = None
        headers = None
        if request_data is not None and files:
            form = aiohttp.FormData()
            for name, value in request_data.json_parameters.items():
                form.add_field(name, value)
            for name, (filename, content, mimetype) in files.items():
                form.add_field(name, content, filename=filename, content_type=mimetype)
            body = form
        elif request_data is not None:
            # Encoded here in one call: aiohttp's FormData costs more than the request.
            body, headers = request_data.url_encoded_parameters().encode(), _FORM
        try:
            async with self._session.request(method, url, data=body, headers=headers,
                                             timeout=timeout) as response:
                return response.status, await response.read()
        except aiohttp.ConnectionTimeoutError:
            raise RequestNotSent("timed out connecting to the Bot API") from None
        except TimeoutError as exc:  # sent, no answer in time: it may have arrived
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            # Some aiohttp errors quote the URL, and the URL holds the token.
            message = f"aiohttp.{type(exc).__name__}: " + _TOKEN_IN_URL.sub(
                "/bot<token>/", str(exc))
            if isinstance(exc, aiohttp.ClientConnectorError):
                raise RequestNotSent(message) from None
            raise ResponseLost(message) from None
