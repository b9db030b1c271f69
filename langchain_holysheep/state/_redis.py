"""`RedisStore`: state in Redis, shared by processes on many machines.

Each operation is one Lua script (`_redis_scripts.py`) run with the official
`redis` client's `register_script` (EVALSHA, reloaded after a server restart),
so it is atomic and costs one round trip. The async twins use
`redis.asyncio` (one client per event loop). Connection failures and timeouts
become `StateStoreUnavailableError`.

Needs the optional extra: `pip install 'langchain-holysheep[redis]'`.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from langchain_holysheep.errors import ConfigurationError
from langchain_holysheep.state import _redis_scripts as lua
from langchain_holysheep.state._breaker_types import (
    BreakerRules,
    BreakerStateName,
    BreakerView,
)
from langchain_holysheep.state._budget_types import (
    Refusal,
    Reservation,
    Settlement,
    WindowUsage,
)
from langchain_holysheep.state._checks import check_key, check_seconds, new_id
from langchain_holysheep.state._errors import StateStoreUnavailableError
from langchain_holysheep.state._money import from_units, to_units
from langchain_holysheep.state._rate_types import RateGrant, RateSpec, RateView
from langchain_holysheep.state._store import StateStore

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = ["DEFAULT_REDIS_URL", "RedisStore"]

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

_US = 1_000_000
_HINT = "Check that Redis is running and reachable: redis-cli -u <url> ping"
_SCRIPTS = {
    "reserve": lua.BUDGET_RESERVE,
    "finish": lua.BUDGET_FINISH,
    "extend": lua.BUDGET_EXTEND,
    "charge": lua.BUDGET_CHARGE,
    "usage": lua.BUDGET_USAGE,
    "breaker": lua.BREAKER,
    "rate": lua.RATE,
}


def _redis_module() -> Any:
    try:
        import redis
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigurationError(
            "The Redis state store needs the redis client: "
            "pip install 'langchain-holysheep[redis]'"
        ) from None
    return redis


def _unavailable_errors() -> tuple[type[BaseException], ...]:
    exc = _redis_module().exceptions
    return (
        exc.ConnectionError,
        exc.TimeoutError,
        exc.ReadOnlyError,
        exc.ClusterDownError,
        exc.TryAgainError,
        exc.OutOfMemoryError,
    )


def redact(url: str) -> str:
    """`url` without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


def _us(seconds: float) -> int:
    return round(seconds * _US)


def _f(value: Any) -> float | None:
    return None if value in ("", None) else float(value)


