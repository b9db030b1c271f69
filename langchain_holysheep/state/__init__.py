"""One state store behind budgets, circuit breakers and rate limits.

Where the state lives is chosen by URL, with no code change
(`HOLYSHEEP_STATE_URL`); what a budget, breaker or limit *means* does not
depend on it (the same behavioural tests run against every store):

| URL | store | shared by | survives a restart |
|---|---|---|---|
| `memory://` (default) | `MemoryStore` | one process | no |
| `sqlite:///state.db` | `SQLiteStore` | one machine | yes |
| `redis://host:6379/0` | `RedisStore` | many machines | as Redis is set up |

Every operation is atomic: one lock (memory), one `BEGIN IMMEDIATE`
transaction (SQLite, WAL mode), one Lua script and one round trip (Redis).
Money is exact: integer units of 1e-9 USD (amounts round up, caps round down).
Reservations carry a lease, so a process killed mid-call frees its
reservations when the lease ends. When a shared store is down, `GuardedStore`
applies `StoreErrorPolicy` (budgets fail closed with
`StateStoreUnavailableError` by default; breakers and rate limits fall back to
local memory), calls an alert hook once per outage, replays queued spend and
recovers by itself.

```python
from decimal import Decimal
from langchain_holysheep.state import open_store

store = open_store("sqlite:///holysheep-state.db")
res = store.reserve("team-a", "2026-11-03", Decimal("0.02"), cap=Decimal("5"),
                    lease_seconds=120, window_ttl=2 * 86400)
if res.admitted:
    ...  # call the model
    store.settle(res, Decimal("0.0131"))
else:
    print(f"refused: {res.available} left of {res.cap}")
```

Starting a Redis server for it: `redis-server --port 6379` (Debian/Ubuntu:
`apt-get install redis-server`), or `docker run -p 6379:6379 redis:7`; then
`pip install 'langchain-holysheep[redis]'` and
`export HOLYSHEEP_STATE_URL=redis://127.0.0.1:6379/0`.

Wiring plan (how budgets, breakers and rate limits move onto the store):

- **Budgets** (`Budget` in `spend.budgets`): `Budget(..., store=None)` resolves
  `open_store()` once. `_reserve` becomes
  `store.reserve(budget_key, window_id, amount, cap=self.limit,
  lease_seconds=..., window_ttl=...)` with `budget_key =
  f"{key or self.name}/{scope_key}"` (a `key=` argument names a budget that
  several processes share; the name must be the same in all of them) and
  `window_id` from the budgets' windows module (`window_id(self.window,
  clock(), tz)`, the run id for `"run"` windows); a `Refusal` carries
  `spent`/`reserved`/`available` for `BudgetExceededError`. `window_ttl` is
  the window length plus a day for hour/day/month windows, a day for `"run"`
  windows (a run whose process died is forgotten too), `None` for `"total"`;
  `end_run` calls `store.forget(budget_key, run_id)`. `spend.Reservation` keeps its
  API and its `_done` flag, wrapping a `state.Reservation`: `settle(actual)`
  -> `store.settle(...)`, whose `Settlement.spent_before`/`spent` detect a
  threshold crossing exactly once across every process (the settle is
  atomic); `release()` -> `store.release(...)`. The lease is the call's
  deadline (or the route timeouts summed) plus a margin; streams longer
  than that call `store.extend(...)` between chunks. Spend billed without a
  reservation (a cut stream) goes through `store.charge(...)`. With the
  default `memory://` store the behaviour is today's, one process.
  `StateStoreUnavailableError` already carries `holysheep_action = "stop"`.
- **Breakers** (`CircuitBreaker`, `BreakerRegistry` in `resilience`): a
  `CircuitBreaker(key, config, store=...)` keeps its lock-free local state as
  a cache. Its store key is `f"{base_url}|{model}"`, and `BreakerConfig`
  already satisfies `BreakerRules`. `record_failure` calls
  `store.record_failure(key, config, reason)` at once (it may open the
  breaker); successes in the closed state are counted locally and flushed
  with the next sync. A sync (`store.breaker(key, config)`) runs at most
  every `sync_interval` (default 0.25 s, so an opening is seen by every
  process within 1 s) and adopts the shared state. `allow()` on an open
  breaker whose `retry_in` is 0 calls `store.try_claim_probe(key,
  probe_timeout or 3600)`: one process in the whole fleet probes. `release()` ->
  `store.release_probe`, `force_open`/`reset` -> `store.force_open`/
  `reset_breaker`. Listeners fire in the process whose operation returned a
  view with `changed`, and in others when a sync sees a new state. The
  registry's gateway bookkeeping stays local; the gateway breaker is just
  another key.
- **Rate limits** (`RateLimiter` in `resilience`): `RateLimiter(key, limit,
  store=...)` maps `RateLimit` to `RateSpec(limit.requests_per_minute,
  limit.tokens_per_minute, burst_requests=..., burst_tokens=...)`.
  `reserve(tokens, max_wait)` -> `store.acquire_rate(key, spec,
  tokens=tokens, max_wait=max_wait)`: a refused grant raises
  `RateLimitTimeoutError(key, grant.wait, max_wait)`, a granted one returns
  `grant.wait` to sleep (queued fairly, as today). `refund` ->
  `store.refund_rate`, `adjust_tokens(delta)` -> `store.refund_rate(key,
  spec, requests=0, tokens=-delta)`, `penalize` -> `store.penalize_rate`,
  `snapshot` -> `store.rate_state`.
- **Configuration**: `ChatHolySheep(state=...)`, `Budget(store=...)`,
  `BreakerRegistry(store=...)`, `RateLimiterRegistry(store=...)` accept a
  store or URL; the process-wide defaults use `open_store()`, so
  `HOLYSHEEP_STATE_URL` switches a deployment without code changes.
"""

from langchain_holysheep.state import _breaker_types, _budget_types
from langchain_holysheep.state._breaker_types import *  # noqa: F403 (its __all__)
from langchain_holysheep.state._budget_types import *  # noqa: F403 (its __all__)
from langchain_holysheep.state._errors import (
    StateStoreError,
    StateStoreUnavailableError,
)
from langchain_holysheep.state._guarded import (
    GuardedStore,
    OnStoreError,
    StoreErrorPolicy,
    StoreEvent,
)
from langchain_holysheep.state._memory import MemoryStore
from langchain_holysheep.state._money import MAX_AMOUNT, UNIT
from langchain_holysheep.state._open import STATE_URL_ENV, open_store
from langchain_holysheep.state._rate_types import RateGrant, RateSpec, RateView
from langchain_holysheep.state._redis import DEFAULT_REDIS_URL, RedisStore
from langchain_holysheep.state._sqlite import DEFAULT_SQLITE_PATH, SQLiteStore
from langchain_holysheep.state._store import StateStore

__all__ = [
    "DEFAULT_REDIS_URL",
    "DEFAULT_SQLITE_PATH",
    "MAX_AMOUNT",
    "STATE_URL_ENV",
    "UNIT",
    "GuardedStore",
    "MemoryStore",
    "OnStoreError",
    "RateGrant",
    "RateSpec",
    "RateView",
    "RedisStore",
    "SQLiteStore",
    "StateStore",
    "StateStoreError",
    "StateStoreUnavailableError",
    "StoreErrorPolicy",
    "StoreEvent",
    "open_store",
]
__all__ += _breaker_types.__all__
__all__ += _budget_types.__all__
