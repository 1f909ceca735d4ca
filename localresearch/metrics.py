"""The daemon's Prometheus metrics (prometheus-client), in one registry per runtime so tests and
several daemons in one process never share counters."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

T = TypeVar("T")

CONTENT_TYPE = CONTENT_TYPE_LATEST
_PREFIX = "localresearch"


class Metrics:
    """Every metric the daemon exports; the core and the server update them as things happen."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.queries = Counter(
            f"{_PREFIX}_queries", "Queries processed, by mode and outcome",
            ["mode", "status"], registry=r,
        )  # fmt: skip
        self.queries_in_flight = Gauge(
            f"{_PREFIX}_queries_in_flight", "Queries running now", registry=r
        )
        self.query_duration = Histogram(
            f"{_PREFIX}_query_duration_seconds", "Time from a query's start to its result",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600), registry=r,
        )  # fmt: skip
        self.tokens = Counter(
            f"{_PREFIX}_tokens", "Model tokens used by queries, by provider and direction",
            ["provider", "direction"], registry=r,
        )  # fmt: skip
        self.jobs = Gauge(
            f"{_PREFIX}_research_jobs", "Research jobs in the store, by state", ["state"],
            registry=r,
        )  # fmt: skip
        self.memory_search = Histogram(
            f"{_PREFIX}_memory_search_seconds", "Latency of memory index searches",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )  # fmt: skip
        self.http_requests = Counter(
            f"{_PREFIX}_http_requests", "HTTP requests answered, by route family and status",
            ["family", "status"], registry=r,
        )  # fmt: skip
        self.open_streams = Gauge(
            f"{_PREFIX}_open_streams", "Open streaming responses, by kind (sse, websocket, ndjson)",
            ["kind"], registry=r,
        )  # fmt: skip
        self.rate_limited = Counter(
            f"{_PREFIX}_rate_limit_refusals", "Requests refused by a rate limit, by route family",
            ["family"], registry=r,
        )  # fmt: skip
        self.webhooks = Counter(
            f"{_PREFIX}_webhook_deliveries", "Webhook deliveries, by outcome", ["outcome"],
            registry=r,
        )  # fmt: skip
        for kind in ("sse", "websocket", "ndjson"):
            self.open_streams.labels(kind)
        self.queries_in_flight.set(0)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)

    def timed_search(self, search: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        """`search` that records its latency in memory_search_seconds."""
        histogram = self.memory_search

        async def timed(*args: Any, **kwargs: Any) -> T:
            start = time.perf_counter()
            try:
                return await search(*args, **kwargs)
            finally:
                histogram.observe(time.perf_counter() - start)

        return timed
