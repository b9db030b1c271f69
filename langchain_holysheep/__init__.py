"""LangChain chat models for the HolySheep AI gateway: resilient and cost-aware."""

from importlib import metadata

from langchain_holysheep._gateway_model import HolySheepGateway
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

try:
    __version__ = metadata.version("langchain-holysheep")
except metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "AllRoutesFailedError",
    "AttemptTimeoutError",
    "BudgetError",
    "CircuitOpenError",
    "DeadlineExceededError",
    "FirstTokenTimeoutError",
    "HolySheepGateway",
    "InvalidAPIKeyError",
    "InvalidHeaderError",
    "LedgerError",
    "RateLimitTimeoutError",
    "ResilienceError",
    "RetriesExhaustedError",
    "StreamFailureError",
    "StreamStallError",
    "UnpricedCallError",
    "BreakerConfig",
    "ErrorPolicy",
    "RateLimit",
    "RetryPolicy",
    "Route",
    "StreamInterruptedError",
    "DEFAULT_BASE_URL",
    "Budget",
    "BudgetExceededError",
    "BudgetStoreError",
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
