"""Monitoring: alert rules and hooks, Prometheus metrics."""

from langchain_holysheep.spend.monitoring._alerts import (
    DEFAULT_RULES,
    Alert,
    AlertHook,
    AlertMonitor,
    AlertRule,
    WebhookHook,
    log_hook,
)
from langchain_holysheep.spend.monitoring._prometheus import (
    LATENCY_BUCKETS,
    TTFT_BUCKETS,
    BudgetReader,
    PrometheusSink,
    start_exporter,
)

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
