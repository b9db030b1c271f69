"""`holysheep batch`: JSONL in, JSONL out, concurrent, capped, resumable."""

from pathlib import Path
from typing import Annotated

import typer

from langchain_holysheep.cli._options import ledger_option, simulate_option
from langchain_holysheep.cli.app import command

__all__ = ["batch"]


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
        str | None,
        ledger_option(
            "Also record every call in this spend ledger (a file path or a "
            "postgresql:// URL)."
        ),
    ] = None,
    simulate: Annotated[
        bool | None,
        simulate_option(
            "Embedded simulator / the real gateway. Default: the gateway when "
            "HOLYSHEEP_API_KEY is set, else the simulator (with a warning)."
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
    from langchain_holysheep.cli._batch_job import BatchOptions, run_job

    run_job(
        BatchOptions(
            input_file=input_file,
            output=output,
            prompt=prompt,
            system=system,
            chain=chain,
            model=model,
            fallbacks=list(fallback or []),
            concurrency=concurrency,
            budget=budget,
            max_tokens=max_tokens,
            id_field=id_field,
            limit=limit,
            retry_errors=retry_errors,
            ledger=ledger,
            simulate=simulate,
        )
    )
