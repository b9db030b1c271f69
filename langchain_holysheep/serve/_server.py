"""Running the proxy on uvicorn: one process, or several workers.

uvloop and httptools are used when installed (the `serve` extra installs
them). Nothing reads a client's address, so `X-Forwarded-*` headers are not
parsed. uvicorn's access log is off: it would print query strings, and a
client may have put a key there (refused, but already in the URL). On SIGTERM
uvicorn stops accepting connections, lets requests in flight (streams
included) finish for `[server] grace_seconds`, then cancels them; every
cancelled call still settles its reservation and records its attempts.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from langchain_holysheep.errors import ConfigurationError
from langchain_holysheep.serve.config import (
    CONFIG_ENV,
    ServeConfig,
    ServeConfigError,
    load_config,
)

__all__ = ["run", "uvicorn_options"]


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def uvicorn_options(config: ServeConfig, log_level: str = "info") -> dict[str, Any]:
    """The uvicorn settings of the proxy (fast loop and parser when installed)."""
    return {
        "loop": "uvloop" if _have("uvloop") else "asyncio",
        "http": "httptools" if _have("httptools") else "h11",
        "access_log": False,
        "server_header": False,
        # no client address is read: X-Forwarded-* need not be parsed per request
        "proxy_headers": False,
        "log_level": log_level,
        "timeout_graceful_shutdown": int(config.server.grace_seconds),
        "timeout_keep_alive": 30,
        "lifespan": "on",
    }


def _check_shared(config: ServeConfig, workers: int) -> None:
    """Several workers must share the keys' budgets and limits, not copy them."""
    from langchain_holysheep.serve._runtime import state_url_of

    url = state_url_of(config)
    limited = [
        name
        for name, key in config.keys.items()
        if key.budget or key.requests_per_minute or key.tokens_per_minute
    ]
    if limited and url.lower().startswith("memory:"):
        raise ServeConfigError(
            f"{config.source}: --workers {workers} with in-memory state would give "
            f"each worker its own copy of the budgets and limits of key(s) "
            f"{', '.join(limited)} ({workers} x the cap). Share them: set "
            "HOLYSHEEP_STATE_URL (sqlite:///state.db on one machine, "
            "redis://HOST:6379/0 across machines) or [server] state_url."
        )


def run(
    config_path: str | os.PathLike[str],
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int = 1,
    log_level: str = "info",
) -> None:
    """Serve until SIGTERM / Ctrl-C.

    The config is read and checked first (upstream keys in the environment
    included), so a broken one fails before anything listens.

    Raises:
        ServeConfigError: the config is invalid, a key variable is unset, or
            several workers would each keep their own copy of a key's budget.
        ConfigurationError: the `serve` extra is not installed.
    """
    needed = ("uvicorn", "orjson", "prometheus_client", "aiohttp")
    missing = [m for m in needed if not _have(m)]
    if missing:
        raise ConfigurationError(
            f"holysheep serve needs {', '.join(missing)}: "
            "pip install 'langchain-holysheep[serve]'"
        )
    import uvicorn

    from langchain_holysheep.serve._runtime import Runtime
    from langchain_holysheep.serve.app import ServeApp

    path = str(Path(config_path).resolve())
    config = load_config(path)
    options = uvicorn_options(config, log_level)
    bind: dict[str, Any] = {
        "host": host or config.server.host,
        "port": config.server.port if port is None else port,
    }
    if workers > 1:
        _check_shared(config, workers)
        os.environ[CONFIG_ENV] = path
        Runtime(config).close()  # fail here, not in every worker
        uvicorn.run(
            "langchain_holysheep.serve.app:app_from_env",
            factory=True,
            workers=workers,
            **bind,
            **options,
        )
        return
    uvicorn.run(ServeApp(Runtime(config)), **bind, **options)
