"""What an operator sees: /healthz and Prometheus /metrics, served by the front and every worker.

Counters that the code increments live here (Telegram sends and 429s, sync and training durations);
numbers that other objects already keep (bilibili calls and risk pauses, queue depth) are read when
Prometheus scrapes, so nothing else has to know about metrics.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text

import delivery.pace  # noqa: F401 - registers the Telegram send counters this page serves
from services import Services

log = logging.getLogger(__name__)

SYNC_SECONDS = Histogram("bilipick_sync_seconds", "One user's sync", buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300))
TRAIN_SECONDS = Histogram(
    "bilipick_training_seconds", "One training pass (a batch of users)", buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800)
)
JOBS_DONE = Counter("bilipick_jobs", "Tasks finished, by task and outcome", ["task", "outcome"])

_QUEUE_DEPTH = """
SELECT queue_name, status::text, count(*) FROM procrastinate_jobs
WHERE status IN ('todo', 'doing') GROUP BY queue_name, status
"""


class _ServicesCollector(Collector):
    """bilibili traffic and the procrastinate queues, read at scrape time."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator:
        bili = self.services.bili
        yield CounterMetricFamily("bilipick_bilibili_calls", "HTTP requests to bilibili", value=bili.calls)
        yield CounterMetricFamily(
            "bilipick_bilibili_risk_pauses", "Risk-control pauses started", value=bili.risk_pauses
        )
        depth = GaugeMetricFamily(
            "bilipick_queue_jobs", "procrastinate jobs waiting or running", labels=["queue", "status"]
        )
        for queue, status, count in queue_depth(self.services):
            depth.add_metric([queue, status], count)
        yield depth


def queue_depth(services: Services) -> list[tuple[str, str, int]]:
    """(queue, todo|doing, jobs); empty in embedded mode (no procrastinate tables)."""
    if services.db.dialect != "postgresql":
        return []
    with services.db.engine.connect() as conn:
        if conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is None:
            return []
        return [(q, s, int(n)) for q, s, n in conn.execute(text(_QUEUE_DEPTH))]


class MetricsServer:
    """aiohttp on METRICS_LISTEN:METRICS_PORT; /healthz answers 200 while the database does."""

    def __init__(self, services: Services, port: int, listen: str = "127.0.0.1") -> None:
        self.services, self.port, self.listen = services, port, listen
        self._collector = _ServicesCollector(services)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        REGISTRY.register(self._collector)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.listen, self.port).start()
        except OSError as exc:  # the port is taken (two processes on one host with one METRICS_PORT)
            log.error(
                "METRICS_PORT %d on %s is not free (%s): this process runs without /healthz and "
                "/metrics; give each process on a host its own METRICS_PORT",
                self.port,
                self.listen,
                exc.strerror or type(exc).__name__,
            )
            await self.stop()
            return
        log.info("metrics on %s:%d (/healthz, /metrics)", self.listen, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            REGISTRY.unregister(self._collector)
            self._runner = None

    async def _healthz(self, _request: web.Request) -> web.Response:
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._ping)
        except Exception as exc:  # noqa: BLE001 - any failure means unhealthy, with its kind
            return web.Response(status=503, text=f"database: {type(exc).__name__}\n")
        return web.Response(text="ok\n")

    def _ping(self) -> None:
        with self.services.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = await asyncio.get_running_loop().run_in_executor(None, generate_latest, REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
