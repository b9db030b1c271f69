"""The proxy's ASGI application: OpenAI-compatible endpoints over model groups.

- `POST /v1/chat/completions`: a virtual key (`Authorization: Bearer ...`)
  calls a model group; replies and streams are relayed (see `_relay_call`).
- `GET /v1/models`: the groups the key may call.
- `GET /health`: liveness and readiness (503 while draining or when the state
  store does not answer); `/health/live` is liveness alone.
- `GET /metrics`: Prometheus text format.

Errors are OpenAI-shaped: 401 for a missing or unknown key (the same answer
either way), 400 for a key in the query string or a malformed body, 413 past
the size limit, 404 for a group the key cannot call, 429 over the key's rate
limit or budget, 502/503/504 when the upstream routes are exhausted.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Any

import orjson

from langchain_holysheep.resilience._exceptions import RateLimitTimeoutError
from langchain_holysheep.resilience._routes import Requirements
from langchain_holysheep.serve._asgi import (
    Receive,
    Send,
    bearer_key,
    check_chat_request,
    query_has_key,
    read_json,
    respond,
    respond_error,
)
from langchain_holysheep.serve._errors import ProxyError
from langchain_holysheep.serve._groups import Group
from langchain_holysheep.serve._metrics import CONTENT_TYPE_LATEST
from langchain_holysheep.serve._relay_call import relay_call
from langchain_holysheep.serve._runtime import Runtime
from langchain_holysheep.serve._spend import CallSpend
from langchain_holysheep.serve._upstream import close_sessions
from langchain_holysheep.serve.config import (
    CONFIG_ENV,
    KeySpec,
    hash_key,
    load_config,
)
from langchain_holysheep.spend.budgets._errors import (
    BudgetExceededError,
    BudgetStoreError,
    UnpricedCallError,
)
from langchain_holysheep.spend.budgets._reservation import Reservation

__all__ = ["ServeApp", "app_from_env"]

_logger = logging.getLogger("langchain_holysheep.serve")

_UNAUTHORIZED = ProxyError(
    401,
    "Incorrect or missing API key. Send your virtual key as "
    "'Authorization: Bearer <key>'.",
    code="invalid_api_key",
)
_KEY_IN_QUERY = ProxyError(
    400,
    "Keys are not accepted in the query string (URLs end up in logs). Send the "
    "key as 'Authorization: Bearer <key>' and rotate the one you sent.",
    code="key_in_query",
)


class ServeApp:
    """The ASGI application of `holysheep serve`.

    Args:
        runtime: what the process built from its config.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.limit = runtime.config.server.max_body_bytes

    async def __call__(
        self, scope: dict[str, Any], receive: Receive, send: Send
    ) -> None:
        """Serve one ASGI connection scope (HTTP or lifespan)."""
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.runtime.draining = True
                self.runtime.close()
                await close_sessions()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        try:
            if query_has_key(scope):
                raise _KEY_IN_QUERY
            if path == "/v1/chat/completions":
                _only(method, "POST")
                await self._chat(scope, receive, send)
            elif path == "/v1/models":
                _only(method, "GET")
                await self._models(scope, send)
            elif path in ("/health", "/health/ready", "/health/live"):
                await self._health(path, send)
            elif path == "/metrics":
                body = self.runtime.metrics.render()
                await send_text(send, body, CONTENT_TYPE_LATEST.encode())
            else:
                raise ProxyError(404, f"No such endpoint: {path}", code="not_found")
        except ProxyError as err:
            await respond_error(send, err)

    # -- endpoints -----------------------------------------------------------------
    def _authenticate(self, scope: dict[str, Any]) -> tuple[str, KeySpec]:
        key = bearer_key(scope)
        found = self.runtime.keys.get(hash_key(key)) if key else None
        if found is None:
            raise _UNAUTHORIZED
        return found

    async def _models(self, scope: dict[str, Any], send: Send) -> None:
        _, spec = self._authenticate(scope)
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "holysheep"}
            for name in self.runtime.groups
            if spec.allows(name)
        ]
        await respond(send, 200, orjson.dumps({"object": "list", "data": data}))

    async def _health(self, path: str, send: Send) -> None:
        if path == "/health/live":
            await respond(send, 200, b'{"status":"ok"}')
            return
        checks = self.runtime.ready()
        status = 200 if checks["ready"] else 503
        body = {"status": "ok" if status == 200 else "unavailable", **checks}
        await respond(send, status, orjson.dumps(body))

    async def _chat(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        metrics = self.runtime.metrics
        started = time.perf_counter()
        group_name, status = "-", 500
        metrics.started()
        try:
            name, spec = self._authenticate(scope)
            body = await read_json(scope, receive, self.limit)
            check_chat_request(body)
            group = self._group(spec, body["model"])
            group_name = group.name
            requirements = self._rate_limit(name, body)
            reservation = self._reserve(name, group, body)
            who = CallSpend(name, tuple(spec.tags), group.name, body)
            status = await relay_call(
                send,
                receive,
                group,
                body,
                self.runtime.spend,
                who,
                reservation,
                requirements,
            )
        except ProxyError as err:
            status = err.status
            raise
        finally:
            metrics.done(group_name, status, time.perf_counter() - started)

    def _group(self, spec: KeySpec, model: str) -> Group:
        group = self.runtime.groups.get(model)
        if group is None or not spec.allows(model):
            raise ProxyError(
                404,
                f"The model {model!r} does not exist or this key cannot use it. "
                "GET /v1/models lists the models this key can call.",
                param="model",
                code="model_not_found",
            )
        return group

    def _rate_limit(self, name: str, body: dict[str, Any]) -> Requirements | None:
        """Take the key's rate-limit slot; the request's requirements (if read)."""
        limiter = self.runtime.limiters.get(name)
        if limiter is None:
            return None
        requirements = Requirements.of(body["messages"], body)
        try:
            limiter.reserve(requirements.rate_tokens, max_wait=0.0)
        except RateLimitTimeoutError as exc:
            wait = max(1, math.ceil(exc.wait_s))
            raise ProxyError(
                429,
                f"This key's rate limit is reached; retry in {wait} s.",
                type="requests",
                code="rate_limit_exceeded",
                headers={"retry-after": str(wait)},
            ) from None
        return requirements

    def _reserve(
        self, name: str, group: Group, body: dict[str, Any]
    ) -> Reservation | None:
        try:
            return self.runtime.spend.reserve(name, group, body)
        except BudgetExceededError as exc:
            raise ProxyError(
                429,
                f"{exc} Nothing was sent upstream.",
                type="insufficient_quota",
                code="budget_exceeded",
            ) from None
        except UnpricedCallError as exc:
            raise ProxyError(400, str(exc), code="unpriced_model") from None
        except BudgetStoreError as exc:
            raise ProxyError(
                503, str(exc), type="server_error", code="budget_unavailable"
            ) from None


def _only(method: str, allowed: str) -> None:
    if method != allowed:
        raise ProxyError(
            405,
            f"Method {method} not allowed; use {allowed}.",
            code="method_not_allowed",
        )


async def send_text(send: Send, body: bytes, content_type: bytes) -> None:
    """A plain 200 response."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", content_type)],
        }
    )
    await send({"type": "http.response.body", "body": body})


def app_from_env() -> ServeApp:
    """The app of the config named by `HOLYSHEEP_SERVE_CONFIG` (uvicorn factory)."""
    return ServeApp(Runtime(load_config(os.environ.get(CONFIG_ENV))))
