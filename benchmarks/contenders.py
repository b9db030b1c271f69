"""Contender builders shared by the benchmarks.

Each builder takes the simulator's base URL (and options) and returns a callable
(sync: `() -> marks | None`; async: `async () -> None`). Builders raise
`harness.Skip` when the code they need has not landed.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from harness import API_KEY, CHAIN, DOC_TIMEOUTS_S, MESSAGES, PROMPT, Skip

PRIMARY = CHAIN[0]
FALLBACKS = CHAIN[1:]
BODY = {"model": PRIMARY, "messages": MESSAGES}
STREAM_BODY = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
HEADERS = {"authorization": f"Bearer {API_KEY}", "content-type": "application/json"}


def lc_messages() -> list[Any]:
    from langchain_core.messages import HumanMessage

    return [HumanMessage(PROMPT)]


# --------------------------------------------------------------------------- raw httpx2
def raw_httpx2(base_url: str, model: str = PRIMARY) -> Callable[[], None]:
    """One POST with httpx2 (the openai SDK's transport), JSON in and out."""
    import httpx2

    client = httpx2.Client(base_url=base_url, headers=HEADERS, timeout=30)
    body = {**BODY, "model": model}
    url = "/chat/completions"

    def call() -> None:
        r = client.post(url, json=body)
        r.raise_for_status()
        r.json()

    return call


def raw_httpx2_failover(
    base_url: str, primary: str, fallback: str
) -> Callable[[], None]:
    """The floor of a failed-primary call: POST to the primary (error), then POST
    to the fallback (ok), no retry, no sleep."""
    import httpx2

    client = httpx2.Client(base_url=base_url, headers=HEADERS, timeout=30)
    first = {**BODY, "model": primary}
    second = {**BODY, "model": fallback}

    def call() -> None:
        r = client.post("/chat/completions", json=first)
        if r.status_code < 400:
            r.json()
            return
        r.read()
        r = client.post("/chat/completions", json=second)
        r.raise_for_status()
        r.json()

    return call


def raw_httpx2_stream(base_url: str) -> Callable[[], dict[str, int]]:
    """Streaming POST read to the end of the SSE body (keeps the connection
    pooled), each `data:` line parsed; ttft = first non-empty content delta."""
    import httpx2

    client = httpx2.Client(base_url=base_url, headers=HEADERS, timeout=30)
    clock = time.perf_counter_ns

    def call() -> dict[str, int]:
        ttft = 0
        with client.stream("POST", "/chat/completions", json=STREAM_BODY) as r:
            r.raise_for_status()
            for line in r.iter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    continue
                chunk = json.loads(data)
                if not ttft:
                    choices = chunk.get("choices") or ()
                    if choices and (choices[0].get("delta") or {}).get("content"):
                        ttft = clock()
        return {"ttft": ttft}

    return call


# --------------------------------------------------------------------------- LangChain
def chat_openai(base_url: str, model: str = PRIMARY, **kwargs: Any) -> Any:
    from langchain_openai import ChatOpenAI

    kwargs.setdefault("timeout", DOC_TIMEOUTS_S.get(model, 30.0))
    return ChatOpenAI(model=model, base_url=base_url, api_key=API_KEY, **kwargs)


def chat_openai_retry_fallbacks(
    base_url: str, *, no_sleep: bool = False, **kwargs: Any
) -> Any:
    """`ChatOpenAI(gpt-4.1).with_retry().with_fallbacks([...3 more])`, the usual
    LangChain recipe. `no_sleep`: SDK retries off and no wait between the
    `with_retry` attempts (the pure cost of retrying, without backoff)."""
    if no_sleep:
        kwargs.setdefault("max_retries", 0)
    primary = chat_openai(base_url, PRIMARY, **kwargs)
    retry_kwargs = {"wait_exponential_jitter": False} if no_sleep else {}
    return primary.with_retry(**retry_kwargs).with_fallbacks(
        [chat_openai(base_url, m, **kwargs) for m in FALLBACKS]
    )


LIMITS_OFF: dict[str, Any] = {"first_token_timeout": None, "stall_timeout": None}
"""ChatHolySheep without first-token/stall limits: plain (non-streamed) requests."""


def holysheep_bare(base_url: str, model: str = PRIMARY, **kwargs: Any) -> Any:
    """ChatHolySheep with its defaults (first-token and stall limits of 30 s:
    a non-streaming call reads its answer as a stream) and the document's
    per-model timeout."""
    from langchain_holysheep import ChatHolySheep

    kwargs.setdefault("timeout", DOC_TIMEOUTS_S.get(model, 30.0))
    return ChatHolySheep(model=model, base_url=base_url, api_key=API_KEY, **kwargs)


def holysheep_policy_kwargs(scale: float = 1.0) -> dict[str, Any]:
    """Constructor arguments turning on ChatHolySheep's whole policy: the
    document's chain with its per-model timeouts, retry (3 attempts, backoff),
    a circuit breaker (the package default: 5 failures and a 50 % failure rate
    in a 60 s window, 60 s cooldown; the gateway-wide breaker keeps its
    defaults), a client-side rate limit on the primary (high enough never to
    throttle these benchmarks, so its cost is the bookkeeping), and an overall
    deadline. `scale` divides every duration (the replay runs 20x faster).
    First-token and stall limits keep the package defaults (30 s) unless the
    caller passes its own (`LIMITS_OFF` turns them off)."""
    from langchain_holysheep import ChatHolySheep

    names = set(ChatHolySheep.model_fields) | {
        f.alias for f in ChatHolySheep.model_fields.values() if f.alias
    }
    if "fallbacks" not in names:
        raise Skip("ChatHolySheep has no `fallbacks` yet (resilience not landed)")
    from langchain_holysheep.resilience import (
        BreakerConfig,
        BreakerRegistry,
        RateLimit,
        RetryPolicy,
    )

    d = RetryPolicy()
    b = BreakerConfig()
    model_breaker = BreakerConfig(
        failure_threshold=5,
        failure_rate=getattr(b, "failure_rate", None),
        minimum_requests=b.minimum_requests,
        window=b.window / scale,
        cooldown=60.0 / scale,
        buckets=b.buckets,
    )
    breaker: Any = model_breaker
    if scale != 1.0:  # the gateway-wide breaker's durations scale too: own registry
        from langchain_holysheep.resilience._breakers import (
            DEFAULT_GATEWAY_CONFIG as G,
        )

        gateway = BreakerConfig(
            failure_threshold=G.failure_threshold,
            failure_rate=getattr(G, "failure_rate", None),
            minimum_requests=G.minimum_requests,
            window=G.window / scale,
            cooldown=G.cooldown / scale,
        )
        breaker = BreakerRegistry(model_breaker, gateway_config=gateway)
    return {
        "timeout": DOC_TIMEOUTS_S[PRIMARY] / scale,
        "fallbacks": [
            {"model": m, "timeout": DOC_TIMEOUTS_S[m] / scale} for m in FALLBACKS
        ],
        "retry": RetryPolicy(
            max_attempts=d.max_attempts,
            initial=d.initial / scale,
            max_backoff=d.max_backoff / scale,
            min_wait=d.min_wait / scale,
            max_retry_after=d.max_retry_after / scale,
        ),
        "breaker": breaker,
        "rate_limit": RateLimit(requests_per_minute=10_000_000),
        "deadline": 120.0 / scale,
    }


def holysheep_policy(
    base_url: str, scale: float = 1.0, model: str = PRIMARY, **kwargs: Any
) -> Any:
    from langchain_holysheep import ChatHolySheep

    full = {**holysheep_policy_kwargs(scale), **kwargs}
    if model != PRIMARY:  # same policy, chain starting at `model`
        chain = CHAIN[CHAIN.index(model) :]
        full["timeout"] = DOC_TIMEOUTS_S[model] / scale
        full["fallbacks"] = [
            {"model": m, "timeout": DOC_TIMEOUTS_S[m] / scale} for m in chain[1:]
        ]
    return ChatHolySheep(model=model, base_url=base_url, api_key=API_KEY, **full)


def lc_invoke(model: Any) -> Callable[[], None]:
    msgs = lc_messages()

    def call() -> None:
        model.invoke(msgs)

    return call


def lc_stream(model: Any) -> Callable[[], dict[str, int]]:
    msgs = lc_messages()
    clock = time.perf_counter_ns

    def call() -> dict[str, int]:
        ttft = 0
        for chunk in model.stream(msgs):
            if not ttft and chunk.content:
                ttft = clock()
        return {"ttft": ttft}

    return call


def lc_ainvoke(model: Any) -> Callable[[], Awaitable[None]]:
    msgs = lc_messages()

    async def call() -> None:
        await model.ainvoke(msgs)

    return call


# --------------------------------------------------------------------------- LiteLLM
def _litellm() -> Any:
    try:
        import litellm
    except ImportError as exc:
        raise Skip(
            "litellm is not installed (run benchmarks/run.sh: benchmarks/.venv)"
        ) from exc
    litellm.suppress_debug_info = True
    litellm.telemetry = False
    litellm.drop_params = True
    return litellm


def litellm_router(
    base_url: str,
    *,
    num_retries: int = 2,
    fallbacks: bool = True,
    retry_after: int = 0,
    **kwargs: Any,
) -> Any:
    """A LiteLLM Router over the document's chain, every model as
    `openai/<model>` at the simulator, with the document's per-model timeouts."""
    _litellm()
    from litellm import Router

    model_list = [
        {
            "model_name": m,
            "litellm_params": {
                "model": f"openai/{m}",
                "api_base": base_url,
                "api_key": API_KEY,
                "timeout": DOC_TIMEOUTS_S[m],
                "max_retries": 0,
            },
        }
        for m in CHAIN
    ]
    return Router(
        model_list=model_list,
        fallbacks=[{PRIMARY: list(FALLBACKS)}] if fallbacks else [],
        num_retries=num_retries,
        retry_after=retry_after,
        **kwargs,
    )


def router_call(router: Any) -> Callable[[], None]:
    msgs = [dict(m) for m in MESSAGES]

    def call() -> None:
        router.completion(model=PRIMARY, messages=msgs)

    return call


def router_stream(router: Any) -> Callable[[], dict[str, int]]:
    msgs = [dict(m) for m in MESSAGES]
    clock = time.perf_counter_ns

    def call() -> dict[str, int]:
        ttft = 0
        for chunk in router.completion(
            model=PRIMARY,
            messages=msgs,
            stream=True,
            stream_options={"include_usage": True},
        ):
            if not ttft and chunk.choices and chunk.choices[0].delta.content:
                ttft = clock()
        return {"ttft": ttft}

    return call


def router_acall(router: Any) -> Callable[[], Awaitable[None]]:
    msgs = [dict(m) for m in MESSAGES]

    async def call() -> None:
        await router.acompletion(model=PRIMARY, messages=msgs)

    return call


# --------------------------------------------------------------------------- async raw
def raw_httpx2_async(base_url: str) -> Callable[[], Awaitable[None]]:
    import httpx2

    client = httpx2.AsyncClient(
        base_url=base_url,
        headers=HEADERS,
        timeout=30,
        limits=httpx2.Limits(max_connections=100),
    )

    async def call() -> None:
        r = await client.post("/chat/completions", json=BODY)
        r.raise_for_status()
        r.json()

    return call


def raw_aiohttp(base_url: str) -> Callable[[], Awaitable[None]]:
    """Must be built inside the running event loop."""
    import aiohttp

    session = aiohttp.ClientSession(
        headers=HEADERS, connector=aiohttp.TCPConnector(limit=100)
    )
    url = f"{base_url}/chat/completions"
    payload = json.dumps(BODY)

    async def call() -> None:
        async with session.post(url, data=payload) as r:
            r.raise_for_status()
            await r.json()

    call.session = session  # type: ignore[attr-defined]
    return call


AIO_CLIENTS: list[Any] = []


def aiohttp_client() -> Any:
    """openai's aiohttp transport (`openai.DefaultAioHttpClient`), for
    `http_async_client=`; build inside the running loop (closed by `aclose_all`)."""
    import openai

    client = openai.DefaultAioHttpClient()
    AIO_CLIENTS.append(client)
    return client


async def aclose_all() -> None:
    """Close the aiohttp clients built here, and LiteLLM's own (its Router
    keeps aiohttp sessions that would be reported unclosed at exit)."""
    import contextlib
    import sys

    for client in AIO_CLIENTS:
        with contextlib.suppress(Exception):
            await client.aclose()
    AIO_CLIENTS.clear()
    litellm = sys.modules.get("litellm")
    close = getattr(litellm, "close_litellm_async_clients", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()


def accepts(cls: Any, name: str) -> bool:
    fields = getattr(cls, "model_fields", {})
    if name in fields:
        return True
    if any(getattr(f, "alias", None) == name for f in fields.values()):
        return True
    try:
        return name in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def describe(obj: Any, keys: Mapping[str, Any]) -> str:
    return (
        f"{type(obj).__name__}("
        + ", ".join(f"{k}={v!r}" for k, v in keys.items())
        + ")"
    )


# --------------------------------------------------------------------------- what-if prototypes
# Not product code: subclasses of ChatOpenAI that show, with numbers, what
# ChatHolySheep could gain in its async path.
_SESSIONS: dict[int, Any] = {}


def prototype_inline_result(base_url: str) -> Callable[[], Awaitable[None]]:
    """ChatOpenAI on the aiohttp transport whose `_agenerate` builds the
    ChatResult inline instead of in a thread-pool executor (langchain-openai
    does `await run_in_executor(None, self._create_chat_result, ...)` per call)."""
    from langchain_openai import ChatOpenAI

    class InlineResult(ChatOpenAI):
        async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[no-untyped-def]
            payload = self._get_request_payload(messages, stop=stop, **kwargs)
            raw = await self.async_client.with_raw_response.create(**payload)
            return self._create_chat_result(raw.parse(), {})

    llm = InlineResult(
        model=PRIMARY,
        base_url=base_url,
        api_key=API_KEY,
        timeout=30,
        http_async_client=aiohttp_client(),
    )
    return lc_ainvoke(llm)


def prototype_direct_aiohttp(base_url: str) -> Callable[[], Awaitable[None]]:
    """ChatOpenAI whose `_agenerate` posts the same payload with a plain aiohttp
    session (no openai SDK request/response machinery) and builds the ChatResult
    inline from the JSON dict. Error mapping is left out: a ceiling, not a design."""
    import aiohttp
    from langchain_openai import ChatOpenAI

    url = f"{base_url}/chat/completions"

    def session() -> Any:
        import asyncio

        loop = asyncio.get_running_loop()
        s = _SESSIONS.get(id(loop))
        if s is None:
            s = aiohttp.ClientSession(
                headers=HEADERS, connector=aiohttp.TCPConnector(limit=1000)
            )
            _SESSIONS[id(loop)] = s
        return s

    class Direct(ChatOpenAI):
        async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[no-untyped-def]
            payload = self._get_request_payload(messages, stop=stop, **kwargs)
            async with session().post(url, data=json.dumps(payload)) as r:
                data = await r.json()
                if r.status >= 400:
                    raise RuntimeError(f"HTTP {r.status}: {data}")
            return self._create_chat_result(data, {})

    return lc_ainvoke(
        Direct(model=PRIMARY, base_url=base_url, api_key=API_KEY, timeout=30)
    )


async def aclose_sessions() -> None:
    for s in _SESSIONS.values():
        await s.close()
    _SESSIONS.clear()


def prototype_lean_sdk_sync(base_url: str) -> Callable[[], None]:
    """ChatOpenAI whose `_generate` sends the already-built payload with the
    openai client's generic `post(..., cast_to=dict)`: same SDK transport, retries
    and error classes, but no `TypedDict` transform of the request and no
    pydantic construction of the response (the ChatResult is built from the dict)."""
    from langchain_openai import ChatOpenAI

    class LeanSDK(ChatOpenAI):
        def _generate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[no-untyped-def]
            payload = self._get_request_payload(messages, stop=stop, **kwargs)
            data = self.root_client.post(
                "/chat/completions", body=payload, cast_to=dict
            )
            return self._create_chat_result(data, {})

    return lc_invoke(
        LeanSDK(model=PRIMARY, base_url=base_url, api_key=API_KEY, timeout=30)
    )


def prototype_lean_sdk_async(base_url: str) -> Callable[[], Awaitable[None]]:
    """Async twin of `prototype_lean_sdk_sync`, on openai's aiohttp transport,
    ChatResult built inline."""
    from langchain_openai import ChatOpenAI

    class LeanSDK(ChatOpenAI):
        async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[no-untyped-def]
            payload = self._get_request_payload(messages, stop=stop, **kwargs)
            data = await self.root_async_client.post(
                "/chat/completions", body=payload, cast_to=dict
            )
            return self._create_chat_result(data, {})

    llm = LeanSDK(
        model=PRIMARY,
        base_url=base_url,
        api_key=API_KEY,
        timeout=30,
        http_async_client=aiohttp_client(),
    )
    return lc_ainvoke(llm)
