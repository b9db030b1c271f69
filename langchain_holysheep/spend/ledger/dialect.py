"""`Dialect`: how each SQL store spells what the ledger's queries need.

The ledger's queries and reports are written once, over a table `calls c`; a
dialect fills in what differs between SQLite and PostgreSQL: the parameter
mark, time formatting, JSON access, boolean sums, the modulo operator and how a
call's tags are stored (a `call_tags` table in SQLite, a `text[]` column in
PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_holysheep.spend.ledger.base import TimeBound, to_timestamp
from langchain_holysheep.spend.ledger.calls_table import COLUMNS
from langchain_holysheep.spend.ledger.schema import SELECT_CALLS
from langchain_holysheep.spend.ledger.tags import not_internal_sql

__all__ = ["POSTGRES", "SQLITE", "Dialect", "SQLReader"]

_COLUMN_DIMENSIONS = {
    "model": "c.served_model",
    "requested_model": "c.requested_model",
    "outcome": "c.outcome",
    "user": "c.user",
    "key": "c.key_name",
    "group": "c.model_group",
    "run": "c.run_id",
    "tag": "t.tag",
}


@dataclass(frozen=True)
class Dialect:
    """The SQL one ledger store speaks (see the module docstring).

    Attributes:
        name: "sqlite" or "postgresql".
        mark: the query parameter placeholder.
        dimensions: report dimension -> SQL expression over `calls c`.
        meta: the SQL of a metadata value, with `{key}` for a checked key.
        flag_sql: turns a boolean SQL expression `{}` into 0 or 1.
        mod_sql: `{}` modulo `{}`.
        tag_join: joins `t.tag`, one row per distinct user tag of a call.
        tag_filter: a call has one of the tags `{marks}`.
        select_calls: `SELECT <every column> FROM calls c`, in `decode` order.
    """

    name: str
    mark: str
    dimensions: Mapping[str, str]
    meta: str
    flag_sql: str
    mod_sql: str
    tag_join: str
    tag_filter: str
    select_calls: str

    def flag(self, condition: str) -> str:
        """`condition` as an integer 0/1, for `SUM()`."""
        return self.flag_sql.format(condition)

    def mod(self, left: str, right: str) -> str:
        """`left` modulo `right` (sign of `left`, as in C)."""
        return self.mod_sql.format(left, right)

    def marks(self, n: int) -> str:
        """`n` comma-separated parameter marks."""
        return ", ".join([self.mark] * n)

    def where(
        self,
        since: TimeBound | None = None,
        until: TimeBound | None = None,
        models: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
    ) -> tuple[str, list[Any]]:
        """A `WHERE ...` clause (or "") over `calls c`, and its parameters."""
        parts: list[str] = []
        params: list[Any] = []
        lo, hi = to_timestamp(since), to_timestamp(until)
        if lo is not None:
            parts.append(f"c.ts >= {self.mark}")
            params.append(lo)
        if hi is not None:
            parts.append(f"c.ts < {self.mark}")
            params.append(hi)
        if models is not None:
            models = [models] if isinstance(models, str) else list(models)
            marks = self.marks(len(models))
            parts.append(
                f"(c.served_model IN ({marks}) OR c.requested_model IN ({marks}))"
                if models
                else "1 = 0"
            )
            params += models + models
        if tags is not None:
            tags = [tags] if isinstance(tags, str) else list(tags)
            parts.append(
                self.tag_filter.format(marks=self.marks(len(tags))) if tags else "1 = 0"
            )
            params += tags
        return (" WHERE " + " AND ".join(parts) if parts else ""), params


SQLITE = Dialect(
    name="sqlite",
    mark="?",
    dimensions={
        "day": "date(c.ts, 'unixepoch')",
        "hour": "strftime('%Y-%m-%dT%H:00Z', c.ts, 'unixepoch')",
        "month": "strftime('%Y-%m', c.ts, 'unixepoch')",
        **_COLUMN_DIMENSIONS,
    },
    meta="json_extract(c.metadata, '$.\"{key}\"')",
    flag_sql="{}",
    mod_sql="{} % {}",
    # Tags LangChain adds itself (seq:step:N, ...) are no group of their own
    # (ledgers written before they were filtered out still hold them).
    tag_join=(
        f" LEFT JOIN call_tags t ON t.call_id = c.id AND {not_internal_sql('t.tag')}"
    ),
    tag_filter="c.id IN (SELECT call_id FROM call_tags WHERE tag IN ({marks}))",
    select_calls=SELECT_CALLS,
)

_PG_READ = {"metadata": "c.metadata::text"}  # its text: the key order kept
_UTC = "to_char(to_timestamp(c.ts) AT TIME ZONE 'UTC', '{}')"
POSTGRES = Dialect(
    name="postgresql",
    mark="%s",
    dimensions={
        "day": _UTC.format("YYYY-MM-DD"),
        "hour": _UTC.format('YYYY-MM-DD"T"HH24":00Z"'),
        "month": _UTC.format("YYYY-MM"),
        **_COLUMN_DIMENSIONS,
    },
    meta="(c.metadata ->> '{key}')",
    flag_sql="CAST(({}) AS INTEGER)",
    mod_sql="MOD({}, {})",
    # The PostgreSQL ledger never stores LangChain's own tags.
    tag_join=(
        " LEFT JOIN LATERAL (SELECT DISTINCT u.tag FROM unnest(c.tags) AS u(tag)) t"
        " ON TRUE"
    ),
    tag_filter="c.tags && ARRAY[{marks}]::text[]",
    select_calls=(
        "SELECT "
        + ", ".join(_PG_READ.get(name, f"c.{name}") for name in ("id", *COLUMNS))
        + " FROM calls c"
    ),
)


@dataclass(frozen=True)
class SQLReader:
    """A read-only connection to a ledger and the dialect it speaks.

    Made by a ledger's `sql_reader()` (or `open_reader()` for a path or URL),
    a context manager that turns the store's errors into `LedgerError`s.
    """

    conn: Any
    dialect: Dialect

    def execute(self, sql: str, params: Sequence[Any]) -> Iterable[Sequence[Any]]:
        """Run one query; iterate the result for its rows."""
        return self.conn.execute(sql, params)  # type: ignore[no-any-return]
