"""`HolySheepGateway`: one attempt on one gateway model (a partner-sized model).

Like LangChain's `ChatXAI` or `ChatDeepSeek`, a small `BaseChatOpenAI` subclass
that overrides only what differs for the gateway: its key and URL from the
environment, streamed usage on, model aliases and typo detection from the
catalogue, chat completions only, a lean async request path, and gateway
errors translated into helpful ones. It makes exactly one attempt per call (the
OpenAI SDK's own retries are off when it serves as a route); `ChatHolySheep`
routes every call over such models.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager
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

from langchain_holysheep import _gateway_calls, _replies
from langchain_holysheep._gateway import (
    DEFAULT_BASE_URL,
    alist_gateway_models,
    list_gateway_models,
    resolve_api_key,
)
from langchain_holysheep._gateway_calls import Limits
from langchain_holysheep._header_secrets import redact_http_trace_logs
from langchain_holysheep._http import (
    AsyncTransportKind,
    aiohttp_available,
    shared_async_client,
    shared_sync_client,
)
from langchain_holysheep._settings import check_constructor_input
from langchain_holysheep._watchdog import Guard, within
from langchain_holysheep.catalogue import default_catalogue
from langchain_holysheep.errors import ConfigurationError

__all__ = ["HolySheepGateway", "gateway_copy", "presign"]

_NOT_COPIED = frozenset(
    {
        "profile",
        "client",
        "async_client",
        "root_client",
        "root_async_client",
        "openai_api_key",
        "openai_api_base",
        "callbacks",
        "callback_manager",
        "cache",
        "rate_limiter",
        "verbose",
        "tags",
        "metadata",
    }
)


class HolySheepGateway(BaseChatOpenAI):  # type: ignore[override]
    """One HolySheep gateway model, one attempt per call (no routing).

    Most users want `ChatHolySheep`, which routes every call (retries,
    fallbacks, breakers, limits, budgets) over models of this class. Use this
    class directly for a bare single-attempt model, e.g. as a fallback route of
    another router.

    Key init args:
        model: gateway model id or alias (resolved at construction).
        api_key: HolySheep key (`HOLYSHEEP_API_KEY` if not given).
        base_url: gateway URL (`HOLYSHEEP_BASE_URL`, default the public gateway).
        validate_model: reject likely typos of catalogue ids (default True).
        async_transport: `"httpx"` (default) or `"aiohttp"`.

    Example:
        ```python
        from langchain_holysheep import HolySheepGateway

        HolySheepGateway(model="deepseek-v3.2", max_retries=0).invoke("hi")
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
    `aiohttp` extra; BENCHMARKS.md compares their throughput).

    Either way the async client keeps one connection pool per event loop, so the
    model works across `asyncio.run()` calls and test loops; each pool is
    closed when its loop shuts down its async generators (`asyncio.run` does).
    """

    _bounded_sync: bool = PrivateAttr(default=False)
    _shared_async: bool = PrivateAttr(default=False)

    model_config = ConfigDict(populate_by_name=True)

    def within(self, seconds: float) -> AbstractContextManager[Guard] | None:
        """Bound this model's blocking requests in a block to `seconds`, or `None`.

        Available when the model uses the package's shared sync HTTP client (no
        `http_client` of your own): the router then bounds a sync attempt
        wall-clock without a helper thread.
        """
        return within(seconds) if self._bounded_sync else None

    @property
    def watched_reads(self) -> bool:
        """Whether a watchdog can bound this model's sync reads (no helper thread)."""
        return self._bounded_sync

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
        return "holysheep-gateway"

    def _get_ls_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "holysheep"
        return params

    def _use_responses_api(self, payload: dict) -> bool:
        # The gateway serves chat completions only.
        return False

    @model_validator(mode="before")
    @classmethod
    def _check_settings_input(cls, values: Any) -> Any:
        """Reject malformed settings at once; take the profile from the catalogue."""
        return check_constructor_input(values, cls.model_fields["model_name"].default)

    @model_validator(mode="after")
    def validate_environment(self) -> Self:
        """Check the key and the model id, then build the OpenAI clients."""
        self.holysheep_api_key = resolve_api_key(self.holysheep_api_key)
        redact_http_trace_logs()  # idempotent; installed with the first model
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
            self._shared_async = not self._uses_gateway
        if self.http_client is None and self.client is None and not self.openai_proxy:
            self.http_client = shared_sync_client(
                self.openai_api_base, self.request_timeout
            )
            self._bounded_sync = not self._uses_gateway
        BaseChatOpenAI.validate_environment(self)  # type: ignore[operator]
        return self

    def _create_chat_result(
        self,
        response: dict | openai.BaseModel,
        generation_info: dict | None = None,
    ) -> ChatResult:
        """Read a reply; one that is not a usable completion raises.

        It raises `ResponseFormatError`, or the provider's error it carries.
        """
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
        _replies.check_chunk(chunk, self.model_name, self.openai_api_base)
        try:
            return super()._convert_chunk_to_generation_chunk(
                chunk, default_chunk_class, base_generation_info
            )
        except _replies.READ_ERRORS as exc:
            raise _replies.unreadable(exc, chunk, self.model_name) from exc

    # -- one attempt, gateway errors translated (`_gateway_calls`) ---------------------
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return _gateway_calls.generate(self, messages, stop, run_manager, **kwargs)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return await _gateway_calls.agenerate(
            self, messages, stop, run_manager, **kwargs
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        return _gateway_calls.stream(self, messages, stop, run_manager, **kwargs)

    def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        # The calls' own iterator, not one wrapping it: closing it closes the
        # stream at once (an `async for` does not close what it iterates).
        return _gateway_calls.astream(self, messages, stop, run_manager, **kwargs)

    def _generate_limited(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        limits: Limits,
        **kwargs: Any,
    ) -> ChatResult:
        """`_generate`, the answer read as a stream under `(first_token, stall)`."""
        return _gateway_calls.generate_limited(self, messages, stop, limits, **kwargs)

    async def _agenerate_limited(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        limits: Limits,
        **kwargs: Any,
    ) -> ChatResult:
        """Async twin of `_generate_limited`."""
        return await _gateway_calls.agenerate_limited(
            self, messages, stop, limits, **kwargs
        )

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


def gateway_copy(
    model: HolySheepGateway, model_id: str | None = None
) -> HolySheepGateway:
    """A single-attempt `HolySheepGateway` with `model`'s settings.

    Same key, URL, sampling settings and HTTP connection pools; another model id
    if given; the OpenAI SDK's retries off (the router retries); no callbacks
    (the routed call's run reports).
    """
    fields = {
        name: getattr(model, name)
        for name in HolySheepGateway.model_fields
        if name not in _NOT_COPIED and name in model.model_fields_set | _ALWAYS
    }
    fields["model_name"] = model_id or model.model_name
    fields["max_retries"] = 0
    fields["validate_model"] = False
    fields["holysheep_api_key"] = model.holysheep_api_key
    fields["holysheep_api_base"] = model.holysheep_api_base
    fields["http_async_client"] = model.http_async_client
    fields["http_client"] = model.http_client
    copy = HolySheepGateway.model_validate(fields)
    copy._bounded_sync = model._bounded_sync  # the same watched client
    copy._shared_async = model._shared_async
    return copy


_ALWAYS = frozenset({"stream_usage", "async_transport", "request_timeout"})


def presign(cls: type, *names: str) -> None:
    """Store the signature of `cls`'s own methods `names` on them, computed once.

    LangChain inspects `_generate` / `_agenerate` on every call (do they take a
    run manager?); with the signature stored, that is a lookup instead of an
    analysis of the function each time.
    """
    for name in names:
        fn = cls.__dict__[name]
        setattr(fn, "__signature__", inspect.signature(fn))  # noqa: B010


presign(HolySheepGateway, "_generate", "_agenerate")
