"""Tracking: the callback handler, tracking blocks, the tracker and its sinks.

Names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_holysheep._lazy import lazy_exports

if TYPE_CHECKING:
    from langchain_holysheep.spend.tracking._attempts import (
        RunState,
        build_records,
    )
    from langchain_holysheep.spend.tracking._callback import (
        ATTEMPT_EVENT,
        BUDGET_METADATA_KEY,
        HolySheepCallbackHandler,
        allowed_routes,
    )
    from langchain_holysheep.spend.tracking._context import (
        SPEND_REPORT_ENV,
        TRACK_SPEND_ENV,
        EnvSpendHandler,
        get_holysheep_callback,
        write_global_report,
    )
    from langchain_holysheep.spend.tracking._extract import (
        Outcome,
        attempt_failure,
        error_label,
        final_message,
        max_tokens_of,
        requested_model_of,
        usage_metadata_of,
        usage_of,
    )
    from langchain_holysheep.spend.tracking._openai_compat import (
        OpenAICallbackCompat,
        openai_style_summary,
    )
    from langchain_holysheep.spend.tracking._sinks import (
        ListSink,
        RecordSink,
        close_sink,
    )
    from langchain_holysheep.spend.tracking._stats import (
        LogHistogram,
        RecentHistogram,
        SlidingCounter,
    )
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
    "langchain_holysheep.spend.tracking._attempts": (
        "RunState",
        "build_records",
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
        "EnvSpendHandler",
        "get_holysheep_callback",
        "write_global_report",
    ),
    "langchain_holysheep.spend.tracking._extract": (
        "Outcome",
        "attempt_failure",
        "error_label",
        "final_message",
        "max_tokens_of",
        "requested_model_of",
        "usage_metadata_of",
        "usage_of",
    ),
    "langchain_holysheep.spend.tracking._openai_compat": (
        "OpenAICallbackCompat",
        "openai_style_summary",
    ),
    "langchain_holysheep.spend.tracking._sinks": (
        "ListSink",
        "RecordSink",
        "close_sink",
    ),
    "langchain_holysheep.spend.tracking._stats": (
        "LogHistogram",
        "RecentHistogram",
        "SlidingCounter",
    ),
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
    "ATTEMPT_EVENT",
    "BUDGET_METADATA_KEY",
    "EnvSpendHandler",
    "HolySheepCallbackHandler",
    "ListSink",
    "LogHistogram",
    "ModelSpend",
    "OpenAICallbackCompat",
    "Outcome",
    "Percentiles",
    "RecentHistogram",
    "RecentStats",
    "RecordSink",
    "RunState",
    "SPEND_REPORT_ENV",
    "SlidingCounter",
    "SpendReport",
    "SpendTracker",
    "TRACK_SPEND_ENV",
    "allowed_routes",
    "attempt_failure",
    "build_records",
    "close_sink",
    "error_label",
    "final_message",
    "get_holysheep_callback",
    "global_tracker",
    "max_tokens_of",
    "openai_style_summary",
    "requested_model_of",
    "reset_global_tracker",
    "usage_metadata_of",
    "usage_of",
    "write_global_report",
]
