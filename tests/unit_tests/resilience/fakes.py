"""Test fakes: a manual clock, fake sleeps, and real openai/LangChain errors."""

from __future__ import annotations

import httpx2
import openai
from langchain_openai.chat_models.base import (
    _handle_openai_api_error,
    _handle_openai_bad_request,
)


class FakeClock:
    """A monotonic clock moved by hand (or by the fake sleeps)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


REQUEST = httpx2.Request("POST", "http://gateway.test/v1/chat/completions")
_CLIENT = openai.OpenAI(api_key="k", base_url="http://gateway.test/v1")


def status_error(
    status: int,
    message: str = "boom",
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> openai.APIStatusError:
    """The exact exception the openai SDK raises for an HTTP error response."""
    response = httpx2.Response(
        status,
        request=REQUEST,
        json={"error": {"message": message, "type": "error", "code": code}},
        headers=headers or {},
    )
    return _CLIENT._make_status_error_from_response(response)


def langchain_wrapped(exc: openai.APIError) -> BaseException:
    """What `ChatOpenAI` raises for `exc` (its `_handle_openai_*` wrappers)."""
    try:
        try:
            raise exc
        except openai.BadRequestError as e:
            _handle_openai_bad_request(e)
        except openai.APIError as e:
            _handle_openai_api_error(e)
    except BaseException as wrapped:
        return wrapped
    raise AssertionError("not raised")


def transport_error(kind: type[Exception], sdk: type[openai.APIError]) -> BaseException:
    """An SDK connection/timeout error chained to an httpx2 transport error."""
    try:
        try:
            raise kind("transport failure", request=REQUEST)  # type: ignore[call-arg]
        except Exception as inner:
            if sdk is openai.APITimeoutError:
                raise openai.APITimeoutError(request=REQUEST) from inner
            raise openai.APIConnectionError(request=REQUEST) from inner
    except openai.APIError as exc:
        return langchain_wrapped(exc)
    raise AssertionError("not raised")
