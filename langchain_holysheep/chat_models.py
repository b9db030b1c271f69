"""`ChatHolySheep`: the LangChain chat model for the HolySheep AI gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import Field, PrivateAttr, model_validator
from typing_extensions import Self

from langchain_holysheep._contract import (
    DEADLINE_PARAM,
    ROUTE_LIMITS_PARAM,
    ROUTES_PARAM,
)
from langchain_holysheep._gateway import DEFAULT_BASE_URL
from langchain_holysheep._gateway_model import HolySheepGateway, presign
from langchain_holysheep._model_routes import (
    DEFAULT_FIRST_TOKEN_TIMEOUT,
    DEFAULT_STALL_TIMEOUT,
    build_router,
    check_settings,
)
from langchain_holysheep.catalogue import default_catalogue
from langchain_holysheep.resilience import ErrorPolicy, RateLimit, RetryPolicy, Router
from langchain_holysheep.resilience._events import LiveStreamMixin
from langchain_holysheep.resilience._routes import sdk_retries
from langchain_holysheep.spend.budgets._budget import Budget
from langchain_holysheep.spend.tracking._callback import HolySheepCallbackHandler

__all__ = ["DEFAULT_BASE_URL", "ChatHolySheep"]


class ChatHolySheep(LiveStreamMixin, HolySheepGateway):  # type: ignore[override]
    r"""Chat model for the HolySheep AI gateway (GPT-4.1, Claude, Gemini, DeepSeek...).

    HolySheep speaks the OpenAI chat-completions protocol, so `ChatHolySheep`
    builds on `BaseChatOpenAI` (through `HolySheepGateway`, the gateway's
    single-attempt model): everything `ChatOpenAI` does (tools, structured
    output, streaming, async, batch) works, with the gateway's own defaults on
    top: its key and URL from the environment, streamed token usage on by
    default, model aliases and typo detection from the catalogue, and clear
    errors for bad keys and unknown models. Every call is routed: retries,
    fallbacks, circuit breakers, rate limits, deadlines and budgets apply to
    `invoke`, `ainvoke`, `stream`, `astream` and `batch` alike.

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
        state: StateStore | str | None
            Where breakers and rate limits live: `"sqlite:///state.db"` or
            `"redis://host:6379/0"` to share them between processes (default:
            `HOLYSHEEP_STATE_URL`, else this process's memory).
        first_token_timeout / stall_timeout: float | None
            Stream limits (time to first content; time without new content,
            empty keep-alive chunks included); both fall over. With
            `streaming=True`, `invoke` streams internally and they apply to it
            too (a broken stream restarts on the next model).
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

    fallbacks: list[Any] = Field(default_factory=list)
    """Routes after the primary: gateway ids, chat models, `Route`s or dicts."""

    retry: RetryPolicy | None = None
    """Retry policy on the same model (default from `max_retries`, else 3 tries)."""

    breaker: Any = None
    """`BreakerConfig` or `BreakerRegistry` (default: the process-wide registry)."""

    rate_limit: RateLimit | None = None
    """Client-side requests/tokens per minute for the primary model."""

    state: Any = Field(default=None, repr=False)
    """Where breakers and rate limits live: a `StateStore` or a URL.

    `"sqlite:///state.db"` (the processes of one machine) or
    `"redis://host:6379/0"` (many machines) share them across processes;
    `None` reads `HOLYSHEEP_STATE_URL`, else `memory://` (this process).
    """

    first_token_timeout: float | None = DEFAULT_FIRST_TOKEN_TIMEOUT
    """Seconds allowed until the first content, then fall over (default 30;
    120 for reasoning models of the catalogue unless set; `None`: no limit).

    Applies to streams and to non-streaming calls on gateway routes, which
    read their answer as a stream for it (see the README's "Defaults")."""

    stall_timeout: float | None = DEFAULT_STALL_TIMEOUT
    """Longest time without progress of the answer (new content), seconds,
    then fall over (default 30; `None`: no limit); chunks without content do
    not count. Applies where `first_token_timeout` does."""

    deadline: float | None = None
    """Overall seconds for one call, wall-clock, across every retry and fallback."""

    error_policy: ErrorPolicy | None = None
    """Overrides of the error table (`ErrorPolicy(overrides={429: "fallback"})`)."""

    budget: Budget | None = None
    """A spending cap for this model's calls (reserved before any request).

    With `Budget(..., on_exceeded="downgrade")`, a call that cannot afford its
    worst case on every route is sent to the cheaper routes that fit.
    """

    _router: Router | None = PrivateAttr(default=None)

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Secrets: the key, and a state URL if set (it may carry a password)."""
        if self.state is None:
            return super().lc_secrets
        return {**super().lc_secrets, "state": "HOLYSHEEP_STATE_URL"}

    @property
    def _llm_type(self) -> str:
        return "holysheep-chat"

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
        # over every attempt of every route a call may take.
        router = self.router()
        limits = _route_limits(router)
        preferred = kwargs.get("preferred_model")
        if isinstance(preferred, str) and preferred:
            name = default_catalogue().resolve(preferred) or preferred
            if name not in router.route_names:  # added at call time, in front
                attempts = router.retry.max_attempts
                limits.insert(
                    0,
                    {"model": name, "attempts": attempts, "gateway": True},
                )
        params[ROUTES_PARAM] = tuple(str(r["model"]) for r in limits)
        params[ROUTE_LIMITS_PARAM] = limits
        params[DEADLINE_PARAM] = self.deadline
        return params

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
        return self.router().generate(messages, stop, run_manager, **kwargs)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return await self.router().agenerate(messages, stop, run_manager, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        yield from self.router().stream(messages, stop, run_manager, **kwargs)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        async for chunk in self.router().astream(messages, stop, run_manager, **kwargs):
            yield chunk


presign(ChatHolySheep, "_generate", "_agenerate")


def _route_limits(router: Router) -> list[dict[str, Any]]:
    """Per route: its most attempts and, off the gateway, its own output limit."""
    limits = []
    for route in router.routes:
        own = None if route.is_gateway else getattr(route.model, "max_tokens", None)
        limits.append(
            {
                "model": route.name,
                "attempts": router.retry_policy(route).max_attempts
                * (1 + sdk_retries(route.model)),
                "gateway": route.is_gateway,
                "max_tokens": own if isinstance(own, int) else None,
            }
        )
    return limits
