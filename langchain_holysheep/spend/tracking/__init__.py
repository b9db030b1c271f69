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

__getattr__, __dir__, __all__ = lazy_exports(__name__)
