"""`python -m langchain_holysheep.serve --config holysheep.toml [--workers N]`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and serve; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m langchain_holysheep.serve",
        description="OpenAI-compatible proxy with failover, budgets and spend.",
    )
    parser.add_argument("--config", default="holysheep.toml", help="config file")
    parser.add_argument("--host", default=None, help="interface (default: config)")
    parser.add_argument("--port", type=int, default=None, help="port (default: config)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--log-level", default="info", help="uvicorn log level")
    args = parser.parse_args(argv)
    from langchain_holysheep.errors import ConfigurationError
    from langchain_holysheep.serve._server import run

    try:
        run(
            args.config,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level=args.log_level,
        )
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
