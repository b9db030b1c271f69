"""The proxy's life: a client that leaves, SIGTERM mid-stream, a broken config.

- A client that disconnects mid-stream cancels the upstream request (the
  simulator sees its client leave), the attempt is recorded as cancelled with
  estimated usage (content was delivered, so it was billed), and the key's
  reservation is settled: nothing stays reserved.
- SIGTERM to `python -m langchain_holysheep.serve` while a stream is open: the
  stream still ends complete (`[DONE]`), then the process exits 0.
- A broken config fails at start with the file, the line and the field.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from langchain_holysheep.serve.config import hash_key
from langchain_holysheep.simulator import Fault, GatewaySimulator
from tests.integration_tests.serve._proxy import (
    KEY,
    config_text,
    first_content,
    open_stream,
    running_proxy,
)

BUDGETED = "hsv-test-key-budgeted-42424242"
STREAM = {
    "model": "smart",
    "messages": [{"role": "user", "content": "hello there"}],
    "stream": True,
}


def test_client_disconnect_cancels_upstream_and_settles(
    sim: GatewaySimulator, tmp_path: Path
) -> None:
    extra = (
        f'[keys.budgeted]\nhash = "{hash_key(BUDGETED)}"\ngroups = ["*"]\n'
        'budget = { limit = "10", window = "total" }\n'
    )
    sim.script("gpt-4.1", [], then=Fault.stream_stall(after_chunks=2))  # forever
    with running_proxy(tmp_path, sim, extra=extra) as proxy:
        budget = proxy.runtime.spend.budgets["budgeted"]
        with open_stream(proxy.base_url, BUDGETED, STREAM):
            assert budget.reserved() > 0  # held while the stream is open
        # the client left: the proxy dropped the upstream request
        (record,) = sim.log.wait_for(1, model="gpt-4.1", finished=True)
        assert record.status in ("stall", "disconnected")
        proxy.recorded.wait(1)  # the proxy settles once the upstream is closed
        proxy.runtime.ledger.flush()
        (row,) = list(proxy.runtime.ledger.query())
        # billed though no usage came: estimated from the text delivered
        assert row.outcome == "cancelled" and row.usage.output > 0
        assert row.cost is not None and row.cost > 0
        assert budget.reserved() == 0
        assert budget.spent() == row.cost


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(config: Path, port: int, sim: GatewaySimulator) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "HOLYSHEEP_API_KEY": sim.api_key,
        "HOLYSHEEP_BASE_URL": sim.base_url,
        "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "langchain_holysheep.serve", "--config", str(config),
         "--port", str(port), "--log-level", "info"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_serving(proc: subprocess.Popen[str]) -> None:
    """Read the server's log until uvicorn says it is serving."""
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "Uvicorn running on" in line:
            return
    raise AssertionError(f"the server exited: {''.join(seen)}")


def test_sigterm_drains_an_open_stream(sim: GatewaySimulator, tmp_path: Path) -> None:
    config = tmp_path / "holysheep.toml"
    config.write_text(config_text(tmp_path / "ledger.sqlite3"))
    sim.script("gpt-4.1", [Fault.stream_stall(after_chunks=2, seconds=1.0)])
    port = _free_port()
    proc = _serve(config, port, sim)
    try:
        _wait_serving(proc)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx.stream("POST", url, json=STREAM, headers=headers, timeout=30) as r:
            assert r.status_code == 200
            lines = r.iter_lines()
            seen = first_content(lines)
            proc.send_signal(signal.SIGTERM)  # mid-stream
            seen += list(lines)
        assert [line for line in seen if line.startswith("data: ")][
            -1
        ] == "data: [DONE]"
        # uvicorn exits by re-raising the signal once it has drained
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_broken_config_fails_at_start_with_file_line_field(
    sim: GatewaySimulator, tmp_path: Path
) -> None:
    config = tmp_path / "holysheep.toml"
    text = config_text(tmp_path / "ledger.sqlite3").replace(
        'routes = ["gpt-4.1"]', 'routes = [{ model = "gpt-4.1", timeout = "soon" }]'
    )
    config.write_text(text)
    line = 1 + text.splitlines().index(
        'routes = [{ model = "gpt-4.1", timeout = "soon" }]'
    )
    proc = _serve(config, _free_port(), sim)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert f"{config}:{line}: groups.solo.routes.0.timeout" in err


@pytest.mark.parametrize("missing", ["HOLYSHEEP_API_KEY"])
def test_missing_upstream_key_fails_at_start(
    sim: GatewaySimulator, tmp_path: Path, missing: str
) -> None:
    config = tmp_path / "holysheep.toml"
    config.write_text(config_text(tmp_path / "ledger.sqlite3"))
    env = {k: v for k, v in os.environ.items() if k != missing}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[3])
    proc = subprocess.run(
        [sys.executable, "-m", "langchain_holysheep.serve", "--config", str(config)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert missing in proc.stderr and "groups.smart.routes.0" in proc.stderr
