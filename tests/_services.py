"""The one rule for tests that need a real service (Redis, PostgreSQL, Node.js).

Where the service is missing the test is skipped with the reason, except under
`CI=true`, where it fails: CI must never pass by skipping what it is there to
check.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(problem: str, hint: str = "") -> NoReturn:
    """Skip (or, under `CI=true`, fail) because a needed service is missing."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {problem}")
    pytest.skip(f"{problem} ({hint})" if hint else problem)
