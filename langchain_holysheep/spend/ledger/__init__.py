"""The durable spend ledger: every priced attempt, one row each, money exact.

`Ledger` is the interface (a `RecordSink`: `record`, `record_many`, `query`,
`flush`, `close`); `SQLiteLedger` is the embedded default store. Reports over a
ledger live in `langchain_holysheep.spend.report`.
"""

from langchain_holysheep.spend.ledger.base import (
    LEDGER_PATH_ENV,
    Ledger,
    LedgerClosedError,
    LedgerError,
    TimeBound,
    default_ledger_path,
)
from langchain_holysheep.spend.ledger.schema import SCHEMA_VERSION
from langchain_holysheep.spend.ledger.sqlite import SQLiteLedger

__all__ = [
    "LEDGER_PATH_ENV",
    "SCHEMA_VERSION",
    "Ledger",
    "LedgerClosedError",
    "LedgerError",
    "SQLiteLedger",
    "TimeBound",
    "default_ledger_path",
]
