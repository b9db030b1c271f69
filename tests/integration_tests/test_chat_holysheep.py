"""ChatHolySheep over real HTTP against the simulator: usage, tools, errors."""

import logging
import traceback

import openai
import pytest
from langchain_core.messages import AIMessageChunk
from langchain_core.prompts import ChatPromptTemplate
from pydantic import BaseModel, Field

from langchain_holysheep import (
    ChatHolySheep,
    GatewayAuthenticationError,
    ModelNotServedError,
    RetryPolicy,
)
from langchain_holysheep.simulator import Fault, GatewaySimulator


def _model(sim: GatewaySimulator, **kw: object) -> ChatHolySheep:
    return ChatHolySheep(base_url=sim.base_url, api_key=sim.api_key, **kw)  # type: ignore[arg-type]


class Joke(BaseModel):
    """A joke."""

    setup: str = Field(description="the question")
    punchline: str = Field(description="the answer")


def test_list_models(shared_sim: GatewaySimulator) -> None:
    ids = ChatHolySheep.list_models(
        api_key=shared_sim.api_key, base_url=shared_sim.base_url
    )
    assert {"gpt-4.1", "claude-sonnet-4.5", "deepseek-v3.2"} <= set(ids)


async def test_alist_models(shared_sim: GatewaySimulator) -> None:
    ids = await ChatHolySheep.alist_models(
        api_key=shared_sim.api_key, base_url=shared_sim.base_url
    )
    assert "gemini-2.5-flash" in ids


def test_wrong_key_gives_helpful_error_without_the_key(sim: GatewaySimulator) -> None:
    wrong = "hs-wrong-key-0123456789"
    model = ChatHolySheep(base_url=sim.base_url, api_key=wrong, max_retries=0)
    with pytest.raises(GatewayAuthenticationError) as info:
        model.invoke("hi")
    text = str(info.value) + repr(info.value)
    assert "HOLYSHEEP_API_KEY" in text and wrong not in text
    assert info.value.status == 401
    with pytest.raises(GatewayAuthenticationError):
        ChatHolySheep.list_models(api_key=wrong, base_url=sim.base_url)


def test_server_404_becomes_unknown_model_error(sim: GatewaySimulator) -> None:
    model = _model(sim, model="qwen-max", max_retries=0)
    with pytest.raises(ModelNotServedError, match="qwen-max"):
        model.invoke("hi")
    assert sim.log.count("qwen-max") == 1


def test_streaming_usage_is_on_and_matches_invoke(sim: GatewaySimulator) -> None:
    model = _model(sim, model="deepseek-v3.2")
    invoked = model.invoke("Name three rivers in Vietnam.")
    full: AIMessageChunk | None = None
    for chunk in model.stream("Name three rivers in Vietnam."):
        full = chunk if full is None else full + chunk
    assert full is not None and full.usage_metadata is not None
    assert invoked.usage_metadata is not None
    assert full.content == invoked.content
    assert full.usage_metadata["input_tokens"] == invoked.usage_metadata["input_tokens"]
    assert (
        full.usage_metadata["output_tokens"] == invoked.usage_metadata["output_tokens"]
    )
    billed = sim.log.billed("deepseek-v3.2")
    assert billed.completion_tokens == 2 * invoked.usage_metadata["output_tokens"]
    assert full.response_metadata["model_name"] == "deepseek-v3.2"


async def test_async_stream_and_batch(sim: GatewaySimulator) -> None:
    model = _model(sim, model="gemini-2.5-flash")
    chunks = [c async for c in model.astream("Say hello")]
    assert sum(1 for c in chunks if c.content) >= 2
    assert any(c.usage_metadata for c in chunks)
    replies = await model.abatch(["one", "two", "three"])
    assert len(replies) == 3 and all(r.content for r in replies)
    assert model.batch(["four", "five"])[1].content
    assert sim.log.count("gemini-2.5-flash") == 6


