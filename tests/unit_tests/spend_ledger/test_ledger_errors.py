"""Ledger errors are storage errors at run time, not configuration errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from langchain_holysheep import ConfigurationError, HolySheepError, LedgerError
from langchain_holysheep.spend.ledger.sqlite import SQLiteLedger


def test_a_ledger_error_is_not_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)  # damaged file
    with pytest.raises(LedgerError) as info:
        SQLiteLedger(path).query()
    err = info.value
    assert isinstance(err, HolySheepError) and isinstance(err, OSError)
    assert not isinstance(err, ConfigurationError)
    assert str(path) in str(err)
