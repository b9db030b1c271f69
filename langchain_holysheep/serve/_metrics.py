"""Prometheus metrics of the proxy: its own requests, and every attempt's spend.

One `CollectorRegistry` per app (several apps in one process never collide).
Attempts and spend come from the package's `PrometheusSink` (per served model:
attempts by outcome, tokens, cost, latency, time to first token); the proxy
adds its requests by group and status, their duration, and the requests in
flight. Labels carry group and model names only: never a key, nor a key's name.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from langchain_holysheep.spend.monitoring._prometheus import PrometheusSink

__all__ = ["CONTENT_TYPE_LATEST", "ProxyMetrics"]

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class ProxyMetrics:
    """The proxy's metrics and its spend sink, in one registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.sink = PrometheusSink(self.registry)
        self.requests = Counter(
            "holysheep_proxy_requests",
            "Proxied requests by model group and HTTP status.",
            ["group", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "holysheep_proxy_request_seconds",
            "Time to answer a proxied request (streams: to their end).",
            ["group"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "holysheep_proxy_in_flight",
            "Proxied requests being served.",
            registry=self.registry,
        )
        # counted in a plain int (the event loop's thread only), read on render
        self._in_flight = 0
        self.in_flight.set_function(lambda: self._in_flight)
        # labelled children, looked up once per label set (groups and statuses
        # are few; a child stays valid as long as its metric lives)
        self._counted: dict[tuple[str, int], Any] = {}
        self._timed: dict[str, Any] = {}

    def started(self) -> None:
        """One more request in flight (until its `done`)."""
        self._in_flight += 1

    def done(self, group: str, status: int, seconds: float) -> None:
        """Count one finished request (no longer in flight)."""
        self._in_flight -= 1
        counted = self._counted.get((group, status))
        if counted is None:
            counted = self.requests.labels(group, str(status))
            self._counted[(group, status)] = counted
        timed = self._timed.get(group)
        if timed is None:
            timed = self._timed[group] = self.duration.labels(group)
        counted.inc()
        timed.observe(seconds)

    def render(self) -> bytes:
        """The text exposition of every metric."""
        return generate_latest(self.registry)
