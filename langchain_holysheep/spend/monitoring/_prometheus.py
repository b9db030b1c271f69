"""Prometheus metrics for every upstream attempt (the optional `metrics` extra).

`PrometheusSink` is a `RecordSink`: give it to the spend tracker and it counts
requests, tokens, cost, retries and fallbacks, and observes latency and time to
first token. Budget gauges are read at scrape time from callables you register.

Metrics (with the default namespace "holysheep"):

| metric | type | labels |
|---|---|---|
| `holysheep_requests_total` | counter | model, outcome |
| `holysheep_tokens_total` | counter | model, kind (input, cached, output, reasoning) |
| `holysheep_cost_total` | counter | model, currency |
| `holysheep_unpriced_requests_total` | counter | model |
| `holysheep_retries_total` | counter | model |
| `holysheep_fallbacks_total` | counter | requested_model, model |
| `holysheep_latency_seconds` | histogram | model |
| `holysheep_ttft_seconds` | histogram | model |
| `holysheep_budget_spent` / `_limit` / `_remaining` | gauge | budget |

`model` is the served model. `cached` tokens are part of `input`, `reasoning`
tokens part of `output`. Costs are summed exactly as `Decimal` and converted to a
float only when scraped (Prometheus values are floats); the ledger is the exact
record. Unpriced attempts are counted, never added to the cost as $0.
"""

from __future__ import annotations

import contextlib
import decimal
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeAlias

try:
    from prometheus_client import (
        REGISTRY,
        CollectorRegistry,
        Counter,
        Histogram,
        start_http_server,
    )
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from prometheus_client.registry import Collector
except ImportError as e:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "PrometheusSink needs prometheus-client: "
        "pip install 'langchain-holysheep[metrics]'"
    ) from e

from langchain_holysheep.spend.records import CallRecord

__all__ = [
    "LATENCY_BUCKETS",
    "TTFT_BUCKETS",
    "BudgetReader",
    "PrometheusSink",
    "start_exporter",
]

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
_TOKEN_KINDS = ("input", "cached", "output", "reasoning")
_DEC = decimal.Context(prec=80)

Money: TypeAlias = Decimal | float | int
BudgetReader: TypeAlias = Callable[[], tuple[Money, Money | None]]
"""Returns `(spent, limit)` of a budget; `limit` None means no cap."""


@dataclass
class _ModelChildren:
    outcomes: dict[str, Any]
    tokens: tuple[Any, ...]
    unpriced: Any
    retries: Any
    latency: Any
    ttft: Any


