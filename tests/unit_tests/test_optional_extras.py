"""The package imports without its optional extras (each one blocked in turn)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CODE = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None  # an import of it raises ImportError
import langchain_holysheep as h
from langchain_holysheep import ChatHolySheep, get_holysheep_callback
import langchain_holysheep.spend, langchain_holysheep.resilience
missing = [n for n in h.__all__ if not hasattr(h, n)]
assert not missing, missing
print("ok")
"""


@pytest.mark.parametrize(
    "blocked",
    [
        ("prometheus_client",),
        ("redis",),
        ("aiohttp",),
        ("starlette", "uvicorn"),
        ("typer", "rich"),
        ("langchain", "langgraph"),
    ],
)
def test_the_package_imports_without_an_extra(blocked: tuple[str, ...]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CODE.format(blocked=blocked)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
