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
    from langchain_holysheep.spend.tracking import (
        ATTEMPT_EVENT,
        BUDGET_METADATA_KEY,
        SPEND_REPORT_ENV,
        TRACK_SPEND_ENV,
        HolySheepCallbackHandler,
        ListSink,
        LogHistogram,
        ModelSpend,
        Percentiles,
        RecentStats,
        RecordSink,
        SpendReport,
        SpendTracker,
        allowed_routes,
        get_holysheep_callback,
        global_tracker,
        reset_global_tracker,
        write_global_report,
    )

__getattr__, __dir__, __all__ = lazy_exports(__name__)