class RedisStore(StateStore):
    """State in Redis: atomic across processes and machines, one round trip.

    Args:
        url: `redis://[[user]:password@]host:port/db`, `rediss://...` (TLS) or
            `unix:///path/to/redis.sock?db=0`.
        prefix: prepended to every key (one prefix per application or test).
        clock: seconds; `None` (default) uses the Redis server's clock, so
            machines with skewed clocks agree. Inject one only in tests.
        socket_timeout: seconds to wait for an answer before the store counts
            as unavailable.
        connect_timeout: seconds to wait for a connection.
        **client_options: passed to `redis.Redis.from_url` (and to the
            `redis.asyncio` client).

    Example:
        ```python
        store = RedisStore("redis://127.0.0.1:6379/0", prefix="myapp:")
        # or: HOLYSHEEP_STATE_URL=redis://127.0.0.1:6379/0 and open_store()
        ```
    """

    kind = "redis"

    def __init__(
        self,
        url: str = DEFAULT_REDIS_URL,
        *,
        prefix: str = "holysheep:",
        clock: Callable[[], float] | None = None,
        socket_timeout: float = 1.0,
        connect_timeout: float = 1.0,
        **client_options: Any,
    ) -> None:
        _redis_module()
        self._url = url
        self.prefix = prefix
        self._clock = clock
        self._options = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
            "decode_responses": True,
            **client_options,
        }
        self._errors = _unavailable_errors()
        self._client: redis.Redis | None = None
        self._scripts: dict[str, Any] = {}
        self._aclients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[redis.asyncio.Redis, dict[str, Any]]
        ] = weakref.WeakKeyDictionary()

    @property
    def url(self) -> str:
        """The Redis URL (without its password)."""
        return redact(self._url)

    # -- clients -----------------------------------------------------------------------
    def _retry(self, asynchronous: bool) -> Any:
        # One immediate retry on a dropped connection (a restarted server or an
        # idle connection closed by a proxy); anything longer is an outage.
        module = _redis_module()
        backoff = module.backoff.NoBackoff()
        if asynchronous:
            return module.asyncio.retry.Retry(backoff, 1)
        return module.retry.Retry(backoff, 1)

    def client(self) -> redis.Redis:
        """The sync `redis.Redis` client (created on first use)."""
        if self._client is None:
            module = _redis_module()
            client = module.Redis.from_url(
                self._url, retry=self._retry(False), **self._options
            )
            self._scripts = {k: client.register_script(v) for k, v in _SCRIPTS.items()}
            self._client = client
        return self._client

    def aclient(self) -> redis.asyncio.Redis:
        """The `redis.asyncio` client of the running event loop."""
        return self._aclient()[0]

    def _aclient(self) -> tuple[redis.asyncio.Redis, dict[str, Any]]:
        loop = asyncio.get_running_loop()
        entry = self._aclients.get(loop)
        if entry is None:
            module = _redis_module()
            client = module.asyncio.Redis.from_url(
                self._url, retry=self._retry(True), **self._options
            )
            scripts = {k: client.register_script(v) for k, v in _SCRIPTS.items()}
            entry = self._aclients[loop] = (client, scripts)
        return entry

    def _call(self, name: str, keys: list[str], args: list[Any]) -> Any:
        try:
            self.client()
            return self._scripts[name](keys=keys, args=args)
        except self._errors as exc:
            raise StateStoreUnavailableError(
                self.url, _reason(exc), hint=_HINT
            ) from exc

    async def _acall(self, name: str, keys: list[str], args: list[Any]) -> Any:
        try:
            _, scripts = self._aclient()
            return await scripts[name](keys=keys, args=args)
        except self._errors as exc:
            raise StateStoreUnavailableError(
                self.url, _reason(exc), hint=_HINT
            ) from exc

    def close(self) -> None:
        """Close the sync client's connections (reopened on next use)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close the clients of the running loop and the sync client."""
        entry = self._aclients.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[0].aclose()
        self.close()

    def _now(self) -> str:
        return "" if self._clock is None else str(_us(self._clock()))

    # -- keys --------------------------------------------------------------------------
    def _window_keys(self, budget_key: str, window_id: str) -> list[str]:
        h = f"{self.prefix}budget:{{{budget_key}|{window_id}}}"
        return [h, h + ":leases"]

    def _breaker_key(self, key: str) -> list[str]:
        return [f"{self.prefix}breaker:{{{key}}}"]

    def _rate_key(self, key: str) -> list[str]:
        return [f"{self.prefix}rate:{{{key}}}"]

    # -- budgets: arguments and replies (shared by the twins) --------------------------
    def _reserve_args(
        self,
        budget_key: str,
        window_id: str,
        amount: Decimal,
        cap: Decimal,
        lease_seconds: float,
        window_ttl: float | None,
    ) -> tuple[list[str], list[Any], tuple[Any, ...]]:
        check_key(budget_key, window_id)
        units = to_units(amount)
        cap_units = to_units(cap, up=False, what="cap")
        check_seconds(lease_seconds, "lease_seconds")
        check_seconds(window_ttl, "window_ttl", optional=True)
        ttl = None if window_ttl is None else max(window_ttl, lease_seconds)
        rid = new_id()
        args = [
            self._now(),
            units,
            cap_units,
            _us(lease_seconds),
            0 if ttl is None else _us(ttl),
            rid,
        ]
        context = (budget_key, window_id, units, cap_units, lease_seconds, ttl, rid)
        return self._window_keys(budget_key, window_id), args, context

    @staticmethod
    def _reserve_reply(
        reply: list[Any], context: tuple[Any, ...]
    ) -> Reservation | Refusal:
        budget_key, window_id, units, cap_units, lease_seconds, ttl, rid = context
        if int(reply[0]) == 0:
            return Refusal(
                budget_key,
                window_id,
                from_units(units),
                from_units(cap_units),
                from_units(int(reply[1])),
                from_units(int(reply[2])),
            )
        return Reservation(
            budget_key,
            window_id,
            rid,
            from_units(units),
            float(lease_seconds),
            int(reply[1]) / _US,
            ttl,
        )

    def _finish_args(
        self, res: Reservation, actual: Decimal | None
    ) -> tuple[list[str], list[Any]]:
        units = 0 if actual is None else to_units(actual, what="actual")
        ttl = 0 if res.window_ttl is None else _us(res.window_ttl)
        return self._window_keys(res.budget_key, res.window_id), [
            self._now(),
            res.id,
            units,
            ttl,
        ]

    @staticmethod
    def _settlement(reply: list[Any]) -> Settlement:
        spent, reserved, counted, late = (int(x) for x in reply)
        return Settlement(
            from_units(spent),
            from_units(reserved),
            from_units(counted),
            bool(late) and counted > 0,
        )

    def _extend_args(
        self, res: Reservation, lease_seconds: float
    ) -> tuple[list[str], list[Any]]:
        check_seconds(lease_seconds, "lease_seconds")
        ttl = 0 if res.window_ttl is None else _us(res.window_ttl)
        return self._window_keys(res.budget_key, res.window_id), [
            self._now(),
            res.id,
            _us(lease_seconds),
            ttl,
        ]

    @staticmethod
    def _extended(
        reply: Any, res: Reservation, lease_seconds: float
    ) -> Reservation | None:
        if int(reply) < 0:
            return None
        return replace(
            res, expires_at=int(reply) / _US, lease_seconds=float(lease_seconds)
        )

    def _charge_args(
        self, budget_key: str, window_id: str, amount: Decimal, window_ttl: float | None
    ) -> tuple[list[str], list[Any]]:
        check_key(budget_key, window_id)
        check_seconds(window_ttl, "window_ttl", optional=True)
        ttl = 0 if window_ttl is None else _us(window_ttl)
        return self._window_keys(budget_key, window_id), [
            self._now(),
            to_units(amount),
            ttl,
        ]

    @staticmethod
    def _usage(reply: list[Any]) -> WindowUsage:
        return WindowUsage(from_units(int(reply[0])), from_units(int(reply[1])))

    # -- budgets -----------------------------------------------------------------------
    def reserve(
        self,
        budget_key: str,
        window_id: str,
        amount: Decimal,
        cap: Decimal,
        lease_seconds: float,
        *,
        window_ttl: float | None = None,
    ) -> Reservation | Refusal:
        """See `StateStore.reserve`."""
        keys, args, ctx = self._reserve_args(
            budget_key, window_id, amount, cap, lease_seconds, window_ttl
        )
        return self._reserve_reply(self._call("reserve", keys, args), ctx)

    async def areserve(
        self,
        budget_key: str,
        window_id: str,
        amount: Decimal,
        cap: Decimal,
        lease_seconds: float,
        *,
        window_ttl: float | None = None,
    ) -> Reservation | Refusal:
        """Async `reserve`."""
        keys, args, ctx = self._reserve_args(
            budget_key, window_id, amount, cap, lease_seconds, window_ttl
        )
        return self._reserve_reply(await self._acall("reserve", keys, args), ctx)

    def settle(self, reservation: Reservation, actual: Decimal | None) -> Settlement:
        """See `StateStore.settle`."""
        return self._settlement(
            self._call("finish", *self._finish_args(reservation, actual))
        )

    async def asettle(
        self, reservation: Reservation, actual: Decimal | None
    ) -> Settlement:
        """Async `settle`."""
        return self._settlement(
            await self._acall("finish", *self._finish_args(reservation, actual))
        )

    def release(self, reservation: Reservation) -> None:
        """See `StateStore.release`."""
        self._call("finish", *self._finish_args(reservation, None))

    async def arelease(self, reservation: Reservation) -> None:
        """Async `release`."""
        await self._acall("finish", *self._finish_args(reservation, None))

    def extend(
        self, reservation: Reservation, lease_seconds: float
    ) -> Reservation | None:
        """See `StateStore.extend`."""
        reply = self._call("extend", *self._extend_args(reservation, lease_seconds))
        return self._extended(reply, reservation, lease_seconds)

    async def aextend(
        self, reservation: Reservation, lease_seconds: float
    ) -> Reservation | None:
        """Async `extend`."""
        keys, args = self._extend_args(reservation, lease_seconds)
        reply = await self._acall("extend", keys, args)
        return self._extended(reply, reservation, lease_seconds)

    def charge(
        self,
        budget_key: str,
        window_id: str,
        amount: Decimal,
        *,
        window_ttl: float | None = None,
    ) -> WindowUsage:
        """See `StateStore.charge`."""
        keys, args = self._charge_args(budget_key, window_id, amount, window_ttl)
        return self._usage(self._call("charge", keys, args))

    async def acharge(
        self,
        budget_key: str,
        window_id: str,
        amount: Decimal,
        *,
        window_ttl: float | None = None,
    ) -> WindowUsage:
        """Async `charge`."""
        keys, args = self._charge_args(budget_key, window_id, amount, window_ttl)
        return self._usage(await self._acall("charge", keys, args))

    def usage(self, budget_key: str, window_id: str) -> WindowUsage:
        """See `StateStore.usage`."""
        keys = self._window_keys(budget_key, window_id)
        return self._usage(self._call("usage", keys, [self._now()]))

    async def ausage(self, budget_key: str, window_id: str) -> WindowUsage:
        """Async `usage`."""
        keys = self._window_keys(budget_key, window_id)
        return self._usage(await self._acall("usage", keys, [self._now()]))

    def forget(self, budget_key: str, window_id: str) -> None:
        """See `StateStore.forget`."""
        try:
            self.client().delete(*self._window_keys(budget_key, window_id))
        except self._errors as exc:
            raise StateStoreUnavailableError(
                self.url, _reason(exc), hint=_HINT
            ) from exc

    async def aforget(self, budget_key: str, window_id: str) -> None:
        """Async `forget`."""
        try:
            await self.aclient().delete(*self._window_keys(budget_key, window_id))
        except self._errors as exc:
            raise StateStoreUnavailableError(
                self.url, _reason(exc), hint=_HINT
            ) from exc

    # -- breakers ----------------------------------------------------------------------
    def _breaker_args(
        self,
        op: str,
        rules: BreakerRules | None,
        reason: str = "",
        ttl: float = 0.0,
        count: int = 1,
    ) -> list[Any]:
        width, n, threshold, rate, minreq, cooldown = 1.0, 1, "", "", 1, 0
        if rules is not None:  # some operations need no rules
            width = _us(rules.window) / rules.buckets
            n = rules.buckets
            if rules.failure_threshold is not None:
                threshold = str(rules.failure_threshold)
            if rules.failure_rate is not None:
                rate = repr(float(rules.failure_rate))
            minreq, cooldown = rules.minimum_requests, _us(rules.cooldown)
        return [
            self._now(),
            op,
            repr(float(width)),
            n,
            threshold,
            rate,
            minreq,
            cooldown,
            reason,
            _us(ttl),
            int(count),
        ]

    @staticmethod
    def _view(key: str, reply: list[Any]) -> BreakerView:
        st, fail, ok, opened, retry_in, inflight, trips, lf, prev, _ = reply
        return BreakerView(
            key=key,
            state=st,
            failures=int(fail),
            successes=int(ok),
            opened_at=None if int(opened) < 0 else int(opened) / _US,
            retry_in=int(retry_in) / _US,
            probe_in_flight=bool(int(inflight)),
            trips=int(trips),
            last_failure=lf,
            previous=prev or None,
        )

    def _breaker_op(
        self,
        key: str,
        op: str,
        rules: BreakerRules | None,
        reason: str = "",
        ttl: float = 0.0,
        count: int = 1,
    ) -> list[Any]:
        args = self._breaker_args(op, rules, reason, ttl, count)
        return self._call("breaker", self._breaker_key(key), args)  # type: ignore[no-any-return]

    async def _abreaker_op(
        self,
        key: str,
        op: str,
        rules: BreakerRules | None,
        reason: str = "",
        ttl: float = 0.0,
        count: int = 1,
    ) -> list[Any]:
        args = self._breaker_args(op, rules, reason, ttl, count)
        return await self._acall("breaker", self._breaker_key(key), args)  # type: ignore[no-any-return]

    def breaker(self, key: str, rules: BreakerRules) -> BreakerView:
        """See `StateStore.breaker`."""
        return self._view(key, self._breaker_op(key, "view", rules))

    async def abreaker(self, key: str, rules: BreakerRules) -> BreakerView:
        """Async `breaker`."""
        return self._view(key, await self._abreaker_op(key, "view", rules))

    def record_success(self, key: str, rules: BreakerRules) -> BreakerView:
        """See `StateStore.record_success`."""
        return self._view(key, self._breaker_op(key, "ok", rules))

    async def arecord_success(self, key: str, rules: BreakerRules) -> BreakerView:
        """Async `record_success`."""
        return self._view(key, await self._abreaker_op(key, "ok", rules))

    def record_failure(
        self, key: str, rules: BreakerRules, reason: str = "failure"
    ) -> BreakerView:
        """See `StateStore.record_failure`."""
        return self._view(key, self._breaker_op(key, "fail", rules, reason))

    async def arecord_failure(
        self, key: str, rules: BreakerRules, reason: str = "failure"
    ) -> BreakerView:
        """Async `record_failure`."""
        return self._view(key, await self._abreaker_op(key, "fail", rules, reason))

    def count_successes(self, key: str, rules: BreakerRules, count: int) -> BreakerView:
        """See `StateStore.count_successes`."""
        reply = self._breaker_op(key, "oks", rules, count=count)
        return self._view(key, reply)

    async def acount_successes(
        self, key: str, rules: BreakerRules, count: int
    ) -> BreakerView:
        """Async `count_successes`."""
        reply = await self._abreaker_op(key, "oks", rules, count=count)
        return self._view(key, reply)

    def try_claim_probe(self, key: str, ttl: float) -> bool:
        """See `StateStore.try_claim_probe`."""
        check_seconds(ttl, "ttl")
        return bool(int(self._breaker_op(key, "claim", None, ttl=ttl)[9]))

    async def atry_claim_probe(self, key: str, ttl: float) -> bool:
        """Async `try_claim_probe`."""
        check_seconds(ttl, "ttl")
        return bool(int((await self._abreaker_op(key, "claim", None, ttl=ttl))[9]))

    def release_probe(self, key: str) -> None:
        """See `StateStore.release_probe`."""
        self._breaker_op(key, "release", None)

    async def arelease_probe(self, key: str) -> None:
        """Async `release_probe`."""
        await self._abreaker_op(key, "release", None)

    def force_open(
        self, key: str, rules: BreakerRules, reason: str = "forced open"
    ) -> BreakerView:
        """See `StateStore.force_open`."""
        return self._view(key, self._breaker_op(key, "force", rules, reason))

    async def aforce_open(
        self, key: str, rules: BreakerRules, reason: str = "forced open"
    ) -> BreakerView:
        """Async `force_open`."""
        return self._view(key, await self._abreaker_op(key, "force", rules, reason))

    def reset_breaker(self, key: str) -> BreakerStateName | None:
        """See `StateStore.reset_breaker`."""
        return self._breaker_op(key, "reset", None)[8] or None

    async def areset_breaker(self, key: str) -> BreakerStateName | None:
        """Async `reset_breaker`."""
        return (await self._abreaker_op(key, "reset", None))[8] or None

    # -- rate limits -------------------------------------------------------------------
    def _rate_args(
        self,
        op: str,
        spec: RateSpec | None,
        tokens: float = 0.0,
        max_wait: float = 0.0,
        requests: float = 0.0,
        penalty: float = 0.0,
    ) -> list[Any]:
        def num(x: float | None) -> str:
            return "" if x is None else repr(float(x))

        if spec is None:
            per, req, req_cap, tok, tok_cap = 1.0, None, None, None, None
        else:
            per, req, tok = spec.per, spec.requests, spec.tokens
            req_cap, tok_cap = spec.request_capacity, spec.token_capacity
        return [
            self._now(),
            op,
            num(per * _US),
            num(req),
            num(req_cap),
            num(tok),
            num(tok_cap),
            num(tokens),
            num(min(max_wait, 1e12) * _US),
            num(requests),
            num(penalty * _US),
        ]

    @staticmethod
    def _grant(reply: list[Any]) -> RateGrant:
        return RateGrant(bool(int(reply[0])), float(reply[1]) / _US)

    @staticmethod
    def _rate_view(reply: list[Any]) -> RateView:
        blocked = _f(reply[2])
        return RateView(_f(reply[0]), _f(reply[1]), (blocked or 0.0) / _US)

    def acquire_rate(
        self,
        key: str,
        spec: RateSpec,
        *,
        tokens: float = 0.0,
        max_wait: float = 0.0,
    ) -> RateGrant:
        """See `StateStore.acquire_rate`."""
        args = self._rate_args("acquire", spec, tokens, max_wait)
        return self._grant(self._call("rate", self._rate_key(key), args))

    async def aacquire_rate(
        self,
        key: str,
        spec: RateSpec,
        *,
        tokens: float = 0.0,
        max_wait: float = 0.0,
    ) -> RateGrant:
        """Async `acquire_rate`."""
        args = self._rate_args("acquire", spec, tokens, max_wait)
        return self._grant(await self._acall("rate", self._rate_key(key), args))

    def refund_rate(
        self, key: str, spec: RateSpec, *, requests: float = 1.0, tokens: float = 0.0
    ) -> None:
        """See `StateStore.refund_rate`."""
        args = self._rate_args("refund", spec, tokens, requests=requests)
        self._call("rate", self._rate_key(key), args)

    async def arefund_rate(
        self, key: str, spec: RateSpec, *, requests: float = 1.0, tokens: float = 0.0
    ) -> None:
        """Async `refund_rate`."""
        args = self._rate_args("refund", spec, tokens, requests=requests)
        await self._acall("rate", self._rate_key(key), args)

    def penalize_rate(self, key: str, seconds: float) -> None:
        """See `StateStore.penalize_rate`."""
        if seconds > 0:
            args = self._rate_args("penalize", None, penalty=seconds)
            self._call("rate", self._rate_key(key), args)

    async def apenalize_rate(self, key: str, seconds: float) -> None:
        """Async `penalize_rate`."""
        if seconds > 0:
            args = self._rate_args("penalize", None, penalty=seconds)
            await self._acall("rate", self._rate_key(key), args)

    def rate_state(self, key: str, spec: RateSpec) -> RateView:
        """See `StateStore.rate_state`."""
        args = self._rate_args("view", spec)
        return self._rate_view(self._call("rate", self._rate_key(key), args))

    async def arate_state(self, key: str, spec: RateSpec) -> RateView:
        """Async `rate_state`."""
        args = self._rate_args("view", spec)
        return self._rate_view(await self._acall("rate", self._rate_key(key), args))


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
