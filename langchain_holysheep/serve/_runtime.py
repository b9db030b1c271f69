"""`Runtime`: everything a serving process builds once from its config.

The state store (`HOLYSHEEP_STATE_URL`, else `[server] state_url`, else this
process's memory) behind budgets, breakers and rate limits; the model groups;
the ledger (`[server] ledger`: a path for SQLite, a `postgresql://` URL for a
ledger shared by several instances; default `HOLYSHEEP_LEDGER_PATH` or
`~/.holysheep/ledger.sqlite3`); the price book; the metrics; the virtual keys
by hash and their request/token limits.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from langchain_holysheep.resilience._ratelimit import (
    RateLimit,
    RateLimiter,
    rate_limiters_for,
)
from langchain_holysheep.resilience._state import resolve_state
from langchain_holysheep.serve._groups import Group, build_groups
from langchain_holysheep.serve._metrics import ProxyMetrics
from langchain_holysheep.serve._spend import Spend
from langchain_holysheep.serve.config import KeySpec, ServeConfig, ServeConfigError
from langchain_holysheep.spend.ledger import Ledger, SQLiteLedger
from langchain_holysheep.spend.pricing import PriceBook
from langchain_holysheep.state import STATE_URL_ENV

__all__ = ["Runtime", "open_ledger_for", "state_url_of"]

_logger = logging.getLogger(__name__)


def open_ledger_for(target: str | None) -> Ledger:
    """The ledger named by a path or URL (`None`: the default SQLite file)."""
    if target and target.startswith(("postgresql://", "postgres://")):
        try:
            from langchain_holysheep.spend.ledger import (  # type: ignore[attr-defined]
                open_ledger,
            )
        except ImportError:
            raise ServeConfigError(
                "server.ledger: a PostgreSQL ledger needs the package's "
                "PostgreSQL support (pip install 'langchain-holysheep[postgres]')"
            ) from None
        return open_ledger(target)  # type: ignore[no-any-return]
    return SQLiteLedger(os.path.expanduser(target) if target else None)


def state_url_of(config: ServeConfig) -> str:
    """The state store's URL: `HOLYSHEEP_STATE_URL`, `[server] state_url`, memory."""
    url = os.environ.get(STATE_URL_ENV, "").strip() or config.server.state_url
    return url or "memory://"


class Runtime:
    """The long-lived objects of one serving process.

    Args:
        config: the validated config.
        ledger: a ledger to use instead of the configured one (tests).
    """

    def __init__(self, config: ServeConfig, *, ledger: Ledger | None = None) -> None:
        self.config = config
        self.state_url = state_url_of(config)
        self.state = resolve_state(self.state_url)
        self.groups: Mapping[str, Group] = build_groups(config, self.state_url)
        self.ledger = ledger or open_ledger_for(config.server.ledger)
        self.pricebook = PriceBook()
        self.metrics = ProxyMetrics()
        self.spend = Spend(
            config.keys,
            self.pricebook,
            [self.ledger, self.metrics.sink],
            store=self.state_url,
        )
        self.keys: dict[str, tuple[str, KeySpec]] = {
            spec.hash: (name, spec) for name, spec in config.keys.items()
        }
        self.limiters: dict[str, RateLimiter] = {}
        registry = rate_limiters_for(self.state_url)
        for name, spec in config.keys.items():
            if spec.requests_per_minute or spec.tokens_per_minute:
                limit = RateLimit(spec.requests_per_minute, spec.tokens_per_minute)
                self.limiters[name] = registry.configure(("serve-key", name), limit)
        self.draining = False

    def ready(self) -> dict[str, Any]:
        """Readiness: serving (not draining) and the state store answers."""
        checks: dict[str, Any] = {"draining": self.draining}
        ok = not self.draining
        if self.state is not None:
            try:
                self.state.spent("serve/health", "probe")
                checks["state"] = "ok"
            except Exception as exc:
                checks["state"] = type(exc).__name__
                ok = False
        checks["ready"] = ok
        return checks

    def close(self) -> None:
        """Flush and close the ledger."""
        try:
            self.ledger.close()
        except Exception:
            _logger.exception("could not close the ledger")
