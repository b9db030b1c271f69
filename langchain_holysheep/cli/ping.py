"""`holysheep ping`: latency p50/p95 per model over N requests."""

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer

from langchain_holysheep.cli._options import simulate_option
from langchain_holysheep.cli._output import Col, Output, numeric_cols
from langchain_holysheep.cli._target import Target, connect
from langchain_holysheep.cli.app import EXIT_FAILURE, UsageError, command

__all__ = ["PingStats", "percentile", "ping"]

DEFAULT_MODELS = ("gpt-4.1", "claude-sonnet-4.5", "gemini-2.5-flash", "deepseek-v3.2")


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank `q`-th percentile (0 < q <= 100) of `values`."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class PingStats:
    """Latencies (ms) and errors of one model."""

    model: str
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def row(self) -> list[Any]:
        """The table row of this model."""
        lat = self.latencies
        if not lat:
            return [self.model, 0, self._errors(), "-", "-", "-", "-"]
        return [
            self.model,
            len(lat),
            self._errors(),
            f"{percentile(lat, 50):.1f}",
            f"{percentile(lat, 95):.1f}",
            f"{min(lat):.1f}",
            f"{max(lat):.1f}",
        ]

    def _errors(self) -> str:
        if not self.errors:
            return "0"
        total = sum(self.errors.values())
        kinds = ", ".join(f"{k} x{n}" for k, n in sorted(self.errors.items()))
        return f"{total} ({kinds})"


def _error_kind(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None) or getattr(
        getattr(exc, "__cause__", None), "status_code", None
    )
    return f"{type(exc).__name__} {status}" if status else type(exc).__name__


def _model(target: Target, model: str, timeout: float) -> Any:
    """One plain request per call: no retries, fallbacks or circuit breakers."""
    from langchain_holysheep._gateway_model import HolySheepGateway

    return HolySheepGateway(
        model=model,
        max_tokens=8,
        max_retries=0,
        timeout=timeout,
        validate_model=False,
        **target.model_kwargs(),
    )


@command("ping")
def ping(
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="Model to ping (repeatable). Default: "
            + ", ".join(DEFAULT_MODELS)
            + ".",
            show_default=False,
        ),
    ] = None,
    requests: Annotated[
        int, typer.Option("--requests", "-n", min=1, help="Requests per model.")
    ] = 10,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds per request.")
    ] = 30.0,
    warmup: Annotated[
        int,
        typer.Option(
            "--warmup",
            min=0,
            help="Uncounted requests per model first (connection set-up).",
        ),
    ] = 1,
    simulate: Annotated[
        bool | None,
        simulate_option(
            "Use the embedded simulator / the real gateway. Default: the "
            "gateway when HOLYSHEEP_API_KEY is set."
        ),
    ] = None,
) -> None:
    """Measure request latency (p50/p95, ms) per model over N small requests.

    Each request is one short chat completion (max 8 output tokens), sent
    sequentially with no retries or fallbacks, so failures show as they are.
    One warm-up request per model (not counted) sets up the connection.
    """
    _ping(list(models or DEFAULT_MODELS), requests, timeout, warmup, simulate)


def _ping(
    names: list[str],
    requests: int,
    timeout: float,
    warmup: int,
    simulate: bool | None,
) -> None:
    """Ping each model in turn, print the latency table, fail if nothing answered."""
    from langchain_holysheep.catalogue import default_catalogue
    from langchain_holysheep.errors import UnknownModelError

    out = Output()
    try:
        names = [default_catalogue().check(m) for m in names]
    except UnknownModelError as exc:
        raise UsageError(str(exc)) from None
    with connect(simulate=simulate) as target:
        out.note(f"pinging {len(names)} models x {requests} requests on {target.label}")
        stats = {m: PingStats(m) for m in names}
        chats = {m: _model(target, m, timeout) for m in names}
        with out.progress("ping", total=len(names) * requests) as bar:
            for model in names:
                bar.describe(model)
                for _ in range(warmup):
                    with contextlib.suppress(Exception):
                        chats[model].invoke("ping")
                for _ in range(requests):
                    _measure(chats[model], stats[model])
                    bar.advance()
    out.table(
        [
            Col("model"),
            Col("ok", numeric=True),
            Col("errors", wrap=True),
            *numeric_cols("p50 ms", "p95 ms", "min ms", "max ms"),
        ],
        [stats[m].row() for m in names],
        title=f"Latency over {requests} requests per model ({target.label})",
    )
    if all(not s.latencies for s in stats.values()):
        out.error("every request failed")
        raise typer.Exit(EXIT_FAILURE)


def _measure(chat: Any, stats: PingStats) -> None:
    """Send one request; add its latency or its kind of error to `stats`."""
    start = time.perf_counter()
    try:
        chat.invoke("ping")
    except Exception as exc:
        kind = _error_kind(exc)
        stats.errors[kind] = stats.errors.get(kind, 0) + 1
    else:
        stats.latencies.append((time.perf_counter() - start) * 1000)
