"""`ChatHolySheep`: the LangChain chat model for the HolySheep AI gateway."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import LangSmithParams
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.utils import from_env, secret_from_env
from langchain_openai.chat_models.base import BaseChatOpenAI
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr, model_validator
from typing_extensions import Self

from langchain_holysheep import _fastpath
from langchain_holysheep._gateway import (
    DEFAULT_BASE_URL,
    alist_gateway_models,
    list_gateway_models,
    reraise,
    resolve_api_key,
)
from langchain_holysheep._http import (
    AsyncTransportKind,
    aiohttp_available,
    shared_async_client,
)
from langchain_holysheep.catalogue import default_catalogue
from langchain_holysheep.errors import ConfigurationError
from langchain_holysheep.resilience.errors import ErrorPolicy
from langchain_holysheep.resilience.events import LiveStreamMixin
from langchain_holysheep.resilience.model_router import build_router, check_settings
from langchain_holysheep.resilience.ratelimit import RateLimit
from langchain_holysheep.resilience.retry import RetryPolicy
from langchain_holysheep.resilience.routing import Router
from langchain_holysheep.spend.budget import Budget
from langchain_holysheep.spend.callback import ROUTES_PARAM, HolySheepCallbackHandler

__all__ = ["DEFAULT_BASE_URL", "ChatHolySheep"]


class ChatHolySheep(LiveStreamMixin, BaseChatOpenAI):  # type: ignore[override]
    r"""Chat model for the HolySheep AI gateway (GPT-4.1, Claude, Gemini, DeepSeek...).

    HolySheep speaks the OpenAI chat-completions protocol, so `ChatHolySheep`
    is a small `BaseChatOpenAI` subclass: everything `ChatOpenAI` does (tools,
    structured output, streaming, async, batch) works, with the gateway's own
    defaults on top: its key and URL from the environment, streamed token usage
    on by default, model aliases and typo detection from the catalogue, and
    clear errors for bad keys and unknown models.

    Setup:
        Install `langchain-holysheep` and set `HOLYSHEEP_API_KEY`.

        ```bash
        pip install -U langchain-holysheep
        export HOLYSHEEP_API_KEY="hs-..."
        # optional, defaults to https://api.holysheep.ai/v1
        export HOLYSHEEP_BASE_URL="https://api.holysheep.ai/v1"
        ```

    Key init args — completion params:
        model: str
            Gateway model id or alias, e.g. `"gpt-4.1"`, `"claude-sonnet-4.5"`,
            `"gemini-2.5-flash"`, `"deepseek-v3.2"`; aliases such as `"gpt4"` or
            `"sonnet"` resolve at construction. Default `"gpt-4.1"`.
        temperature: float | None
            Sampling temperature.
        max_tokens: int | None
            Max number of tokens to generate.
        stream_usage: bool
            Report token usage in streamed responses (default `True`; LangChain
            turns it off for custom base URLs, which would make streamed spend 0).

    Key init args — client params:
        api_key: SecretStr | None
            HolySheep API key. Read from `HOLYSHEEP_API_KEY` if not passed;
            surrounding whitespace is stripped.
        base_url: str
            Gateway URL. Read from `HOLYSHEEP_BASE_URL`, default
            `https://api.holysheep.ai/v1`.
        timeout: float | None
            Request timeout in seconds (per attempt).
        max_retries: int | None
            Retries per model when `retry` is not given (`retry` wins). The
            OpenAI SDK's own retries are always off: attempts never multiply.
        validate_model: bool
            Reject likely typos of catalogue ids at construction (default True).

    Key init args — resilience:
        fallbacks: list
            Routes tried in order after the primary: gateway model ids, any
            `BaseChatModel` (a provider's own endpoint, a local vLLM), `Route`s,
            or dicts with per-route settings (`{"model": "deepseek-v3.2",
            "timeout": 25, "retry": RetryPolicy(max_attempts=2)}`).
        retry: RetryPolicy | None
            Retries on the same model (default: 3 attempts, backoff 0.5 s
            doubling up to 8 s with jitter, `Retry-After` honoured up to 30 s).
        breaker: BreakerConfig | BreakerRegistry | None
            Circuit-breaker settings, or a registry (default: process-wide).
        rate_limit: RateLimit | None
            Client-side requests/tokens per minute for the primary model.
        first_token_timeout / stall_timeout: float | None
            Stream limits (time to first content, gap between chunks); both
            fall over. With `streaming=True`, `invoke` streams internally and
            they apply to it too (a broken stream restarts on the next model).
        deadline: float | None
            Overall seconds for a call, every retry and fallback included.
        error_policy: ErrorPolicy | None
            Overrides of the retry / fall-back / stop table.

        Set `HOLYSHEEP_ENABLED=false` to send traffic to the non-gateway
        fallbacks only (rollback, no code change); pass `preferred_model=` to
        `invoke` / `stream` to move a model to the front for one call.

    Instantiate:
        ```python
        from langchain_holysheep import ChatHolySheep

        model = ChatHolySheep(model="gpt-4.1", temperature=0, max_tokens=512)
        ```

    Invoke:
        ```python
        messages = [
            ("system", "Translate the user sentence to French."),
            ("human", "I love programming."),
        ]
        model.invoke(messages)
        ```

    Stream:
        ```python
        for chunk in model.stream(messages):
            print(chunk.text, end="")
        ```

    Async:
        ```python
        await model.ainvoke(messages)
        async for chunk in model.astream(messages):
            print(chunk.text, end="")
        await model.abatch([messages, messages])
        ```

    Tool calling:
        ```python
        from pydantic import BaseModel, Field


        class GetWeather(BaseModel):
            '''Get the current weather in a given location.'''

            location: str = Field(..., description="City, e.g. Hanoi")


        model_with_tools = model.bind_tools([GetWeather])
        ai_msg = model_with_tools.invoke("What is the weather in Hanoi?")
        ai_msg.tool_calls
        ```

    Structured output:
        ```python
        class Joke(BaseModel):
            '''A joke.'''

            setup: str
            punchline: str


        model.with_structured_output(Joke).invoke("Tell me a joke about cats")
        # method="function_calling" or "json_mode" also work
        ```

    Token usage:
        ```python
        ai_msg = model.invoke(messages)
        ai_msg.usage_metadata
        # {'input_tokens': 28, 'output_tokens': 5, 'total_tokens': 33,
        #  'input_token_details': {'cache_read': 0},
        #  'output_token_details': {'reasoning': 0}}
        ```

    Response metadata:
        ```python
        ai_msg.response_metadata["model_name"]  # the model that answered
        ai_msg.response_metadata["holysheep"]
        # {'requested_model': 'gpt-4.1', 'served_model': 'gemini-2.5-flash',
        #  'route_index': 1, 'attempts': 4, 'retries': 2, 'fallbacks': 1,
        #  'failures': [{'model': 'gpt-4.1', 'status': 503, 'action': 'retry',
        #                'error': '...', 'elapsed_ms': 12.5, ...}, ...]}
        ```

    Failover:
        ```python
        model = ChatHolySheep(
            model="gpt-4.1",
            fallbacks=["gemini-2.5-flash", "deepseek-v3.2"],
            deadline=60,
            first_token_timeout=10,
        )
        model.bind_tools([GetWeather]).invoke("Weather in Hanoi?")  # fails over
        model.max_upstream_attempts()  # 9: 3 attempts x 3 models, SDK retries off
        ```

    Models:
        ```python
        ChatHolySheep.list_models()  # ids served by the gateway (GET /models)
        ```
    """

    model_name: str = Field(default="gpt-4.1", alias="model")
    """Gateway model id or alias (aliases resolve at construction)."""

    holysheep_api_key: SecretStr | None = Field(
        alias="api_key",
        default_factory=secret_from_env("HOLYSHEEP_API_KEY", default=None),
    )
    """HolySheep API key; read from `HOLYSHEEP_API_KEY` if not given."""

    holysheep_api_base: str = Field(
        alias="base_url",
        default_factory=from_env("HOLYSHEEP_BASE_URL", default=DEFAULT_BASE_URL),
    )
    """Gateway base URL; read from `HOLYSHEEP_BASE_URL` if not given."""

    openai_api_key: SecretStr | None = Field(default=None, exclude=True)  # type: ignore[assignment]
    openai_api_base: str | None = Field(default=None, exclude=True)

    stream_usage: bool | None = True
    """Include token usage in streamed responses (on by default)."""

    validate_model: bool = True
    """Reject likely typos of catalogue model ids at construction."""

    async_transport: AsyncTransportKind = "httpx"
    """Async HTTP transport: `"httpx"` (default) or `"aiohttp"` (needs the
    `aiohttp` extra; about twice the async throughput at high concurrency, see
    BENCHMARKS.md; aiohttp logs "Unclosed client session" when an event loop
    that used it ends).

    Either way the async client keeps one connection pool per event loop, so the
    model works across `asyncio.run()` calls and test loops.
    """

    fallbacks: list[Any] = Field(default_factory=list)
    """Routes after the primary: gateway ids, chat models, `Route`s or dicts."""

    retry: RetryPolicy | None = None
    """Retry policy on the same model (default from `max_retries`, else 3 tries)."""

    breaker: Any = None
    """`BreakerConfig` or `BreakerRegistry` (default: the process-wide registry)."""

    rate_limit: RateLimit | None = None
    """Client-side requests/tokens per minute for the primary model."""

    first_token_timeout: float | None = None
    """Streams: seconds allowed until the first content (then fall over)."""

    stall_timeout: float | None = None
    """Streams: longest gap between chunks, seconds (then fall over)."""

    deadline: float | None = None
    """Overall seconds for one call, across every retry and fallback."""

    error_policy: ErrorPolicy | None = None
    """Overrides of the error table (`ErrorPolicy(overrides={429: "fallback"})`)."""

    budget: Budget | None = None
    """A spending cap for this model's calls (reserved before any request).

    With `Budget(..., on_exceeded="downgrade")`, a call that cannot afford its
    worst case on every route is sent to the cheaper routes that fit.
    """

    _router: Router | None = PrivateAttr(default=None)
    _single_attempt: bool = PrivateAttr(default=False)

    model_config = ConfigDict(populate_by_name=True)

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Secrets and the environment variables they are read from."""
        return {"holysheep_api_key": "HOLYSHEEP_API_KEY"}

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """Serialisable with LangChain's `dumps` (the key stays a secret ref)."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """Namespace used by LangChain serialisation."""
        return ["langchain_holysheep", "chat_models"]

    @property
    def _llm_type(self) -> str:
        return "holysheep-chat"

    def _get_ls_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "holysheep"
        return params

    def _use_responses_api(self, payload: dict) -> bool:
        # The gateway serves chat completions only.
        return False

    @model_validator(mode="after")
    def validate_environment(self) -> Self:
        """Check the key and the model id, then build the OpenAI clients."""
        self.holysheep_api_key = resolve_api_key(self.holysheep_api_key)
        catalogue = default_catalogue()
        if self.validate_model:
            self.model_name = catalogue.check(self.model_name)
        else:
            self.model_name = catalogue.resolve(self.model_name) or self.model_name
        self.openai_api_key = self.holysheep_api_key
        self.openai_api_base = self.holysheep_api_base.rstrip("/")
        if self.async_transport == "aiohttp" and not aiohttp_available():
            raise ConfigurationError(
                "async_transport='aiohttp' needs aiohttp: "
                "pip install 'langchain-holysheep[aiohttp]'"
            )
        if (
            self.http_async_client is None
            and self.async_client is None
            and not self.openai_proxy
        ):
            self.http_async_client = shared_async_client(
                self.openai_api_base, self.request_timeout, self.async_transport
            )
        BaseChatOpenAI.validate_environment(self)  # type: ignore[operator]
        return self

    @model_validator(mode="after")
    def check_resilience_settings(self) -> Self:
        """Reject bad fallbacks / breaker / time limits at construction."""
        check_settings(self)
        return self

    @model_validator(mode="after")
    def _attach_budget(self) -> Self:
        """Price and cap this model's calls with a handler bound to `budget`."""
        if self.budget is None:
            return self
        handler = HolySheepCallbackHandler(budget=self.budget)
        if self.callbacks is None:
            self.callbacks = [handler]
        elif isinstance(self.callbacks, list):
            if not any(
                isinstance(h, HolySheepCallbackHandler) and h.budgets == [self.budget]
                for h in self.callbacks
            ):
                self.callbacks = [*self.callbacks, handler]
        else:
            self.callbacks.add_handler(handler, inherit=False)
        return self

    def _get_invocation_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        params = super()._get_invocation_params(stop=stop, **kwargs)
        # Seen by callbacks only (never sent): budgets reserve the worst case
        # over every route a call may take.
        params[ROUTES_PARAM] = self.router().route_names
        return params

    # ROUTER-INTEGRATION-POINT: every call goes through the router (retries,
    # fallbacks, breakers, limits); the routes are single-attempt clones whose
    # gateway errors are translated into helpful ones.
    def router(self) -> Router:
        """The router of this model (built on first use)."""
        if self._router is None:
            self._router = build_router(self)
        return self._router

    def max_upstream_attempts(self) -> int:
        """The most HTTP requests one call can make, all retries and fallbacks."""
        return self.router().max_upstream_attempts()

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if not self._single_attempt:
            return self.router().generate(messages, stop, run_manager, **kwargs)
        try:
            return super()._generate(messages, stop, run_manager, **kwargs)
        except (openai.APIError, json.JSONDecodeError) as exc:
            reraise(exc, self.model_name)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if not self._single_attempt:
            return await self.router().agenerate(messages, stop, run_manager, **kwargs)
        try:
            payload = self._get_request_payload(messages, stop=stop, **kwargs)
            if _fastpath.eligible(payload, self):
                reply = await _fastpath.apost_chat(self.root_async_client, payload)
                return self._create_chat_result(reply)
            return await super()._agenerate(messages, stop, run_manager, **kwargs)
        except (openai.APIError, json.JSONDecodeError) as exc:
            reraise(exc, self.model_name)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        if not self._single_attempt:
            yield from self.router().stream(messages, stop, run_manager, **kwargs)
            return
        try:
            yield from super()._stream(messages, stop, run_manager, **kwargs)
        except (openai.APIError, json.JSONDecodeError) as exc:
            reraise(exc, self.model_name)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        if not self._single_attempt:
            router = self.router()
            async for chunk in router.astream(messages, stop, run_manager, **kwargs):
                yield chunk
            return
        try:
            async for chunk in super()._astream(messages, stop, run_manager, **kwargs):
                yield chunk
        except (openai.APIError, json.JSONDecodeError) as exc:
            reraise(exc, self.model_name)

    @classmethod
    def list_models(
        cls,
        *,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        timeout: float = 10.0,
    ) -> list[str]:
        """List the model ids the gateway serves (`GET /models`).

        Args:
            api_key: defaults to `HOLYSHEEP_API_KEY`.
            base_url: defaults to `HOLYSHEEP_BASE_URL` or the public gateway.
            timeout: seconds.
        """
        return list_gateway_models(api_key=api_key, base_url=base_url, timeout=timeout)

    @classmethod
    async def alist_models(
        cls,
        *,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        timeout: float = 10.0,
    ) -> list[str]:
        """Async version of `list_models`."""
        return await alist_gateway_models(
            api_key=api_key, base_url=base_url, timeout=timeout
        )

    def _create_chat_result(
        self,
        response: dict | openai.BaseModel,
        generation_info: dict | None = None,
    ) -> ChatResult:
        """Read a reply; one that is not a usable completion raises.

        It raises `ResponseFormatError`, or the provider's error it carries.
        """
        from langchain_holysheep import _replies

        _replies.check_completion(response, self.model_name, self.openai_api_base)
        try:
            return super()._create_chat_result(response, generation_info)
        except _replies.READ_ERRORS as exc:
            raise _replies.unreadable(exc, response, self.model_name) from exc

    def _convert_chunk_to_generation_chunk(
        self,
        chunk: dict,
        default_chunk_class: type,
        base_generation_info: dict | None,
    ) -> ChatGenerationChunk | None:
        """Read a stream chunk; a malformed one raises like `_create_chat_result`."""
        from langchain_holysheep import _replies

        _replies.check_chunk(chunk, self.model_name, self.openai_api_base)
        try:
            return super()._convert_chunk_to_generation_chunk(
                chunk, default_chunk_class, base_generation_info
            )
        except _replies.READ_ERRORS as exc:
            raise _replies.unreadable(exc, chunk, self.model_name) from exc
