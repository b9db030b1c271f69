"""A Node.js client (the `openai` npm package) through the proxy; the example config.

The npm package is installed once into `.cache/node-openai` (gitignored). Where
node or npm is missing the test is skipped with the reason; under `CI=true` it
fails instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from langchain_holysheep.serve.config import load_config
from tests._services import unavailable
from tests.integration_tests.serve._proxy import KEY, ProxyThread

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "serve"
CACHE = ROOT / ".cache" / "node-openai"


@pytest.fixture(scope="session")
def node_modules() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        unavailable("node and npm are needed for the Node.js client test")
    assert npm is not None
    if not (CACHE / "node_modules" / "openai" / "package.json").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(CACHE),
             "openai@^5"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if done.returncode != 0:
            unavailable(f"npm install openai failed: {done.stderr[-500:]}")
    return CACHE / "node_modules"


def test_node_openai_client(proxy: ProxyThread, node_modules: Path) -> None:
    script = CACHE / "node_client.mjs"  # next to its node_modules
    shutil.copyfile(EXAMPLE / "node_client.mjs", script)
    env = {
        **os.environ,
        "HOLYSHEEP_PROXY_URL": proxy.base_url,
        "HOLYSHEEP_VIRTUAL_KEY": KEY,
    }
    done = subprocess.run(
        ["node", str(script)], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    steps = {s["step"]: s for s in map(json.loads, done.stdout.splitlines())}
    assert steps["invoke"]["model"] == "gpt-4.1"
    assert steps["invoke"]["route"] == "gpt-4.1" and steps["invoke"]["attempts"] == "1"
    assert "hello there" in steps["invoke"]["text"]
    assert "hello there" in steps["stream"]["text"]
    assert steps["stream"]["usage"]["completion_tokens"] > 0
    assert steps["error"] == {"step": "error", "status": 404, "code": "model_not_found"}
    assert KEY not in done.stdout + done.stderr


def test_the_example_config_is_valid() -> None:
    config = load_config(EXAMPLE / "holysheep.toml")
    assert set(config.groups) == {"smart", "cheap"}
    assert config.keys["research"].budget is not None
