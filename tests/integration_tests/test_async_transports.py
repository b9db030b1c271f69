"""The opt-in aiohttp transport leaves nothing open when an event loop ends.

One connection pool per event loop: with `asyncio.run()` called several times,
each run's aiohttp session must be closed when its loop ends, so a program
that used it prints no "Unclosed client session" / "Unclosed connector".
Checked in a fresh interpreter, where those warnings are printed at exit.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from langchain_holysheep.simulator import GatewaySimulator

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from langchain_holysheep import ChatHolySheep

    model = ChatHolySheep(
        model="gpt-4.1", base_url=sys.argv[1], api_key=sys.argv[2],
        async_transport="aiohttp",
    )

    async def stream():
        return [c async for c in model.astream("hi")]

    for _ in range(2):
        assert asyncio.run(model.ainvoke("hi")).content
    assert asyncio.run(stream())
    print("answered")
    """
)


def test_aiohttp_sessions_close_with_their_event_loop(sim: GatewaySimulator) -> None:
    pytest.importorskip("aiohttp", reason="the aiohttp extra is not installed")
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, sim.base_url, sim.api_key],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "answered" in run.stdout
    assert "Unclosed" not in run.stderr, run.stderr
    assert sim.log.count("gpt-4.1") == 3
