"""`holysheep batch`: JSONL in, JSONL out, concurrent, capped, resumable."""

import asyncio
import contextlib
import importlib
import signal
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer

from langchain_holysheep._gateway import API_KEY_ENV
from langchain_holysheep.cli._output import Col, Output
from langchain_holysheep.cli._results import (
    InputError,
    Item,
    ResultsBusyError,
    ResultsFile,
    read_items,
)
from langchain_holysheep.cli._target import Target, connect
from langchain_holysheep.cli.app import (
    EXIT_BUDGET,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    UsageError,
    command,
)

__all__ = ["batch", "build_runnable"]


def _money(value: Decimal | None) -> str:
    from langchain_holysheep.spend import format_money

    return format_money(value, places=6)


def _load_chain(spec: str, model: Any) -> Any:
    """`module:attr` -> a Runnable (`attr` may be a factory taking the model)."""
    from langchain_core.runnables import Runnable

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UsageError(f"--chain must look like module:attribute, got {spec!r}")
    if "" not in sys.path:
        sys.path.insert(0, "")  # modules in the current directory
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"cannot load --chain {spec}: {exc}") from None
    if not isinstance(obj, Runnable) and callable(obj):
        obj = obj(model)
    if not isinstance(obj, Runnable):
        raise UsageError(f"--chain {spec} is not a Runnable (nor returns one)")
    return obj


def build_runnable(
    target: Target,
    *,
    model: str,
    fallbacks: list[str],
    prompt: str,
    system: str | None,
    max_tokens: int,
    chain: str | None,
) -> Any:
    """The runnable each item goes through: prompt | ChatHolySheep, or --chain."""
    from langchain_core.prompts import ChatPromptTemplate

    from langchain_holysheep import ChatHolySheep

    kwargs: dict[str, Any] = {"model": model, "max_tokens": max_tokens}
    if fallbacks:
        kwargs["fallbacks"] = fallbacks
    llm = ChatHolySheep(**kwargs, **target.model_kwargs())
    if chain:
        return _load_chain(chain, llm)
    messages = [("system", system)] if system else []
    return ChatPromptTemplate.from_messages([*messages, ("human", prompt)]) | llm


def _check_fields(runnable: Any, items: list[Item]) -> None:
    wanted = set(getattr(runnable, "input_schema", None).model_fields)  # type: ignore[union-attr]
    for item in items:
        missing = wanted - item.data.keys()
        if missing:
            raise UsageError(
                f"input line {item.line} (id {item.id!r}) has no field "
                f"{', '.join(sorted(missing))} used by the prompt"
            )


def _summary(out: Output, stats: Any, results: ResultsFile, prior: Decimal) -> None:
    rows = [
        [
            model,
            f"{row['calls']:,}",
            f"{row['input']:,}",
            f"{row['output']:,}",
            _money(row["cost"]) if not row["unpriced"] else "unpriced",
        ]
        for model, row in sorted(stats.by_model.items())
    ]
    rows.append(
        [
            "TOTAL (this run)",
            f"{sum(r['calls'] for r in stats.by_model.values()):,}",
            f"{sum(r['input'] for r in stats.by_model.values()):,}",
            f"{sum(r['output'] for r in stats.by_model.values()):,}",
            _money(stats.cost),
        ]
    )
    out.table(
        [
            Col("served by"),
            Col("calls", numeric=True),
            Col("input tok", numeric=True),
            Col("output tok", numeric=True),
            Col("cost", numeric=True),
        ],
        rows,
        title="Batch cost summary",
    )
    ok = sum(1 for r in results.done.values() if r.get("status") == "ok")
    failed = len(results.done) - ok
    out.line(
        f"this run: {stats.ok} ok, {stats.errors} failed, cost {_money(stats.cost)}"
        + (f", {stats.unpriced_calls} unpriced calls" if stats.unpriced_calls else "")
    )
    out.line(
        f"job total: {len(results.done)} results in {results.path} ({ok} ok, "
        f"{failed} failed), cost {_money(prior + stats.cost)}"
    )


