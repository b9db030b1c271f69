"""A lean async request path for plain (non-streaming, unstructured) chat calls.

The OpenAI SDK's `chat.completions.create` transforms every request against its
typed parameters and builds pydantic models of every response; langchain-openai then
turns those models back into dicts in a worker thread. For the common async call we
post the payload LangChain already built with the same SDK client (same auth,
retries setting, timeouts and error classes) and read the reply as a plain dict.
Everything else (structured output, streams, raw headers) keeps the SDK's path.
"""

from __future__ import annotations

from typing import Any

import openai
from langchain_openai.chat_models.base import (  # same error mapping as ChatOpenAI
    _handle_openai_api_error,
    _handle_openai_bad_request,
)

# Request options that `create()` takes as keyword arguments, not body fields.
_OPTION_KEYS = ("extra_headers", "extra_query", "extra_body", "timeout")


def eligible(payload: dict[str, Any], model: Any) -> bool:
    """Whether `payload` can take the lean path (plain JSON in, JSON out)."""
    return (
        not payload.get("stream")
        and "response_format" not in payload
        and not model.include_response_headers
        and not model._uses_gateway
        and model.root_async_client is not None
    )


async def apost_chat(root_async_client: Any, payload: dict[str, Any]) -> dict:
    """POST `/chat/completions` with the SDK client; return the reply as a dict.

    The reply's shape is checked where every path reads it
    (`HolySheepGateway._create_chat_result`), so a reply that is not a usable
    completion raises the same error here as on the SDK's path.

    Raises:
        The same LangChain-classified OpenAI errors as `ChatOpenAI` does.
    """
    body = dict(payload)
    extra_headers = body.pop("extra_headers", None)
    extra_query = body.pop("extra_query", None)
    extra_body = body.pop("extra_body", None)
    timeout = body.pop("timeout", openai.NOT_GIVEN)
    if extra_body:
        body.update(extra_body)
    options: dict[str, Any] = {}
    if extra_headers:
        options["headers"] = extra_headers
    if extra_query:
        options["params"] = extra_query
    if timeout is not openai.NOT_GIVEN and timeout is not None:
        options["timeout"] = timeout
    try:
        reply = await root_async_client.post(
            "/chat/completions", body=body, options=options, cast_to=dict
        )
    except openai.BadRequestError as exc:
        _handle_openai_bad_request(exc)
        raise
    except openai.APIError as exc:
        _handle_openai_api_error(exc)
        raise
    return reply
