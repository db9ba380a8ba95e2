"""The service's own metrics in Prometheus exposition format: requests, latency, SSE clients,
and, read from the store at scrape time, the ingest rate, ingest lag and dead letters."""

from __future__ import annotations

import logging
from typing import Callable, Optional

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)


class _StoreCollector:
    """Ingest figures from ClickHouse, computed when scraped (a failed read exports nothing)."""

    def __init__(self, store_fn: Callable[[], Optional[object]]) -> None:
        self.store_fn = store_fn

    def collect(self):
        store = self.store_fn()
        if store is None:
            return
        try:
            (n, lag, newest), = store.query(
                "SELECT count(), avg(dateDiff('millisecond', ts, ingest_ts)) / 1000, "
                "toUnixTimestamp64Milli(max(ingest_ts)) / 1000 FROM {db}.signals "
                "WHERE ingest_ts >= now64(3) - INTERVAL 60 SECOND")
            dead = store.query("SELECT count() FROM {db}.dead_letters")[0][0]
        except Exception as exc:  # noqa: BLE001 - metrics must not fail the scrape
            log.warning("metrics: store read failed: %s", exc)
            return
        yield GaugeMetricFamily("opscopilot_ingest_signals_per_second",
                                "Signals stored per second over the last minute", value=n / 60.0)
        yield GaugeMetricFamily("opscopilot_ingest_lag_seconds",
                                "Mean event-time to ingest-time lag of the last minute's signals",
                                value=float(lag) if n else 0.0)
        yield GaugeMetricFamily("opscopilot_dead_letters", "Dead-lettered records stored", value=float(dead))
        if n:
            yield GaugeMetricFamily("opscopilot_ingest_last_seconds", "Ingest time of the newest signal (epoch s)",
                                    value=float(newest))


class ApiMetrics:
    def __init__(self, store_fn: Callable[[], Optional[object]] = lambda: None) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("opscopilot_api_requests", "API requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("opscopilot_api_request_seconds", "API request latency", ["route"],
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
                                 registry=self.registry)
        self.sse_clients = Gauge("opscopilot_sse_clients", "Connected SSE clients", registry=self.registry)
        self.sse_dropped = Counter("opscopilot_sse_dropped_clients", "SSE clients dropped as too slow",
                                   registry=self.registry)
        self.sse_events = Counter("opscopilot_sse_events", "Timeline events sent over SSE", registry=self.registry)
        self.rate_limited = Counter("opscopilot_api_rate_limited", "Requests refused by the rate limit",
                                    registry=self.registry)
        self.registry.register(_StoreCollector(store_fn))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
