"""`holysheep models`: the catalogue with prices and context windows (+ live list)."""

import csv
import io
import json
from decimal import Decimal
from typing import Annotated, Any

import typer

from langchain_holysheep.cli._options import Format, FormatOption
from langchain_holysheep.cli._output import Col, Output, numeric_cols
from langchain_holysheep.cli._target import have_key
from langchain_holysheep.cli.app import EXIT_FAILURE, command

__all__ = ["Format", "model_rows", "models"]


def _price(value: Decimal | None) -> str:
    return "unpriced" if value is None else f"{value:.2f}"


def model_rows(live: list[str] | None) -> list[dict[str, Any]]:
    """One dict per model: catalogue entries, then live-only ids (if `live`)."""
    from langchain_holysheep.spend.pricing._book import PriceBook

    book = PriceBook()
    catalogue = book.catalogue
    served = set(live) if live is not None else None
    rows = [
        _row(
            book,
            info.id,
            provider=info.provider,
            aliases=list(info.aliases),
            context_window=info.context_window,
            in_catalogue=True,
            served=None if served is None else info.id in served,
        )
        for info in catalogue
    ]
    for model in sorted(served - set(catalogue.model_ids())) if served else []:
        rows.append(_row(book, model, in_catalogue=False, served=True))
    return rows


def _row(
    book: Any,
    model: str,
    *,
    provider: str = "",
    aliases: list[str] | None = None,
    context_window: int | None = None,
    in_catalogue: bool,
    served: bool | None,
) -> dict[str, Any]:
    price = book.price(model)
    return {
        "model": model,
        "provider": provider,
        "aliases": aliases or [],
        "context_window": context_window,
        "input_per_1m": None if price is None else price.input,
        "output_per_1m": None if price is None else price.output,
        "in_catalogue": in_catalogue,
        "served": served,
    }


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
    fmt: FormatOption = Format.table,
    provider: Annotated[
        str | None, typer.Option("--provider", "-p", help="Only this provider.")
    ] = None,
) -> None:
    """List the model catalogue: prices (USD per 1M tokens) and context windows.

    A model with no known price shows "unpriced". Prices come from the package
    catalogue, overridden by $HOLYSHEEP_PRICING_FILE when set.
    """
    _models(live, fmt, provider)


def _models(live: bool | None, fmt: Format, provider: str | None) -> None:
    """Print the catalogue (merged with the live list) in the asked format."""
    out = Output()
    fetch = have_key() if live is None else live
    served = _fetch_live(live is True, out) if fetch else None
    rows = model_rows(served)
    if provider:
        rows = [r for r in rows if r["provider"] == provider.lower()]
        if not rows:
            out.error(f"no model from provider {provider!r} in the catalogue")
            raise typer.Exit(EXIT_FAILURE)
    if fmt is Format.json:
        out.line(json.dumps([_jsonable(r) for r in rows], indent=2))
    elif fmt is Format.csv:
        out.stdout.write(_csv(rows))
    else:
        _table(out, rows, live=served is not None)


def _csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    fields = list(rows[0]) if rows else []
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({**r, "aliases": " ".join(r["aliases"])})
    return buf.getvalue()


def _table(out: Output, rows: list[dict[str, Any]], *, live: bool) -> None:
    """The rows as a table; with the live list, a "served" column too."""
    columns = [
        Col("model"),
        Col("provider"),
        Col("aliases", wrap=True),
        *numeric_cols("context", "input $/1M", "output $/1M"),
    ]
    if live:
        columns.append(Col("served"))
    priced = sum(1 for r in rows if r["input_per_1m"] is not None)
    source = "catalogue + live list" if live else "catalogue"
    out.table(
        columns,
        [_table_row(r, live=live) for r in rows],
        title=f"HolySheep models ({source})",
        caption=f"{len(rows)} models, {priced} priced; unpriced models are "
        "reported as unpriced, never charged at another model's price.",
    )


def _table_row(r: dict[str, Any], *, live: bool) -> list[str]:
    row = [
        r["model"],
        r["provider"] or "-",
        ", ".join(r["aliases"]) or "-",
        f"{r['context_window']:,}" if r["context_window"] else "-",
        _price(r["input_per_1m"]),
        _price(r["output_per_1m"]),
    ]
    if live:
        if not r["in_catalogue"]:
            row.append("yes (not in catalogue)")
        else:
            row.append("yes" if r["served"] else "no")
    return row
