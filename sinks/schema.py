"""The ClickHouse schema as versioned migrations, applied idempotently when the sink starts.

``schema_migrations`` records every applied version; a second run applies nothing and changes
nothing. Every statement is also idempotent on its own (``IF NOT EXISTS``), so a sink that
crashed half-way through a migration simply runs it again.

Layout (one database, default ``fleetpulse``):

raw, short TTL (``raw_ttl_days``), partitioned by day, deduplicated inserts
  ``metrics``            one row per sample: ts, host_id, region, name, instance, value
  ``heartbeats``         one row per heartbeat (sequence, boot id, the agent's own cost)
  ``process_summaries``  one row per process-table summary (totals, by state, top-N lists)
  ``process_groups``     one row per watched group per summary (count, cpu, rss, start times)
  ``process_events``     starts and exits of watched processes
  ``log_matches``        matched log lines (capped excerpt)
  ``log_counts``         exact matches per rule per interval
  ``dead_letters``       records the sink could not decode (origin and reason)

history, long TTL (``rollup_ttl_days``)
  ``alerts``             every alert transition (firing, escalated, deescalated, repeat, resolved)
  ``scale_signals``      scale_out / scale_in requests of group rules
  ``host_status``        host status changes (up, down, rebooted, stale); written by the down-checker
  ``down_checks``        down-check decisions, see ``DOWN_CHECKS_DOC``

1-minute rollups, long TTL, filled by materialized views at insert time
  ``metrics_1m``         per host and series: min, max, sum, count
  ``metrics_region_1m``  per region and series: min, max, sum, count, hosts and a t-digest
                         quantile sketch (p50/p90/p99 across the region's hosts)
  ``heartbeats_1m``      per host and minute: heartbeats received (availability reports)

bookkeeping
  ``schema_migrations``  applied versions
  ``sink_offsets``       the offset range each sink group is about to insert per partition
                         (see ``sinks.writer`` for how it makes a retried insert write nothing twice)

Why rollups are materialized views into AggregatingMergeTree and not Faust aggregates on a
topic: the view runs inside the very insert that stores the raw block, so it inherits that
insert's deduplication token (a retried block is skipped in the rollup too: the rollup
tables carry a deduplication window of their own for this) and rollups are exactly-once
with no extra machinery. A Faust rollup would need windowed tables (expired on wall-clock,
not restored with expiry after a restart), a rollup topic and a second sink path, and an
at-least-once emission would double-count minutes after a worker crash. The cost is paid at
insert: ``bench/sink_throughput.py`` measures the insert rate with and without the views
(see BENCHMARKS.md).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

DOWN_CHECKS_DOC = """\
host_status: one row per status change of a host, written by the down-checker (issue #5).
  at        DateTime64(3)  event time of the change
  host_id   String
  region    String
  status    String         up | down | rebooted | stale
  previous  String         the status before ('' for the first)
  boot_id   String         boot id seen with the change (a new one = rebooted)
  reason    String         why, for people ("no heartbeat for 90 s, region healthy, 2/2 witnesses agree")
  event_id  String         deterministic id; replays collapse (ReplacingMergeTree)

down_checks: one row per decision of the cross-region down-checker (issue #5).
  at        DateTime64(3)  event time of the decision
  region    String         region the decision is about
  host_id   String         host it is about; '' for a region-wide decision
  decision  String         host_down | host_up | host_rebooted | region_unreachable |
                           region_reachable | ingest_outage | ingest_recovered | suppressed
  detail    String         JSON: evidence (last heartbeat, witnesses asked/answered, grace, seq gap)
  event_id  String         deterministic id; replays collapse (ReplacingMergeTree)"""


@dataclass(frozen=True)
class SchemaSettings:
    """What an operator may tune without a migration; applied at every start."""

    raw_ttl_days: int = 30
    rollup_ttl_days: int = 400
    # How many recent insert tokens each table remembers. A retried insert is a no-op only
    # while its token is in this window; the sink retries its latest blocks only, so a few
    # thousand is plenty even with many partitions.
    dedup_window: int = 10_000

    def __post_init__(self) -> None:
        for key in ("raw_ttl_days", "rollup_ttl_days"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{key} must be a whole number of days >= 0 (0 = keep forever), got {value!r}")
        if self.dedup_window < 100:
            raise ValueError(f"dedup_window must be >= 100, got {self.dedup_window}")


# Which TTL each table gets, and on which column: (table, time column, "raw" | "rollup").
TTL_TABLES: tuple[tuple[str, str, str], ...] = (
    ("metrics", "ts", "raw"),
    ("heartbeats", "sent_at", "raw"),
    ("process_summaries", "ts", "raw"),
    ("process_groups", "ts", "raw"),
    ("process_events", "ts", "raw"),
    ("log_matches", "ts", "raw"),
    ("log_counts", "ts", "raw"),
    ("dead_letters", "at", "raw"),
    ("alerts", "at", "rollup"),
    ("scale_signals", "at", "rollup"),
    ("host_status", "at", "rollup"),
    ("down_checks", "at", "rollup"),
    ("metrics_1m", "minute", "rollup"),
    ("metrics_region_1m", "minute", "rollup"),
    ("heartbeats_1m", "minute", "rollup"),
)

Step = str | Callable[[Any, str], None]


@dataclass(frozen=True)
class Migration:
    """One schema version: statements (``{db}`` and ``{dedup}`` are filled in) or callables."""

    version: int
    name: str
    steps: tuple[Step, ...]


_TS = "DateTime64(3) CODEC(DoubleDelta, ZSTD(1))"
_LC = "LowCardinality(String)"
_F64 = "Float64 CODEC(Gorilla, ZSTD(1))"
_PROCS = (
    "Array(Tuple(pid UInt32, name String, user String, cpu_pct Float32, rss_bytes UInt64, started_at DateTime64(3)))"
)
# Whole day partitions expire as a unit: TTL drops parts instead of rewriting them.
_RAW_SETTINGS = "SETTINGS non_replicated_deduplication_window = {dedup}, ttl_only_drop_parts = 1"

_V1_SKELETON = (
    "CREATE DATABASE IF NOT EXISTS {db}",
    # The walking skeleton's two tables, unchanged, so data directories created before
    # migrations existed are simply at version 1.
    """CREATE TABLE IF NOT EXISTS {db}.metrics (
        ts DateTime64(3) CODEC(DoubleDelta, ZSTD(1)),
        host_id LowCardinality(String),
        region LowCardinality(String),
        name LowCardinality(String),
        instance LowCardinality(String),
        value Float64 CODEC(Gorilla, ZSTD(1))
    ) ENGINE = MergeTree
    PARTITION BY toDate(ts)
    ORDER BY (name, host_id, instance, ts)
    SETTINGS non_replicated_deduplication_window = {dedup}""",
    """CREATE TABLE IF NOT EXISTS {db}.alerts (
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
    SETTINGS non_replicated_deduplication_window = {dedup}""",
)


def _alerts_every_transition(client: Any, db: str) -> None:
    """alerts: add kind/transition/labels/annotations, and key rows by transition and time.

    The skeleton keyed alerts by (fingerprint, event_id); event ids are derived from
    (fingerprint, state, started_at), so an escalation or a repeat of an open alert has the
    firing's id and would collapse into it. ClickHouse only lets newly added columns without
    defaults extend a sorting key, hence ``notified_at`` (= ``at``, written by the sink).
    """
    client.command(
        f"""ALTER TABLE {db}.alerts
        ADD COLUMN IF NOT EXISTS kind LowCardinality(String) DEFAULT 'metric',
        ADD COLUMN IF NOT EXISTS labels Map(LowCardinality(String), String),
        ADD COLUMN IF NOT EXISTS annotations Map(LowCardinality(String), String)"""
    )
    key = client.query(
        "SELECT sorting_key FROM system.tables WHERE database = %(db)s AND name = 'alerts'", parameters={"db": db}
    ).result_rows[0][0]
    if "transition" not in key:  # a rerun after a crash right after this ALTER must not repeat it
        client.command(
            f"""ALTER TABLE {db}.alerts
            ADD COLUMN IF NOT EXISTS transition LowCardinality(String),
            ADD COLUMN IF NOT EXISTS notified_at DateTime64(3),
            MODIFY ORDER BY (fingerprint, event_id, transition, notified_at)"""
        )


_V2_FULL_SCHEMA: tuple[Step, ...] = (
    """CREATE TABLE IF NOT EXISTS {db}.schema_migrations (
        version UInt32,
        name String,
        applied_at DateTime64(3)
    ) ENGINE = MergeTree ORDER BY version""",
    "ALTER TABLE {db}.metrics MODIFY SETTING ttl_only_drop_parts = 1",
    _alerts_every_transition,
    f"""CREATE TABLE IF NOT EXISTS {{db}}.heartbeats (
        sent_at {_TS},
        host_id {_LC},
        region {_LC},
        boot_id {_LC},
        seq UInt64 CODEC(Delta, ZSTD(1)),
        interval_s Float32,
        agent_version {_LC},
        labels Map({_LC}, String),
        agent_cpu_s {_F64},
        agent_rss_bytes UInt64 CODEC(T64, ZSTD(1)),
        events_sent UInt64 CODEC(Delta, ZSTD(1)),
        events_spooled UInt64 CODEC(T64, ZSTD(1)),
        events_dropped UInt64 CODEC(T64, ZSTD(1))
    ) ENGINE = MergeTree
    PARTITION BY toDate(sent_at)
    ORDER BY (region, host_id, sent_at)
    {_RAW_SETTINGS}""",
    f"""CREATE TABLE IF NOT EXISTS {{db}}.process_summaries (
        ts {_TS},
        host_id {_LC},
        region {_LC},
        total UInt32 CODEC(T64, ZSTD(1)),
        by_state Map({_LC}, UInt32),
        top_cpu {_PROCS},
        top_rss {_PROCS}
    ) ENGINE = MergeTree
    PARTITION BY toDate(ts)
    ORDER BY (region, host_id, ts)
    {_RAW_SETTINGS}""",
    f"""CREATE TABLE IF NOT EXISTS {{db}}.process_groups (
        ts {_TS},
        host_id {_LC},
        region {_LC},
        group {_LC},
        count UInt32 CODEC(T64, ZSTD(1)),
        cpu_pct {_F64},
        rss_bytes UInt64 CODEC(T64, ZSTD(1)),
        oldest_start Nullable(DateTime64(3)),
        newest_start Nullable(DateTime64(3))
    ) ENGINE = MergeTree
    PARTITION BY toDate(ts)
    ORDER BY (group, region, host_id, ts)
    {_RAW_SETTINGS}""",
    f"""CREATE TABLE IF NOT EXISTS {{db}}.process_events (
        ts {_TS},
        host_id {_LC},
        region {_LC},
        group {_LC},
        kind {_LC},
        pid UInt32,
        name String,
        started_at DateTime64(3)
    ) ENGINE = MergeTree
    PARTITION BY toDate(ts)
    ORDER BY (group, host_id, ts)
    {_RAW_SETTINGS}""",
    f"""CREATE TABLE IF NOT EXISTS {{db}}.log_matches (
        ts {_TS},
        host_id {_LC},
        region {_LC},
        path {_LC},
        offset UInt64,
        rule {_LC},
        severity {_LC},
        excerpt String CODEC(ZSTD(3))
    ) ENGINE = MergeTree
    PARTITION BY toDate(ts)
    ORDER BY (rule, host_id, ts)
    {_RAW_SETTINGS}""",
    f"""CREATE TABLE IF NOT EXISTS {{db}}.log_counts (
        ts {_TS},
        host_id {_LC},
        region {_LC},
        interval_s Float32,
        rule {_LC},
        count UInt32 CODEC(T64, ZSTD(1))
    ) ENGINE = MergeTree
    PARTITION BY toDate(ts)
    ORDER BY (rule, host_id, ts)
    {_RAW_SETTINGS}""",
    f"""CREATE TABLE IF NOT EXISTS {{db}}.dead_letters (
        at {_TS},
        topic {_LC},
        partition UInt32,
        offset UInt64,
        reason String,
        size_bytes UInt32
    ) ENGINE = MergeTree
    PARTITION BY toDate(at)
    ORDER BY (topic, partition, offset)
    {_RAW_SETTINGS}""",
    f"""CREATE TABLE IF NOT EXISTS {{db}}.scale_signals (
        at {_TS},
        rule {_LC},
        action {_LC},
        value Float64,
        threshold Float64,
        hosts UInt32,
        event_id String,
        labels Map({_LC}, String)
    ) ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(at)
    ORDER BY (rule, at, event_id)
    SETTINGS non_replicated_deduplication_window = {{dedup}}""",
    f"""CREATE TABLE IF NOT EXISTS {{db}}.host_status (
        at {_TS},
        host_id {_LC},
        region {_LC},
        status {_LC},
        previous {_LC},
        boot_id String,
        reason String,
        event_id String
    ) ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(at)
    ORDER BY (region, host_id, at, event_id)
    SETTINGS non_replicated_deduplication_window = {{dedup}}""",
    f"""CREATE TABLE IF NOT EXISTS {{db}}.down_checks (
        at {_TS},
        region {_LC},
        host_id {_LC},
        decision {_LC},
        detail String CODEC(ZSTD(3)),
        event_id String
    ) ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(at)
    ORDER BY (region, at, host_id, decision, event_id)
    SETTINGS non_replicated_deduplication_window = {{dedup}}""",
    # Rollups. The target tables need a deduplication window of their own: ClickHouse skips a
    # deduplicated block in dependent views only if the view's table can recognise it.
    f"""CREATE TABLE IF NOT EXISTS {{db}}.metrics_1m (
        minute DateTime CODEC(DoubleDelta, ZSTD(1)),
        name {_LC},
        region {_LC},
        host_id {_LC},
        instance {_LC},
        min SimpleAggregateFunction(min, Float64) CODEC(Gorilla, ZSTD(1)),
        max SimpleAggregateFunction(max, Float64) CODEC(Gorilla, ZSTD(1)),
        sum SimpleAggregateFunction(sum, Float64) CODEC(Gorilla, ZSTD(1)),
        count SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1))
    ) ENGINE = AggregatingMergeTree
    PARTITION BY toDate(minute)
    ORDER BY (name, region, host_id, instance, minute)
    {_RAW_SETTINGS}""",
    # No GROUP BY here: a batch rarely holds two samples of one host's series in the same
    # minute (one per 10 s interval per host, batches cut every second), so aggregating at
    # insert would hash every row to collapse almost nothing. Each row becomes a one-sample
    # state and the AggregatingMergeTree folds them when it merges parts anyway. Measured on
    # the bench fleet: 1.11 vs 0.91 M rows/s inserted with both views (BENCHMARKS.md).
    """CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.metrics_1m_mv TO {db}.metrics_1m AS
    SELECT toStartOfMinute(ts) AS minute, name, region, host_id, instance,
           value AS min, value AS max, value AS sum, toUInt64(1) AS count
    FROM {db}.metrics""",
    # Per-host minutes hold ~6-12 samples: a sketch there would cost more than the samples.
    # Across a region's hosts it answers "p99 CPU in eu-west" without scanning raw rows.
    f"""CREATE TABLE IF NOT EXISTS {{db}}.metrics_region_1m (
        minute DateTime CODEC(DoubleDelta, ZSTD(1)),
        name {_LC},
        region {_LC},
        instance {_LC},
        min SimpleAggregateFunction(min, Float64),
        max SimpleAggregateFunction(max, Float64),
        sum SimpleAggregateFunction(sum, Float64),
        count SimpleAggregateFunction(sum, UInt64),
        hosts AggregateFunction(uniq, String),
        quantiles AggregateFunction(quantilesTDigest(0.5, 0.9, 0.99), Float64)
    ) ENGINE = AggregatingMergeTree
    PARTITION BY toDate(minute)
    ORDER BY (name, region, instance, minute)
    {_RAW_SETTINGS}""",
    """CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.metrics_region_1m_mv TO {db}.metrics_region_1m AS
    SELECT toStartOfMinute(ts) AS minute, name, region, instance,
           min(value) AS min, max(value) AS max, sum(value) AS sum, count() AS count,
           uniqState(toString(host_id)) AS hosts,
           quantilesTDigestState(0.5, 0.9, 0.99)(value) AS quantiles
    FROM {db}.metrics
    GROUP BY minute, name, region, instance""",
    f"""CREATE TABLE IF NOT EXISTS {{db}}.heartbeats_1m (
        minute DateTime CODEC(DoubleDelta, ZSTD(1)),
        region {_LC},
        host_id {_LC},
        beats SimpleAggregateFunction(sum, UInt64),
        max_seq SimpleAggregateFunction(max, UInt64)
    ) ENGINE = AggregatingMergeTree
    PARTITION BY toDate(minute)
    ORDER BY (region, host_id, minute)
    {_RAW_SETTINGS}""",
    """CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.heartbeats_1m_mv TO {db}.heartbeats_1m AS
    SELECT toStartOfMinute(sent_at) AS minute, region, host_id, count() AS beats, max(seq) AS max_seq
    FROM {db}.heartbeats
    GROUP BY minute, region, host_id""",
    # Latest range per (group, topic, partition) a sink is about to insert; read on
    # partition assignment. Replacing by ``at``: the newest intention wins.
    f"""CREATE TABLE IF NOT EXISTS {{db}}.sink_offsets (
        group_id {_LC},
        topic {_LC},
        partition UInt32,
        first_offset UInt64,
        last_offset UInt64,
        at DateTime64(3)
    ) ENGINE = ReplacingMergeTree(at)
    ORDER BY (group_id, topic, partition)""",
)

# Measured on the simulated fleet of bench/sink_throughput.py (10.8 M samples, merged): the
# value column takes 1.19 B/sample with Gorilla+ZSTD(1) and 1.00 with ZSTD(3) alone (agent
# values are rounded decimals and byte counts in 4 KiB steps, whose XOR with the previous
# value is rarely small; ZSTD finds the repeats instead). Metadata-only: new and merged parts
# get the new codec.
_V3_VALUE_CODEC = ("ALTER TABLE {db}.metrics MODIFY COLUMN value Float64 CODEC(ZSTD(3))",)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "walking skeleton: metrics and alerts", _V1_SKELETON),
    Migration(2, "full schema: every event type, alert transitions, rollups, sink offsets", _V2_FULL_SCHEMA),
    Migration(3, "metrics.value compressed with ZSTD(3) instead of Gorilla+ZSTD(1)", _V3_VALUE_CODEC),
)


def check_database_name(database: str) -> str:
    """Database names are spliced into DDL, so they must be plain identifiers."""
    if not _IDENT.match(database):
        raise ValueError(f"database name must be an identifier, got {database!r}")
    return database


def _run(client: Any, step: Step, database: str, settings: SchemaSettings) -> None:
    if callable(step):
        step(client, database)
    else:
        client.command(step.format(db=database, dedup=settings.dedup_window))


def applied_versions(client: Any, database: str) -> set[int]:
    """Versions recorded in ``schema_migrations`` (empty if the table does not exist yet)."""
    exists = client.query(
        "SELECT count() FROM system.tables WHERE database = %(db)s AND name = 'schema_migrations'",
        parameters={"db": database},
    ).result_rows[0][0]
    if not exists:
        return set()
    rows = client.query(f"SELECT DISTINCT version FROM {database}.schema_migrations").result_rows
    return {int(r[0]) for r in rows}


def apply_migrations(client: Any, database: str, settings: SchemaSettings | None = None) -> list[int]:
    """Bring ``database`` to the latest version and its TTLs to ``settings``; returns applied versions."""
    settings = settings or SchemaSettings()
    check_database_name(database)
    done = applied_versions(client, database)
    applied: list[int] = []
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        for step in migration.steps:
            _run(client, step, database, settings)
        if migration.version >= 2:  # schema_migrations itself is created by version 2
            _record(client, database, MIGRATIONS[: migration.version], done)
            done |= {m.version for m in MIGRATIONS[: migration.version]}
        applied.append(migration.version)
        log.info("event=migration_applied database=%s version=%d name=%r", database, migration.version, migration.name)
    apply_ttls(client, database, settings)
    return applied


def _record(client: Any, database: str, migrations: tuple[Migration, ...], done: set[int]) -> None:
    rows = [[m.version, m.name, round(time.time() * 1000)] for m in migrations if m.version not in done]
    if rows:
        client.insert("schema_migrations", rows, column_names=["version", "name", "applied_at"], database=database)


def ttl_expression(column: str, days: int) -> str:
    """The TTL clause as ClickHouse prints it back in ``system.tables.engine_full``."""
    return f"toDateTime({column}) + toIntervalDay({days})"


def apply_ttls(client: Any, database: str, settings: SchemaSettings) -> list[str]:
    """Make each table's TTL match the settings; only tables that differ are altered.

    Comparing first keeps a restart free of ALTERs (an ALTER ... MODIFY TTL starts a mutation).
    Returns the tables changed.
    """
    rows = client.query(
        "SELECT name, engine_full FROM system.tables WHERE database = %(db)s", parameters={"db": database}
    ).result_rows
    engines = {name: engine for name, engine in rows}
    changed = []
    for table, column, kind in TTL_TABLES:
        days = settings.raw_ttl_days if kind == "raw" else settings.rollup_ttl_days
        engine = engines.get(table)
        if engine is None:
            continue
        has_ttl = " TTL " in engine
        if days == 0:
            if has_ttl:
                client.command(f"ALTER TABLE {database}.{table} REMOVE TTL")
                changed.append(table)
            continue
        expr = ttl_expression(column, days)
        if f" TTL {expr} " in f"{engine} ":
            continue
        client.command(f"ALTER TABLE {database}.{table} MODIFY TTL {expr}")
        changed.append(table)
    if changed:
        log.info("event=ttl_changed database=%s tables=%s", database, ",".join(changed))
    return changed
