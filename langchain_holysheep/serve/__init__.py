"""`holysheep serve`: an OpenAI-compatible proxy with failover, budgets and spend.

Every client that speaks the OpenAI wire format (any SDK, `curl`, LangChain.js,
IDE plugins) calls model groups through one server that holds the upstream
keys, runs the same route loop as `ChatHolySheep` (retries, fallbacks,
breakers, deadlines, stream rescue), enforces each virtual key's budget and
limits, and writes every attempt to the spend ledger.

Needs the `serve` extra: `pip install 'langchain-holysheep[serve]'`.

```bash
holysheep serve-key research          # prints a key and its hash line
holysheep serve --config holysheep.toml
python -m langchain_holysheep.serve --config holysheep.toml --workers 4
```
"""

from typing import Any

__all__ = ["ServeApp", "ServeConfig", "load_config", "new_virtual_key", "run"]


def __getattr__(name: str) -> Any:
    if name in ("ServeConfig", "load_config", "new_virtual_key"):
        from langchain_holysheep.serve import config

        return getattr(config, name)
    if name == "ServeApp":
        from langchain_holysheep.serve.app import ServeApp

        return ServeApp
    if name == "run":
        from langchain_holysheep.serve._server import run

        return run
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
