"""ClickHouse target: connecting (embedded chDB or a server URL), schema, and row shapes."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from collector.contract import Alert, MetricBatch

DEFAULT_DATABASE = "fleetpulse"
METRICS_COLUMNS = ["ts", "host_id", "region", "name", "instance", "value"]
ALERTS_COLUMNS = [
    "at",
    "event_id",
    "fingerprint",
    "rule",
    "state",
    "severity",
    "host_id",
    "region",
    "metric",
    "value",
    "threshold",
    "started_at",
    "summary",
]
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def default_target(home: Path) -> str:
    """``CLICKHOUSE_URL`` if set, else the embedded engine under the data directory."""
    return os.environ.get("CLICKHOUSE_URL") or f"chdb://{(home / 'clickhouse').resolve()}"


def connect(target: str) -> Any:
    """A clickhouse-connect client for ``chdb:///path`` or ``http(s)://user:pw@host:port``.

    The embedded engine allows one data path per process; a second path raises.
    """
    import clickhouse_connect

    return clickhouse_connect.get_client(dsn=target)


def schema_statements(database: str) -> list[str]:
    """DDL for the walking skeleton's tables; idempotent (IF NOT EXISTS)."""
    if not _IDENT.match(database):
        raise ValueError(f"database name must be an identifier, got {database!r}")
    return [
        f"CREATE DATABASE IF NOT EXISTS {database}",
        # Raw samples, one row per metric. Dedup window: a retried insert with the same
        # token (topic-partition-offset range) writes nothing twice.
        f"""CREATE TABLE IF NOT EXISTS {database}.metrics (
            ts DateTime64(3) CODEC(DoubleDelta, ZSTD(1)),
            host_id LowCardinality(String),
            region LowCardinality(String),
            name LowCardinality(String),
            instance LowCardinality(String),
            value Float64 CODEC(Gorilla, ZSTD(1))
        ) ENGINE = MergeTree
        PARTITION BY toDate(ts)
        ORDER BY (name, host_id, instance, ts)
        SETTINGS non_replicated_deduplication_window = 10000""",
        # Every alert transition; a transition replayed after a worker crash has the same
        # event_id and collapses here.
        f"""CREATE TABLE IF NOT EXISTS {database}.alerts (
            at DateTime64(3),
            event_id String,
            fingerprint String,
            rule LowCardinality(String),
            state LowCardinality(String),
            severity LowCardinality(String),
            host_id LowCardinality(String),
            region LowCardinality(String),
            metric String,
            value Float64,
            threshold Float64,
            started_at DateTime64(3),
            summary String
        ) ENGINE = ReplacingMergeTree
        PARTITION BY toYYYYMM(at)
        ORDER BY (fingerprint, event_id)
        SETTINGS non_replicated_deduplication_window = 10000""",
    ]


def apply_schema(client: Any, database: str) -> None:
    """Create the database and tables if missing."""
    for statement in schema_statements(database):
        client.command(statement)


def _ms(seconds: float) -> int:
    # clickhouse-connect writes DateTime64(3) from integer ticks (ms), not float seconds.
    return round(seconds * 1000)


def metric_rows(batch: MetricBatch) -> list[list[Any]]:
    """One row per metric; ``name:instance`` keys are split into two columns."""
    ts = _ms(batch.ts)
    rows = []
    for key, value in batch.metrics.items():
        name, _, instance = key.partition(":")
        rows.append([ts, batch.host_id, batch.region, name, instance, value])
    return rows


def alert_row(alert: Alert) -> list[Any]:
    """The alert history row of one transition."""
    return [
        _ms(alert.at),
        alert.event_id,
        alert.fingerprint,
        alert.rule,
        alert.state,
        alert.severity,
        alert.host_id,
        alert.region,
        alert.metric,
        alert.value,
        alert.threshold,
        _ms(alert.started_at),
        alert.summary,
    ]
