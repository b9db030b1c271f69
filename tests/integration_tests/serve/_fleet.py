"""`holysheep serve` as a user runs it: the console script in a subprocess.

`Fleet` starts `holysheep serve --config ... --port ... --workers N` (uvicorn's
multiprocess mode: one parent, N spawned worker processes on one socket),
waits until every worker has started, and stops it with SIGTERM. Its log
(stderr) is drained by a thread, so a chatty server never blocks on a full
pipe, and tests wait on lines of it. `owner()` names the worker process that
holds a client's connection (the test kills it with `kill -9`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

import psutil

HOLYSHEEP = str(Path(sys.executable).with_name("holysheep"))
ROOT = str(Path(__file__).resolve().parents[3])
STARTED = "Application startup complete."


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_env(**extra: str) -> dict[str, str]:
    """The server's environment: this one without HOLYSHEEP_*, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLYSHEEP_")}
    return {**env, "PYTHONPATH": ROOT, "PYTHONIOENCODING": "utf-8", **extra}


class ServerLog:
    """The lines a process writes to stderr, read by a thread as they come."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._eof = False
        self._thread = threading.Thread(
            target=self._read, args=(proc.stderr,), daemon=True
        )
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def count(self, text: str) -> int:
        with self._cond:
            return sum(text in line for line in self.lines)

    def wait(self, text: str, n: int = 1, timeout: float = 90.0) -> None:
        """Until `n` lines contain `text`; fails if the process ends first."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: self._eof or self.count(text) >= n, timeout
            )
            if not ok or self.count(text) < n:
                raise AssertionError(
                    f"waited for {n} x {text!r}; the server wrote:\n"
                    + "".join(self.lines[-40:])
                )

    def text(self) -> str:
        with self._cond:
            return "".join(self.lines)


class Fleet:
    """`holysheep serve --workers N` on 127.0.0.1:`port` (stopped with SIGTERM).

    Args:
        config: the holysheep.toml.
        env: the server's environment (see `serve_env`).
        workers: worker processes.
    """

    def __init__(self, config: Path, env: Mapping[str, str], workers: int) -> None:
        self.port = free_port()
        self.workers_wanted = workers
        self.proc = subprocess.Popen(
            [HOLYSHEEP, "serve", "--config", str(config), "--port", str(self.port),
             "--workers", str(workers), "--log-level", "info"],
            env=dict(env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        self.log = ServerLog(self.proc)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> Fleet:
        """Wait until every worker has started its application."""
        self.log.wait(STARTED, self.workers_wanted)
        return self

    def workers(self) -> list[psutil.Process]:
        """The live worker processes (children of the parent running a server)."""
        kids = psutil.Process(self.proc.pid).children()
        return [
            p
            for p in kids
            if p.is_running() and "spawn_main" in " ".join(p.cmdline() or [])
        ]

    def owner(self, client_port: int) -> psutil.Process:
        """The worker holding the connection from `client_port`."""
        for worker in self.workers():
            for conn in worker.net_connections(kind="tcp"):
                if (
                    conn.laddr
                    and conn.raddr
                    and conn.laddr.port == self.port
                    and conn.raddr.port == client_port
                ):
                    return worker
        raise AssertionError(f"no worker holds the connection from :{client_port}")

    def stop(self) -> int:
        """SIGTERM, and the exit code (killed after 30 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            for worker in self.workers():
                worker.kill()
            self.proc.kill()
            return self.proc.wait()
