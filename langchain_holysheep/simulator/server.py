"""`GatewaySimulator`: the simulator app served by uvicorn in a background thread.

The listening socket is bound by us (port 0 picks a free port), so the URL is
known before the server starts. Startup is awaited on an event set by uvicorn's
own `startup()`; shutdown is event-driven too (no polling ticks): hanging
requests are told to close their connections, in-flight tasks get a short grace
period, then the loop ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import threading
from collections.abc import Iterable, Mapping
from os import PathLike
from typing import Any

import uvicorn

from langchain_holysheep.simulator.app import SimulatorApp
from langchain_holysheep.simulator.background import Background
from langchain_holysheep.simulator.faults import Fault
from langchain_holysheep.simulator.log import RequestLog
from langchain_holysheep.simulator.models import ModelDirectory
from langchain_holysheep.simulator.plan import FaultPlan
from langchain_holysheep.simulator.profiles import ModelProfile
from langchain_holysheep.simulator.tokens import PromptCache

__all__ = ["GatewaySimulator"]

DEFAULT_API_KEY = "hs-simulator-key"
_logger = logging.getLogger(__name__)


def _check_tls(
    certfile: str | PathLike[str] | None, keyfile: str | PathLike[str] | None
) -> tuple[str, str] | None:
    """The uvicorn TLS settings, after loading them once to report a bad file now."""
    if certfile is None:
        if keyfile is not None:
            raise ValueError("ssl_keyfile needs ssl_certfile (the certificate)")
        return None
    cert, key = os.fspath(certfile), os.fspath(keyfile or certfile)
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            f"cannot serve TLS with certificate {cert!r} and key {key!r}: {exc}. "
            "Pass PEM files (a certificate chain and its private key)."
        ) from None
    return cert, key


class _Server(uvicorn.Server):
    """uvicorn's server with event-based startup notice and fast shutdown."""

    def __init__(self, config: uvicorn.Config, app: SimulatorApp, grace: float) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self.exit_event: asyncio.Event | None = None
        self._sim_app = app
        self._grace = grace

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.exit_event = asyncio.Event()
        await super().startup(sockets=sockets)
        self.ready.set()

    async def main_loop(self) -> None:
        await self.on_tick(0)  # sets the default response headers once
        assert self.exit_event is not None
        await self.exit_event.wait()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        self._sim_app.stopping.set()  # hanging deliveries close their connections
        for connection in list(self.server_state.connections):
            connection.shutdown()  # idle keep-alive connections close now
        tasks = list(self.server_state.tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self._grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        for connection in list(self.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()
        for server in self.servers:
            await server.wait_closed()


class GatewaySimulator(Background):
    """A local HolySheep gateway for tests, demos and failover rehearsals.

    A real HTTP server speaking the OpenAI chat-completions wire format, with
    scripted faults and a ground-truth log.

    Setup:
        Nothing to install beyond the package; no key, no network. Runs in a
        background thread of the current process (or `python -m
        langchain_holysheep.simulator` from a shell).

    Args:
        api_key: the Bearer key the simulator accepts.
        host: interface to bind (default loopback).
        port: port to bind (0: a free port).
        models: model ids to serve (default: the package catalogue's ids).
        accept_any_model: serve any model id instead of answering 404.
        max_log_records: cap on the records kept by `log.records()` (totals stay
            exact).
        hidden_prompt_tokens: prompt tokens added to every reply's usage, as a
            gateway that adds its own system prompt bills them (default 0).
        ssl_certfile: serve HTTPS with this PEM certificate (chain); the URL
            then starts with `https://`. Clients must trust its issuer (e.g.
            `SSL_CERT_FILE=<CA file>` for httpx-based clients).
        ssl_keyfile: the certificate's private key (default: read from
            `ssl_certfile`).

    Example:
        ```python
        from langchain_holysheep.simulator import Fault, GatewaySimulator

        with GatewaySimulator(api_key="hs-sim-key") as sim:
            sim.script("gpt-4.1", [Fault.status(503, retry_after=1), Fault.ok()])
            client = openai.OpenAI(base_url=sim.base_url, api_key=sim.api_key)
            ...
            assert sim.log.count("gpt-4.1") == 2
        ```

    Also usable as `async with GatewaySimulator() as sim:` and through
    `start()` / `stop()`.
    """

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        models: Iterable[str] | None = None,
        accept_any_model: bool = False,
        max_log_records: int | None = None,
        hidden_prompt_tokens: int = 0,
        ssl_certfile: str | PathLike[str] | None = None,
        ssl_keyfile: str | PathLike[str] | None = None,
    ) -> None:
        if not isinstance(api_key, str) or not api_key:
            raise ValueError("api_key must be a non-empty string")
        if (
            isinstance(hidden_prompt_tokens, bool)
            or not isinstance(hidden_prompt_tokens, int)
            or hidden_prompt_tokens < 0
        ):
            raise ValueError(
                "hidden_prompt_tokens must be a whole number >= 0, got "
                f"{hidden_prompt_tokens!r}"
            )
        self._tls = _check_tls(ssl_certfile, ssl_keyfile)
        self._api_key = api_key
        self.host = host
        self._requested_port = port
        self.directory = ModelDirectory(models, accept_any_model=accept_any_model)
        self.plan = FaultPlan()
        self.log = RequestLog(max_records=max_log_records)
        self._cache = PromptCache()
        self._app = SimulatorApp(
            api_key=api_key,
            directory=self.directory,
            plan=self.plan,
            log=self.log,
            cache=self._cache,
            hidden_prompt_tokens=hidden_prompt_tokens,
        )
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._port: int | None = None
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        where = self.base_url if self.running else "not running"
        return f"GatewaySimulator({where}, models={len(self.directory.ids())})"

    # -- addresses ----------------------------------------------------------------
    @property
    def api_key(self) -> str:
        """The accepted API key."""
        return self._api_key

    @property
    def port(self) -> int:
        """The bound port (known once started)."""
        if self._port is None:
            raise RuntimeError(
                "the simulator is not running: call start() or use `with`"
            )
        return self._port

    @property
    def tls(self) -> bool:
        """Whether the simulator serves HTTPS."""
        return self._tls is not None

    @property
    def base_url(self) -> str:
        """`http(s)://<host>:<port>/v1` (known once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{self.port}/v1"

    @property
    def running(self) -> bool:
        """Whether the server thread is serving."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def models(self) -> list[str]:
        """The listed model ids."""
        return self.directory.ids()

    # -- faults -------------------------------------------------------------------
    def script(
        self, model: str, faults: Iterable[Fault], *, then: Fault | None = None
    ) -> None:
        """Script `model`'s next requests.

        Request #k gets `faults[k-1]`; after the list, every request gets `then`
        (or a normal reply). Replaces any earlier script of `model`, and makes
        `model` served even if it is not listed.
        """
        self.plan.script(model, faults, then=then)

    def set_default(self, fault: Fault) -> None:
        """The fault for every model without a script or profile."""
        self.plan.set_default(fault)

    def set_profile(self, model: str, profile: ModelProfile | None) -> None:
        """Random failures/latency for `model` (`None` removes it)."""
        self.plan.set_profile(model, profile)

    def load_faults(self, spec: Mapping[str, Any] | str | PathLike[str]) -> None:
        """Apply a fault script (dict or JSON file path); see `FaultPlan.load`."""
        self.plan.load(spec)

    def reset(self) -> None:
        """Clear scripts, profiles, the default fault, the log and the prompt cache."""
        self.plan.reset()
        self.log.clear()
        self._cache.clear()

    # -- lifecycle ----------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> GatewaySimulator:
        """Bind the socket, start the server thread, and wait until it serves."""
        with self._lock:
            if self.running:
                return self
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted
            # sockets whose proto says TCP; without it, Nagle + delayed ACKs add
            # ~40 ms to every response written in two parts.
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self.host, self._requested_port))
                sock.listen(2048)
                sock.setblocking(False)
            except OSError:
                sock.close()
                raise
            self._port = sock.getsockname()[1]
            config = uvicorn.Config(
                self._app.asgi(),
                lifespan="off",
                log_config=None,
                log_level="warning",
                access_log=False,
                server_header=False,
                date_header=False,
                headers=[("server", "holysheep-simulator")],
                timeout_graceful_shutdown=1,
                ssl_certfile=self._tls[0] if self._tls else None,
                ssl_keyfile=self._tls[1] if self._tls else None,
            )
            self._app.stopping = asyncio.Event()
            server = _Server(config, self._app, grace=1.0)
            self._server, self._error = server, None
            thread = threading.Thread(
                target=self._run,
                args=(server, sock),
                name=f"holysheep-sim:{self._port}",
                daemon=True,
            )
            self._thread = thread
            thread.start()
            if not server.ready.wait(timeout) or not server.started:
                self._join(timeout=1.0)
                self._port = None
                raise RuntimeError(
                    f"the simulator did not start: {self._error!r}"
                ) from self._error
            return self

    def _run(self, server: _Server, sock: socket.socket) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(server.serve(sockets=[sock]))
        except BaseException as exc:  # reported by start() or logged
            self._error = exc
            if server.started:
                _logger.exception("HolySheep simulator stopped with an error")
        finally:
            server.ready.set()
            sock.close()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                self._loop = None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: hanging requests are cut, the thread is joined."""
        with self._lock:
            server, loop = self._server, self._loop
            if server is None or not self.running:
                self._server = None
                return
            if loop is not None and server.exit_event is not None:
                with contextlib.suppress(RuntimeError):  # loop already closed
                    loop.call_soon_threadsafe(server.exit_event.set)
            server.should_exit = True
            self._join(timeout)
            self._server = None

    def _join(self, timeout: float) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                raise RuntimeError("the simulator thread did not stop in time")
            self._thread = None

    def chat_model_kwargs(self, model: str = "gpt-4.1") -> dict[str, Any]:
        """Keyword arguments pointing an OpenAI-compatible chat model here.

        Example: `ChatOpenAI(**sim.chat_model_kwargs())`.
        """
        return {"base_url": self.base_url, "api_key": self.api_key, "model": model}
