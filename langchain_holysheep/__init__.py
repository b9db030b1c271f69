"""LangChain chat models for the HolySheep AI gateway: resilient and cost-aware."""

from importlib import metadata

from langchain_holysheep.catalogue import (
    Catalogue,
    ModelInfo,
    ModelPrice,
    default_catalogue,
)
from langchain_holysheep.chat_models import DEFAULT_BASE_URL, ChatHolySheep
from langchain_holysheep.errors import (
    ConfigurationError,
    GatewayAuthenticationError,
    HolySheepError,
    MissingAPIKeyError,
    ModelNotServedError,
    PricingError,
    ResponseFormatError,
    UnknownModelError,
)
from langchain_holysheep.resilience import (
    AllRoutesFailedError,
    BreakerConfig,
    ErrorPolicy,
    RateLimit,
    RetryPolicy,
    Route,
    StreamInterruptedError,
)
from langchain_holysheep.spend import (
    Budget,
    BudgetExceededError,
    HolySheepCallbackHandler,
    PriceBook,
    SpendReport,
    SQLiteLedger,
    get_holysheep_callback,
    ledger_report,
)

try:
    __version__ = metadata.version("langchain-holysheep")
except metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "AllRoutesFailedError",
    "BreakerConfig",
    "ErrorPolicy",
    "RateLimit",
    "RetryPolicy",
    "Route",
    "StreamInterruptedError",
    "DEFAULT_BASE_URL",
    "Budget",
    "BudgetExceededError",
    "HolySheepCallbackHandler",
    "PriceBook",
    "SQLiteLedger",
    "SpendReport",
    "ledger_report",
    "get_holysheep_callback",
    "Catalogue",
    "ChatHolySheep",
    "ConfigurationError",
    "GatewayAuthenticationError",
    "HolySheepError",
    "MissingAPIKeyError",
    "ModelInfo",
    "ModelNotServedError",
    "ModelPrice",
    "PricingError",
    "ResponseFormatError",
    "UnknownModelError",
    "__version__",
    "default_catalogue",
]
