"""`holysheep demo`: a chain and a tool-using agent surviving an outage, with spend."""

from pathlib import Path
from typing import Annotated

import typer

from langchain_holysheep.cli._options import (
    ledger_option,
    parse_budget,
    simulate_option,
)
from langchain_holysheep.cli.app import command

__all__ = ["demo"]


@command("demo")
def demo(
    simulate: Annotated[
        bool | None,
        simulate_option(
            "Embedded simulator (with a scripted outage) / the real gateway. "
            "Default: the gateway when HOLYSHEEP_API_KEY is set."
        ),
    ] = None,
    outage: Annotated[
        bool,
        typer.Option(
            "--outage/--no-outage",
            help="On the simulator, take the primary model down for the demo.",
        ),
    ] = True,
    budget: Annotated[
        str, typer.Option("--budget", help="Spend cap in USD for the whole demo.")
    ] = "0.50",
    ledger: Annotated[
        Path | None,
        ledger_option(
            "Also record the demo's calls in this spend ledger "
            "(then try `holysheep report --ledger PATH`)."
        ),
    ] = None,
) -> None:
    """Show failover and spend tracking: a chain and an agent survive an outage.

    The model is ChatHolySheep(gpt-4.1) with fallbacks gemini-2.5-flash and
    deepseek-v3.2. On the embedded simulator (no key needed) gpt-4.1 answers
    HTTP 503 to everything; every call is still answered, and the spend report
    at the end prices each call by the model that served it.
    """
    from langchain_holysheep.cli._demo_run import run_demo

    run_demo(simulate, outage, parse_budget(budget), ledger)
