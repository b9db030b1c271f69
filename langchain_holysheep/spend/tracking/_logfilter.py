"""Silence LangChain's duplicate log line when a budget refuses a call.

A budget refuses a call by raising from `on_chat_model_start`; LangChain logs every
callback error ("Error in HolySheepCallbackHandler.on_chat_model_start callback")
before re-raising it to the caller. The caller gets the `BudgetExceededError` with
the full explanation, so that log line is noise; other callback errors still log.
"""

from __future__ import annotations

import logging


class _BudgetRefusalFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        text = " ".join(str(a) for a in args) or str(record.msg)
        return not (
            "HolySheep" in text
            and any(
                name in text
                for name in (
                    "BudgetExceededError",
                    "UnpricedCallError",
                    "BudgetStoreError",
                )
            )
        )


_FILTER = _BudgetRefusalFilter()
_installed = False


def quiet_budget_refusals() -> None:
    """Install the filter on LangChain's callback-manager logger (once)."""
    global _installed
    if _installed:
        return
    logger = logging.getLogger("langchain_core.callbacks.manager")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    _installed = True