class PrometheusSink:
    """A `RecordSink` that turns every `CallRecord` into Prometheus metrics.

    Thread-safe; `record()` costs a few microseconds. One sink per registry
    (the metric names would collide otherwise).

    Example:
        ```python
        from langchain_holysheep.spend.monitoring import PrometheusSink, start_exporter

        sink = PrometheusSink()  # the default prometheus_client REGISTRY
        sink.track_budget("daily", lambda: (budget.spent, budget.limit))
        start_exporter(9464)  # http://127.0.0.1:9464/metrics
        # give `sink` to the spend tracker as one of its sinks
        ```

    Args:
        registry: where the metrics are registered; defaults to
            `prometheus_client.REGISTRY` (what `start_exporter()` serves).
        namespace: the metric name prefix.
        latency_buckets: histogram buckets (seconds) for attempt latency.
        ttft_buckets: histogram buckets (seconds) for time to first token.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        namespace: str = "holysheep",
        *,
        latency_buckets: Sequence[float] = LATENCY_BUCKETS,
        ttft_buckets: Sequence[float] = TTFT_BUCKETS,
    ) -> None:
        self.registry = REGISTRY if registry is None else registry
        self.namespace = namespace
        self._lock = threading.Lock()
        self._cost: dict[tuple[str, str], Decimal] = {}
        self._budgets: dict[str, BudgetReader] = {}
        self._children: dict[str, _ModelChildren] = {}
        self._collectors: list[Any] = []
        try:
            self._register(tuple(latency_buckets), tuple(ttft_buckets))
        except ValueError as e:  # duplicated timeseries
            self.close()
            raise ValueError(
                f"{e}. Another PrometheusSink (namespace {namespace!r}) is already "
                "registered in this registry: reuse it, close() it first, or pass "
                "registry=CollectorRegistry() / another namespace."
            ) from e

    def _register(
        self, latency_buckets: tuple[float, ...], ttft_buckets: tuple[float, ...]
    ) -> None:
        """Create and register every metric (`ValueError` if a name is taken)."""
        self._requests = self._counter(
            "requests",
            "Upstream attempts by served model and outcome.",
            "model",
            "outcome",
        )
        self._tokens = self._counter(
            "tokens",
            "Billed tokens (cached is part of input, reasoning part of output).",
            "model",
            "kind",
        )
        self._unpriced = self._counter(
            "unpriced_requests", "Attempts on a model with no known price.", "model"
        )
        self._retries = self._counter(
            "retries", "Attempts that retried the same model.", "model"
        )
        self._fallbacks = self._counter(
            "fallbacks",
            "Attempts on a fallback model (failovers).",
            "requested_model",
            "model",
        )
        self._latency = self._add(
            Histogram(
                "latency_seconds", "Attempt latency.", ["model"],
                namespace=self.namespace, buckets=latency_buckets, registry=None,
            )
        )  # fmt: skip
        self._ttft = self._add(
            Histogram(
                "ttft_seconds", "Time to the first streamed token.", ["model"],
                namespace=self.namespace, buckets=ttft_buckets, registry=None,
            )
        )  # fmt: skip
        self._add(_SpendCollector(self))

    def _counter(self, name: str, documentation: str, *labels: str) -> Any:
        return self._add(
            Counter(
                name, documentation, list(labels), namespace=self.namespace,
                registry=None,
            )
        )  # fmt: skip

    def _add(self, collector: Any) -> Any:
        self.registry.register(collector)
        self._collectors.append(collector)
        return collector

    def record(self, rec: CallRecord) -> None:
        """Count one attempt."""
        model = rec.served_model
        m = self._children.get(model) or self._add_model(model)
        out = m.outcomes.get(rec.outcome)
        if out is None:
            out = m.outcomes[rec.outcome] = self._requests.labels(model, rec.outcome)
        out.inc()
        usage = rec.usage
        tin, tcached, tout, treasoning = m.tokens
        # adding 0 changes nothing: every child of the model exists already
        if usage.input > 0:
            tin.inc(usage.input)
        if usage.cached > 0:
            tcached.inc(usage.cached)
        if usage.output > 0:
            tout.inc(usage.output)
        if usage.reasoning > 0:
            treasoning.inc(usage.reasoning)
        if rec.cost is None or not rec.cost.is_finite():
            m.unpriced.inc()
        else:
            key = (model, rec.currency)
            with self._lock:
                self._cost[key] = _DEC.add(self._cost.get(key, Decimal(0)), rec.cost)
        if rec.is_retry:
            m.retries.inc()
        if rec.is_fallback:
            self._fallbacks.labels(rec.requested_model, model).inc()
        if rec.latency_ms is not None:
            m.latency.observe(rec.latency_ms / 1000.0)
        if rec.ttft_ms is not None:
            m.ttft.observe(rec.ttft_ms / 1000.0)

    def _add_model(self, model: str) -> _ModelChildren:
        """The labelled children of one served model, looked up once."""
        children = _ModelChildren(
            outcomes={},
            tokens=tuple(self._tokens.labels(model, k) for k in _TOKEN_KINDS),
            unpriced=self._unpriced.labels(model),
            retries=self._retries.labels(model),
            latency=self._latency.labels(model),
            ttft=self._ttft.labels(model),
        )
        return self._children.setdefault(model, children)

    def record_many(self, recs: Iterable[CallRecord]) -> None:
        """Count several attempts."""
        for rec in recs:
            self.record(rec)

    def cost(self, model: str, currency: str = "USD") -> Decimal:
        """The exact cost counted so far for a served model."""
        with self._lock:
            return self._cost.get((model, currency), Decimal(0))

    def track_budget(self, name: str, read: BudgetReader) -> None:
        """Publish a budget as gauges, read at each scrape.

        Args:
            name: the `budget` label value.
            read: returns `(spent, limit)`; `limit` None publishes no limit or
                remaining gauge. An exception skips the budget for that scrape.
        """
        with self._lock:
            self._budgets[name] = read

    def untrack_budget(self, name: str) -> None:
        """Stop publishing a budget."""
        with self._lock:
            self._budgets.pop(name, None)

    def close(self) -> None:
        """Unregister this sink's metrics from its registry."""
        self._children.clear()
        while self._collectors:
            collector = self._collectors.pop()
            with contextlib.suppress(KeyError):
                self.registry.unregister(collector)

    def _snapshot(self) -> tuple[dict[tuple[str, str], Decimal], dict[str, Any]]:
        with self._lock:
            return dict(self._cost), dict(self._budgets)


class _SpendCollector(Collector):
    """Exact cost sums and budget gauges, computed at scrape time."""

    def __init__(self, sink: PrometheusSink) -> None:
        self._sink = sink
        self._ns = sink.namespace

    def describe(self) -> list[Any]:
        return list(self._families())

    def collect(self) -> Iterable[Any]:
        costs, budgets = self._sink._snapshot()
        return self._families(costs, budgets)

    def _families(
        self,
        costs: dict[tuple[str, str], Decimal] | None = None,
        budgets: dict[str, BudgetReader] | None = None,
    ) -> list[Any]:
        ns = self._ns
        cost = CounterMetricFamily(
            f"{ns}_cost", "Exact cost of priced attempts.", labels=["model", "currency"]
        )
        for (model, currency), amount in sorted((costs or {}).items()):
            cost.add_metric([model, currency], float(amount))
        spent = GaugeMetricFamily(
            f"{ns}_budget_spent", "Budget spent.", labels=["budget"]
        )
        limit = GaugeMetricFamily(
            f"{ns}_budget_limit", "Budget cap.", labels=["budget"]
        )
        left = GaugeMetricFamily(
            f"{ns}_budget_remaining", "Budget left before the cap.", labels=["budget"]
        )
        for name, read in sorted((budgets or {}).items()):
            try:
                used, cap = read()
            except Exception:
                logger.exception("Reading budget %r for Prometheus failed", name)
                continue
            spent.add_metric([name], float(used))
            if cap is not None:
                limit.add_metric([name], float(cap))
                left.add_metric([name], float(Decimal(str(cap)) - Decimal(str(used))))
        return [cost, spent, limit, left]


def start_exporter(
    port: int = 9464,
    addr: str = "127.0.0.1",
    registry: CollectorRegistry | None = None,
) -> Any:
    """Serve `registry` (default: the global one) at `http://addr:port/metrics`.

    Listens on localhost by default; pass `addr="0.0.0.0"` to be scraped from
    other machines. Returns what `prometheus_client.start_http_server` returns
    (the server and its daemon thread).
    """
    return start_http_server(
        port, addr=addr, registry=REGISTRY if registry is None else registry
    )
