"""The durable spend ledger: every priced attempt, one row each, money exact.

`Ledger` is the interface (a `RecordSink`: `record`, `record_many`, `query`,
`flush`, `close`); `SQLiteLedger` is the embedded default store and
`PostgresLedger` the one many processes and machines share. `open_ledger()`
opens either from a path or URL. Reports over a ledger live in
`langchain_holysheep.spend.report`.
"""

from langchain_holysheep.spend.ledger.base import (
    LEDGER_PATH_ENV,
    Ledger,
    LedgerClosedError,
    LedgerError,
    TimeBound,
    default_ledger_path,
    default_ledger_target,
)
from langchain_holysheep.spend.ledger.pg_schema import PG_SCHEMA_VERSION
from langchain_holysheep.spend.ledger.postgres import PostgresLedger
from langchain_holysheep.spend.ledger.schema import SCHEMA_VERSION
from langchain_holysheep.spend.ledger.sqlite import SQLiteLedger
from langchain_holysheep.spend.ledger.targets import open_ledger, open_reader

__all__ = [
    "LEDGER_PATH_ENV",
    "PG_SCHEMA_VERSION",
    "SCHEMA_VERSION",
    "Ledger",
    "LedgerClosedError",
    "LedgerError",
    "PostgresLedger",
    "SQLiteLedger",
    "TimeBound",
    "default_ledger_path",
    "default_ledger_target",
    "open_ledger",
    "open_reader",
]
