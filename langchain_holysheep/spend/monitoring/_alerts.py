"""Alert rules over a `SpendTracker`'s recent activity, calling user hooks.

The default rules are the thresholds of the users' migration playbooks: success
rate < 99 %, p99 latency > 500 ms, cost > $50/hour, error rate > 1 %, failover
rate > 10 %, mean latency > 1,000 ms. Rates and cost cover the tracker's recent
window (one hour), latencies the last 5-10 minutes. A rule fires once per
breach and re-arms when the metric recovers.

Example:
    ```python
    monitor = AlertMonitor(tracker, hooks=[log_hook(), WebhookHook(url)])
    tracker.add_sink(monitor)   # evaluates at most once a second as calls end
    ```
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from langchain_holysheep.spend.records import CallRecord
from langchain_holysheep.spend.tracking._recent import RecentStats
from langchain_holysheep.spend.tracking._tracker import SpendTracker

__all__ = [
    "DEFAULT_RULES",
    "Alert",
    "AlertHook",
    "AlertMonitor",
    "AlertRule",
    "WebhookHook",
    "log_hook",
]

_logger = logging.getLogger(__name__)

Metric = Literal[
    "success_rate",
    "error_rate",
    "failover_rate",
    "cost_per_hour",
    "p95_latency_ms",
    "p99_latency_ms",
    "mean_latency_ms",
]


@dataclass(frozen=True)
class AlertRule:
    """One alert condition: `metric op threshold`.

    Args:
        name: a stable identifier (used in hooks and webhooks).
        metric: what to compare (see `Metric`).
        op: `"<"` or `">"`.
        threshold: the limit (a fraction for rates, ms for latency, USD/hour
            for cost).
        min_calls: do not judge on fewer recent calls (avoids alerts on noise).
    """

    name: str
    metric: Metric
    op: Literal["<", ">"]
    threshold: float | Decimal
    min_calls: int = 20

    def describe(self) -> str:
        """A readable form, e.g. `success_rate < 0.99`."""
        return f"{self.metric} {self.op} {self.threshold}"


DEFAULT_RULES: tuple[AlertRule, ...] = (
    AlertRule("success_rate_low", "success_rate", "<", 0.99),
    AlertRule("p99_latency_high", "p99_latency_ms", ">", 500.0),
    AlertRule("cost_per_hour_high", "cost_per_hour", ">", Decimal(50), min_calls=0),
    AlertRule("error_rate_high", "error_rate", ">", 0.01),
    AlertRule("failover_rate_high", "failover_rate", ">", 0.10),
    AlertRule("latency_high", "mean_latency_ms", ">", 1000.0),
)


@dataclass(frozen=True)
class Alert:
    """A rule that started (`state="firing"`) or stopped (`"resolved"`) breaching."""

    rule: AlertRule
    state: Literal["firing", "resolved"]
    value: float | Decimal
    at: float = field(default_factory=time.time)

    @property
    def message(self) -> str:
        """A one-line summary."""
        verb = "breached" if self.state == "firing" else "recovered"
        return (
            f"HolySheep alert {self.rule.name} {verb}: {self.rule.metric} = "
            f"{_fmt(self.value)} (rule: {self.rule.describe()})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (money as a string)."""
        return {
            "alert": self.rule.name,
            "state": self.state,
            "metric": self.rule.metric,
            "op": self.rule.op,
            "threshold": _json(self.rule.threshold),
            "value": _json(self.value),
            "at": self.at,
            "message": self.message,
        }


AlertHook = Callable[[Alert], Any]


def _fmt(value: float | Decimal) -> str:
    return str(value) if isinstance(value, Decimal) else f"{value:.4g}"


def _json(value: float | Decimal) -> float | str:
    return str(value) if isinstance(value, Decimal) else value


def _metric(stats: RecentStats, metric: str) -> float | Decimal | None:
    if metric == "cost_per_hour":
        return stats.cost_per_hour
    if metric in ("success_rate", "error_rate", "failover_rate"):
        value: float | None = getattr(stats, metric)
        return value
    latency = stats.latency_ms
    if metric == "p95_latency_ms":
        return latency.p95
    if metric == "p99_latency_ms":
        return latency.p99
    if metric == "mean_latency_ms":
        return latency.mean
    raise ValueError(f"unknown alert metric {metric!r}")


