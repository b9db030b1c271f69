"""HOLYSHEEP_TRACK_SPEND=1 prices a plain ChatOpenAI call with no code change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

from langchain_holysheep.simulator import GatewaySimulator
from langchain_holysheep.spend import PriceBook, TokenUsage

SCRIPT = textwrap.dedent(
    """
    import asyncio, site, sys
    # What the interpreter does at start-up with the .pth file the wheel installs
    # into site-packages: the script itself never imports langchain_holysheep.
    site.addsitedir(sys.argv[3])
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=sys.argv[1], api_key=sys.argv[2], model="gpt-4.1",
                     stream_usage=True, max_retries=0, max_tokens=30)
    llm.invoke("Hello from a plain script")
    "".join(c.content for c in llm.stream("And a stream"))
    asyncio.run(llm.ainvoke("And async"))
    """
)


PTH = (
    Path(__file__).parents[3] / "langchain_holysheep/data/langchain_holysheep_track.pth"
)


def _site_dir(tmp: Path) -> Path:
    site_dir = tmp / "site"
    site_dir.mkdir(exist_ok=True)
    (site_dir / PTH.name).write_text(PTH.read_text())
    return site_dir


def run(
    sim: GatewaySimulator, tmp: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, sim.base_url, sim.api_key, str(_site_dir(tmp))],
        env={**os.environ, "HOLYSHEEP_TRACK_SPEND": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_report_written_at_exit_to_a_file(
    sim: GatewaySimulator, tmp_path: Path
) -> None:
    out = tmp_path / "spend.json"
    proc = run(sim, tmp_path, HOLYSHEEP_SPEND_REPORT=str(out))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    billed = sim.log.billed()
    assert data["calls"] == 3 == billed.requests
    assert data["input_tokens"] == billed.prompt_tokens
    assert data["output_tokens"] == billed.completion_tokens
    expected = PriceBook(use_env=False).cost(
        "gpt-4.1", TokenUsage(billed.prompt_tokens, billed.completion_tokens)
    )
    assert Decimal(data["cost"]) == expected
    assert data["ttft_ms"]["count"] == 1


def test_importing_the_package_root_registers_the_hook() -> None:
    code = (
        "import langchain_holysheep\n"
        "from langchain_core.tracers.context import _configure_hooks\n"
        "names = [v.name for v, *_ in _configure_hooks]\n"
        "assert names.count('holysheep_track_spend') == 1, names\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr


def test_tracking_hook_is_inert_when_the_variable_is_unset(tmp_path: Path) -> None:
    code = (
        "import site, sys; site.addsitedir(sys.argv[1]); "
        "assert 'langchain_holysheep' not in sys.modules, 'imported'"
    )
    env = {k: v for k, v in os.environ.items() if k != "HOLYSHEEP_TRACK_SPEND"}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(_site_dir(tmp_path))],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