def test_tool_calls_round_trip(shared_sim: GatewaySimulator) -> None:
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    model = _model(shared_sim, model="gpt-4.1").bind_tools([multiply])
    msg = model.invoke("What is 6 multiplied by 7? Use the tool.")
    assert msg.tool_calls and msg.tool_calls[0]["name"] == "multiply"  # type: ignore[attr-defined]
    assert msg.tool_calls[0]["args"] == {"a": 6, "b": 7}  # type: ignore[attr-defined]
    streamed: AIMessageChunk | None = None
    for chunk in model.stream("What is 6 multiplied by 7? Use the tool."):
        streamed = chunk if streamed is None else streamed + chunk  # type: ignore[assignment]
    assert streamed is not None
    assert streamed.tool_calls[0]["args"] == {"a": 6, "b": 7}


@pytest.mark.parametrize("method", ["json_schema", "function_calling", "json_mode"])
def test_structured_output(shared_sim: GatewaySimulator, method: str) -> None:
    model = _model(shared_sim, model="gpt-4.1")
    structured = model.with_structured_output(Joke, method=method)  # type: ignore[arg-type]
    prompt = "Tell me a joke about cats. Answer in JSON with setup and punchline."
    joke = structured.invoke(prompt)
    assert isinstance(joke, Joke) and joke.setup and joke.punchline


def test_chain_with_prompt_and_parser(shared_sim: GatewaySimulator) -> None:
    from langchain_core.output_parsers import StrOutputParser

    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer in one sentence."), ("human", "{question}")]
    )
    chain = prompt | _model(shared_sim, model="sonnet") | StrOutputParser()
    answer = chain.invoke({"question": "What is a circuit breaker?"})
    assert isinstance(answer, str) and answer


def test_async_works_across_event_loops(shared_sim: GatewaySimulator) -> None:
    """Pooled async connections must not leak from one event loop into the next."""
    import asyncio

    model = _model(shared_sim, model="gpt-4.1")
    for _ in range(3):
        reply = asyncio.run(model.ainvoke("ping"))
        assert reply.content
        chunks = asyncio.run(_astream_all(model))
        assert chunks


async def _astream_all(model: ChatHolySheep) -> list[str]:
    return [str(c.content) async for c in model.astream("ping")]


async def test_aiohttp_transport_treats_a_reset_as_a_dropped_connection(
    sim: GatewaySimulator,
) -> None:
    """aiohttp reports resets as connect timeouts; ours must not call it an outage."""
    from langchain_holysheep.resilience import default_registry
    from langchain_holysheep.resilience._breaker import BreakerState

    sim.script("gpt-4.1", [], then=Fault.reset())
    model = _model(
        sim, model="gpt-4.1", fallbacks=["deepseek-v3.2"], async_transport="aiohttp"
    )
    reply = await model.ainvoke("hi")
    assert reply.response_metadata["model_name"] == "deepseek-v3.2"
    failures = reply.response_metadata["holysheep"]["failures"]
    assert failures and all(f["action"] == "retry" for f in failures[:-1])
    gateway = default_registry().gateway(sim.base_url)
    assert gateway.state is BreakerState.CLOSED
    assert sim.log.count("gpt-4.1") == 3  # retried, not skipped as unreachable
    assert sim.log.count("deepseek-v3.2") == 1


@pytest.mark.parametrize("stream", [False, True])
def test_key_never_leaks_from_a_server_error(
    stream: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """A forced 500 fails the call; the key is in no part of the error or the logs."""
    secret = "hs-integration-secret-4711"
    caplog.set_level(logging.DEBUG)
    with GatewaySimulator(api_key=secret) as sim:
        sim.script("gpt-4.1", [], then=Fault.status(500))
        model = ChatHolySheep(
            base_url=sim.base_url,
            api_key=secret,  # type: ignore[arg-type]
            model="gpt-4.1",
            retry=RetryPolicy.none(),
        )
        with pytest.raises(openai.APIStatusError) as info:
            list(model.stream("hi")) if stream else model.invoke("hi")
        assert [r.status for r in sim.log.records()] == [500]
    assert info.value.status_code == 500
    assert "500" in caplog.text  # the HTTP clients' debug logs were captured
    error: BaseException | None = info.value
    while error is not None:  # the error and everything chained to it
        assert secret not in str(error) and secret not in repr(error)
        assert secret not in repr(vars(error))
        error = error.__cause__ or error.__context__
    assert secret not in "".join(traceback.format_exception(info.value))
    assert secret not in caplog.text
