"""`holysheep sim`: serve the gateway simulator with a fault script until Ctrl-C."""

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from langchain_holysheep.cli._output import Output
from langchain_holysheep.cli.app import EXIT_FAILURE, UsageError, command

__all__ = ["sim"]

_EXAMPLE = (
    '{"default": {"fault": "latency", "seconds": 0.05},\n'
    ' "models": {"gpt-4.1": {"sequence": [{"fault": "status", "code": 503}],\n'
    '                        "then": {"fault": "ok"}}}}'
)


@command("sim")
def sim(
    port: Annotated[
        int,
        typer.Option("--port", help="Port to listen on, 1-65535 (0: any free port)."),
    ] = 8000,
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = (
        "127.0.0.1"
    ),
    api_key: Annotated[
        str, typer.Option("--api-key", help="The Bearer key clients must send.")
    ] = "hs-simulator-key",
    faults: Annotated[
        Path | None,
        typer.Option(
            "--faults",
            help="Fault-script JSON file (default fault, per-model sequences, "
            "random profiles).",
            show_default=False,
        ),
    ] = None,
    models: Annotated[
        str | None,
        typer.Option(
            "--models", help="Comma-separated model ids to serve (default: catalogue)."
        ),
    ] = None,
    accept_any_model: Annotated[
        bool,
        typer.Option("--accept-any-model", help="Serve any model id instead of 404."),
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Validate the fault file and exit.")
    ] = False,
) -> None:
    """Run a local HolySheep gateway (OpenAI wire format) with scripted faults.

    The first line on stdout is the base URL. Point any OpenAI-compatible client
    at it, e.g. HOLYSHEEP_BASE_URL=<url> HOLYSHEEP_API_KEY=hs-simulator-key.
    Stops on Ctrl-C or SIGTERM.

    Fault file example:

        {"models": {"gpt-4.1": {"sequence": [{"fault": "status", "code": 503}]}}}
    """
    out = Output()
    if not 0 <= port <= 65535:
        raise UsageError(
            f"--port must be a port number from 1 to 65535, or 0 for any free "
            f"port; got {port}"
        )
    if faults is not None:
        _check_faults(faults)
    if check:
        out.line(f"{faults or 'no fault file'}: ok")
        return
    ids = [m.strip() for m in models.split(",") if m.strip()] if models else None
    server = _start(out, api_key, host, port, ids, accept_any_model, faults)
    _serve(out, server, api_key, faults)


def _check_faults(faults: Path) -> None:
    """`UsageError` unless the fault file is UTF-8 and a valid fault script."""
    from langchain_holysheep.cli._results import InputError, read_utf8
    from langchain_holysheep.simulator import FaultPlan, FaultSpecError

    try:
        read_utf8(faults)
    except InputError as exc:
        raise UsageError(f"fault file {exc}") from None
    except OSError:
        pass  # FaultPlan.load says it cannot read the file
    try:
        FaultPlan().load(faults)
    except FaultSpecError as exc:
        raise UsageError(
            f"fault file {faults}: {exc}\nExpected a JSON object such as:\n{_EXAMPLE}"
        ) from None


def _start(
    out: Output,
    api_key: str,
    host: str,
    port: int,
    ids: list[str] | None,
    accept_any_model: bool,
    faults: Path | None,
) -> Any:
    """A started simulator (exit 1 when it cannot listen)."""
    from langchain_holysheep.simulator import GatewaySimulator as Simulator

    try:
        server = Simulator(
            api_key,
            host=host,
            port=port,
            models=ids,
            accept_any_model=accept_any_model,
        )
        if faults is not None:
            server.load_faults(faults)
        server.start()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except (OSError, RuntimeError) as exc:
        out.error(f"cannot serve on {host}:{port}: {exc}")
        raise typer.Exit(EXIT_FAILURE) from None
    return server


def _serve(out: Output, server: Any, api_key: str, faults: Path | None) -> None:
    """Serve until SIGINT or SIGTERM, then stop and say what was served."""
    stop = threading.Event()
    previous = _stop_on_signals(stop)
    try:
        out.line(server.base_url)
        what = f"faults from {faults}" if faults else "no faults"
        out.note(
            f"HolySheep simulator: {len(server.models)} models, {what}.\n"
            f"  export HOLYSHEEP_BASE_URL={server.base_url}\n"
            f"  export HOLYSHEEP_API_KEY={api_key}\n"
            "Ctrl-C to stop."
        )
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        records = server.log.records()
        billed = server.log.billed()
        out.note(
            f"served {len(records)} chat requests ({billed.requests} billed, "
            f"{billed.total_tokens} tokens); stopped."
        )


def _stop_on_signals(stop: threading.Event) -> dict[signal.Signals, object]:
    """Set `stop` on SIGINT/SIGTERM (main thread only); return the old handlers."""
    previous: dict[signal.Signals, object] = {}
    if threading.current_thread() is threading.main_thread():

        def _on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        # SIGINT too: a shell starts background jobs with SIGINT ignored.
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, _on_signal)
    return previous
