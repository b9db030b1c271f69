"""What the command line and the package root import: only what the work needs.

Each check runs in a fresh interpreter and reads `sys.modules`, so it tests
the imports themselves, not their speed.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import langchain_holysheep
from langchain_holysheep._lazy import declared_exports

HEAVY = ("langchain_core", "langchain_openai", "openai", "httpx2", "httpx")

RUN_CLI = """
import json, sys
from langchain_holysheep.cli import main
try:
    main({args!r})
except SystemExit as exc:
    code = exc.code
else:
    code = 0
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))
print(json.dumps({{"code": code, "loaded": loaded}}), file=sys.stderr)
"""


def _run(code: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLYSHEEP_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(langchain_holysheep.__file__).parent.parent)]
        + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stderr.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("args", [["--help"], [], ["models", "--help"]])
def test_help_loads_neither_langchain_nor_the_http_stack(args: list[str]) -> None:
    result = _run(RUN_CLI.format(args=args, heavy=HEAVY))
    assert result["loaded"] == []
    assert result["code"] in (0, 2)  # no arguments: help on stderr, exit 2


def test_models_without_a_key_does_not_load_the_http_stack() -> None:
    result = _run(RUN_CLI.format(args=["models", "-f", "json"], heavy=HEAVY))
    assert result["code"] == 0
    assert not {"openai", "httpx2", "httpx", "langchain_openai"} & set(
        result["loaded"]  # type: ignore[arg-type]
    )


def test_importing_the_package_root_loads_no_langchain() -> None:
    code = (
        "import json, sys, langchain_holysheep\n"
        f"print(json.dumps({{'loaded': sorted({{m.split('.')[0] for m in sys.modules}}"
        f" & set({HEAVY!r}))}}), file=sys.stderr)\n"
    )
    assert _run(code)["loaded"] == []


def _checked_imports(path: Path) -> dict[str, set[str]]:
    """The `if TYPE_CHECKING:` imports of a package `__init__`, by module."""
    found: dict[str, set[str]] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.module
                found.setdefault(imp.module, set()).update(a.name for a in imp.names)
    return found


@pytest.mark.parametrize(
    "package",
    [
        "langchain_holysheep",
        "langchain_holysheep.spend",
        "langchain_holysheep.spend.tracking",
    ],
)
def test_lazy_exports_match_the_declared_imports(package: str) -> None:
    module = importlib.import_module(package)
    source = Path(module.__file__).read_text()
    declared = _checked_imports(Path(module.__file__))
    where = declared_exports(source)
    modules = {home for home, _ in where.values()}
    assert {m: {a for h, a in where.values() if h == m} for m in modules} == declared
    assert set(module.__all__) - {"__version__"} == set(where)
    for name, (home, attribute) in where.items():
        assert getattr(module, name) is getattr(
            importlib.import_module(home), attribute
        )
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        module.nothing_here  # noqa: B018


def test_declared_exports_read_every_import_form() -> None:
    source = (
        "from typing import TYPE_CHECKING\n\n"
        "if TYPE_CHECKING:\n"
        "    from pkg.a import One\n"
        "    from pkg.b import Two, three  # a comment\n"
        "    from pkg.c import (\n"
        "        Four,  # another\n"
        "        five as Five,\n"
        "    )\n\n"
        "x = 1\n"
        "from pkg.d import Six\n"
    )
    assert declared_exports(source) == {
        "One": ("pkg.a", "One"),
        "Two": ("pkg.b", "Two"),
        "three": ("pkg.b", "three"),
        "Four": ("pkg.c", "Four"),
        "Five": ("pkg.c", "five"),
    }


def test_a_package_without_declared_imports_is_told_how_to_list_them() -> None:
    with pytest.raises(ValueError, match="if TYPE_CHECKING:"):
        declared_exports("from pkg.a import One\n")