def log_hook(
    logger: logging.Logger | None = None, level: int = logging.WARNING
) -> AlertHook:
    """A hook that logs each alert (resolutions at INFO)."""
    target = logger or logging.getLogger("langchain_holysheep.alerts")

    def hook(alert: Alert) -> None:
        target.log(level if alert.state == "firing" else logging.INFO, alert.message)

    return hook


class WebhookHook:
    """POSTs each alert as JSON to a URL from a background thread.

    Uses the standard library only (`urllib`); never blocks the caller and
    never raises (failures are logged).

    Args:
        url: the endpoint (Slack-compatible payloads: a `text` field is included).
        timeout: seconds for the whole request.
        headers: extra HTTP headers (e.g. an authorization token).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 3.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL must be http(s), got {url!r}")
        self.url = url
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json", **(headers or {})}

    def __call__(self, alert: Alert) -> threading.Thread:
        """Send `alert` in a daemon thread (returned, for tests to join)."""
        thread = threading.Thread(
            target=self._post, args=(alert,), name="holysheep-webhook", daemon=True
        )
        thread.start()
        return thread

    def _post(self, alert: Alert) -> None:
        import urllib.request  # lazily: keeps `import langchain_holysheep` light

        body = json.dumps({**alert.to_dict(), "text": alert.message}).encode()
        request = urllib.request.Request(
            self.url, data=body, headers=self.headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except Exception as exc:
            _logger.warning("HolySheep alert webhook failed: %s", exc)


class AlertMonitor:
    """Evaluates alert rules against a tracker and calls hooks on changes.

    It is also a `RecordSink`: registered on the tracker, it re-evaluates as
    calls end, at most once per `min_interval` seconds.

    Args:
        tracker: the tracker to watch.
        rules: the rules (default: `DEFAULT_RULES`).
        hooks: called with each `Alert` (default: `log_hook()`).
        notify_resolved: also call hooks when a breach ends.
        min_interval: minimum seconds between evaluations triggered by records.
        clock: monotonic clock (injectable for tests).
    """

    def __init__(
        self,
        tracker: SpendTracker,
        rules: Iterable[AlertRule] = DEFAULT_RULES,
        hooks: Iterable[AlertHook] | None = None,
        *,
        notify_resolved: bool = False,
        min_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tracker = tracker
        self.rules = tuple(rules)
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError("alert rule names must be unique")
        for rule in self.rules:
            if rule.op not in ("<", ">"):
                raise ValueError(f"alert rule {rule.name!r}: op must be '<' or '>'")
        self.hooks = list(hooks) if hooks is not None else [log_hook()]
        self.notify_resolved = notify_resolved
        self.min_interval = min_interval
        self.clock = clock
        self._lock = threading.Lock()
        self._firing: set[str] = set()
        self._last = -float("inf")

    @property
    def firing(self) -> set[str]:
        """Names of the rules currently in breach."""
        with self._lock:
            return set(self._firing)

    def evaluate(self) -> list[Alert]:
        """Check every rule now; call hooks for changes; return the alerts sent."""
        stats = self.tracker.recent()
        changes: list[Alert] = []
        with self._lock:
            self._last = self.clock()
            for rule in self.rules:
                value = _metric(stats, rule.metric)
                if value is None or stats.calls < rule.min_calls:
                    continue
                limit = rule.threshold
                breached = value < limit if rule.op == "<" else value > limit
                if breached and rule.name not in self._firing:
                    self._firing.add(rule.name)
                    changes.append(Alert(rule, "firing", value))
                elif not breached and rule.name in self._firing:
                    self._firing.discard(rule.name)
                    if self.notify_resolved:
                        changes.append(Alert(rule, "resolved", value))
        for alert in changes:
            for hook in self.hooks:
                try:
                    hook(alert)
                except Exception:
                    _logger.exception("HolySheep alert hook %r failed", hook)
        return changes

    def record(self, rec: CallRecord) -> None:
        """`RecordSink`: re-evaluate if `min_interval` has passed."""
        if self.clock() - self._last >= self.min_interval:
            self.evaluate()
