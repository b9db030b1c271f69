"""One `holysheep batch` job: plan, run on the target, summarise, exit code."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from decimal import Decimal
from pathlib import Path
from typing import Any

import typer

from langchain_holysheep._gateway_env import API_KEY_ENV
from langchain_holysheep.cli._batch_chain import build_runnable, check_fields
from langchain_holysheep.cli._batch_options import BatchOptions
from langchain_holysheep.cli._batch_run import BatchStats, run_batch
from langchain_holysheep.cli._options import parse_budget
from langchain_holysheep.cli._output import Col, Output, numeric_cols
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
)

__all__ = ["BatchOptions", "run_job"]


def _money(value: Decimal | None) -> str:
    from langchain_holysheep.spend import format_money

    return format_money(value, places=6)


def run_job(opts: BatchOptions) -> None:
    """Run the job's pending items; raise `typer.Exit` with the job's exit code."""
    out = Output()
    limit_usd = parse_budget(opts.budget) if opts.budget is not None else None
    if opts.output.resolve() == opts.input_file.resolve():
        raise UsageError("--output must not be the input file")
    items, results = _open(out, opts)
    # Leaving the block by an exception removes a results file it created
    # while still empty: a job that fails before any item leaves no file.
    with results:
        pending, prior = _plan(out, opts, items, results)
        job_budget = _job_budget(out, limit_usd, prior, opts.output)
        if not pending:
            _nothing_to_run(out, len(items), results, opts.output)
            return
        with connect(simulate=opts.simulate) as target:
            _announce(out, target, opts, results)
            runnable = build_runnable(target, opts)
            if opts.chain is None:
                check_fields(runnable, pending)
            stats = _run(out, opts, pending, runnable, results, job_budget, target)
        _finish(out, stats, items, results, prior)


def _open(out: Output, opts: BatchOptions) -> tuple[list[Item], ResultsFile]:
    try:
        items = read_items(opts.input_file, opts.id_field)
        results = ResultsFile(opts.output).open(drop_errors=opts.retry_errors)
    except ResultsBusyError as exc:
        out.error(str(exc))
        raise typer.Exit(EXIT_FAILURE) from None
    except InputError as exc:
        raise UsageError(str(exc)) from None
    return items, results


def _plan(
    out: Output, opts: BatchOptions, items: list[Item], results: ResultsFile
) -> tuple[list[Item], Decimal]:
    """The items to run this time and the spend of earlier runs."""
    if results.repaired:
        out.warn(
            f"{opts.output}: cut {results.repaired} bytes of a result torn by an "
            "earlier crash; that item runs again"
        )
    pending = [i for i in items if i.id not in results.done]
    skipped = len(items) - len(pending)
    if opts.limit is not None:
        pending = pending[: opts.limit]
    prior = results.prior_cost()
    out.note(
        f"{len(items)} items: {skipped} already done, {len(pending)} to run"
        + (f" (prior spend {_money(prior)})" if skipped else "")
    )
    return pending, prior


def _job_budget(
    out: Output, limit_usd: Decimal | None, prior: Decimal, output: Path
) -> Any:
    """The job-wide `Budget` left after earlier runs (`None` without --budget)."""
    if limit_usd is None:
        return None
    left = limit_usd - prior
    if left <= 0:
        out.error(
            f"the budget of {_money(limit_usd)} is spent ({_money(prior)} by "
            "earlier runs); raise --budget to continue"
        )
        raise typer.Exit(EXIT_BUDGET)
    from langchain_holysheep.spend import Budget

    # this run's share of the job's cap (the results file holds the job's spend)
    return Budget(left, window="total", name=f"batch {output.name}", store="memory://")


def _nothing_to_run(
    out: Output, count: int, results: ResultsFile, output: Path
) -> None:
    failed = _failed(results)
    if failed:
        out.line(
            f"nothing new to run: all {count} items are in {output}, "
            f"{len(failed)} of them failed"
        )
        _report_failures(out, failed, output)
        raise typer.Exit(EXIT_FAILURE)
    out.line(f"nothing to do: all {count} items are in {output}")


def _announce(
    out: Output, target: Target, opts: BatchOptions, results: ResultsFile
) -> None:
    """Say where the job runs, and warn about simulated results on the gateway."""
    if target.simulated and opts.simulate is None:
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
                f"{simulated} results in {opts.output} came from the embedded "
                "simulator and count as done; use a new --output to run "
                "every item on the gateway"
            )


def _finish(
    out: Output,
    stats: BatchStats,
    items: list[Item],
    results: ResultsFile,
    prior: Decimal,
) -> None:
    """Print the summary; raise the exit code of a job that did not fully succeed."""
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
            _report_failures(out, failed, results.path)
        raise typer.Exit(EXIT_BUDGET)
    if failed:
        _report_failures(out, failed, results.path)
        raise typer.Exit(EXIT_FAILURE)
    if stats.ledger_error is not None:
        raise typer.Exit(EXIT_FAILURE)


def _summary(
    out: Output, stats: BatchStats, results: ResultsFile, prior: Decimal
) -> None:
    by_model = stats.by_model
    rows = [
        [
            model,
            f"{row['calls']:,}",
            f"{row['input']:,}",
            f"{row['output']:,}",
            _money(row["cost"]) if not row["unpriced"] else "unpriced",
        ]
        for model, row in sorted(by_model.items())
    ]
    totals = [sum(r[key] for r in by_model.values()) for key in _COUNTS]
    rows.append(["TOTAL (this run)", *(f"{n:,}" for n in totals), _money(stats.cost)])
    out.table(
        [Col("served by"), *numeric_cols("calls", "input tok", "output tok", "cost")],
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


_COUNTS = ("calls", "input", "output")


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
    opts: BatchOptions,
    pending: list[Item],
    runnable: Any,
    results: ResultsFile,
    budget: Any,
    target: Target,
) -> BatchStats:
    """Run `pending` with a progress bar; Ctrl-C or SIGTERM keeps what finished."""
    ledger = _open_ledger(opts.ledger)
    partial = BatchStats()
    with out.progress("batch", total=len(pending)) as bar:

        def on_result(record: dict[str, Any]) -> None:
            if target.simulated:
                record["simulated"] = True
            results.append(record)
            partial.ok += record["status"] == "ok"
            bar.advance()

        async def main() -> BatchStats:
            _cancel_on_sigterm()
            return await run_batch(
                pending,
                runnable,
                concurrency=opts.concurrency,
                on_result=on_result,
                budget=budget,
                ledger=ledger,
                tags=["holysheep-batch"],
            )

        try:
            stats = asyncio.run(main())
        except (KeyboardInterrupt, asyncio.CancelledError):
            _close_ledger(out, ledger, report=True)
            out.error(
                f"interrupted: {partial.ok} items finished in this run and are saved "
                f"({len(results.done)} results in {results.path}); run the same "
                "command again to resume"
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except BaseException:
            _close_ledger(out, ledger, report=True)
            raise
    stats.ledger_error = _close_ledger(out, ledger, report=False)
    return stats


def _cancel_on_sigterm() -> None:
    """Let SIGTERM cancel the running task, as Ctrl-C does."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)


def _open_ledger(target: str | None) -> Any:
    if target is None:
        return None
    from langchain_holysheep.spend.ledger import open_ledger

    return open_ledger(target)


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
