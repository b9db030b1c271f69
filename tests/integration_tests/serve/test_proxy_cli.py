"""`holysheep serve` through the console script, as a user starts it.

- A broken config, or an unset upstream key variable, exits 2 (a usage
  error, like `python -m langchain_holysheep.serve`) with the file, the line
  and the field, whether one process or several workers were asked for; so
  do several workers on in-memory state while a key has a budget or limits
  (each worker would enforce its own copy of the cap).
- `--workers 2` then SIGTERM to the parent while a stream is in flight: the
  worker serving it drains it (the client reads it to `[DONE]`), then every
  process exits and the parent exits 0.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from langchain_holysheep.simulator import Fault, GatewaySimulator
from tests.integration_tests.serve._fleet import HOLYSHEEP, Fleet, serve_env
from tests.integration_tests.serve._proxy import KEY, config_text, first_content
from tests.integration_tests.serve.test_proxy_lifecycle import STREAM

BROKEN = 'routes = [{ model = "gpt-4.1", timeout = "soon" }]'


def _serve(config: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HOLYSHEEP, "serve", "--config", str(config), "--port", "0", *args],
        env=serve_env(**env), capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize("workers", ["1", "4"])
def test_a_broken_config_exits_2_with_file_line_and_field(
    tmp_path: Path, workers: str
) -> None:
    config = tmp_path / "holysheep.toml"
    text = config_text(tmp_path / "ledger.sqlite3").replace(
        'routes = ["gpt-4.1"]', BROKEN
    )
    config.write_text(text)
    line = 1 + text.splitlines().index(BROKEN)
    done = _serve(config, "--workers", workers, HOLYSHEEP_API_KEY="hs-upstream")
    assert done.returncode == 2, done.stderr
    assert f"{config}:{line}: groups.solo.routes.0.timeout" in done.stderr
    assert "Uvicorn running" not in done.stderr  # nothing listened


def _state(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def test_an_unset_upstream_key_exits_2_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "holysheep.toml"
    config.write_text(config_text(tmp_path / "ledger.sqlite3"))
    done = _serve(config, "--workers", "2", HOLYSHEEP_STATE_URL=_state(tmp_path))
    assert done.returncode == 2, done.stderr
    assert "HOLYSHEEP_API_KEY" in done.stderr and "groups.smart.routes.0" in done.stderr


def test_several_workers_refuse_to_copy_budgets_into_each(tmp_path: Path) -> None:
    """In-memory state and --workers 4: each worker would allow the whole cap."""
    config = tmp_path / "holysheep.toml"
    config.write_text(config_text(tmp_path / "ledger.sqlite3"))
    done = _serve(config, "--workers", "4", HOLYSHEEP_API_KEY="hs-upstream")
    assert done.returncode == 2, done.stderr
    assert "4 x the cap" in done.stderr and "capped" in done.stderr
    assert "HOLYSHEEP_STATE_URL" in done.stderr and "Uvicorn running" not in done.stderr


def test_bad_worker_count_is_a_usage_error(tmp_path: Path) -> None:
    done = _serve(tmp_path / "holysheep.toml", "--workers", "0")
    assert done.returncode == 2
    assert "--workers must be at least 1" in done.stderr


def test_sigterm_drains_a_stream_across_workers(
    sim: GatewaySimulator, tmp_path: Path
) -> None:
    config = tmp_path / "holysheep.toml"
    config.write_text(config_text(tmp_path / "ledger.sqlite3"))
    sim.script("gpt-4.1", [Fault.stream_stall(after_chunks=2, seconds=1.0)])
    env = serve_env(
        HOLYSHEEP_API_KEY=sim.api_key,
        HOLYSHEEP_BASE_URL=sim.base_url,
        HOLYSHEEP_STATE_URL=_state(tmp_path),  # the workers share one machine
    )
    fleet = Fleet(config, env, workers=2)
    try:
        fleet.start()
        headers = {"Authorization": f"Bearer {KEY}"}
        url = f"{fleet.base_url}/chat/completions"
        with httpx.stream("POST", url, json=STREAM, headers=headers, timeout=30) as r:
            assert r.status_code == 200
            lines = r.iter_lines()
            seen = first_content(lines)
            fleet.proc.send_signal(signal.SIGTERM)  # mid-stream, to the parent
            seen += list(lines)
        data = [line for line in seen if line.startswith("data: ")]
        assert data[-1] == "data: [DONE]"
        assert '"finish_reason":"stop"' in "".join(data).replace(" ", "")
        assert fleet.proc.wait(timeout=30) == 0
        assert fleet.log.count("Finished server process") == 2  # both drained
    finally:
        fleet.stop()
    (record,) = sim.log.records()
    assert record.status == 200 and record.billed  # the upstream ran its course
