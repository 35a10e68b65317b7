"""``GET /metrics``: the bot's figures in Prometheus' text format.

Two kinds of figures. Counted as they happen, in this process: updates handled and how long
their turns took (the dispatcher tells :meth:`Metrics.turn_handled`), messages sent and 429s
per channel (the sender tells :meth:`Metrics.sent` and :meth:`Metrics.rate_limited`). Read
from the database when Prometheus asks (so every process reports the same): outbox rows by
status, tips due, the language model's tokens this month. The unfinished outbox rows (the
backlog an operator watches) are counted at every scrape; the finished ones, which the table
keeps adding up and only a full count finds (70 ms for a million rows on SQLite, on the
bot's own event loop), at most every :data:`FINISHED_EVERY`. The registry is the app's own,
never prometheus_client's global one, so several apps in one process (tests) never collide.

Nobody outside may read it unless they know ``KISS_METRICS_TOKEN`` (``Authorization: Bearer
…``); without a token it answers only on a loopback listener, and only to requests that no
proxy forwarded (a proxy in front of a loopback listener would expose it otherwise).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import ipaddress
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from bot.web import host_and_port
from flows.timing import BRUSSELS
from storage import outbox, questions, vitals
from storage.database import Database
from storage.tables import UNFINISHED, OutboxStatus, utcnow

log = logging.getLogger(__name__)

FINISHED = tuple(status for status in OutboxStatus if status not in UNFINISHED)

#: Turn latency buckets (seconds): a chat answer should take well under 100 ms.
TURN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: How long a count of the finished outbox rows (sent, failed, …) is shown before a scrape
#: counts them again.
FINISHED_EVERY = timedelta(minutes=5)
#: Headers a reverse proxy adds: such a request did not come from this machine.
FORWARDED = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


@dataclass(frozen=True, slots=True)
class Stored:
    """The figures read from the database at a scrape."""

    outbox: Mapping[str, int]
    tips_due: int
    tokens_this_month: int


class Metrics:
    """The app's figures: hooks for the dispatcher and the sender, and the exposition.

    Args:
        db: Where the stored figures are read at each scrape.
        timeout: The longest a scrape waits for the database (then it reports
            ``kiss_database_up 0`` and the in-process figures).
        clock: The current time (tests move it).
    """

    def __init__(self, db: Database, *, timeout: timedelta = timedelta(seconds=2),
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.timeout = timeout
        self.clock = clock
        self.registry = CollectorRegistry()
        self.updates = Counter("kiss_updates_handled", "Updates handled (turns), per channel",
                               ["channel"], registry=self.registry)
        self.turns = Histogram("kiss_turn_seconds",
                               "From taking an update to its answer being out, per channel",
                               ["channel"], buckets=TURN_BUCKETS, registry=self.registry)
        self.sends = Counter("kiss_messages_sent", "Messages delivered, per channel",
                             ["channel"], registry=self.registry)
        self.limited = Counter("kiss_rate_limited",
                               "Platform calls answered 429 (too many requests), per channel",
                               ["channel"], registry=self.registry)
        # Each channel's series, looked up once (labels() takes a lock and builds a key).
        self._updates_of = functools.cache(self.updates.labels)
        self._turns_of = functools.cache(self.turns.labels)
        self._sends_of = functools.cache(self.sends.labels)
        ProcessCollector(registry=self.registry)  # memory, CPU, open files of this process
        self.registry.register(_StoredCollector(self))
        #: When each channel last took a message (for /healthz too).
        self.last_success: dict[str, datetime] = {}
        self._stored: Stored | None = None
        self._scrape = asyncio.Lock()
        #: The finished rows' counts, and when they were counted.
        self._finished: tuple[datetime, dict[str, int]] | None = None

    # -- the hooks (on every turn and send: a few microseconds) ---------------------------

    def turn_handled(self, channel: str, seconds: float) -> None:
        """An update of ``channel`` was handled and its answer delivered in ``seconds``."""
        self._updates_of(channel).inc()
        self._turns_of(channel).observe(seconds)

    def sent(self, channel: str) -> None:
        """A message went out through ``channel``."""
        self._sends_of(channel).inc()
        self.last_success[channel] = self.clock()

    def rate_limited(self, channel: str) -> None:
        """``channel``'s platform answered 429."""
        self.limited.labels(channel).inc()

    # -- the exposition -------------------------------------------------------------------

    async def exposition(self) -> bytes:
        """Every figure in Prometheus' text format, the stored ones read now."""
        async with self._scrape:  # two scrapes at once read the database once each, in turn
            self._stored = await self._read()
            return generate_latest(self.registry)

    async def _read(self) -> Stored | None:
        now = self.clock()
        local = now.astimezone(BRUSSELS)
        month = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        try:
            async with asyncio.timeout(self.timeout.total_seconds()):
                async with self.db.transaction() as tx:
                    rows = await outbox.status_counts(tx, statuses=UNFINISHED)
                    if self._finished is None or now - self._finished[0] >= FINISHED_EVERY:
                        finished = await outbox.status_counts(tx, statuses=FINISHED)
                        self._finished = (now, finished)
                    return Stored({**self._finished[1], **rows},
                                  await vitals.tips_due(tx, now=now),
                                  await questions.tokens_since(tx, since=month))
        except Exception as exc:  # the scrape still shows the in-process figures
            log.warning("metrics: the database did not answer (%r)", exc)
            return None

    def routes(self, *, token: str | None, listen: str) -> web.Application:
        """The sub-application serving ``GET`` at its mount point (``/metrics``)."""
        loopback = _is_loopback(host_and_port(listen)[0])
        expected = f"Bearer {token}".encode() if token else None

        async def metrics(request: web.Request) -> web.Response:
            if expected is not None:
                given = request.headers.get("Authorization", "").encode()
                if not hmac.compare_digest(given, expected):
                    return web.Response(status=401, text="a bearer token is needed\n",
                                        headers={"WWW-Authenticate": "Bearer"})
            elif not loopback or any(h in request.headers for h in FORWARDED):
                return web.Response(status=403, text="set KISS_METRICS_TOKEN to read the "
                                                     "metrics from outside this machine\n")
            body = await self.exposition()
            return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

        app = web.Application()
        app.router.add_get("", metrics)
        return app


class _StoredCollector(Collector):
    """The figures of the last :meth:`Metrics.exposition`'s database read."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        stored = self.metrics._stored
        yield GaugeMetricFamily("kiss_database_up", "Whether the database answered this scrape",
                                value=0 if stored is None else 1)
        last = GaugeMetricFamily("kiss_last_send_timestamp_seconds",
                                 "When each channel last delivered a message (Unix time)",
                                 labels=["channel"])
        for channel, at in sorted(self.metrics.last_success.items()):
            last.add_metric([channel], at.timestamp())
        yield last
        if stored is None:
            return
        rows = GaugeMetricFamily("kiss_outbox_rows", "Outbox rows by status (the finished "
                                 "statuses recounted every 5 minutes at most)",
                                 labels=["status"])
        for status in OutboxStatus:
            rows.add_metric([status.value], stored.outbox.get(status.value, 0))
        yield rows
        yield GaugeMetricFamily("kiss_tips_due", "Tips whose time has come, not sent yet",
                                value=stored.tips_due)
        yield GaugeMetricFamily("kiss_llm_tokens_month",
                                "Language model tokens (prompt and answer) spent this "
                                "calendar month (Brussels)", value=stored.tokens_this_month)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False
