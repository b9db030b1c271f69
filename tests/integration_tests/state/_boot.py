"""Entry point of the spawned worker processes.

A worker loads `langchain_holysheep.state` without running the parent
package's `__init__`, which imports the whole LangChain chat-model stack
(seconds per process on a busy machine) that the state package never uses.
The state code that runs is the same; only the unrelated imports are skipped.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from multiprocessing.connection import Connection
from typing import Any


def _state_package_only() -> None:
    if "langchain_holysheep" in sys.modules:
        return
    spec = importlib.util.find_spec("langchain_holysheep")
    assert spec is not None and spec.submodule_search_locations is not None
    package = types.ModuleType("langchain_holysheep")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    sys.modules["langchain_holysheep"] = package


def serve(conn: Connection, barrier: Any) -> None:
    """Run requests from the test process until told to stop."""
    _state_package_only()
    from tests.integration_tests.state._workers import serve_requests

    serve_requests(conn, barrier)
