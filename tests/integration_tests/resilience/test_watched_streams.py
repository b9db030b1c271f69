"""Sync streams under time limits, read in the caller's thread.

A gateway route on the package's shared HTTP client needs no helper thread per
stream: the process's one watchdog bounds each read. These tests hold that:
no stream thread runs, the limits still cut silent and stalled streams, a long
answer that keeps progressing is never cut, and an abandoned stream closes
its request at once (the simulator sees the client leave), even when the
upstream is silent.
"""

from __future__ import annotations

import threading

import pytest

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.resilience import FirstTokenTimeoutError, StreamStallError
from langchain_holysheep.simulator import Fault, GatewaySimulator


def _stream_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "holysheep-stream"]


def _model(sim: GatewaySimulator, **kwargs: object) -> ChatHolySheep:
    return ChatHolySheep(
        model="gpt-4.1",
        base_url=sim.base_url,
        api_key=sim.api_key,
        max_retries=0,
        **kwargs,  # type: ignore[arg-type]
    )


def test_limited_stream_reads_without_a_helper_thread(sim: GatewaySimulator) -> None:
    model = _model(sim, first_token_timeout=5, stall_timeout=5)
    seen: list[list[str]] = []
    text = ""
    for chunk in model.stream("hi"):
        seen.append(_stream_threads())
        text += chunk.text
    assert text and seen and all(not names for names in seen)
    assert sim.log.count("gpt-4.1") == 1


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.stream_stall(after_chunks=2), StreamStallError),
        (Fault.slow_first_token(30), FirstTokenTimeoutError),
    ],
)
def test_limits_cut_a_silent_stream_and_fall_over(
    sim: GatewaySimulator, fault: Fault, error: type[Exception]
) -> None:
    model = _model(
        sim, first_token_timeout=0.5, stall_timeout=0.5, fallbacks=["deepseek-v3.2"]
    )
    sim.script("gpt-4.1", [fault])
    chunks = list(model.stream("hi"))
    meta = chunks[-1].response_metadata["holysheep"]
    assert meta["served_model"] == "deepseek-v3.2"
    assert meta["failures"][0]["error"].startswith(error.__name__)
    assert not _stream_threads()
    # the cut request is closed: the simulator saw the client leave
    first = sim.log.wait_for(1, timeout=5, model="gpt-4.1", finished=True)[0]
    assert first.status in {"stall", "disconnected"}


def test_a_slow_but_progressing_stream_is_not_cut(sim: GatewaySimulator) -> None:
    # The stream drips one byte per millisecond: a chunk (~270 bytes) every
    # ~0.3 s, well within the stall limit, while the whole answer (~2,400
    # bytes) takes longer than that limit.
    model = _model(sim, first_token_timeout=2, stall_timeout=1.5, max_tokens=6)
    sim.script("gpt-4.1", [Fault.slow_drip(interval=0.001)])
    chunks = list(model.stream("hi"))
    meta = chunks[-1].response_metadata["holysheep"]
    assert meta["attempts"] == 1 and meta["served_model"] == "gpt-4.1"
    record = sim.log.wait_for(1, timeout=5, model="gpt-4.1", finished=True)[0]
    assert record.duration is not None and record.duration > 1.5


def test_an_abandoned_stream_closes_its_request_at_once(sim: GatewaySimulator) -> None:
    # The upstream goes silent after two chunks and the limits are far away:
    # only closing the stream can end the request.
    model = _model(sim, first_token_timeout=60, stall_timeout=60)
    sim.script("gpt-4.1", [Fault.stream_stall(after_chunks=2)])
    stream = model.stream("hi")
    got = [next(stream), next(stream)]
    assert "".join(c.text for c in got)
    stream.close()
    record = sim.log.wait_for(1, timeout=5, model="gpt-4.1", finished=True)[0]
    assert record.status in {"stall", "disconnected"}
    assert not _stream_threads()
