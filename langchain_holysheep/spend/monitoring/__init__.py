"""Monitoring: alert rules and hooks, Prometheus metrics.

The Prometheus names (`PrometheusSink`, `start_exporter`, ...) need the
`metrics` extra (`pip install 'langchain-holysheep[metrics]'`); they are
imported on first use, so the rest of the package works without it.
"""

from typing import Any

from langchain_holysheep.spend.monitoring._alerts import (
    DEFAULT_RULES,
    Alert,
    AlertHook,
    AlertMonitor,
    AlertRule,
    WebhookHook,
    log_hook,
)

_PROMETHEUS = frozenset(
    {
        "LATENCY_BUCKETS",
        "TTFT_BUCKETS",
        "BudgetReader",
        "PrometheusSink",
        "start_exporter",
    }
)


def __getattr__(name: str) -> Any:
    if name in _PROMETHEUS:
        from langchain_holysheep.spend.monitoring import _prometheus

        return getattr(_prometheus, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Alert",
    "AlertHook",
    "AlertMonitor",
    "AlertRule",
    "BudgetReader",
    "DEFAULT_RULES",
    "LATENCY_BUCKETS",
    "PrometheusSink",
    "TTFT_BUCKETS",
    "WebhookHook",
    "log_hook",
    "start_exporter",
]
