"""`BreakerRegistry`: the circuit breakers of a process, one per (base URL, model).

Besides one breaker per model, each base URL has a gateway-wide breaker keyed
`(base_url, "*")`. It counts only what proves the gateway itself unreachable:
refused connections, DNS failures and connect timeouts. An HTTP answer (a 503,
a 429, a malformed reply) is evidence about one model, never about the gateway,
so models failing with HTTP errors never make the router skip an untried model
of the same gateway: each model's own breaker handles it. Any success on that
base URL counts for the gateway breaker. While it is open the router skips every
route on that base URL at once and goes straight to the non-gateway fallbacks.

A registry given a shared `StateStore` (`state=`, or `HOLYSHEEP_STATE_URL`)
makes `SharedCircuitBreaker`s: every process using the store sees one state
per breaker, and one half-open probe runs fleet-wide. With `memory://` (the
default) the breakers are plain in-process `CircuitBreaker`s.

A process-wide registry is returned by `default_registry()`; tests and
applications can inject their own (`Router(breakers=BreakerRegistry(...))`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from langchain_holysheep.resilience._breaker import (
    BreakerConfig,
    BreakerKey,
    BreakerSnapshot,
    CircuitBreaker,
    Listener,
    Transition,
)
from langchain_holysheep.resilience._deadline import Clock
from langchain_holysheep.resilience._listeners import Listeners
from langchain_holysheep.resilience._shared_breaker import (
    DEFAULT_SYNC_INTERVAL,
    SharedCircuitBreaker,
)
from langchain_holysheep.resilience._state import (
    ProcessDefault,
    StateArg,
    per_store,
    resolve_state,
)
from langchain_holysheep.state import StateStore

__all__ = [
    "DEFAULT_GATEWAY_CONFIG",
    "GATEWAY",
    "BreakerRegistry",
    "default_registry",
    "gateway_key",
    "registry_for",
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
        state: where breaker state lives: a `StateStore` or a URL
            (`sqlite:///state.db`, `redis://host:6379/0`); `None` reads
            `HOLYSHEEP_STATE_URL`; `memory://` (the default) keeps it in
            this process.
        sync_interval: seconds between two reads of a shared breaker's state
            by this process (an opening elsewhere is seen within it).

    Example:
        ```python
        registry = BreakerRegistry(BreakerConfig(failure_threshold=3, cooldown=60))
        registry.get(("https://api.holysheep.ai/v1", "gpt-4.1")).snapshot()
        registry.on_transition(print)
        registry.reset_all()
        shared = BreakerRegistry(state="redis://127.0.0.1:6379/0")  # all processes
        ```
    """

    def __init__(
        self,
        config: BreakerConfig | None = None,
        *,
        gateway_config: BreakerConfig | None = None,
        clock: Clock | None = None,
        state: StateArg = None,
        sync_interval: float = DEFAULT_SYNC_INTERVAL,
    ) -> None:
        self.config = config or BreakerConfig()
        self.store: StateStore | None = resolve_state(state)
        self.sync_interval = sync_interval
        self.gateway_config = gateway_config or DEFAULT_GATEWAY_CONFIG
        self._clock = clock
        self._lock = threading.Lock()
        self._breakers: dict[BreakerKey, CircuitBreaker] = {}
        self._configs: dict[BreakerKey, BreakerConfig] = {}
        self._listeners = Listeners()

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
                breaker = self._new(key, config)
                breaker.on_transition(self._on_transition)
                self._breakers[key] = breaker
            return breaker

    def _new(self, key: BreakerKey, config: BreakerConfig) -> CircuitBreaker:
        if self.store is None:
            return CircuitBreaker(key, config, clock=self._clock)
        return SharedCircuitBreaker(
            key,
            config,
            store=self.store,
            clock=self._clock,
            sync_interval=self.sync_interval,
        )

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
        if gateway and connection_level:
            base_url, model = key
            self.gateway(base_url).record_failure(f"{reason} ({model})")

    # -- observation and control ----------------------------------------------------
    def on_transition(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(Transition)` on any breaker's change; returns a remover."""
        return self._listeners.add(listener)

    def snapshot(self) -> Mapping[BreakerKey, BreakerSnapshot]:
        """Snapshots of every breaker, by key."""
        return {key: b.snapshot() for key, b in list(self._breakers.items())}

    def reset(self, key: BreakerKey) -> None:
        """Close one breaker."""
        breaker = self._breakers.get(key)
        if breaker is not None:
            breaker.reset()

    def reset_all(self) -> None:
        """Close every breaker this registry has used (in the store too, if shared)."""
        for breaker in list(self._breakers.values()):
            breaker.reset()

    def clear(self) -> None:
        """Drop every breaker object (listeners and per-key configs are kept).

        Shared state stays in the store: a breaker made again reads it.
        """
        with self._lock:
            self._breakers.clear()

    def _on_transition(self, t: Transition) -> None:
        self._listeners.notify(t)


_DEFAULT = ProcessDefault(BreakerRegistry)


def default_registry() -> BreakerRegistry:
    """The process-wide registry (created on first use; `HOLYSHEEP_STATE_URL`)."""
    return _DEFAULT.get()


def registry_for(state: StateArg) -> BreakerRegistry:
    """The process's registry for `state` (`None`: `default_registry()`).

    Every model given the same store (or URL) shares one registry, so its
    breakers and their listeners exist once per process.
    """
    return per_store(
        state, default_registry(), lambda store: BreakerRegistry(state=store)
    )
