"""Running the proxy on uvicorn: one process, or several workers.

uvloop and httptools are used when installed (the `serve` extra installs
them). uvicorn's access log is off: it would print query strings, and a
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
from langchain_holysheep.serve.config import CONFIG_ENV, ServeConfig, load_config

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
        "log_level": log_level,
        "timeout_graceful_shutdown": int(config.server.grace_seconds),
        "timeout_keep_alive": 30,
        "lifespan": "on",
    }


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
        ServeConfigError: the config is invalid, or a key variable is unset.
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
