"""The `holysheep` command: demo, models, ping, report, serve, sim and batch.

Needs the optional extra: `pip install 'langchain-holysheep[cli]'` (typer, rich
and the simulator's server). `main()` is the console-script entry point.
"""

try:
    import rich  # noqa: F401
    import typer  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "The holysheep command needs its optional dependencies (typer, rich): "
        "pip install 'langchain-holysheep[cli]'"
    ) from exc

from langchain_holysheep.cli.app import (
    EXIT_BUDGET,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    app,
    main,
)

__all__ = [
    "EXIT_BUDGET",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "app",
    "main",
]
