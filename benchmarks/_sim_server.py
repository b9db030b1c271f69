"""Run the HolySheep simulator in its own process, for the benchmarks.

Same command line as `python -m langchain_holysheep.simulator` (prints the base
URL on its first stdout line), plus a guard for older simulator checkouts.

Why the guard: a simulator whose listening socket is created as
`socket.socket(family, SOCK_STREAM)` has `proto` 0, and asyncio only sets
TCP_NODELAY on sockets whose `proto == IPPROTO_TCP`. uvicorn writes a response's
headers and body in two writes, the body then waits for the client's delayed
ACK, and every request on a kept-alive connection takes ~44 ms instead of
~1 ms. The simulator creates its socket with `IPPROTO_TCP` since commit 3d6abcc;
on such a checkout this patch changes nothing.
"""

from __future__ import annotations

import socket as _socket
import sys
import types


def patch_nodelay() -> None:
    """Make the simulator's listening socket a TCP socket asyncio recognises."""
    from langchain_holysheep.simulator import server as server_mod

    real = _socket
    if getattr(server_mod.socket, "_bench_nodelay", False):
        return

    def tcp_socket(
        family: int = -1, type: int = -1, proto: int = -1, fileno: int | None = None
    ):
        tcp_family = family in (real.AF_INET, real.AF_INET6)
        if (
            fileno is None
            and type == real.SOCK_STREAM
            and proto in (-1, 0)
            and tcp_family
        ):
            proto = real.IPPROTO_TCP
        return real.socket(family, type, proto, fileno)

    shim = types.ModuleType("socket")
    shim.__dict__.update(real.__dict__)
    shim.socket = tcp_socket  # type: ignore[attr-defined]
    shim._bench_nodelay = True  # type: ignore[attr-defined]
    server_mod.socket = shim  # type: ignore[attr-defined]


def main() -> int:
    patch_nodelay()
    from langchain_holysheep.simulator.cli import main as sim_main

    return sim_main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
