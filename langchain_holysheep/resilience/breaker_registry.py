"""`BreakerRegistry`: the circuit breakers of a process, one per (base URL, model).

Besides one breaker per model, each base URL has a gateway-wide breaker keyed
`(base_url, "*")`. It counts *gateway-level* signals: connection errors
(refused, reset, DNS, connect timeouts), and failures while two or more distinct
models are unhealthy (open, or failing at least half of their recent calls:
"every model is failing"; a busy model with a few per cent of errors is healthy,
so independent errors never add up to an outage); any success
on that base URL counts for it. It also opens when every known model breaker of
the base URL is open. While it is open the router skips every route on that base
URL at once and goes straight to the non-gateway fallbacks.

A process-wide registry is returned by `default_registry()`; tests and
applications can inject their own (`Router(breakers=BreakerRegistry(...))`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from langchain_holysheep.resilience.breaker import (
    BreakerConfig,
    BreakerKey,
    BreakerSnapshot,
    BreakerState,
    CircuitBreaker,
    Listener,
    Transition,
)
from langchain_holysheep.resilience.deadline import Clock

__all__ = [
    "DEFAULT_GATEWAY_CONFIG",
    "GATEWAY",
    "BreakerRegistry",
    "default_registry",
    "gateway_key",
]

logger = logging.getLogger(__name__)

GATEWAY = "*"
"""The model part of a gateway-wide breaker key."""

DEFAULT_GATEWAY_CONFIG = BreakerConfig(
    failure_threshold=3, minimum_requests=3, window=30.0, cooldown=30.0
)
"""Gateway breaker: 3 gateway-level failures in 30 s open it for 30 s."""


def gateway_key(base_url: str) -> BreakerKey:
    """The key of the gateway-wide breaker of `base_url`."""
    return (base_url, GATEWAY)


class BreakerRegistry:
    """The circuit breakers of a process (or of a test), created on first use.

    Args:
        config: configuration of model breakers.
        gateway_config: configuration of gateway-wide breakers.
        clock: monotonic clock shared by all breakers (injectable in tests).
        gateway_min_models: distinct failing models that make a failure count
            as gateway-wide.

    Example:
        ```python
        registry = BreakerRegistry(BreakerConfig(failure_threshold=3, cooldown=60))
        registry.get(("https://api.holysheep.ai/v1", "gpt-4.1")).snapshot()
        registry.on_transition(print)
        registry.reset_all()
        ```
    """

    def __init__(
        self,
        config: BreakerConfig | None = None,
        *,
        gateway_config: BreakerConfig | None = None,
        clock: Clock | None = None,
        gateway_min_models: int = 2,
    ) -> None:
        self.config = config or BreakerConfig()
        self.gateway_config = gateway_config or DEFAULT_GATEWAY_CONFIG
        self._clock = clock
        self.gateway_min_models = gateway_min_models
        self._lock = threading.Lock()
        self._breakers: dict[BreakerKey, CircuitBreaker] = {}
        self._configs: dict[BreakerKey, BreakerConfig] = {}
        self._listeners: list[Listener] = []
        self._failing: dict[str, dict[str, float]] = {}

    # -- access ---------------------------------------------------------------------
    def get(self, key: BreakerKey) -> CircuitBreaker:
        """The breaker of `key`, created on first use."""
        breaker = self._breakers.get(key)
        if breaker is not None:
            return breaker
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is None:
                if key in self._configs:
                    config = self._configs[key]
                elif key[1] == GATEWAY:
                    config = self.gateway_config
                else:
                    config = self.config
                breaker = CircuitBreaker(key, config, clock=self._clock)
                breaker.on_transition(self._on_transition)
                self._breakers[key] = breaker
            return breaker

    def gateway(self, base_url: str) -> CircuitBreaker:
        """The gateway-wide breaker of `base_url`."""
        return self.get(gateway_key(base_url))

    def configure(self, key: BreakerKey, config: BreakerConfig) -> CircuitBreaker:
        """Use `config` for `key` (replaces an existing breaker of that key)."""
        with self._lock:
            self._configs[key] = config
            self._breakers.pop(key, None)
        return self.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._breakers

    def keys(self) -> list[BreakerKey]:
        """Keys of the breakers created so far."""
        return list(self._breakers)

    # -- outcomes (model + gateway bookkeeping) -------------------------------------
    def record_success(self, key: BreakerKey, *, gateway: bool = True) -> None:
        """A call on `key` succeeded (also counts for its gateway breaker)."""
        self.get(key).record_success()
        if gateway:
            base_url = key[0]
            self._failing.pop(base_url, None)
            gw = self._breakers.get(gateway_key(base_url))
            if gw is not None:
                gw.record_success()

    def record_failure(
        self,
        key: BreakerKey,
        reason: str = "failure",
        *,
        gateway: bool = True,
        connection_level: bool = False,
    ) -> None:
        """A call on `key` failed; feeds the model and the gateway breakers.

        Args:
            key: `(base_url, model)`.
            reason: short reason (kept as the breaker's `last_failure`).
            gateway: whether `key` is a gateway route (has a gateway breaker).
            connection_level: the server could not be reached at all.
        """
        self.get(key).record_failure(reason)
        if not gateway:
            return
        base_url, model = key
        if connection_level:
            self.gateway(base_url).record_failure(f"{reason} ({model})")
            return
        now = self.get(key).clock()
        horizon = now - self.gateway_config.window
        with self._lock:
            failing = self._failing.setdefault(base_url, {})
            failing[model] = now
            for name in [m for m, t in failing.items() if t < horizon]:
                del failing[name]
            # Independent errors of busy, healthy models are not an outage: only
            # models that are themselves unhealthy count towards one.
            names = sorted(
                m
                for m in failing
                if (b := self._breakers.get((base_url, m))) is not None
                and b.unhealthy()
            )
            every = len(names) >= self.gateway_min_models
        if every:
            self.gateway(base_url).record_failure(
                f"every model failing ({', '.join(names)})"
            )

    # -- observation and control ----------------------------------------------------
    def on_transition(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(Transition)` on any breaker's change; returns a remover."""
        with self._lock:
            self._listeners = [*self._listeners, listener]

        def remove() -> None:
            with self._lock:
                self._listeners = [x for x in self._listeners if x is not listener]

        return remove

    def snapshot(self) -> Mapping[BreakerKey, BreakerSnapshot]:
        """Snapshots of every breaker, by key."""
        return {key: b.snapshot() for key, b in list(self._breakers.items())}

    def reset(self, key: BreakerKey) -> None:
        """Close one breaker."""
        breaker = self._breakers.get(key)
        if breaker is not None:
            breaker.reset()

    def reset_all(self) -> None:
        """Close every breaker and forget failing-model bookkeeping."""
        for breaker in list(self._breakers.values()):
            breaker.reset()
        with self._lock:
            self._failing.clear()

    def clear(self) -> None:
        """Drop every breaker (listeners and per-key configs are kept)."""
        with self._lock:
            self._breakers.clear()
            self._failing.clear()

    def _on_transition(self, t: Transition) -> None:
        for listener in self._listeners:
            try:
                listener(t)
            except Exception:  # a listener must never break a call
                logger.exception("circuit-breaker listener failed")
        base_url, model = t.key
        if t.new is not BreakerState.OPEN or model == GATEWAY:
            return
        models = [
            b
            for (url, m), b in list(self._breakers.items())
            if url == base_url and m != GATEWAY
        ]
        if len(models) >= self.gateway_min_models and all(
            b.state is BreakerState.OPEN for b in models
        ):
            self.gateway(base_url).force_open("every model breaker is open")


_DEFAULT: BreakerRegistry | None = None
_DEFAULT_LOCK = threading.Lock()


def default_registry() -> BreakerRegistry:
    """The process-wide registry (created on first use)."""
    global _DEFAULT
    if _DEFAULT is None:
        with _DEFAULT_LOCK:
            if _DEFAULT is None:
                _DEFAULT = BreakerRegistry()
    return _DEFAULT
