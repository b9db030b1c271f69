"""`holysheep serve` (the OpenAI-compatible proxy) and `holysheep serve-key`."""

from pathlib import Path
from typing import Annotated

import typer

from langchain_holysheep.cli._output import Output
from langchain_holysheep.cli.app import UsageError, command

__all__ = ["serve", "serve_key"]


@command("serve")
def serve(
    config: Annotated[
        Path,
        typer.Option("--config", "-c", help="The holysheep.toml to serve."),
    ] = Path("holysheep.toml"),
    host: Annotated[
        str | None, typer.Option("--host", help="Interface (default: from config).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Port (default: from config).")
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", help="Worker processes (share state via Redis).")
    ] = 1,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
) -> None:
    """Serve model groups as an OpenAI-compatible API (failover, budgets, ledger).

    Clients send a virtual key as 'Authorization: Bearer <key>'; the upstream
    keys stay in this server's environment (HOLYSHEEP_API_KEY, or each
    endpoint's api_key_env). Several workers or instances share one cap with
    HOLYSHEEP_STATE_URL=redis://... and one ledger with a postgresql:// ledger.
    """
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    from langchain_holysheep.serve._server import run
    from langchain_holysheep.serve.config import ServeConfigError

    try:
        run(config, host=host, port=port, workers=workers, log_level=log_level)
    except ServeConfigError as exc:  # a bad input file: exit 2, as documented
        raise UsageError(str(exc)) from None


@command("serve-key")
def serve_key(
    name: Annotated[str, typer.Argument(help="The key's name in [keys.NAME].")],
) -> None:
    """Make a virtual key: prints the key (give it to the client) and its config lines.

    Only the hash goes into holysheep.toml; the key itself is shown once.
    """
    from langchain_holysheep.serve.config import new_virtual_key

    key, digest = new_virtual_key()
    out = Output()
    out.line(f"key: {key}")
    out.line("")
    out.line(f"[keys.{name}]")
    out.line(f'hash = "{digest}"')
    out.line('groups = ["*"]')
