"""Tracking: the callback handler, tracking blocks, the tracker and its sinks."""

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
