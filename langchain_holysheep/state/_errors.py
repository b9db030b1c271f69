"""The errors a state store raises."""

from __future__ import annotations

from langchain_holysheep.errors import HolySheepError

__all__ = ["StateStoreError", "StateStoreUnavailableError"]


class StateStoreError(HolySheepError):
    """Base class of the state store's errors."""


class StateStoreUnavailableError(StateStoreError):
    """The shared state store cannot be reached (or did not answer in time).

    Budgets refuse calls with this error by default while the store is down
    (they cannot prove that a call fits the cap), so nothing is sent. The store
    is tried again every `retry_interval` seconds and the error stops by itself
    once it answers.

    Attributes:
        store: a description of the store (its URL, without any password).
        domain: what needed the store: `"budgets"`, `"breakers"` or
            `"rate_limits"` (empty when raised by the store itself).
    """

    holysheep_action = "stop"  # the router never retries or falls back on it

    def __init__(
        self, store: str, reason: str, *, domain: str = "", hint: str = ""
    ) -> None:
        self.store = store
        self.domain = domain
        self.reason = reason = reason.rstrip(". ")
        self.hint = hint or "Check that the store is running and reachable"
        what = f" for {domain}" if domain else ""
        super().__init__(
            f"The state store {store} is unavailable{what}: {reason}. "
            f"{self.hint}; it is tried again by itself. To let budgets use "
            "per-process caps meanwhile, open the store with "
            "on_store_error={'budgets': 'local'}."
        )
