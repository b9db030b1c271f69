"""LangChain chat models for the HolySheep AI gateway: resilient and cost-aware.

The names below are imported on first use (`from langchain_holysheep import
ChatHolySheep` imports the chat-model stack then), so importing the package,
or a light part of it such as the command line, does not load LangChain.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_holysheep import _spend_hook
from langchain_holysheep._lazy import lazy_exports

if TYPE_CHECKING:
    from langchain_holysheep._gateway_env import DEFAULT_BASE_URL
    from langchain_holysheep._gateway_model import HolySheepGateway
    from langchain_holysheep.catalogue import (
        Catalogue,
        ModelInfo,
        ModelPrice,
        default_catalogue,
    )
    from langchain_holysheep.chat_models import ChatHolySheep
    from langchain_holysheep.errors import (
        ConfigurationError,
        GatewayAuthenticationError,
        HolySheepError,
        InvalidAPIKeyError,
        InvalidHeaderError,
        MissingAPIKeyError,
        ModelNotServedError,
        PricingError,
        ResponseFormatError,
        UnknownModelError,
    )
    from langchain_holysheep.resilience import (
        AllRoutesFailedError,
        AttemptTimeoutError,
        BreakerConfig,
        CircuitOpenError,
        DeadlineExceededError,
        ErrorPolicy,
        FirstTokenTimeoutError,
        RateLimit,
        RateLimitTimeoutError,
        ResilienceError,
        RetriesExhaustedError,
        RetryPolicy,
        Route,
        StreamFailureError,
        StreamInterruptedError,
        StreamStallError,
    )
    from langchain_holysheep.spend import (
        Budget,
        BudgetError,
        BudgetExceededError,
        BudgetStoreError,
        HolySheepCallbackHandler,
        LedgerError,
        PriceBook,
        SpendReport,
        SQLiteLedger,
        UnpricedCallError,
        get_holysheep_callback,
        ledger_report,
    )

_getattr, _dir, _all = lazy_exports(__name__)


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib import metadata

        try:
            version = metadata.version("langchain-holysheep")
        except metadata.PackageNotFoundError:  # running from a source tree
            version = "0.0.0"
        globals()["__version__"] = version
        return version
    return _getattr(name)


def __dir__() -> list[str]:
    return sorted({*_dir(), "__version__"})


# LangChain's configure hooks of the spend tracker (`HOLYSHEEP_TRACK_SPEND`,
# tracking blocks) are in place as soon as LangChain is imported.
_spend_hook.install()

__all__ = [*_all, "__version__"]
