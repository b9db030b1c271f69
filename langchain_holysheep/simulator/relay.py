"""`LatencyRelay`: a TCP relay on 127.0.0.1 that behaves like a distant network.

Every byte is forwarded unchanged to a target on this machine, but it arrives
one configured one-way latency after it was sent, in order, in each direction
(a chunk sent at `t` arrives at `t + latency`; chunks in flight overlap, the
delays do not add up). A new connection also pays the TCP handshake: its first
bytes towards the target leave one round trip after the connection was
accepted, as they would after a real SYN / SYN-ACK exchange. Bandwidth can be
capped per direction. TLS passes through untouched, so a TLS handshake costs
its real round trips. Accepted connections are counted, which tells how many
connections a client opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import socket
import threading
from urllib.parse import urlsplit, urlunsplit

from langchain_holysheep.simulator.background import Background
from langchain_holysheep.simulator.link import (
    Counters,
    LinkSchedule,
    close_writer,
    copy_delayed,
)

__all__ = ["LatencyRelay"]

_MAX_LATENCY = 60.0


def _check_target(target: str) -> tuple[str, int, str]:
    """Split `target` ("scheme://host:port/path") into host, port and the URL."""
    parts = urlsplit(target if "://" in target else f"tcp://{target}")
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or ""
    if port is None:
        port = {"http": 80, "https": 443}.get(parts.scheme)
    if not host or port is None:
        raise ValueError(
            f"relay target {target!r} needs a host and a port, "
            "e.g. 'https://127.0.0.1:8443/v1' or '127.0.0.1:8443'"
        )
    loopback = host == "localhost"
    with contextlib.suppress(ValueError):
        loopback = ipaddress.ip_address(host).is_loopback
    if not loopback:
        raise ValueError(
            f"relay target host {host!r} is not a loopback address: the relay only "
            "forwards to servers on this machine (127.0.0.1, ::1 or localhost)"
        )
    return host, port, parts.scheme


def _check_number(name: str, value: float | None, low: float, high: float) -> None:
    if value is None:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} must be a number from {low} to {high}, got {value!r}")


class LatencyRelay(Background):
    """A TCP relay on 127.0.0.1 that adds a round trip to everything it carries.

    Forwards each accepted connection to `target` (a server on this machine),
    delaying each direction by `latency` seconds one way, in order. A new
    connection's first bytes also wait one round trip (the TCP handshake the
    relay's local accept skips). TLS passes through, so a TLS client pays its
    handshake's round trips. Runs its own event loop in a background thread and
    uses no CPU while idle.

    Setup:
        Nothing beyond the standard library.

    Args:
        target: where to forward: a URL (`"https://127.0.0.1:8443/v1"`; `url`
            then names the same scheme and path on the relay) or `"host:port"`.
            Only loopback hosts are accepted.
        latency: one-way delay in seconds (a round trip is twice that).
        bandwidth: a cap in bytes per second per direction (`None`: no cap).
        handshake: make a new connection's first bytes wait one round trip.

    Example:
        ```python
        from langchain_holysheep.simulator import GatewaySimulator, LatencyRelay

        with GatewaySimulator() as sim, LatencyRelay(sim.base_url) as relay:
            llm = ChatOpenAI(base_url=relay.url, api_key=sim.api_key)
            llm.invoke("hi")
            assert relay.connections == 1
        ```
    """

    def __init__(
        self,
        target: str,
        *,
        latency: float = 0.025,
        bandwidth: float | None = None,
        handshake: bool = True,
    ) -> None:
        self.target_host, self.target_port, self._scheme = _check_target(target)
        self._target_url = target if "://" in target else None
        _check_number("latency", latency, 0.0, _MAX_LATENCY)
        _check_number("bandwidth", bandwidth, 1.0, math.inf)
        self.latency = float(latency)
        self.bandwidth = None if bandwidth is None else float(bandwidth)
        self.handshake = bool(handshake)
        self._count = Counters()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._port: int | None = None

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "not running"
        return f"LatencyRelay({where} -> {self.target_host}:{self.target_port})"

    # -- addresses and counts ------------------------------------------------------
    @property
    def port(self) -> int:
        """The relay's port on 127.0.0.1 (known once started)."""
        if self._port is None:
            raise RuntimeError("the relay is not running: call start() or use `with`")
        return self._port

    @property
    def url(self) -> str:
        """The target URL with the relay's address (or `tcp://127.0.0.1:<port>`)."""
        if self._target_url is None:
            return f"tcp://127.0.0.1:{self.port}"
        parts = urlsplit(self._target_url)
        return urlunsplit(parts._replace(netloc=f"127.0.0.1:{self.port}"))

    @property
    def connections(self) -> int:
        """Connections accepted since start (or the last `reset_connections`)."""
        return self._count.accepted

    @property
    def open_connections(self) -> int:
        """Connections currently open."""
        return self._count.open

    @property
    def bytes_to_target(self) -> int:
        """Bytes delivered to the target so far."""
        return self._count.to_target

    @property
    def bytes_to_client(self) -> int:
        """Bytes delivered back to clients so far."""
        return self._count.to_client

    def reset_connections(self) -> int:
        """Set the accepted-connection count to 0; return what it was."""
        with self._count.changed:
            accepted, self._count.accepted = self._count.accepted, 0
        return accepted

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until no connection is open; False if `timeout` passed first."""
        with self._count.changed:
            return self._count.changed.wait_for(lambda: self._count.open == 0, timeout)

    # -- forwarding ----------------------------------------------------------------
    async def _handle(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        self._count.opened()
        loop = asyncio.get_running_loop()
        accepted = loop.time()
        try:
            try:
                target_r, target_w = await asyncio.open_connection(
                    self.target_host, self.target_port
                )
            except OSError:  # refused: cut the client off, as a refusal would
                await close_writer(client_w, abort=True)
                return
            await self._forward(client_r, client_w, target_r, target_w, accepted)
        except asyncio.CancelledError:  # the relay is stopping: cut the connection
            client_w.transport.abort()
        finally:
            self._count.closed()

    async def _forward(
        self,
        client_r: asyncio.StreamReader,
        client_w: asyncio.StreamWriter,
        target_r: asyncio.StreamReader,
        target_w: asyncio.StreamWriter,
        accepted: float,
    ) -> None:
        opens = accepted + (2 * self.latency if self.handshake else 0.0)
        up = LinkSchedule(self.latency, self.bandwidth, opens_at=opens)
        down = LinkSchedule(self.latency, self.bandwidth)
        pipes = [
            asyncio.create_task(
                copy_delayed(client_r, target_w, up, self._count, True)
            ),
            asyncio.create_task(
                copy_delayed(target_r, client_w, down, self._count, False)
            ),
        ]
        failed = True  # unless both directions end with an EOF
        try:
            await asyncio.gather(*pipes)
            failed = False
        except (OSError, asyncio.IncompleteReadError):
            pass  # a reset on one side resets the other
        finally:
            for pipe in pipes:
                pipe.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            await close_writer(target_w, abort=failed)
            await close_writer(client_w, abort=failed)

    # -- lifecycle -----------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> LatencyRelay:
        """Bind 127.0.0.1 on a free port and start forwarding in a thread."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self
            # IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted TCP sockets only.
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            try:
                sock.bind(("127.0.0.1", 0))
                sock.listen(512)
                sock.setblocking(False)
            except OSError:
                sock.close()
                raise
            ready = threading.Event()
            errors: list[BaseException] = []
            port = sock.getsockname()[1]
            thread = threading.Thread(
                target=self._run,
                args=(sock, ready, errors),
                name=f"holysheep-relay:{port}",
                daemon=True,
            )
            thread.start()
            if not ready.wait(timeout) or errors:
                raise RuntimeError(f"the relay did not start: {errors!r}")
            self._thread = thread
            self._port = port
            return self

    def _run(
        self, sock: socket.socket, ready: threading.Event, errors: list[BaseException]
    ) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve(loop, sock, ready))
        except BaseException as exc:  # reported by start()
            errors.append(exc)
            ready.set()
        finally:
            sock.close()
            loop.close()

    async def _serve(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        ready: threading.Event,
    ) -> None:
        stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, sock=sock)
        self._loop, self._stop = loop, stop
        ready.set()
        try:
            await stop.wait()
        finally:
            server.close()
            current = asyncio.current_task()
            handlers = [t for t in asyncio.all_tasks() if t is not current]
            for task in handlers:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
            await server.wait_closed()
            self._loop = self._stop = None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop: open connections are cut, the thread is joined."""
        with self._lock:
            thread, loop, stop = self._thread, self._loop, self._stop
            if thread is None:
                return
            if loop is not None and stop is not None:
                with contextlib.suppress(RuntimeError):  # the loop already ended
                    loop.call_soon_threadsafe(stop.set)
            thread.join(timeout)
            if thread.is_alive():
                raise RuntimeError("the relay thread did not stop in time")
            self._thread = None
            self._port = None
