"""Kafka -> sink -> ClickHouse on the real broker and the real engine."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from collector.contract import (
    Alert,
    GroupStats,
    Heartbeat,
    LogCounts,
    LogMatch,
    MetricBatch,
    ProcessEvent,
    ProcessInfo,
    ProcessSummary,
    ScaleSignal,
    Topics,
    encode,
)
from sinks.schema import MIGRATIONS, apply_migrations
from sinks.writer import Buffer, Sink, SinkSettings
from tests.integration.helpers import produce, run_sink_until

pytestmark = pytest.mark.integration

# Recent, minute-aligned event times: rows older than the raw TTL (30 days) are dropped on insert.
T0 = float(int(time.time() // 60) * 60 - 3600)
FAST = SinkSettings(batch_wait_s=0.2)


def batches(hosts: int, cycles: int, t0: float = T0) -> list[tuple[bytes, bytes]]:
    """Metric batches of 3 samples each: cpu_pct = cycle, mem 50, disk 10 + host number."""
    out = []
    for cycle in range(cycles):
        for h in range(hosts):
            batch = MetricBatch(
                f"h{h}",
                "eu" if h % 2 else "us",
                t0 + cycle * 10,
                10.0,
                {"cpu_pct": float(cycle), "mem_used_pct": 50.0, "disk_used_pct:/": 10.0 + h},
            )
            out.append((batch.host_id.encode(), encode(batch)))
    return out


def alert(state: str, at: float, transition: str = "") -> bytes:
    return encode(
        Alert(
            "fp",
            "cpu_high",
            state,  # type: ignore[arg-type]
            "critical",
            "h0",
            "us",
            "cpu_pct",
            95.0,
            90.0,
            T0,
            at,
            "hot",
            f"id-{state}",
            labels={"team": "ops"},
            transition=transition,
        )
    )


def _run_sink(sink: Sink, until_records: int) -> None:
    """Run the sink until it has committed ``until_records`` records, then stop it."""
    run_sink_until(sink, lambda: sink.stats.records >= until_records)


def read_deadletters(bootstrap: str, topics: Topics, count: int) -> list[Any]:
    """The first ``count`` records of the dead-letter topic (fetches large enough for any of them)."""

    async def main() -> list[Any]:
        consumer = AIOKafkaConsumer(
            topics.deadletter,
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await consumer.start()
        got: list[Any] = []
        try:
            deadline = time.monotonic() + 30
            while len(got) < count and time.monotonic() < deadline:
                for recs in (await consumer.getmany(timeout_ms=500)).values():
                    got.extend(recs)
        finally:
            await consumer.stop()
        return got

    return asyncio.run(main())


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    async def main() -> dict[int, int | None]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            parts = consumer.partitions_for_topic(topic) or set()
            if not parts:
                await consumer._client.force_metadata_update()
                parts = consumer.partitions_for_topic(topic) or set()
            return {p: await consumer.committed(TopicPartition(topic, p)) for p in sorted(parts)}
        finally:
            await consumer.stop()

    return asyncio.run(main())


def end_offsets(bootstrap: str, topic: str, partitions: list[int]) -> dict[int, int]:
    async def main() -> dict[int, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        await consumer.start()
        try:
            ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
            return {tp.partition: off for tp, off in ends.items()}
        finally:
            await consumer.stop()

    return asyncio.run(main())


def test_sink_stores_metrics_and_alerts_and_commits_after_insert(
    kafka_bootstrap: str, topics: Topics, clickhouse: Any, unique: str
) -> None:
    asyncio.run(produce(kafka_bootstrap, topics.metrics, batches(hosts=3, cycles=4)))
    transitions = [
        (b"fp", alert("firing", T0 + 60)),
        (b"fp", alert("firing", T0 + 120, "repeat")),
        (b"fp", alert("resolved", T0 + 180)),
    ]
    asyncio.run(produce(kafka_bootstrap, topics.alerts, transitions))
    sink = Sink(clickhouse, kafka_bootstrap, topics, database=unique, group_id=unique, settings=FAST)
    _run_sink(sink, until_records=15)

    q = clickhouse.query
    rows = q(
        f"SELECT name, instance, count(), sum(value) FROM {unique}.metrics GROUP BY name, instance ORDER BY name"
    ).result_rows
    assert rows == [
        ("cpu_pct", "", 12, 3 * (0 + 1 + 2 + 3)),
        ("disk_used_pct", "/", 12, 4 * (10 + 11 + 12)),
        ("mem_used_pct", "", 12, 12 * 50.0),
    ]
    assert q(f"SELECT uniq(host_id) FROM {unique}.metrics").result_rows == [(3,)]
    # The rollup saw every row once: 4 cycles 10 s apart fall in one minute per host and series.
    assert q(
        f"SELECT sum(count), min(min), max(max), sum(sum) FROM {unique}.metrics_1m WHERE name = 'cpu_pct'"
    ).result_rows == [(12, 0.0, 3.0, 18.0)]
    # Every transition is kept, the repeat included (same event id as the firing).
    history = q(f"SELECT transition, state, labels FROM {unique}.alerts FINAL ORDER BY at").result_rows
    assert history == [("firing", "firing", {"team": "ops"}), ("repeat", "firing", {"team": "ops"}),
                       ("resolved", "resolved", {"team": "ops"})]  # fmt: skip

    for topic in (topics.metrics, topics.alerts):
        # An empty partition has nothing to commit (None); every other one is committed to its end.
        done = {p: off or 0 for p, off in committed(kafka_bootstrap, unique, topic).items()}
        assert done == end_offsets(kafka_bootstrap, topic, list(done)), topic

    # A second run of the same group finds nothing new: the committed offsets hold.
    again = Sink(clickhouse, kafka_bootstrap, topics, database=unique, group_id=unique, settings=FAST)
    asyncio.run(produce(kafka_bootstrap, topics.metrics, batches(hosts=1, cycles=1)))
    _run_sink(again, until_records=1)
    assert q(f"SELECT count() FROM {unique}.metrics").result_rows == [(36 + 3,)]


def test_every_event_type_lands_in_its_table(
    kafka_bootstrap: str, topics: Topics, clickhouse: Any, unique: str
) -> None:
    proc = ProcessInfo(7, "nginx", "www", 12.5, 1_000_000, T0 - 100)
    summary = ProcessSummary(
        "h1", "eu", T0, 10.0, 120, {"sleeping": 110, "running": 10}, [proc], [proc],
        {"nginx": GroupStats(4, 20.0, 4_000_000, T0 - 100, T0 - 5), "batch": GroupStats(0, 0.0, 0)},
    )  # fmt: skip
    records = {
        topics.heartbeats: [
            Heartbeat("h1", "eu", "boot-1", s, T0 + s * 10, 10.0, "0.1", {"dc": "a"}) for s in range(3)
        ],
        topics.processes: [summary, ProcessEvent("h1", "eu", T0 + 1, "nginx", "start", 8, "nginx", T0 + 1)],
        topics.logs: [
            LogMatch("h1", "eu", T0, "/var/log/app.log", 4096, "oom", "critical", "Out of memory: kill"),
            LogCounts("h1", "eu", T0, 10.0, {"oom": 3, "timeout": 0}),
        ],
        topics.scale: [ScaleSignal("web_cpu", "scale_out", T0, 85.0, 80.0, 12, "s1")],
    }
    for topic, events in records.items():
        asyncio.run(produce(kafka_bootstrap, topic, [(b"h1", encode(e)) for e in events]))
    sink = Sink(clickhouse, kafka_bootstrap, topics, database=unique, group_id=unique, settings=FAST)
    _run_sink(sink, until_records=8)

    q = clickhouse.query
    assert q(f"SELECT seq, boot_id, labels FROM {unique}.heartbeats ORDER BY seq").result_rows == [
        (0, "boot-1", {"dc": "a"}), (1, "boot-1", {"dc": "a"}), (2, "boot-1", {"dc": "a"}),
    ]  # fmt: skip
    assert q(f"SELECT sum(beats) FROM {unique}.heartbeats_1m").result_rows == [(3,)]
    assert q(f"SELECT total, by_state['running'], top_cpu[1].name FROM {unique}.process_summaries").result_rows == [
        (120, 10, "nginx")
    ]
    assert q(f"SELECT group, count, isNull(oldest_start) FROM {unique}.process_groups ORDER BY group").result_rows == [
        ("batch", 0, 1),
        ("nginx", 4, 0),
    ]
    assert q(f"SELECT kind, pid FROM {unique}.process_events").result_rows == [("start", 8)]
    assert q(f"SELECT rule, offset, excerpt FROM {unique}.log_matches").result_rows == [
        ("oom", 4096, "Out of memory: kill")
    ]
    assert q(f"SELECT rule, count FROM {unique}.log_counts ORDER BY rule").result_rows == [("oom", 3), ("timeout", 0)]
    assert q(f"SELECT action, hosts FROM {unique}.scale_signals").result_rows == [("scale_out", 12)]


def test_malformed_records_land_in_the_deadletter_topic_and_the_sink_keeps_going(
    kafka_bootstrap: str, topics: Topics, clickhouse: Any, unique: str
) -> None:
    bad = [(b"x", b"garbage"), (b"y", b'{"v": 2}')]
    asyncio.run(produce(kafka_bootstrap, topics.metrics, [*bad, *batches(hosts=1, cycles=2)]))
    sink = Sink(clickhouse, kafka_bootstrap, topics, database=unique, group_id=unique, settings=FAST)
    _run_sink(sink, until_records=4)
    assert sink.stats.malformed == 2
    assert clickhouse.query(f"SELECT count() FROM {unique}.metrics").result_rows == [(6,)]
    stored = clickhouse.query(f"SELECT topic, reason FROM {unique}.dead_letters ORDER BY reason").result_rows
    assert [t for t, _ in stored] == [topics.metrics] * 2
    assert stored[0][1].startswith("not JSON") and stored[1][1] == "unsupported schema version 2 (expected 1)"

    dead = read_deadletters(kafka_bootstrap, topics, 2)
    dead.sort(key=lambda r: dict(r.headers)["fleetpulse.offset"])
    assert [(r.key, r.value) for r in dead] == bad  # unchanged payloads
    headers = [dict(r.headers) for r in dead]
    assert [h["fleetpulse.topic"] for h in headers] == [topics.metrics.encode()] * 2
    assert headers[0]["fleetpulse.reason"].startswith(b"not JSON")
    assert headers[1]["fleetpulse.reason"] == b"unsupported schema version 2 (expected 1)"
    assert {h["fleetpulse.group"] for h in headers} == {unique.encode()}
    # Both came from the partition of their keys, at offsets the table recorded too.
    stored = clickhouse.query(f"SELECT partition, offset FROM {unique}.dead_letters ORDER BY partition, offset")
    assert sorted((int(h["fleetpulse.partition"]), int(h["fleetpulse.offset"])) for h in headers) == [
        tuple(r) for r in stored.result_rows
    ]


def test_a_retried_insert_of_the_same_offsets_writes_nothing_twice_rollups_included(
    kafka_bootstrap: str, topics: Topics, clickhouse: Any, unique: str
) -> None:
    asyncio.run(produce(kafka_bootstrap, topics.metrics, batches(hosts=2, cycles=2)))

    async def fetch() -> Any:
        consumer = AIOKafkaConsumer(
            topics.metrics, bootstrap_servers=kafka_bootstrap, group_id=None, auto_offset_reset="earliest"
        )
        await consumer.start()
        got: dict[Any, list[Any]] = {}
        try:
            while sum(len(v) for v in got.values()) < 4:
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    got.setdefault(tp, []).extend(records)
        finally:
            await consumer.stop()
        return got

    fetched = asyncio.run(fetch())
    sink = Sink(clickhouse, kafka_bootstrap, topics, database=unique, group_id=unique)
    apply_migrations(clickhouse, unique)
    buffer = Buffer()
    for tp, records in fetched.items():
        buffer.add(tp, records)
    segments = buffer.take()
    inserts = [i for seg in segments for i in seg.inserts()]
    intentions = [[unique, s.tp.topic, s.tp.partition, s.first, s.last, 0] for s in segments]
    sink._write(intentions, inserts)
    sink._write(intentions, inserts)  # as after a crash between insert and commit
    assert clickhouse.query(f"SELECT count() FROM {unique}.metrics").result_rows == [(12,)]
    assert clickhouse.query(f"SELECT sum(count) FROM {unique}.metrics_1m").result_rows == [(12,)]
    assert clickhouse.query(f"SELECT sum(count) FROM {unique}.metrics_region_1m").result_rows == [(12,)]


def test_migrations_run_twice_in_a_row_without_error_or_change(clickhouse: Any, unique: str) -> None:
    def snapshot() -> Any:
        tables = clickhouse.query(
            "SELECT name, create_table_query, metadata_modification_time FROM system.tables "
            "WHERE database = %(db)s ORDER BY name",
            parameters={"db": unique},
        ).result_rows
        versions = clickhouse.query(
            f"SELECT version, name, applied_at FROM {unique}.schema_migrations ORDER BY version"
        )
        return tables, versions.result_rows

    assert apply_migrations(clickhouse, unique) == [m.version for m in MIGRATIONS]
    first = snapshot()
    assert [v for v, _, _ in first[1]] == [m.version for m in MIGRATIONS]
    assert apply_migrations(clickhouse, unique) == []
    assert snapshot() == first
    assert len(first[0]) >= 18  # every table and view of the schema exists


def test_migrations_upgrade_a_walking_skeleton_database_and_keep_its_rows(clickhouse: Any, unique: str) -> None:
    from sinks.schema import MIGRATIONS as ALL

    for statement in ALL[0].steps:  # version 1 as the skeleton created it, no schema_migrations table
        assert isinstance(statement, str)
        clickhouse.command(statement.format(db=unique, dedup=10000))
    clickhouse.command(
        f"INSERT INTO {unique}.alerts (at, event_id, fingerprint, rule, state) "
        "VALUES (now64(3), 'e1', 'fp', 'r', 'firing')"
    )
    assert apply_migrations(clickhouse, unique) == [m.version for m in MIGRATIONS]
    assert clickhouse.query(f"SELECT event_id, kind, transition FROM {unique}.alerts").result_rows == [
        ("e1", "metric", "")
    ]
    assert clickhouse.query(
        "SELECT sorting_key FROM system.tables WHERE database = %(db)s AND name = 'alerts'", parameters={"db": unique}
    ).result_rows == [("fingerprint, event_id, transition, notified_at",)]


def test_ttls_follow_the_settings_and_are_left_alone_when_unchanged(clickhouse: Any, unique: str) -> None:
    from sinks.schema import SchemaSettings, apply_ttls

    apply_migrations(clickhouse, unique, SchemaSettings(raw_ttl_days=7, rollup_ttl_days=365))
    engine = dict(
        clickhouse.query(
            "SELECT name, engine_full FROM system.tables WHERE database = %(db)s", parameters={"db": unique}
        ).result_rows
    )
    assert "TTL toDateTime(ts) + toIntervalDay(7)" in engine["metrics"]
    assert "TTL toDateTime(minute) + toIntervalDay(365)" in engine["metrics_1m"]
    assert apply_ttls(clickhouse, unique, SchemaSettings(raw_ttl_days=7, rollup_ttl_days=365)) == []
    assert "metrics" in apply_ttls(clickhouse, unique, SchemaSettings(raw_ttl_days=14, rollup_ttl_days=365))


def test_down_check_tables_take_the_documented_columns(clickhouse: Any, unique: str) -> None:
    from sinks.rows import TABLE_COLUMNS
    from sinks.schema import DOWN_CHECKS_DOC

    apply_migrations(clickhouse, unique)
    for table in ("host_status", "down_checks"):
        columns = clickhouse.query(
            "SELECT name FROM system.columns WHERE database = %(db)s AND table = %(t)s ORDER BY position",
            parameters={"db": unique, "t": table},
        ).result_rows
        assert tuple(c for (c,) in columns) == TABLE_COLUMNS[table]
        for column in TABLE_COLUMNS[table]:
            assert f"\n  {column} " in DOWN_CHECKS_DOC.split(f"{table}:")[1], (table, column)
    clickhouse.insert(
        "down_checks",
        [[int(T0 * 1000), "eu", "", "region_unreachable", '{"witnesses": 0}', "d1"]],
        column_names=list(TABLE_COLUMNS["down_checks"]),
        database=unique,
    )
    assert clickhouse.query(f"SELECT decision FROM {unique}.down_checks").result_rows == [("region_unreachable",)]


def test_a_900_kb_malformed_record_reaches_the_deadletter_topic_whole_with_a_capped_reason(
    kafka_bootstrap: str, topics: Topics, clickhouse: Any, unique: str
) -> None:
    """Its reason used to repeat the whole value: copied into a header, the dead letter was too
    large to produce and the record was dropped. The largest record a data topic takes (the
    broker's default limit) is dead-lettered too, headers and all."""
    import orjson

    huge = orjson.dumps({"v": 1, "type": "x" * 900_000})
    largest = orjson.dumps({"v": 1, "type": "y" * 1_048_300})
    asyncio.run(produce(kafka_bootstrap, topics.metrics, [(b"a", huge), (b"b", largest)]))
    sink = Sink(clickhouse, kafka_bootstrap, topics, database=unique, group_id=unique, settings=FAST)
    _run_sink(sink, until_records=2)
    assert sink.stats.malformed == 2 and sink.stats.deadletter_failures == 0, sink.stats.line()

    dead = sorted(read_deadletters(kafka_bootstrap, topics, 2), key=lambda r: r.key)
    assert [(r.key, r.value) for r in dead] == [(b"a", huge), (b"b", largest)]
    for record in dead:
        reason = dict(record.headers)["fleetpulse.reason"]
        assert len(reason) <= 200 and reason.startswith(b"unknown event type '") and reason.endswith(b"...")
    sql = f"SELECT length(reason) <= 200, size_bytes FROM {unique}.dead_letters ORDER BY size_bytes"
    stored = clickhouse.query(sql)
    assert stored.result_rows == [(1, len(huge)), (1, len(largest))]
