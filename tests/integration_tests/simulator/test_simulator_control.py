"""The simulator's control surface: scripts, profiles, the log, lifecycle, CLI."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2
import openai
import pytest

from langchain_holysheep.simulator import (
    Fault,
    FaultSpecError,
    GatewaySimulator,
    ModelProfile,
    main,
)
from tests.integration_tests.simulator._helpers import KEY, USER, chat, cli_server


# -- scripts, defaults, profiles ------------------------------------------------------
def test_scripts_then_default_and_reset(
    sim: GatewaySimulator, http: httpx2.Client
) -> None:
    sim.script("gpt-4.1", [Fault.status(503, retry_after=1), Fault.ok()])
    sim.script("gpt-4o", [Fault.status(500)], then=Fault.status(503))
    sim.set_default(Fault.status(502))
    statuses = [chat(http, m).status_code for m in ["gpt-4.1"] * 3 + ["gpt-4o"] * 3]
    assert statuses == [503, 200, 200, 500, 503, 503]
    assert chat(http, "gemini-2.5-flash").status_code == 502  # no script: the default
    assert sim.log.count("gpt-4.1") == 3
    assert sim.log.count("gpt-4o") == 3
    assert sim.log.count() == 7
    assert [r.seq for r in sim.log.records()] == list(range(1, 8))
    sim.script("custom-model", [Fault.ok()])  # scripted models are served
    assert chat(http, "custom-model").status_code == 200
    sim.reset()
    assert sim.log.count() == 0
    assert [chat(http, m).status_code for m in ("gpt-4o", "gemini-2.5-flash")] == [
        200,
        200,
    ]
    assert chat(http, "custom-model").status_code == 404


def test_profile_failure_rate_with_fixed_seed(
    sim: GatewaySimulator, http: httpx2.Client
) -> None:
    profile = ModelProfile(failure_rate=0.2, seed=7)
    sim.set_profile("gpt-4.1", profile)
    statuses = [chat(http).status_code for _ in range(300)]
    rate = statuses.count(503) / len(statuses)
    assert 0.15 <= rate <= 0.25
    assert set(statuses) == {200, 503}
    # The same seed replays the same sequence.
    draw = profile.sampler()
    assert [503 if draw().is_error else 200 for _ in statuses] == statuses


def test_profile_latency_distribution() -> None:
    draw = ModelProfile(p50_ms=900, p95_ms=2100, seed=1).sampler()
    delays = sorted(draw().delay for _ in range(4000))
    assert statistics.median(delays) == pytest.approx(0.9, rel=0.08)
    assert delays[int(0.95 * len(delays))] == pytest.approx(2.1, rel=0.1)


def test_profile_latency_is_applied(sim: GatewaySimulator, http: httpx2.Client) -> None:
    profile = ModelProfile(failure_rate=0.5, p50_ms=20, p95_ms=60, seed=3)
    sim.set_profile("gpt-4.1", profile)
    draw = profile.sampler()
    expected = [draw() for _ in range(8)]
    statuses = [chat(http).status_code for _ in expected]
    assert statuses == [503 if f.is_error else 200 for f in expected]
    for record, fault in zip(sim.log.records(), expected, strict=True):
        assert record.duration is not None
        assert record.duration >= fault.delay


# -- the log --------------------------------------------------------------------------
def test_billing_totals_are_exact(sim: GatewaySimulator, oai: openai.OpenAI) -> None:
    sim.script("gpt-4.1", [Fault.ok(), Fault.status(503), Fault.stream_cut(2)])
    seen = []
    reply = oai.chat.completions.create(model="gpt-4.1", messages=USER)  # type: ignore[arg-type]
    seen.append(reply.usage)
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(model="gpt-4.1", messages=USER)  # type: ignore[arg-type]
    with pytest.raises(openai.APIError):
        for _ in oai.chat.completions.create(
            model="gpt-4.1",
            messages=USER,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        ):
            pass
    for model in ("gpt-4.1", "deepseek-reasoner"):
        for chunk in oai.chat.completions.create(
            model=model,
            messages=[*USER, {"role": "assistant", "content": "Hi."}, *USER],  # type: ignore[list-item]
            stream=True,
            stream_options={"include_usage": True},
        ):
            if chunk.usage is not None:
                seen.append(chunk.usage)
    totals = sim.log.billed()
    assert totals.requests == 3
    assert totals.prompt_tokens == sum(u.prompt_tokens for u in seen)  # type: ignore[union-attr]
    assert totals.completion_tokens == sum(u.completion_tokens for u in seen)  # type: ignore[union-attr]
    assert totals.cached_tokens == sum(
        u.prompt_tokens_details.cached_tokens  # type: ignore[union-attr]
        for u in seen
    )
    assert totals.reasoning_tokens == sum(
        u.completion_tokens_details.reasoning_tokens  # type: ignore[union-attr]
        for u in seen
    )
    assert totals.cached_tokens > 0
    assert totals.reasoning_tokens > 0
    assert totals.total_tokens == totals.prompt_tokens + totals.completion_tokens
    assert sim.log.billed("deepseek-reasoner").requests == 1
    assert [r.status for r in sim.log.records("gpt-4.1")] == [200, 503, "cut", 200]


def test_wait_for_is_event_based(sim: GatewaySimulator, http: httpx2.Client) -> None:
    sim.script("gpt-4.1", [Fault.latency(0.2)])
    worker = threading.Thread(target=chat, args=(http,))
    worker.start()
    [arrived] = sim.log.wait_for(1, timeout=5)
    assert arrived.model == "gpt-4.1"
    [done] = sim.log.wait_for(1, timeout=5, finished=True)
    assert done.status == 200
    worker.join()
    with pytest.raises(TimeoutError, match="waited for 2"):
        sim.log.wait_for(2, timeout=0.05)


async def test_async_context_manager_and_stop_with_hanging_requests() -> None:
    async with GatewaySimulator() as sim:
        sim.set_default(Fault.silent())
        client = openai.AsyncOpenAI(
            base_url=sim.base_url, api_key=sim.api_key, max_retries=0
        )
        pending = asyncio.ensure_future(
            client.chat.completions.create(model="gpt-4.1", messages=USER)  # type: ignore[arg-type]
        )
        await sim.log.wait_for_async(1, timeout=5)
        start = time.monotonic()
    assert (
        time.monotonic() - start < 1.0
    )  # stopping does not wait for the silent request
    with pytest.raises(openai.APIConnectionError):
        await pending
    assert sim.log.records()[0].status == "silent"
    await client.close()


def test_stop_is_fast_and_restartable() -> None:
    sim = GatewaySimulator().start()
    url = sim.base_url
    start = time.monotonic()
    sim.stop()
    assert time.monotonic() - start < 0.5
    assert not sim.running
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(url + "/models")
    with sim:
        assert sim.running
        headers = {"Authorization": f"Bearer {sim.api_key}"}
        assert httpx2.get(sim.base_url + "/models", headers=headers).status_code == 200


# -- fault definitions and the command line -------------------------------------------
def test_fault_dicts_round_trip_and_errors() -> None:
    faults = [
        Fault.ok(0.1),
        Fault.latency(0.2),
        Fault.status(429, retry_after=1, retry_after_ms=500, message="m", code_str="c"),
        Fault.context_length_exceeded(),
        Fault.content_policy("because"),
        Fault.model_not_found(),
        Fault.slow_first_token(1),
        Fault.silent(),
        Fault.reset(),
        Fault.stream_cut(3),
        Fault.stream_stall(2, 5),
        Fault.malformed_chunk(1),
        Fault.malformed_chunk(2, payload="binary"),
        Fault.no_done(hang=True),
        Fault.bad_reply("null_choices"),
        Fault.error_reply(429, message="m", code_str="c", error_type="t"),
        Fault.error_reply(502, after_chunks=3),
        Fault.slow_drip(0.5),
        Fault.empty_chunks(0, seconds=2, interval=0.25),
        Fault.empty_chunks(),
    ]
    for fault in faults:
        assert Fault.from_dict(fault.to_dict()) == fault
    assert Fault.from_dict({"fault": "bad_reply"}) == Fault.bad_reply("html")
    assert Fault.from_dict({"fault": "slow_drip"}).interval == 0.1
    assert Fault.from_dict({"fault": "malformed_chunk"}).payload == "json"
    for bad, message in [
        ({"fault": "bad_reply", "shape": "xml"}, r"^x\.shape: expected one of html"),
        ({"fault": "malformed_chunk", "payload": 1}, r"^x\.payload: expected one of"),
        ({"fault": "slow_drip", "interval": 0}, r"^x\.interval: expected a number > 0"),
        ({"fault": "empty_chunks", "interval": -1}, r"^x\.interval: expected a number"),
        ({"fault": "error_reply", "code": 200}, r"^x\.code: expected an HTTP error"),
        ({"fault": "error_reply", "code_str": 5}, r"^x\.code_str: expected a string"),
    ]:
        with pytest.raises(FaultSpecError, match=message):
            Fault.from_dict(bad, where="x")
    with pytest.raises(
        FaultSpecError, match=r"^x\.code: expected an HTTP error status"
    ):
        Fault.from_dict({"fault": "status", "code": 200}, where="x")
    with pytest.raises(FaultSpecError, match=r"^x\.fault: unknown fault 'explode'"):
        Fault.from_dict({"fault": "explode"}, where="x")
    with pytest.raises(FaultSpecError, match=r"^x\.after: not a parameter"):
        Fault.from_dict({"fault": "stream_cut", "after": 1}, where="x")
    with pytest.raises(FaultSpecError, match="failure_rate"):
        ModelProfile(failure_rate=1.5)


FAULT_FILE = {
    "default": {"fault": "latency", "seconds": 0.0},
    "models": {
        "gpt-4.1": {"sequence": [{"fault": "status", "code": 503, "retry_after": 1}]},
        "gpt-4o": {"sequence": [], "then": {"fault": "status", "code": 429}},
    },
    "profiles": {"gemini-2.0-flash": {"failure_rate": 0.013, "p50_ms": 1, "p95_ms": 2}},
}


def test_cli_check_accepts_and_rejects_fault_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "faults.json"
    good.write_text(json.dumps(FAULT_FILE))
    assert main(["--check", "--faults", str(good)]) == 0
    broken = json.loads(json.dumps(FAULT_FILE))
    broken["models"]["gpt-4.1"]["sequence"].append({"fault": "status", "code": "abc"})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(broken))
    assert main(["--faults", str(bad)]) == 2
    assert "models.gpt-4.1.sequence[1].code" in capsys.readouterr().err
    bad.write_text(json.dumps({"profiles": {"x": {"p50_ms": 5, "p95": 9}}}))
    assert main(["--check", "--faults", str(bad)]) == 2
    assert "profiles.x.p95" in capsys.readouterr().err
    bad.write_text("{oops")
    assert main(["--check", "--faults", str(bad)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_cli_serves_the_fault_file_until_interrupted(tmp_path: Path) -> None:
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps(FAULT_FILE))
    with cli_server("--api-key", "cli-key", "--faults", str(faults)) as (
        proc,
        base_url,
    ):
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/v1")
        headers = {"Authorization": "Bearer cli-key"}
        with httpx2.Client(base_url=base_url, headers=headers) as client:
            codes = [
                chat(client, m).status_code for m in ("gpt-4.1", "gpt-4.1", "gpt-4o")
            ]
            assert codes == [503, 200, 429]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


def test_connections_are_kept_alive_without_nagle() -> None:
    # Responses are written in two parts (headers, body): with Nagle's algorithm
    # on, every response would wait ~40 ms for the client's delayed ACK.
    with GatewaySimulator(api_key=KEY) as sim:
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx2.Client(base_url=sim.base_url, headers=headers) as client:
            for _ in range(3):
                assert chat(client).status_code == 200
            server = sim._server  # white-box: the accepted sockets
            assert server is not None
            connections = list(server.server_state.connections)
            assert len(connections) == 1  # one keep-alive connection served all three
            sock = connections[0].transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_simulator_command_rejects_a_bad_port_clearly(port: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "langchain_holysheep.simulator", "--port", port],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--port" in done.stderr and "Traceback" not in done.stderr
    assert "OverflowError" not in done.stderr
