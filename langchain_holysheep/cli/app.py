"""The typer application, exit codes and the error handling shared by commands.

Exit codes:
    0 success; 1 runtime failure (gateway unreachable, bad key, ...); 2 usage
    error (bad option, unreadable input file); 3 a budget cap was reached;
    130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
import typer

from langchain_holysheep.cli._output import Output

__all__ = [
    "EXIT_BUDGET",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "UsageError",
    "app",
    "command",
    "debug_enabled",
    "main",
]

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_BUDGET = 3
EXIT_INTERRUPTED = 130

F = TypeVar("F", bound=Callable[..., Any])


class UsageError(Exception):
    """Bad input from the user (exit code 2): a message saying what to fix."""


def _rich_help() -> str | None:
    try:
        tty = sys.stdout.isatty()
    except (AttributeError, ValueError):
        tty = False
    return "rich" if tty and not os.environ.get("HOLYSHEEP_FORCE_PLAIN") else None


app = typer.Typer(
    name="holysheep",
    help=(
        "HolySheep AI gateway from the terminal: a failover demo, the model "
        "catalogue, latency checks, spend reports, a local gateway simulator and "
        "resumable batch jobs. Runs on the embedded simulator when "
        "HOLYSHEEP_API_KEY is not set."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=_rich_help(),  # type: ignore[arg-type]
    context_settings={"help_option_names": ["-h", "--help"]},
)


_TRUTHY = frozenset({"1", "true", "yes", "on"})


def debug_enabled() -> bool:
    """Whether `HOLYSHEEP_DEBUG` asks for tracebacks (1, true, yes or on).

    Anything else, including `0`, `false`, `no`, `off` and an empty value,
    keeps the one-line error messages.
    """
    return os.environ.get("HOLYSHEEP_DEBUG", "").strip().lower() in _TRUTHY


def _is_budget_error(exc: BaseException) -> bool:
    try:
        from langchain_holysheep.spend.budgets._errors import BudgetError
    except ImportError:  # pragma: no cover - spend is part of the package
        return False
    return isinstance(exc, BudgetError)


def _quiet_logs() -> None:
    from langchain_holysheep.spend.tracking._logfilter import quiet_budget_refusals

    quiet_budget_refusals()


def handle_errors(fn: F) -> F:
    """Turn exceptions into a one-line message on stderr and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = Output()
        _quiet_logs()
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, click.ClickException):
            raise
        except UsageError as exc:
            out.error(str(exc))
            raise typer.Exit(EXIT_USAGE) from None
        except KeyboardInterrupt:
            out.error("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            if debug_enabled():
                raise
            from langchain_holysheep.errors import HolySheepError

            if _is_budget_error(exc):
                out.error(str(exc))
                raise typer.Exit(EXIT_BUDGET) from None
            if isinstance(exc, HolySheepError):
                out.error(str(exc))
            else:
                out.error(f"{type(exc).__name__}: {exc}")
                out.note("(set HOLYSHEEP_DEBUG=1 to see the traceback)")
            raise typer.Exit(EXIT_FAILURE) from None

    return wrapper  # type: ignore[return-value]


def command(name: str, **kwargs: Any) -> Callable[[F], F]:
    """Register a function as a `holysheep` sub-command, with error handling."""

    def decorator(fn: F) -> F:
        app.command(name, **kwargs)(handle_errors(fn))
        return fn

    return decorator


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `holysheep` console script."""
    app.rich_markup_mode = _rich_help()  # type: ignore[assignment]
    app(args=list(argv) if argv is not None else None, prog_name="holysheep")


# Register the commands (their modules call `command(...)` at import).
from langchain_holysheep.cli import (  # noqa: E402
    batch,
    demo,
    models,
    ping,
    report,
    serve,
    sim,
)

_COMMAND_MODULES = (batch, demo, models, ping, report, serve, sim)
