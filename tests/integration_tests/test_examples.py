"""Every example runs as is (on the embedded simulator) and says what it did.

The examples start together, as subprocesses without any HolySheep or OpenAI
variables set, exactly as a newcomer would run them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

EXPECTED: dict[str, list[str]] = {
    "quickstart.py": [
        "[chain] ",
        "[stream] ",
        "[stream usage] ",
        "[tool call] [{'name': 'get_weather', 'args': {'city': 'Hanoi'}",
        "[tool answer] The get_weather tool returned: 31°C and sunny in Hanoi",
        "[structured] CityFacts(",
    ],
    "chain.py": [
        "gpt-4.1 is down (HTTP 503)",
        "answered by gemini-2.5-flash (requested gpt-4.1",
        "Spend report:",
        r"re:gemini-2\.5-flash\s+\d+\s+\d+\s+0\s",
        "refused by budget 0",
    ],
    "agent.py": [
        "gpt-4.1: calls get_weather{'city': 'Hanoi'}",
        "gemini-2.5-flash: The get_weather tool returned",
        "(survived the outage: gpt-4.1 503, gpt-4.1 503)",
        "200 USD = 5,080,000 VND",
        "re:thread spend: 0\\.\\d{6} USD \\(limit 0\\.20\\)",
    ],
    "rag.py": [
        "retrieved: fallbacks",
        "retrieved: pricing",
        "retrieved: rollback",
        "re:3 calls, cost 0\\.\\d+ USD",
    ],
    "batch.py": [
        "8 items done, 0 refused by the budget",
        "deepseek-v3.2: 8 calls",
        "never exceeded",
    ],
    "migrate_from_openai.py": [
        "[before] ChatOpenAI",
        "[after] ChatHolySheep",
        "streamed usage: None tokens",
        "re:streamed usage: \\d+ tokens",
    ],
}


def _clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HOLYSHEEP_", "OPENAI_"))
    }
    env["PYTHONIOENCODING"] = "utf-8"
    return env


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[str, subprocess.CompletedProcess[str]]]:
    """Run all examples concurrently (they are independent) and collect them."""
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(EXAMPLES / name)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env=_clean_env(),
            cwd=EXAMPLES.parent,
        )
        for name in EXPECTED
    }
    done = {}
    try:
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=90)
            done[name] = subprocess.CompletedProcess(
                proc.args, proc.returncode, out, err
            )
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    yield done


def test_every_example_is_tested() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(
    name: str, runs: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    run = runs[name]
    assert run.returncode == 0, f"{name} failed:\n{run.stdout}\n{run.stderr}"
    for expected in EXPECTED[name]:
        if expected.startswith("re:"):
            assert re.search(expected[3:], run.stdout), (expected, run.stdout)
        else:
            assert expected in run.stdout, (expected, run.stdout)
    assert "Traceback" not in run.stderr
