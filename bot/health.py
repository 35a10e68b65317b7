"""``GET /healthz``: is this bot process able to do its work? 200 when it is, 503 when not.

The answer is JSON, for a load balancer, a container orchestrator or a person with curl::

    {"status": "ok", "problems": [],
     "database": {"reachable": true, "revision": "0010", "head": "0010", "at_head": true},
     "backlog": {"waiting": 0, "oldest_seconds": 0.0, "limit_seconds": 300.0},
     "channels": {"telegram": {"last_success": "2026-11-27T20:01:02Z", "seconds_ago": 4.2}}}

Something is wrong (503) when the database does not answer within the timeout, when its
schema is not at the newest migration, or when a due message has waited longer than the
backlog limit (the sender is stuck, or the platform refuses us). A channel that sent
nothing yet is not a problem: a quiet bot is healthy.

Cheap by design: the schema's revision and one indexed query, in one short transaction,
under a timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from storage import vitals
from storage.database import Database, head_revision
from storage.tables import utcnow

log = logging.getLogger(__name__)


class Health:
    """Checks the process's vital signs.

    Args:
        db: The database.
        channels: The channels this process serves (each is listed, sent or not).
        last_success: When each channel last delivered a message.
        backlog_limit: The longest a due message may wait before the bot is unhealthy.
        timeout: The longest the database may take to answer.
        clock: The current time (tests move it).
    """

    def __init__(self, db: Database, *, channels: Callable[[], Iterable[str]],
                 last_success: Mapping[str, datetime], backlog_limit: timedelta,
                 timeout: timedelta, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.channels = channels
        self.last_success = last_success
        self.backlog_limit = backlog_limit
        self.timeout = timeout
        self.clock = clock
        self.head = head_revision()  # read from the migration files once, not per request
        self._healthy = True

    async def check(self) -> tuple[bool, dict[str, Any]]:
        """Whether all is well, and the report."""
        now = self.clock()
        problems: list[str] = []
        detail = ""
        database: dict[str, Any] = {"reachable": False, "revision": None, "head": self.head,
                                    "at_head": False}
        backlog: dict[str, Any] = {"waiting": None, "oldest_seconds": None,
                                   "limit_seconds": self.backlog_limit.total_seconds()}
        try:
            problem = vitals.file_problem(self.db.url)
            if problem is not None:
                raise OSError(problem)
            async with asyncio.timeout(self.timeout.total_seconds()):
                async with self.db.transaction() as tx:
                    revision = await vitals.revision(tx)
                    # another schema may not have the outbox as this code knows it
                    waiting = (await vitals.backlog(tx, now=now) if revision == self.head
                               else None)
        except Exception as exc:  # whatever it is, the database is not usable now
            # The detail goes to the log only: /healthz is public, errors name hosts.
            problems.append(f"database unreachable ({_kind(exc)})")
            detail = _describe(exc)
        else:
            database.update(reachable=True, revision=revision, at_head=revision == self.head)
            if waiting is None:
                problems.append(f"database at migration {revision}, not at {self.head}: "
                                "run kiss-coach db upgrade")
            else:
                oldest = (now - waiting.oldest_due_at if waiting.oldest_due_at is not None
                          else timedelta(0))
                backlog.update(waiting=waiting.count,
                               oldest_seconds=round(max(oldest.total_seconds(), 0.0), 3))
                if oldest > self.backlog_limit:
                    problems.append(f"{waiting.count} due to be sent, the oldest waiting "
                                    f"for {int(oldest.total_seconds())} s")
        report = {"status": "failing" if problems else "ok", "problems": problems,
                  "database": database, "backlog": backlog,
                  "channels": self._channels(now)}
        self._tell(not problems, [*problems, detail] if detail else problems)
        return not problems, report

    def _channels(self, now: datetime) -> dict[str, dict[str, Any]]:
        shown: dict[str, dict[str, Any]] = {}
        for channel in sorted({*self.channels(), *self.last_success}):
            at = self.last_success.get(channel)
            shown[channel] = {
                "last_success": None if at is None else at.isoformat().replace("+00:00", "Z"),
                "seconds_ago": None if at is None else round((now - at).total_seconds(), 3)}
        return shown

    def _tell(self, healthy: bool, problems: list[str]) -> None:
        """Log when the state changes (a probe every few seconds must not fill the log)."""
        if healthy != self._healthy:
            if healthy:
                log.warning("healthy again")
            else:
                log.warning("unhealthy: %s", "; ".join(problems))
            self._healthy = healthy

    def routes(self) -> web.Application:
        """The sub-application serving ``GET`` at its mount point (``/healthz``)."""

        async def healthz(request: web.Request) -> web.Response:
            healthy, report = await self.check()
            return web.json_response(report, status=200 if healthy else 503,
                                     headers={"Cache-Control": "no-store"})

        app = web.Application()
        app.router.add_get("", healthz)
        return app


def _kind(exc: BaseException) -> str:
    return "no answer in time" if isinstance(exc, TimeoutError) else type(exc).__name__


def _describe(exc: BaseException) -> str:
    """One line, without a URL (it may carry a password)."""
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:200]
