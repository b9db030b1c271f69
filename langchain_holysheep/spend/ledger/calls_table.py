"""The ledgers' `calls` table (one row per attempt), described once for every store.

Each column has a portable type (`int`, `real`, `bool`, `text`, `tags`,
`json`) that a store spells in its own SQL (`SQLITE_TYPES`,
`POSTGRES_TYPES`). The SQLite and PostgreSQL ledgers create the table, insert
rows and select them from this one description, in the order of
`schema.encode` and `schema.decode`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

__all__ = [
    "COLUMNS",
    "POSTGRES_TYPES",
    "SQLITE_TYPES",
    "create_calls",
    "quoted_columns",
]

_TABLE = """
ts               real NOT NULL   -- Unix time the attempt ended
run_id           text NOT NULL
requested_model  text NOT NULL
served_model     text NOT NULL
outcome          text NOT NULL   -- ok | error | cancelled
input_tokens     int  NOT NULL
cached_tokens    int  NOT NULL
output_tokens    int  NOT NULL
reasoning_tokens int  NOT NULL
cost             text            -- exact Decimal, NULL = unpriced
cost_pico        int             -- cost * 10**12 when exact, else NULL
currency         text NOT NULL
latency_ms       real
ttft_ms          real
attempt          int  NOT NULL
is_retry         bool NOT NULL
is_fallback      bool NOT NULL
error            text
tags             tags NOT NULL   -- user tags, in record order
metadata         json NOT NULL   -- a JSON object, key order kept
user             text            -- metadata "user" or "user_id"
estimated        bool NOT NULL DEFAULT false  -- usage estimated (cut stream)
key_name         text            -- virtual key name (never the key)
model_group      text            -- the model group a server routed
"""

_ROWS = [line.partition("--") for line in _TABLE.strip().splitlines()]

COLUMNS: tuple[str, ...] = tuple(code.split()[0] for code, _, _ in _ROWS)
"""The columns of a row after its `id`, in `encode` order."""

SQLITE_TYPES: Mapping[str, str] = {
    "int": "INTEGER",
    "real": "REAL",
    "bool": "INTEGER",
    "text": "TEXT",
    "tags": "TEXT",  # a JSON array (tags are also rows of `call_tags`)
    "json": "TEXT",
    "false": "0",
}
POSTGRES_TYPES: Mapping[str, str] = {
    "int": "BIGINT",
    "real": "DOUBLE PRECISION",
    "bool": "BOOLEAN",
    "text": "TEXT",
    "tags": "TEXT[]",
    "json": "JSON",
    "false": "FALSE",
}


def quoted_columns(reserved: Collection[str] = ()) -> list[str]:
    """`COLUMNS`, the names a store reserves (e.g. PostgreSQL's `user`) quoted."""
    return [f'"{name}"' if name in reserved else name for name in COLUMNS]


def create_calls(
    id_column: str, types: Mapping[str, str], reserved: Collection[str] = ()
) -> str:
    """`CREATE TABLE calls (...)` in a store's SQL.

    Args:
        id_column: the type and key of the `id` column (an auto-increment key).
        types: the store's spelling of each portable type (and of `false`).
        reserved: column names the store reserves, quoted in the statement.
    """
    defs = [(f"id {id_column}", "")]
    for name, (code, _, note) in zip(quoted_columns(reserved), _ROWS, strict=True):
        words = [types.get(word, word) for word in code.split()[1:]]
        defs.append((f"{name} {' '.join(words)}", note.strip()))
    lines = []
    for i, (definition, note) in enumerate(defs):
        comma = "," if i < len(defs) - 1 else ""
        lines.append(f"    {definition}{comma}" + (f"  -- {note}" if note else ""))
    return "CREATE TABLE calls (\n" + "\n".join(lines) + "\n)"
