"""Spend tracking: prices, budgets that cannot be overrun, metrics and alerts.

Example:
    ```python
    from langchain_holysheep.spend import Budget, get_holysheep_callback

    with get_holysheep_callback(budget=Budget("1.00", window="day")) as cb:
        llm.invoke("hello")
    print(cb.report())
    ```

Names are imported on first use, so that reading the price catalogue does not
load LangChain.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_holysheep._lazy import lazy_exports

if TYPE_CHECKING:
    from langchain_holysheep.spend.budgets._budget import Budget, Reservation
    from langchain_holysheep.spend.budgets._errors import (
        BudgetError,
        BudgetExceededError,
        BudgetStoreError,
        ThresholdEvent,
        UnpricedCallError,
    )
    from langchain_holysheep.spend.budgets._estimate import estimate_prompt_tokens
    from langchain_holysheep.spend.ledger import (
        Ledger,
        LedgerError,
        PostgresLedger,
        SQLiteLedger,
        default_ledger_path,
        open_ledger,
    )
    from langchain_holysheep.spend.monitoring._alerts import (
        DEFAULT_RULES,
        Alert,
        AlertMonitor,
        AlertRule,
        WebhookHook,
        log_hook,
    )
    from langchain_holysheep.spend.pricing._book import (
        PRICING_FILE_ENV,
        PriceBook,
        UnpricedModelWarning,
        format_money,
    )
    from langchain_holysheep.spend.records import CallRecord, TokenUsage
    from langchain_holysheep.spend.report import LedgerReport, ReportRow, ledger_report
    from langchain_holysheep.spend.tracking._callback import (
        ATTEMPT_EVENT,
        BUDGET_METADATA_KEY,
        HolySheepCallbackHandler,
        allowed_routes,
    )
    from langchain_holysheep.spend.tracking._context import (
        SPEND_REPORT_ENV,
        TRACK_SPEND_ENV,
        get_holysheep_callback,
        write_global_report,
    )
    from langchain_holysheep.spend.tracking._sinks import ListSink, RecordSink
    from langchain_holysheep.spend.tracking._stats import LogHistogram
    from langchain_holysheep.spend.tracking._summary import (
        ModelSpend,
        Percentiles,
        SpendReport,
    )
    from langchain_holysheep.spend.tracking._tracker import (
        RecentStats,
        SpendTracker,
        global_tracker,
        reset_global_tracker,
    )

_EXPORTS = {
    "langchain_holysheep.spend.budgets._budget": (
        "Budget",
        "Reservation",
    ),
    "langchain_holysheep.spend.budgets._errors": (
        "BudgetError",
        "BudgetExceededError",
        "BudgetStoreError",
        "ThresholdEvent",
        "UnpricedCallError",
    ),
    "langchain_holysheep.spend.budgets._estimate": ("estimate_prompt_tokens",),
    "langchain_holysheep.spend.ledger": (
        "Ledger",
        "LedgerError",
        "PostgresLedger",
        "SQLiteLedger",
        "default_ledger_path",
        "open_ledger",
    ),
    "langchain_holysheep.spend.monitoring._alerts": (
        "DEFAULT_RULES",
        "Alert",
        "AlertMonitor",
        "AlertRule",
        "WebhookHook",
        "log_hook",
    ),
    "langchain_holysheep.spend.pricing._book": (
        "PRICING_FILE_ENV",
        "PriceBook",
        "UnpricedModelWarning",
        "format_money",
    ),
    "langchain_holysheep.spend.records": (
        "CallRecord",
        "TokenUsage",
    ),
    "langchain_holysheep.spend.report": (
        "LedgerReport",
        "ReportRow",
        "ledger_report",
    ),
    "langchain_holysheep.spend.tracking._callback": (
        "ATTEMPT_EVENT",
        "BUDGET_METADATA_KEY",
        "HolySheepCallbackHandler",
        "allowed_routes",
    ),
    "langchain_holysheep.spend.tracking._context": (
        "SPEND_REPORT_ENV",
        "TRACK_SPEND_ENV",
        "get_holysheep_callback",
        "write_global_report",
    ),
    "langchain_holysheep.spend.tracking._sinks": (
        "ListSink",
        "RecordSink",
    ),
    "langchain_holysheep.spend.tracking._stats": ("LogHistogram",),
    "langchain_holysheep.spend.tracking._summary": (
        "ModelSpend",
        "Percentiles",
        "SpendReport",
    ),
    "langchain_holysheep.spend.tracking._tracker": (
        "RecentStats",
        "SpendTracker",
        "global_tracker",
        "reset_global_tracker",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "Ledger",
    "LedgerError",
    "LedgerReport",
    "PostgresLedger",
    "ReportRow",
    "SQLiteLedger",
    "default_ledger_path",
    "ledger_report",
    "open_ledger",
    "ATTEMPT_EVENT",
    "DEFAULT_RULES",
    "Alert",
    "AlertMonitor",
    "AlertRule",
    "WebhookHook",
    "log_hook",
    "BUDGET_METADATA_KEY",
    "PRICING_FILE_ENV",
    "SPEND_REPORT_ENV",
    "TRACK_SPEND_ENV",
    "Budget",
    "BudgetError",
    "BudgetExceededError",
    "BudgetStoreError",
    "CallRecord",
    "HolySheepCallbackHandler",
    "ListSink",
    "LogHistogram",
    "ModelSpend",
    "Percentiles",
    "PriceBook",
    "RecentStats",
    "RecordSink",
    "Reservation",
    "SpendReport",
    "SpendTracker",
    "ThresholdEvent",
    "TokenUsage",
    "UnpricedCallError",
    "UnpricedModelWarning",
    "allowed_routes",
    "estimate_prompt_tokens",
    "format_money",
    "get_holysheep_callback",
    "global_tracker",
    "reset_global_tracker",
    "write_global_report",
]
