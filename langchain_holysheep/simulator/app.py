"""The simulator's HTTP routes (Starlette): `/v1/models` and `/v1/chat/completions`.

Per request: read and parse the body (orjson), log it, check the key, the body
and the model, pick the fault from the plan, build the reply, and return a
`Delivery` that plays the fault out. No validation framework, no middleware.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from langchain_holysheep.simulator import wire
from langchain_holysheep.simulator.delivery import (
    deliver_error,
    deliver_reply,
    deliver_reset,
    deliver_silent,
)
from langchain_holysheep.simulator.exchange import CYCLE_KEY, Delivery
from langchain_holysheep.simulator.faults import Fault
from langchain_holysheep.simulator.log import RequestLog, RequestRecord
from langchain_holysheep.simulator.models import ModelDirectory
from langchain_holysheep.simulator.plan import FaultPlan
from langchain_holysheep.simulator.replies import (
    Completion,
    Prompt,
    compose,
    read_prompt,
)
from langchain_holysheep.simulator.tokens import PromptCache

__all__ = ["SimulatorApp"]

_CREATED = 1_735_689_600  # 2025-01-01, the "created" of every listed model


def _retry_headers(fault: Fault) -> list[tuple[bytes, bytes]]:
    headers = []
    if fault.retry_after is not None:
        value = fault.retry_after
        text = str(int(value)) if float(value).is_integer() else str(value)
        headers.append((b"retry-after", text.encode()))
    if fault.retry_after_ms is not None:
        headers.append((b"retry-after-ms", str(fault.retry_after_ms).encode()))
    return headers


def _missing(model: str) -> str:
    return f"The model `{model}` does not exist or you do not have access to it."


class SimulatorApp:
    """Routes and per-request logic over shared simulator state.

    Args:
        api_key: the accepted Bearer key.
        directory: the served models.
        plan: the fault plan.
        log: the ground-truth log.
        cache: the prompt-prefix cache.
        hidden_prompt_tokens: prompt tokens billed on every reply beyond the
            request's own (a system prompt the gateway adds).
    """

    def __init__(
        self,
        *,
        api_key: str,
        directory: ModelDirectory,
        plan: FaultPlan,
        log: RequestLog,
        cache: PromptCache,
        hidden_prompt_tokens: int = 0,
    ) -> None:
        self.hidden_prompt_tokens = hidden_prompt_tokens
        self._auth = f"Bearer {api_key}".encode()
        self.directory = directory
        self.plan = plan
        self.log = log
        self.cache = cache
        #: Set when the server stops: hanging deliveries close their connections.
        self.stopping = asyncio.Event()

    # -- ASGI ---------------------------------------------------------------------
    def asgi(self) -> ASGIApp:
        """The ASGI application.

        Starlette routes behind a one-line wrapper that exposes uvicorn's
        connection to deliveries.
        """
        inner = Starlette(
            routes=[
                Route("/v1/models", self.list_models, methods=["GET"]),
                Route("/v1/models/{model_id:path}", self.get_model, methods=["GET"]),
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
            ],
            exception_handlers={HTTPException: self._http_error},
        )

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                scope[CYCLE_KEY] = getattr(send, "__self__", None)
            await inner(scope, receive, send)

        return app

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        path = request.url.path
        message = f"{request.method} {path} is not served by the HolySheep simulator."
        return Response(
            wire.error_body(status, message=message),
            status,
            media_type="application/json",
        )

    def _authorized(self, request: Request) -> bool:
        given = request.headers.get("authorization", "").encode()
        return hmac.compare_digest(given, self._auth)

    @staticmethod
    def _unauthorized(request: Request) -> bytes:
        if not request.headers.get("authorization"):
            message = (
                "You didn't provide an API key. Send it as "
                "'Authorization: Bearer <key>' (HOLYSHEEP_API_KEY)."
            )
        else:
            message = (
                "Incorrect API key provided. Check HOLYSHEEP_API_KEY (copy-pasted keys "
                "often carry spaces or line breaks)."
            )
        return wire.error_body(401, message=message, code="invalid_api_key")

    # -- /v1/models ---------------------------------------------------------------
    def _served(self) -> list[tuple[str, str]]:
        listed = self.directory.listed()
        ids = {mid for mid, _ in listed}
        extra = sorted(self.plan.configured_models() - ids)
        return listed + [(mid, "holysheep") for mid in extra]

    async def list_models(self, request: Request) -> Response:
        """`GET /v1/models`."""
        if not self._authorized(request):
            return Response(
                self._unauthorized(request), 401, media_type="application/json"
            )
        return Response(
            wire.model_list(self._served(), _CREATED), media_type="application/json"
        )

    async def get_model(self, request: Request) -> Response:
        """`GET /v1/models/{id}`."""
        if not self._authorized(request):
            return Response(
                self._unauthorized(request), 401, media_type="application/json"
            )
        mid = request.path_params["model_id"]
        for model_id, owner in self._served():
            if model_id == mid:
                body = {
                    "id": mid,
                    "object": "model",
                    "created": _CREATED,
                    "owned_by": owner,
                }
                return Response(wire.dumps(body), media_type="application/json")
        return Response(self._not_found(mid), 404, media_type="application/json")

    @staticmethod
    def _not_found(model: str) -> bytes:
        return wire.error_body(
            404,
            message=_missing(model),
            code="model_not_found",
        )

    # -- /v1/chat/completions -----------------------------------------------------
    def _deliver(self, handler: Any, record: RequestRecord) -> Delivery:
        return Delivery(handler, log=self.log, record=record, stopping=self.stopping)

    def _reject(
        self,
        record: RequestRecord,
        status: int,
        body: bytes,
        *,
        fault: str,
        delay: float = 0.0,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> Delivery:
        self.log.update(record, fault=fault)
        return self._deliver(
            deliver_error(status, body, delay=delay, headers=headers), record
        )

    async def chat(self, request: Request) -> Delivery:
        """`POST /v1/chat/completions`."""
        raw = await request.body()
        body: Any = None
        with contextlib.suppress(ValueError):
            body = wire.loads(raw) if raw else None
        model = ""
        stream = False
        if isinstance(body, dict):
            given = body.get("model")
            model = given if isinstance(given, str) else ""
            stream = bool(body.get("stream"))
        record = self.log.open(model, stream)
        if not self._authorized(request):
            return self._reject(record, 401, self._unauthorized(request), fault="auth")
        problem = self._invalid(body)
        if problem is not None:
            param, message = problem
            err = wire.error_body(400, message=message, param=param)
            return self._reject(record, 400, err, fault="invalid_request")
        assert isinstance(body, dict)
        directory = self.directory
        if (
            model not in directory
            and not directory.accept_any_model
            and not self.plan.is_configured(model)
        ):
            return self._reject(
                record, 404, self._not_found(model), fault="unknown_model"
            )
        fault = self.plan.next_fault(model)
        return self._respond(record, model, stream, body, fault)

    @staticmethod
    def _invalid(body: Any) -> tuple[str | None, str] | None:
        if not isinstance(body, dict):
            return None, "We could not parse the JSON body of your request."
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "model", "You must provide a model parameter."
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return (
                "messages",
                "'messages' must be a non-empty array of message objects.",
            )
        if not all(isinstance(m, Mapping) for m in messages):
            return "messages", "Every item of 'messages' must be an object."
        return None

    def _respond(
        self,
        record: RequestRecord,
        model: str,
        stream: bool,
        body: dict[str, Any],
        fault: Fault,
    ) -> Delivery:
        self.log.update(record, fault=fault.kind)
        if fault.kind == "silent":
            return self._deliver(deliver_silent(), record)
        if fault.kind == "reset":
            return self._deliver(deliver_reset(), record)
        info = self.directory.get(model)
        prompt = read_prompt(model, body, body["messages"])
        refused = self._refusal(record, model, fault, prompt, info.context_window)
        if refused is not None:
            return refused
        completion = self._complete(record, model, body, prompt, info.reasoning)
        rid = f"chatcmpl-sim{record.seq}"
        handler = deliver_reply(fault, completion, rid, model, body if stream else None)
        return self._deliver(handler, record)

    def _refusal(
        self,
        record: RequestRecord,
        model: str,
        fault: Fault,
        prompt: Prompt,
        context_window: int,
    ) -> Delivery | None:
        """The error response of a scripted error or a too long prompt, if any."""
        scripted = fault.kind == "context_length_exceeded"
        if scripted or (not fault.is_error and prompt.tokens > context_window):
            limit = fault.context_window or context_window
            resulted = limit + prompt.tokens if scripted else prompt.tokens
            message = (
                f"This model's maximum context length is {limit} tokens. However, your "
                f"messages resulted in {resulted} tokens. Please reduce the length of "
                "the messages."
            )
            err = wire.error_body(
                400, message=message, param="messages", code="context_length_exceeded"
            )
            return self._reject(
                record, 400, err, fault="context_length_exceeded", delay=fault.delay
            )
        if not fault.is_error:
            return None
        status = fault.http_status or 500
        text = fault.message
        if fault.kind == "model_not_found" and text is None:
            text = _missing(model)
        err = wire.error_body(status, message=text, code=fault.error_code)
        return self._reject(
            record,
            status,
            err,
            fault=fault.kind,
            delay=fault.delay,
            headers=_retry_headers(fault),
        )

    def _complete(
        self,
        record: RequestRecord,
        model: str,
        body: dict[str, Any],
        prompt: Prompt,
        reasoning_model: bool,
    ) -> Completion:
        """Compose the reply and log its token counts (billed or not)."""
        cached = self.cache.cached_tokens(prompt.cache_keys, prompt.prefix_tokens)
        self.cache.remember(prompt.cache_keys)
        completion = compose(
            model, body, prompt, reasoning_model=reasoning_model, cached_tokens=cached
        )
        completion.prompt_tokens += self.hidden_prompt_tokens
        self.log.update(
            record,
            prompt_tokens=completion.prompt_tokens,
            cached_tokens=completion.cached_tokens,
            completion_tokens=completion.completion_tokens,
            reasoning_tokens=completion.reasoning_tokens,
        )
        return completion
