"""Command line: `python -m langchain_holysheep.simulator [options]`.

Prints the base URL on the first line of stdout, then serves until Ctrl-C
(SIGINT) or SIGTERM. `main(argv)` is importable for other CLIs.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from langchain_holysheep.simulator.faults import FaultSpecError
from langchain_holysheep.simulator.plan import FaultPlan
from langchain_holysheep.simulator.server import DEFAULT_API_KEY, GatewaySimulator

__all__ = ["build_parser", "main"]


def _port(text: str) -> int:
    """A TCP port for argparse: 1-65535, or 0 for any free port."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(
            f"port {port} is out of range: use 1-65535, or 0 for any free port"
        )
    return port


def build_parser(
    prog: str = "python -m langchain_holysheep.simulator",
) -> argparse.ArgumentParser:
    """The argument parser (exposed so a parent CLI can embed it)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Serve a local HolySheep gateway simulator (OpenAI chat-completions wire "
            "format) with scripted faults. No key or network needed."
        ),
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=8000,
        help="port (0: any free port; default: %(default)s)",
    )
    parser.add_argument(
        "--api-key",
        default=DEFAULT_API_KEY,
        help="the Bearer key clients must send (default: %(default)s)",
    )
    parser.add_argument(
        "--faults", metavar="FILE", help="fault-script JSON file (see FaultPlan.load)"
    )
    parser.add_argument(
        "--models",
        metavar="IDS",
        help="comma-separated model ids to serve (default: the catalogue)",
    )
    parser.add_argument(
        "--accept-any-model",
        action="store_true",
        help="serve any model id instead of answering 404",
    )
    parser.add_argument(
        "--ssl-certfile",
        metavar="PEM",
        help="serve HTTPS with this certificate (chain) file",
    )
    parser.add_argument(
        "--ssl-keyfile",
        metavar="PEM",
        help="the certificate's private key (default: read from --ssl-certfile)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="validate the fault file and exit without serving",
    )
    return parser


def _check_faults(path: str | None) -> bool:
    """Validate the fault file before binding anything; report a bad one."""
    if not path:
        return True
    try:
        FaultPlan().load(path)
    except FaultSpecError as exc:
        print(f"error: fault file {path}: {exc}", file=sys.stderr)
        return False
    return True


def _start(args: argparse.Namespace) -> GatewaySimulator | int:
    """Start the simulator the arguments describe, or return the exit status."""
    models = (
        [m.strip() for m in args.models.split(",") if m.strip()]
        if args.models
        else None
    )
    try:
        sim = GatewaySimulator(
            args.api_key,
            host=args.host,
            port=args.port,
            models=models,
            accept_any_model=args.accept_any_model,
            ssl_certfile=args.ssl_certfile,
            ssl_keyfile=args.ssl_keyfile,
        )
        if args.faults:
            sim.load_faults(args.faults)
        sim.start()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError) as exc:
        print(f"error: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return sim


def _serve(sim: GatewaySimulator, faults: str | None) -> None:
    """Print the base URL, serve until Ctrl-C or SIGTERM, then stop."""
    stop = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():

        def _on_term(signum: int, frame: FrameType | None) -> None:
            stop.set()

        previous = signal.signal(signal.SIGTERM, _on_term)
    try:
        print(sim.base_url, flush=True)
        loaded = f"faults from {faults}" if faults else "no faults"
        print(
            f"HolySheep simulator: {len(sim.models)} models, {loaded}. Ctrl-C to stop.",
            file=sys.stderr,
            flush=True,
        )
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator CLI.

    Args:
        argv: arguments without the program name (default: `sys.argv[1:]`).

    Returns:
        The exit status: 0 after a clean stop (or a successful `--check`), 1 if the
        server cannot start, 2 for bad arguments or a bad fault file.
    """
    args = build_parser().parse_args(argv)
    if not _check_faults(args.faults):
        return 2
    if args.check:
        print(f"{args.faults or 'no fault file'}: ok")
        return 0
    sim = _start(args)
    if isinstance(sim, int):
        return sim
    _serve(sim, args.faults)
    return 0
