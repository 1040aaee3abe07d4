"""Run SQL against the ClickHouse target and render the result for a terminal or a pipe."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import orjson

_SELECT = re.compile(r"\s*(SELECT|WITH)\b", re.IGNORECASE)


def _cell(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def render(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = "table") -> str:
    """``table`` (aligned, for people), ``csv`` or ``json`` (one object per row, a list)."""
    if fmt == "json":
        return orjson.dumps(
            [dict(zip(columns, row, strict=True)) for row in rows],
            option=orjson.OPT_INDENT_2 | orjson.OPT_NAIVE_UTC,
            default=str,
        ).decode()
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows([[_cell(v) for v in row] for row in rows])
        return out.getvalue().rstrip("\n")
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r} (table, csv, json)")
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join([line, rule, *body, f"({len(rows)} row{'s' if len(rows) != 1 else ''})"])


def run_query(
    client: Any, sql: str, database: str, parameters: dict[str, Any] | None = None
) -> tuple[list[str], list[Sequence[Any]]]:
    """Execute ``sql`` with ``database`` as the default database (and server-side parameters)."""
    before = client.database
    client.database = database  # clickhouse-connect resolves unqualified tables against this
    try:
        result = client.query(sql, parameters=parameters)
        columns = list(result.column_names)
        if not columns and not result.result_rows and _SELECT.match(sql):
            # The embedded engine sends no block, hence no column names, for an empty result;
            # ask for the header alone so an empty table still shows its columns.
            columns = list(client.query(f"SELECT * FROM ({sql}) LIMIT 0", parameters=parameters).column_names)
    finally:
        client.database = before
    return columns, list(result.result_rows)
