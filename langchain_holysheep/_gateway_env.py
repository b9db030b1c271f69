"""Where the gateway is: the public URL and the environment variables.

Kept free of heavy imports (no HTTP stack, no LangChain), so the command line
can read them without loading the chat-model stack.
"""

from __future__ import annotations

import os

__all__ = ["API_KEY_ENV", "BASE_URL_ENV", "DEFAULT_BASE_URL", "resolve_base_url"]

DEFAULT_BASE_URL = "https://api.holysheep.ai/v1"
"""The public HolySheep gateway."""

API_KEY_ENV = "HOLYSHEEP_API_KEY"
BASE_URL_ENV = "HOLYSHEEP_BASE_URL"


def resolve_base_url(base_url: str | None = None) -> str:
    """Return the URL given, or `HOLYSHEEP_BASE_URL`, or the public gateway."""
    return (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
