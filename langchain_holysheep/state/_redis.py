"""`RedisStore`: state in Redis, shared by processes on many machines.

Each operation is one Lua script (`_redis_scripts.py`) run with the official
`redis` client's `register_script` (EVALSHA, reloaded after a server restart),
so it is atomic and costs one round trip. A request becomes one `ScriptCall`
(`_redis_budget.py`, `_redis_limits.py`) that the sync client runs, or, for
the async twins, `redis.asyncio` (one client per event loop). Connection
failures and timeouts become `StateStoreUnavailableError`.

Needs the optional extra: `pip install 'langchain-holysheep[redis]'`.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

from langchain_holysheep.errors import ConfigurationError
from langchain_holysheep.state import _redis_scripts as lua
from langchain_holysheep.state._errors import StateStoreUnavailableError
from langchain_holysheep.state._redis_budget import budget_call
from langchain_holysheep.state._redis_call import ScriptCall, us
from langchain_holysheep.state._redis_limits import breaker_call, rate_call
from langchain_holysheep.state._requests import BreakerOp, RateOp, Request
from langchain_holysheep.state._store import StateStore

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = ["DEFAULT_REDIS_URL", "RedisStore"]

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

_T = TypeVar("_T")
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

    def _send(self, call: ScriptCall) -> Any:
        try:
            client = self.client()
            if call.script == "delete":
                return client.delete(*call.keys)
            return self._scripts[call.script](keys=call.keys, args=call.args)
        except self._errors as exc:
            raise self._unavailable(exc) from exc

    async def _asend(self, call: ScriptCall) -> Any:
        try:
            client, scripts = self._aclient()
            if call.script == "delete":
                return await client.delete(*call.keys)
            return await scripts[call.script](keys=call.keys, args=call.args)
        except self._errors as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: BaseException) -> StateStoreUnavailableError:
        reason = f"{type(exc).__name__}: {exc}"
        return StateStoreUnavailableError(self.url, reason, hint=_HINT)

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

    # -- requests ----------------------------------------------------------------------
    def _call(self, request: Request[Any]) -> ScriptCall:
        """The one script call that applies `request`."""
        now = "" if self._clock is None else str(us(self._clock()))
        if isinstance(request, BreakerOp):
            return breaker_call(request, self.prefix, now)
        if isinstance(request, RateOp):
            return rate_call(request, self.prefix, now)
        return budget_call(request, self.prefix, now)

    def _apply(self, request: Request[_T]) -> _T:
        call = self._call(request)
        return cast(_T, call.answer(self._send(call)))

    async def _aapply(self, request: Request[_T]) -> _T:
        call = self._call(request)
        return cast(_T, call.answer(await self._asend(call)))
