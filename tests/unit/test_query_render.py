"""Rendering query results for people (table) and for pipes (csv, json)."""

from __future__ import annotations

from datetime import datetime

import orjson
import pytest

from sinks.query import render

COLUMNS = ["host", "at", "cpu"]
ROWS = [("web-1", datetime(2026, 1, 2, 3, 4, 5), 12.5), ("db-10", datetime(2026, 1, 2, 3, 4, 6), 99.0)]


def test_table_is_aligned_and_counts_rows() -> None:
    assert render(COLUMNS, ROWS).splitlines() == [
        "host   at                   cpu ",
        "-----  -------------------  ----",
        "web-1  2026-01-02T03:04:05  12.5",
        "db-10  2026-01-02T03:04:06  99  ",
        "(2 rows)",
    ]


def test_csv_and_json() -> None:
    assert render(COLUMNS, ROWS, "csv").splitlines()[:2] == ["host,at,cpu", "web-1,2026-01-02T03:04:05,12.5"]
    assert orjson.loads(render(COLUMNS, ROWS, "json"))[1] == {
        "host": "db-10",
        "at": "2026-01-02T03:04:06+00:00",
        "cpu": 99.0,
    }


def test_unknown_format_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        render(COLUMNS, ROWS, "xml")
