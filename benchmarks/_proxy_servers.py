"""The servers of the proxy benchmark, each in its own process.

`holysheep serve` (one process, memory state, SQLite ledger, one group of two
routes, one virtual key with a budget) and LiteLLM's proxy (`litellm
--config`, the same two models as a fallback chain, its master key), both in
front of the simulator; and `LoadGen`, the `_proxy_load.py` process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import harness as H

SERVE_KEY = "hsv-bench-key-0123456789abcdef"
LITELLM_KEY = "sk-bench-master"
GROUP = "smart"
ROUTES = ("gpt-4.1", "deepseek-v3.2")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server process; ready once its health path answers 200.

    Args:
        name: for messages.
        args: its command line.
        env: extra environment variables.
        log: where its stdout and stderr go.
        target: what the load generator sends to it (url, key, model).
        health: the path that answers 200 once it serves.
    """

    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        log: Path,
        target: dict[str, str],
        health: str,
    ) -> None:
        self.name, self.args, self.log, self.target = name, args, log, target
        self.health = target["url"].rsplit("/v1", 1)[0] + health
        self.env = {**os.environ, **env}
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.args, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.health, timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        tail = self.log.read_text(errors="replace")[-1500:]
        self.__exit__()
        raise RuntimeError(f"{self.name} did not start:\n{tail}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        H.stop_process(self.proc, timeout=20)
        self.proc = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def rss_mib(self) -> float:
        import psutil

        assert self.proc is not None
        return float(psutil.Process(self.proc.pid).memory_info().rss) / 2**20


def holysheep_serve(sim: H.SimProcess, folder: Path, limits: bool = True) -> Server:
    """`holysheep serve` on a free port in front of `sim`.

    `limits=False` turns the routes' first-token and stall limits off (their
    default is on: a non-streaming request is then read as a stream).
    """
    from langchain_holysheep.serve.config import hash_key

    port = free_port()
    folder = folder / ("serve" if limits else "serve-limits-off")
    folder.mkdir(parents=True, exist_ok=True)
    off = ", first_token_timeout = false, stall_timeout = false"
    routes = ", ".join(
        json.dumps(r) if limits else f'{{ model = "{r}"{off} }}' for r in ROUTES
    )
    config = folder / "holysheep.toml"
    config.write_text(
        f"""
[server]
ledger = "{folder / "ledger.sqlite3"}"

[groups.{GROUP}]
routes = [{routes}]

[keys.bench]
hash = "{hash_key(SERVE_KEY)}"
groups = ["{GROUP}"]
budget = {{ limit = "1000000", window = "day" }}
tags = ["team:bench"]
"""
    )
    env = {"HOLYSHEEP_API_KEY": sim.api_key, "HOLYSHEEP_BASE_URL": sim.base_url}
    env_off = {"HOLYSHEEP_STATE_URL": ""}
    args = [sys.executable, "-m", "langchain_holysheep.serve", "--config", str(config)]
    args += ["--port", str(port), "--log-level", "warning"]
    target = {"url": f"http://127.0.0.1:{port}/v1", "key": SERVE_KEY, "model": GROUP}
    return Server(
        "holysheep serve" if limits else "holysheep serve (limits off)",
        args,
        {**env, **env_off},
        folder / "serve.log",
        target,
        "/health/live",
    )


def bare_relay(sim: H.SimProcess, folder: Path) -> Server:
    """`_bare_relay.py` on a free port in front of `sim` (no logic: the floor)."""
    port = free_port()
    args = [sys.executable, str(H.BENCH_DIR / "_bare_relay.py"), "--port", str(port)]
    args += ["--upstream", sim.base_url, "--key", sim.api_key, "--model", ROUTES[0]]
    target = {"url": f"http://127.0.0.1:{port}/v1", "key": "none", "model": GROUP}
    return Server("bare relay", args, {}, folder / "bare.log", target, "/health")


def litellm_proxy(sim: H.SimProcess, folder: Path) -> Server:
    """LiteLLM's proxy (`litellm --config`) on a free port in front of `sim`.

    Raises:
        H.Skip: LiteLLM's proxy is not installed in this environment.
    """
    exe = Path(sys.executable).parent / "litellm"
    try:
        import fastapi  # noqa: F401
        import litellm  # noqa: F401
    except ImportError as exc:
        raise H.Skip(f"LiteLLM's proxy is not installed ({exc})") from None
    if not exe.exists():
        raise H.Skip(f"no `litellm` command at {exe}")
    port = free_port()
    models = [
        {
            "model_name": name,
            "litellm_params": {
                "model": f"openai/{route}",
                "api_base": sim.base_url,
                "api_key": "os.environ/BENCH_SIM_KEY",
            },
        }
        for name, route in ((GROUP, ROUTES[0]), (f"{GROUP}-fallback", ROUTES[1]))
    ]
    config = folder / "litellm.yaml"
    config.write_text(  # JSON is YAML
        json.dumps(
            {
                "model_list": models,
                "router_settings": {"fallbacks": [{GROUP: [f"{GROUP}-fallback"]}]},
                "litellm_settings": {"num_retries": 2},
                "general_settings": {"master_key": LITELLM_KEY},
            }
        )
    )
    args = [str(exe), "--config", str(config), "--port", str(port)]
    args += ["--host", "127.0.0.1", "--num_workers", "1"]
    env = {
        "BENCH_SIM_KEY": sim.api_key,
        "LITELLM_LOG": "ERROR",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    target = {"url": f"http://127.0.0.1:{port}/v1", "key": LITELLM_KEY, "model": GROUP}
    return Server(
        "LiteLLM proxy", args, env, folder / "litellm.log", target, "/health/liveliness"
    )


class LoadGen:
    """`_proxy_load.py` in its own process: one JSON command, events, a result."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(H.BENCH_DIR / "_proxy_load.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=str(H.BENCH_DIR),
        )

    def run(
        self, command: dict[str, Any], on_event: Callable[[dict], None] | None = None
    ) -> Any:
        """Send `command`; call `on_event` for each event; return its result."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        for line in self._lines():
            message = json.loads(line)
            if "result" in message:
                return message["result"]
            if on_event is not None:
                on_event(message)
        raise RuntimeError("the load generator stopped without a result")

    def _lines(self) -> Iterator[str]:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                return
            yield line

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        H.stop_process(self.proc)
