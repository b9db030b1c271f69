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


def _python(code: str) -> str:
    """The stdout of `python -c code` (which must succeed)."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


@pytest.mark.parametrize(
    "blocked",
    [
        ("prometheus_client",),
        ("redis",),
        ("psycopg", "psycopg_pool"),
        ("aiohttp",),
        ("starlette", "uvicorn"),
        ("typer", "rich"),
        ("langchain", "langgraph"),
    ],
)
def test_the_package_imports_without_an_extra(blocked: tuple[str, ...]) -> None:
    assert _python(CODE.format(blocked=blocked)) == "ok"


def test_importing_the_package_does_not_import_psycopg() -> None:
    code = (
        "import sys, langchain_holysheep, langchain_holysheep.spend.ledger\n"
        "from langchain_holysheep.spend.ledger import PostgresLedger, open_ledger\n"
        "print(sorted(m for m in sys.modules if m.startswith('psycopg')))"
    )
    assert _python(code) == "[]"


def test_a_postgresql_ledger_without_psycopg_says_how_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['psycopg'] = None\n"
        "from langchain_holysheep.spend.ledger import open_ledger, LedgerError\n"
        "try:\n"
        "    open_ledger('postgresql://u@127.0.0.1/test')\n"
        "except LedgerError as e:\n"
        "    print(e)\n"
    )
    assert "pip install 'langchain-holysheep[postgres]'" in _python(code)
