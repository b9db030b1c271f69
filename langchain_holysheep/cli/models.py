"""`holysheep models`: the catalogue with prices and context windows (+ live list)."""

import csv
import io
import json
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any

import typer

from langchain_holysheep.cli._output import Col, Output
from langchain_holysheep.cli._target import have_key
from langchain_holysheep.cli.app import EXIT_FAILURE, command

__all__ = ["Format", "model_rows", "models"]


class Format(str, Enum):
    """Output formats of listing commands."""

    table = "table"
    csv = "csv"
    json = "json"


def _price(value: Decimal | None) -> str:
    return "unpriced" if value is None else f"{value:.2f}"


def model_rows(live: list[str] | None) -> list[dict[str, Any]]:
    """One dict per model: catalogue entries, then live-only ids (if `live`)."""
    from langchain_holysheep.spend.pricing._book import PriceBook

    book = PriceBook()
    catalogue = book.catalogue
    served = set(live) if live is not None else None
    rows: list[dict[str, Any]] = []
    for info in catalogue:
        price = book.price(info.id)
        rows.append(
            {
                "model": info.id,
                "provider": info.provider,
                "aliases": list(info.aliases),
                "context_window": info.context_window,
                "input_per_1m": None if price is None else price.input,
                "output_per_1m": None if price is None else price.output,
                "in_catalogue": True,
                "served": None if served is None else info.id in served,
            }
        )
    for model in sorted(served - set(catalogue.model_ids())) if served else []:
        price = book.price(model)
        rows.append(
            {
                "model": model,
                "provider": "",
                "aliases": [],
                "context_window": None,
                "input_per_1m": None if price is None else price.input,
                "output_per_1m": None if price is None else price.output,
                "in_catalogue": False,
                "served": True,
            }
        )
    return rows


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in row.items()}


def _fetch_live(explicit: bool, out: Output) -> list[str] | None:
    from langchain_holysheep._gateway import list_gateway_models, resolve_base_url

    try:
        return list_gateway_models(timeout=10.0)
    except Exception as exc:
        if explicit:
            raise
        out.warn(
            f"could not list the models served by {resolve_base_url()} ({exc}); "
            "showing the catalogue only"
        )
        return None


@command("models")
def models(
    live: Annotated[
        bool | None,
        typer.Option(
            "--live/--no-live",
            help="Merge in the gateway's live model list (GET /models). Default: "
            "on when HOLYSHEEP_API_KEY is set.",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        Format, typer.Option("--format", "-f", help="Output format.")
    ] = Format.table,
    provider: Annotated[
        str | None, typer.Option("--provider", "-p", help="Only this provider.")
    ] = None,
) -> None:
    """List the model catalogue: prices (USD per 1M tokens) and context windows.

    A model with no known price shows "unpriced". Prices come from the package
    catalogue, overridden by $HOLYSHEEP_PRICING_FILE when set.
    """
    out = Output()
    explicit = live is True
    fetch = have_key() if live is None else live
    served = _fetch_live(explicit, out) if fetch else None
    rows = model_rows(served)
    if provider:
        rows = [r for r in rows if r["provider"] == provider.lower()]
        if not rows:
            out.error(f"no model from provider {provider!r} in the catalogue")
            raise typer.Exit(EXIT_FAILURE)
    if fmt is Format.json:
        out.line(json.dumps([_jsonable(r) for r in rows], indent=2))
        return
    if fmt is Format.csv:
        buf = io.StringIO()
        fields = list(rows[0]) if rows else []
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "aliases": " ".join(r["aliases"])})
        out.stdout.write(buf.getvalue())
        return
    columns = [
        Col("model"),
        Col("provider"),
        Col("aliases", wrap=True),
        Col("context", numeric=True),
        Col("input $/1M", numeric=True),
        Col("output $/1M", numeric=True),
    ]
    if served is not None:
        columns.append(Col("served"))
    table_rows = []
    for r in rows:
        row = [
            r["model"],
            r["provider"] or "-",
            ", ".join(r["aliases"]) or "-",
            f"{r['context_window']:,}" if r["context_window"] else "-",
            _price(r["input_per_1m"]),
            _price(r["output_per_1m"]),
        ]
        if served is not None:
            if not r["in_catalogue"]:
                row.append("yes (not in catalogue)")
            else:
                row.append("yes" if r["served"] else "no")
        table_rows.append(row)
    priced = sum(1 for r in rows if r["input_per_1m"] is not None)
    source = "catalogue + live list" if served is not None else "catalogue"
    out.table(
        columns,
        table_rows,
        title=f"HolySheep models ({source})",
        caption=f"{len(rows)} models, {priced} priced; unpriced models are "
        "reported as unpriced, never charged at another model's price.",
    )
