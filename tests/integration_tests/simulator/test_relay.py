"""LatencyRelay: delays, connection counts, byte fidelity, clean closes, TLS.

Timing checks are lower bounds only (a relay can never deliver early; a busy
machine can only make it later).
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Iterator

import httpx2
import pytest
import trustme

from langchain_holysheep.simulator import GatewaySimulator, LatencyRelay
from langchain_holysheep.simulator.link import LinkSchedule
from tests.integration_tests.simulator._helpers import KEY, chat, sse

WAIT = 10.0  # generous bound for events that must happen (never a timing claim)


# --------------------------------------------------------------------------- servers
class _Echo(socketserver.BaseRequestHandler):
    """Echo every byte back; record the EOF; half-close in turn."""

    server: _EchoServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        while data := sock.recv(65536):
            sock.sendall(data)
        self.server.saw_eof.set()
        sock.shutdown(socket.SHUT_WR)


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.saw_eof = threading.Event()


class _Goodbye(socketserver.BaseRequestHandler):
    """Say goodbye and close at once, without reading."""

    def handle(self) -> None:
        self.request.sendall(b"goodbye")
        self.request.close()


@pytest.fixture
def echo() -> Iterator[_EchoServer]:
    server = _EchoServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _connect(relay: LatencyRelay) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", relay.port), timeout=WAIT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    parts, got = [], 0
    while got < size:
        data = sock.recv(min(65536, size - got))
        assert data, f"connection closed after {got} of {size} bytes"
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def _closed_by_peer(sock: socket.socket) -> bool:
    """Whether the peer closed: an EOF, or a reset (how an abort may arrive)."""
    try:
        return sock.recv(10) == b""
    except ConnectionResetError:
        return True


def _echo_seconds(sock: socket.socket, payload: bytes = b"ping") -> float:
    start = time.perf_counter()
    sock.sendall(payload)
    assert _recv_exactly(sock, len(payload)) == payload
    return time.perf_counter() - start


# --------------------------------------------------------------------------- schedule
def test_schedule_delays_do_not_add_up() -> None:
    link = LinkSchedule(latency=0.05)
    arrivals = [link.arrival(10.0, 1000) for _ in range(100)]
    assert arrivals == [10.05] * 100  # 100 chunks in flight together
    assert link.arrival(10.2, 10) == pytest.approx(10.25)


def test_schedule_handshake_and_bandwidth() -> None:
    link = LinkSchedule(latency=0.05, bandwidth=1000.0, opens_at=1.0)
    assert link.arrival(0.0, 500) == pytest.approx(1.55)  # waits for the handshake
    assert link.arrival(0.0, 500) == pytest.approx(2.05)  # queued behind the first
    assert link.arrival(5.0, 100) == pytest.approx(5.15)  # idle link: no queue


# --------------------------------------------------------------------------- latency
def test_round_trip_takes_at_least_two_one_way_delays(echo: _EchoServer) -> None:
    relay = LatencyRelay(f"127.0.0.1:{echo.server_address[1]}", latency=0.05)
    with relay, _connect(relay) as sock:
        first = _echo_seconds(sock)  # + the TCP handshake's round trip
        later = [_echo_seconds(sock) for _ in range(3)]
    assert first >= 0.2
    assert min(later) >= 0.1


def test_handshake_off_first_exchange_is_one_round_trip(echo: _EchoServer) -> None:
    target = f"127.0.0.1:{echo.server_address[1]}"
    relay = LatencyRelay(target, latency=0.05, handshake=False)
    with relay, _connect(relay) as sock:
        assert _echo_seconds(sock) >= 0.1
    assert relay.bytes_to_target == relay.bytes_to_client == 4


def test_bandwidth_cap_spreads_a_large_body(echo: _EchoServer) -> None:
    target = f"127.0.0.1:{echo.server_address[1]}"
    payload = os.urandom(200_000)
    relay = LatencyRelay(target, latency=0.0, bandwidth=1_000_000, handshake=False)
    with relay, _connect(relay) as sock:
        seconds = _echo_seconds(sock, payload)
    assert seconds >= 0.2  # 200 kB at 1 MB/s, each way, pipelined


def test_http_request_through_the_relay_pays_the_round_trips(
    sim: GatewaySimulator,
) -> None:
    with LatencyRelay(sim.base_url, latency=0.05) as relay:
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx2.Client(base_url=relay.url, headers=headers) as http:
            start = time.perf_counter()
            assert http.get("/models").status_code == 200
            cold = time.perf_counter() - start
            start = time.perf_counter()
            assert http.get("/models").status_code == 200
            warm = time.perf_counter() - start
    assert cold >= 0.2  # TCP handshake + request
    assert warm >= 0.1


# --------------------------------------------------------------------------- counting
def test_one_keep_alive_client_opens_one_connection(sim: GatewaySimulator) -> None:
    with LatencyRelay(sim.base_url, latency=0.001) as relay:
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx2.Client(base_url=relay.url, headers=headers) as http:
            for _ in range(5):
                assert chat(http).status_code == 200
        assert relay.connections == 1
        assert relay.wait_idle(WAIT)
    assert sim.log.count("gpt-4.1") == 5


def test_each_client_opens_its_own_connection(sim: GatewaySimulator) -> None:
    with LatencyRelay(sim.base_url, latency=0.001) as relay:
        headers = {"Authorization": f"Bearer {KEY}"}
        for _ in range(4):
            with httpx2.Client(base_url=relay.url, headers=headers) as http:
                assert chat(http).status_code == 200
        assert relay.connections == 4
        assert relay.reset_connections() == 4
        assert relay.connections == 0
        with httpx2.Client(base_url=relay.url, headers=headers) as http:
            assert chat(http).status_code == 200
        assert relay.connections == 1
        assert relay.wait_idle(WAIT)
        assert relay.open_connections == 0


# --------------------------------------------------------------------------- fidelity
def test_large_bodies_pass_unchanged_both_ways(echo: _EchoServer) -> None:
    payload = os.urandom(3_000_000)
    target = f"127.0.0.1:{echo.server_address[1]}"
    with LatencyRelay(target, latency=0.01) as relay, _connect(relay) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()  # echoes come back while we still send
        received = _recv_exactly(sock, len(payload))
        sender.join(WAIT)
    assert received == payload
    assert relay.bytes_to_target == relay.bytes_to_client == len(payload)


def test_large_request_and_sse_stream_match_a_direct_request(
    sim: GatewaySimulator,
) -> None:
    body = {
        "model": "gpt-4.1",
        "messages": [{"role": "user", "content": "word " * 200_000}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    headers = {"Authorization": f"Bearer {KEY}"}

    def events(base_url: str) -> list[object]:
        with (
            httpx2.Client(base_url=base_url, headers=headers, timeout=WAIT) as http,
            http.stream("POST", "/chat/completions", json=body) as response,
        ):
            assert response.status_code == 200
            data = sse(response.iter_lines())
        assert data[-1] == "[DONE]"
        parsed = [json.loads(d) for d in data[:-1]]
        for event in parsed:  # per-request fields
            del event["id"], event["created"]
        return parsed

    direct = events(sim.base_url)
    with LatencyRelay(sim.base_url, latency=0.005) as relay:
        relayed = events(relay.url)
    assert relayed == direct
    assert direct[-1]["usage"]["prompt_tokens"] >= 200_000  # the whole body arrived


# --------------------------------------------------------------------------- closing
def test_client_close_reaches_the_target(echo: _EchoServer) -> None:
    target = f"127.0.0.1:{echo.server_address[1]}"
    with LatencyRelay(target, latency=0.01) as relay:
        sock = _connect(relay)
        assert _echo_seconds(sock) > 0
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(10) == b""  # the target's half-close came back
        sock.close()
        assert echo.saw_eof.wait(WAIT)
        assert relay.wait_idle(WAIT)


def test_target_close_reaches_the_client() -> None:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Goodbye)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        target = f"127.0.0.1:{server.server_address[1]}"
        with LatencyRelay(target, latency=0.01) as relay:
            with _connect(relay) as sock:
                assert _recv_exactly(sock, 7) == b"goodbye"
                assert sock.recv(10) == b""  # the target's close arrived
            assert relay.wait_idle(WAIT)  # and the client's close ended it
    finally:
        server.shutdown()
        server.server_close()


def test_refused_target_closes_the_client() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with LatencyRelay(f"127.0.0.1:{port}", latency=0.01) as relay:
        with _connect(relay) as sock:
            assert _closed_by_peer(sock)
        assert relay.wait_idle(WAIT)
        assert relay.connections == 1


def test_stop_cuts_open_connections(echo: _EchoServer) -> None:
    relay = LatencyRelay(f"127.0.0.1:{echo.server_address[1]}", latency=0.01)
    relay.start()
    sock = _connect(relay)
    try:
        assert _echo_seconds(sock) > 0
        relay.stop()
        assert _closed_by_peer(sock)
        assert relay.open_connections == 0
        with pytest.raises(RuntimeError, match="not running"):
            _ = relay.port
    finally:
        sock.close()
        relay.stop()  # idempotent


# --------------------------------------------------------------------------- TLS
def test_tls_through_the_relay_verifies_against_the_ca(
    ca: trustme.CA, tls_sim: GatewaySimulator
) -> None:
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    headers = {"Authorization": f"Bearer {KEY}"}
    with LatencyRelay(tls_sim.base_url, latency=0.01) as relay:
        assert relay.url.startswith("https://127.0.0.1:")
        with httpx2.Client(base_url=relay.url, headers=headers, verify=trusting) as h:
            assert chat(h).json()["choices"][0]["message"]["content"]
        other = ssl.create_default_context()  # the system's CAs only
        with (
            httpx2.Client(base_url=relay.url, headers=headers, verify=other) as h,
            pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            chat(h)
        assert relay.connections == 2


# --------------------------------------------------------------------------- inputs
@pytest.mark.parametrize(
    ("target", "kwargs", "message"),
    [
        ("https://example.com:443/v1", {}, "not a loopback address"),
        ("10.0.0.1:80", {}, "not a loopback address"),
        ("tcp://127.0.0.1", {}, "needs a host and a port"),
        ("127.0.0.1:80", {"latency": -1}, "latency must be"),
        ("127.0.0.1:80", {"latency": float("nan")}, "latency must be"),
        ("127.0.0.1:80", {"bandwidth": 0}, "bandwidth must be"),
    ],
)
def test_bad_settings_are_rejected(
    target: str, kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        LatencyRelay(target, **kwargs)
