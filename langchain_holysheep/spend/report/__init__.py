"""Reports over the spend ledger: by day, model, tag, user, ... exact and fast.

`ledger_report()` aggregates in SQL and returns a typed `LedgerReport` with
renderers (`to_table()`, `to_csv()`, `to_json()`).
"""

from langchain_holysheep.spend.report.query import DIMENSIONS, ledger_report
from langchain_holysheep.spend.report.rows import METRICS, LedgerReport, ReportRow

__all__ = ["DIMENSIONS", "METRICS", "LedgerReport", "ReportRow", "ledger_report"]
