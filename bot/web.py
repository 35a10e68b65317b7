"""The bot's one web server: every inbound HTTP route lives here.

Channels mount their webhooks (``/telegram/webhook``, ``/whatsapp/webhook``), the dashboard
its pages, the operator ``/healthz`` and ``/metrics``. Each part is its own aiohttp
sub-application, so each keeps its own body-size limit and middlewares; the server is started
once, after everything is mounted (aiohttp freezes the routes at start).

    web = WebServer("127.0.0.1:8080")
    web.mount("/telegram", telegram_routes)
    await web.start()
    ...
    await web.stop()
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)

#: Bodies larger than this get 413 at the root.
MAX_BODY = 1024 * 1024
#: What answers one request.
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def host_and_port(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:8080"`` → ``("127.0.0.1", 8080)``; a bare ``":8080"`` listens on
    loopback (an open port must be asked for: ``0.0.0.0:8080``)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


class WebServer:
    """One aiohttp server for the whole process.

    Args:
        listen: ``host:port``; port 0 picks a free port (see :attr:`port` after start).
    """

    def __init__(self, listen: str) -> None:
        self.listen = listen
        # 1 MiB for routes at the root (Telegram's updates are far smaller); a mounted part
        # sets its own limit on its sub-application.
        self.root = web.Application(client_max_size=MAX_BODY)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._parts = 0  # what was mounted or added: without any, no server

    @property
    def mounted(self) -> bool:
        """Whether anything asked to be served (no routes, no server)."""
        return self._parts > 0

    def mount(self, prefix: str, app: web.Application) -> None:
        """Serve ``app``'s routes under ``prefix`` (before :meth:`start`)."""
        if self._runner is not None:
            raise RuntimeError("mount before the web server starts")
        self.root.add_subapp(prefix, app)
        self._parts += 1

    def add_post(self, path: str, handler: Handler) -> None:
        """A route at the root (an old webhook path kept working)."""
        self.root.router.add_post(path, handler)
        self._parts += 1

    @property
    def port(self) -> int:
        """The port listened on (known after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("the web server is not started")
        return self._port

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        """Listen, when something is mounted; a second call does nothing."""
        if self._runner is not None or not self.mounted:
            return
        host, port = host_and_port(self.listen)
        runner = web.AppRunner(self.root, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        address = runner.addresses[0] if runner.addresses else None  # (host, port, ...)
        self._port = int(address[1]) if address else port
        log.info("web server listening on %s:%s", host, self._port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
