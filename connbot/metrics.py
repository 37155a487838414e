"""Prometheus metrics: `GET /metrics`, and what is counted or read for it (core/metrics.py lists
the counters; docs/OPERATIONS.md explains every metric).

One endpoint per process, not prometheus_client's multiprocess mode. Every connbot process (an
HTTP replica, `connbot run`, a `connbot worker`) is a process of its own with a port of its own,
none pre-forked to share one, and the gauges below are read when Prometheus scrapes, from the
database and from this process's scheduler: multiprocess mode supports no such collector.
Prometheus scrapes each process as a target; queries sum over them.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator
from typing import Protocol

from prometheus_client import REGISTRY, make_wsgi_app, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core import metrics
from core.errors import ConfigError
from core.events import CredentialsBroke, EventBus, RunFinished, SyncFinished
from engine.context import Context
from engine.executor import Executor
from storage.db import Database
from storage.repositories import open_alert_counts

log = logging.getLogger(__name__)

# The WSGI app answering GET /metrics (Prometheus' text format, or OpenMetrics when asked).
wsgi_app = make_wsgi_app()


class Leader(Protocol):
    is_leader: bool


def watch(ctx: Context, scheduler: Leader | None = None) -> None:
    """Report this process's work: the engine events of `ctx` (syncs, runs, credentials errors),
    the open alerts of its database, the task queue of its executor (queue execution), and
    whether `scheduler`, if it runs one, leads."""
    _count_events(ctx.events)
    _scrape_time.database = ctx.db
    _scrape_time.executor = ctx.executor
    _scrape_time.scheduler = scheduler


def serve(port: int, host: str = "0.0.0.0") -> None:
    """`/metrics` on a port of its own, from a background thread (Socket Mode, the worker)."""
    try:
        start_http_server(port, addr=host)
    except OSError as error:
        raise ConfigError(f"--metrics-port {port}: cannot listen on {host}:{port} ({error.strerror})") from None
    log.info("metrics: http://%s:%s/metrics", host, port)


_counted_buses: weakref.WeakSet[EventBus] = weakref.WeakSet()


def _count_events(events: EventBus) -> None:
    if events in _counted_buses:
        return
    _counted_buses.add(events)
    events.subscribe(SyncFinished, _sync_finished)
    events.subscribe(RunFinished, _run_finished)
    events.subscribe(CredentialsBroke, _credentials_broke)


def _sync_finished(event: SyncFinished) -> None:
    source = metrics.label(event.source)
    metrics.ACCOUNT_SYNCS.labels(source, metrics.label(event.status)).inc()
    metrics.ACCOUNT_SYNC_SECONDS.labels(source).observe(event.seconds)
    metrics.ACCOUNTS_READ.labels(source).inc(event.accounts_read)


def _run_finished(event: RunFinished) -> None:
    source = metrics.label(event.source)
    metrics.EXTRACTION_RUNS.labels(source, metrics.label(event.status)).inc()
    metrics.EXTRACTION_RUN_SECONDS.labels(source).observe(event.seconds)
    metrics.ROWS_LOADED.labels(source).inc(event.rows)


def _credentials_broke(event: CredentialsBroke) -> None:
    metrics.CREDENTIALS_ERRORS.labels(metrics.label(event.source)).inc()


class _ScrapeTime(Collector):
    """Gauges read when Prometheus scrapes, so they are true whichever process changed them."""

    def __init__(self) -> None:
        self.database: Database | None = None
        self.executor: Executor | None = None
        self.scheduler: Leader | None = None

    def describe(self) -> list[Metric]:
        return []  # nothing is read at registration

    def collect(self) -> Iterator[Metric]:
        if self.database is not None:
            yield from self._database(self.database)
        if self.scheduler is not None:
            yield GaugeMetricFamily(
                "connbot_scheduler_leader",
                "1 while this process's scheduler is the leader (exactly one process should be)",
                value=1 if self.scheduler.is_leader else 0,
            )
        if self.executor is not None and self.executor.queues:
            yield from self._queue(self.executor)

    def _database(self, database: Database) -> Iterator[Metric]:
        up = GaugeMetricFamily("connbot_database_up", "1 when the database answered this scrape")
        try:
            with database.read() as session:
                counts = open_alert_counts(session)
        except Exception as error:  # the scrape still answers, and says the database did not
            log.warning("metrics: the database did not answer (%s)", type(error).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        alerts = GaugeMetricFamily("connbot_open_alerts", "Open alerts of every team, by kind", labels=["kind"])
        for kind, count in sorted(counts.items()):
            alerts.add_metric([metrics.label(kind)], count)
        yield up
        yield alerts

    def _queue(self, executor: Executor) -> Iterator[Metric]:
        try:
            stats = executor.stats()
        except Exception as error:  # the scrape still answers; /healthz says the queue is unreadable
            log.warning("metrics: the task queue did not answer (%s)", type(error).__name__)
            return
        if stats is None:  # runs jobs inline: no queue to describe
            return
        waiting = GaugeMetricFamily("connbot_queue_jobs", "Jobs waiting for a worker, by queue", labels=["queue"])
        oldest = GaugeMetricFamily(
            "connbot_queue_oldest_job_age_seconds", "Age of the oldest job waiting, by queue", labels=["queue"]
        )
        for queue, depth in sorted(stats.depth.items()):
            name = metrics.label(queue)
            waiting.add_metric([name], depth)
            age = stats.oldest_wait.get(queue)
            oldest.add_metric([name], age.total_seconds() if age is not None else 0.0)
        yield waiting
        yield oldest
        yield GaugeMetricFamily(
            "connbot_queue_workers_alive", "Workers with a recent heartbeat, on any queue", value=stats.workers_alive
        )


_scrape_time = _ScrapeTime()
REGISTRY.register(_scrape_time)