@command("batch")
def batch(
    input_file: Annotated[
        Path, typer.Argument(help="JSONL input: one JSON object per line.")
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="JSONL results, one per item id. Rerun with the same file to "
            "resume: finished items are skipped.",
        ),
    ],
    prompt: Annotated[
        str,
        typer.Option(
            "--prompt",
            "-p",
            help="Prompt template; {field} is replaced by the item's field.",
        ),
    ] = "{prompt}",
    system: Annotated[
        str | None, typer.Option("--system", help="System message.")
    ] = None,
    chain: Annotated[
        str | None,
        typer.Option(
            "--chain",
            help="Use your own runnable instead of --prompt: module:attr, a "
            "Runnable or a function taking the model and returning one.",
        ),
    ] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Model.")] = "gpt-4.1",
    fallback: Annotated[
        list[str] | None,
        typer.Option("--fallback", help="Fallback model (repeatable, in order)."),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, max=256, help="Parallel items.")
    ] = 4,
    budget: Annotated[
        str | None,
        typer.Option(
            "--budget",
            help="Spend cap in USD for the whole job, earlier runs included. Each "
            "call reserves its worst case (prompt + --max-tokens) first, so the "
            "cap is never overrun.",
        ),
    ] = None,
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", min=1, help="Max output tokens per call.")
    ] = 1024,
    id_field: Annotated[
        str, typer.Option("--id-field", help="Field holding each item's unique id.")
    ] = "id",
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Process at most N new items this run."),
    ] = None,
    retry_errors: Annotated[
        bool,
        typer.Option("--retry-errors", help="Run again the items that failed before."),
    ] = False,
    ledger: Annotated[
        Path | None,
        typer.Option("--ledger", help="Also record every call in this spend ledger."),
    ] = None,
    simulate: Annotated[
        bool | None,
        typer.Option(
            "--sim/--live",
            help="Embedded simulator / the real gateway. Default: the gateway when "
            "HOLYSHEEP_API_KEY is set, else the simulator (with a warning).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run every line of a JSONL file through a prompt (or chain) into a JSONL file.

    Concurrent, with a progress bar, a budget cap and a cost summary. Each result
    is written (and fsync'd) as soon as its item finishes, keyed by id, so an
    interrupted job (Ctrl-C, crash) resumes where it stopped when run again with
    the same --output: no item lost, none repeated.

    A failed item is kept as a result with "status": "error" and the full
    reason in "error"; the exit code is then 1, and a rerun with
    --retry-errors runs the failed items again.

    Example:
        holysheep batch docs.jsonl -o out.jsonl -p "Summarise: {text}" --budget 2
    """
    out = Output()
    limit_usd: Decimal | None = None
    if budget is not None:
        try:
            limit_usd = Decimal(budget)
        except InvalidOperation:
            raise UsageError(
                f"--budget must be an amount in USD, got {budget!r}"
            ) from None
        if not limit_usd.is_finite() or limit_usd <= 0:
            raise UsageError(f"--budget must be > 0, got {budget!r}")
    if output.resolve() == input_file.resolve():
        raise UsageError("--output must not be the input file")
    try:
        items = read_items(input_file, id_field)
        results = ResultsFile(output).open(drop_errors=retry_errors)
    except ResultsBusyError as exc:
        out.error(str(exc))
        raise typer.Exit(EXIT_FAILURE) from None
    except InputError as exc:
        raise UsageError(str(exc)) from None
    # Leaving the block by an exception removes a results file it created
    # while still empty: a job that fails before any item leaves no file.
    with results:
        if results.repaired:
            out.warn(
                f"{output}: cut {results.repaired} bytes of a result torn by an "
                "earlier crash; that item runs again"
            )
        pending = [i for i in items if i.id not in results.done]
        skipped = len(items) - len(pending)
        if limit is not None:
            pending = pending[:limit]
        prior = results.prior_cost()
        out.note(
            f"{len(items)} items: {skipped} already done, {len(pending)} to run"
            + (f" (prior spend {_money(prior)})" if skipped else "")
        )
        job_budget = None
        if limit_usd is not None:
            left = limit_usd - prior
            if left <= 0:
                out.error(
                    f"the budget of {_money(limit_usd)} is spent ({_money(prior)} by "
                    "earlier runs); raise --budget to continue"
                )
                raise typer.Exit(EXIT_BUDGET)
            from langchain_holysheep.spend import Budget

            job_budget = Budget(left, window="total", name=f"batch {output.name}")
        if not pending:
            failed = _failed(results)
            if failed:
                out.line(
                    f"nothing new to run: all {len(items)} items are in {output}, "
                    f"{len(failed)} of them failed"
                )
                _report_failures(out, failed, output)
                raise typer.Exit(EXIT_FAILURE)
            out.line(f"nothing to do: all {len(items)} items are in {output}")
            return
        with connect(simulate=simulate) as target:
            if target.simulated and simulate is None:
                out.warn(
                    f"{API_KEY_ENV} is not set: running on the embedded simulator "
                    "(simulated replies). Set the key to run on the gateway, or "
                    "pass --sim to rehearse without this warning."
                )
            else:
                out.note(f"running on {target.label}")
            if not target.simulated:
                simulated = sum(1 for r in results.done.values() if r.get("simulated"))
                if simulated:
                    out.warn(
                        f"{simulated} results in {output} came from the embedded "
                        "simulator and count as done; use a new --output to run "
                        "every item on the gateway"
                    )
            runnable = build_runnable(
                target,
                model=model,
                fallbacks=list(fallback or []),
                prompt=prompt,
                system=system,
                max_tokens=max_tokens,
                chain=chain,
            )
            if chain is None:
                _check_fields(runnable, pending)
            stats = _run(
                out,
                pending,
                runnable,
                results,
                concurrency,
                job_budget,
                ledger,
                simulated=target.simulated,
            )
        _summary(out, stats, results, prior)
        if stats.ledger_error is not None:
            out.error(stats.ledger_error)
        failed = _failed(results)
        if stats.stopped_by is not None:
            left_items = len([i for i in items if i.id not in results.done])
            out.error(
                f"budget reached: {stats.stopped_by}\n{left_items} items not run; "
                "rerun with a higher --budget to finish the job"
            )
            if failed:
                _report_failures(out, failed, output)
            raise typer.Exit(EXIT_BUDGET)
        if failed:
            _report_failures(out, failed, output)
            raise typer.Exit(EXIT_FAILURE)
        if stats.ledger_error is not None:
            raise typer.Exit(EXIT_FAILURE)


def _failed(results: ResultsFile) -> list[dict[str, Any]]:
    """The job's results that are errors, in file order."""
    return [r for r in results.done.values() if r.get("status") != "ok"]


def _report_failures(out: Output, failed: list[dict[str, Any]], output: Path) -> None:
    """Say how many items failed, show the first reason, and how to retry them."""
    first = failed[0]
    reason = str(first.get("error") or "no reason recorded")
    where = f" (input line {first['line']})" if first.get("line") else ""
    n = len(failed)
    out.error(
        f"{n} item{'s' if n != 1 else ''} failed; the results in {output} have "
        f'"status": "error" and the reason in "error". First failure, id '
        f"{first.get('id')!r}{where}:\n  "
        + reason.replace("\n", "\n  ")
        + "\nFix the cause, then rerun the same command with --retry-errors to "
        "run the failed items again."
    )


def _run(
    out: Output,
    pending: list[Item],
    runnable: Any,
    results: ResultsFile,
    concurrency: int,
    budget: Any,
    ledger_path: Path | None,
    *,
    simulated: bool = False,
) -> Any:
    from langchain_holysheep.cli._batch_run import BatchStats, run_batch

    ledger = None
    if ledger_path is not None:
        from langchain_holysheep.spend.ledger import SQLiteLedger

        ledger = SQLiteLedger(ledger_path)
    partial = BatchStats()
    with out.progress("batch", total=len(pending)) as bar:

        def on_result(record: dict[str, Any]) -> None:
            if simulated:
                record["simulated"] = True
            results.append(record)
            partial.ok += record["status"] == "ok"
            bar.advance()

        async def main() -> Any:
            task = asyncio.current_task()
            loop = asyncio.get_running_loop()
            if task is not None:
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(signal.SIGTERM, task.cancel)
            return await run_batch(
                pending,
                runnable,
                concurrency=concurrency,
                on_result=on_result,
                budget=budget,
                ledger=ledger,
                tags=["holysheep-batch"],
            )

        try:
            stats = asyncio.run(main())
        except (KeyboardInterrupt, asyncio.CancelledError):
            _close_ledger(out, ledger, report=True)
            done = len(results.done)
            out.error(
                f"interrupted: {partial.ok} items finished in this run and are saved "
                f"({done} results in {results.path}); run the same command again "
                "to resume"
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except BaseException:
            _close_ledger(out, ledger, report=True)
            raise
    stats.ledger_error = _close_ledger(out, ledger, report=False)
    return stats


def _close_ledger(out: Output, ledger: Any, *, report: bool) -> str | None:
    """Close the --ledger; return why if its records could not all be kept.

    The results file holds every finished item whatever happens to the ledger,
    so on success the failure is reported after the job's summary (`report`
    False); when the job is ending on an error it is reported at once.
    """
    if ledger is None:
        return None
    from langchain_holysheep.spend.ledger import LedgerError

    try:
        ledger.close()
    except LedgerError as exc:
        if report:
            out.error(str(exc))
        return str(exc)
    return None
