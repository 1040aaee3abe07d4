"""Kafka -> sink -> ClickHouse on the real broker and the real engine."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from collector.contract import Alert, MetricBatch, Topics, encode
from sinks.writer import Sink
from tests.integration.helpers import produce, run_sink_until

pytestmark = pytest.mark.integration

T0 = 1_790_000_000.0


def _batches(hosts: int, cycles: int) -> list[tuple[bytes, bytes]]:
    out = []
    for cycle in range(cycles):
        for h in range(hosts):
            batch = MetricBatch(
                f"h{h}",
                "eu" if h % 2 else "us",
                T0 + cycle * 10,
                10.0,
                {"cpu_pct": float(cycle), "mem_used_pct": 50.0, "disk_used_pct:/": 10.0 + h},
            )
            out.append((batch.host_id.encode(), encode(batch)))
    return out


def _alert(state: str, at: float) -> bytes:
    return encode(
        Alert(
            "fp",
            "cpu_high",
            state,
            "critical",
            "h0",
            "us",
            "cpu_pct",
            95.0,
            90.0,  # type: ignore[arg-type]
            T0,
            at,
            "hot",
            f"id-{state}",
        )
    )


def _run_sink(sink: Sink, until_records: int) -> None:
    """Run the sink until it has handled ``until_records`` records, then stop it."""
    run_sink_until(sink, lambda: sink.stats.records + sink.stats.malformed >= until_records)


def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
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


def _end_offsets(bootstrap: str, topic: str, partitions: list[int]) -> dict[int, int]:
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
    asyncio.run(produce(kafka_bootstrap, topics.metrics, _batches(hosts=3, cycles=4)))
    asyncio.run(
        produce(
            kafka_bootstrap, topics.alerts, [(b"fp", _alert("firing", T0 + 60)), (b"fp", _alert("resolved", T0 + 90))]
        )
    )
    sink = Sink(clickhouse, kafka_bootstrap, topics, database=unique, group_id=unique)
    _run_sink(sink, until_records=14)

    rows = clickhouse.query(
        f"SELECT name, instance, count(), sum(value) FROM {unique}.metrics GROUP BY name, instance ORDER BY name"
    ).result_rows
    assert rows == [
        ("cpu_pct", "", 12, 3 * (0 + 1 + 2 + 3)),
        ("disk_used_pct", "/", 12, 4 * (10 + 11 + 12)),
        ("mem_used_pct", "", 12, 12 * 50.0),
    ]
    assert clickhouse.query(f"SELECT uniq(host_id), min(ts) FROM {unique}.metrics").result_rows[0][0] == 3
    history = clickhouse.query(f"SELECT state, summary FROM {unique}.alerts ORDER BY at").result_rows
    assert history == [("firing", "hot"), ("resolved", "hot")]

    for topic in (topics.metrics, topics.alerts):
        # An empty partition has nothing to commit (None); every other one is committed to its end.
        committed = {p: off or 0 for p, off in _committed(kafka_bootstrap, unique, topic).items()}
        assert committed == _end_offsets(kafka_bootstrap, topic, list(committed)), topic

    # A second run of the same group finds nothing new: the committed offsets hold.
    again = Sink(clickhouse, kafka_bootstrap, topics, database=unique, group_id=unique)
    asyncio.run(produce(kafka_bootstrap, topics.metrics, _batches(hosts=1, cycles=1)))
    _run_sink(again, until_records=1)
    assert clickhouse.query(f"SELECT count() FROM {unique}.metrics").result_rows == [(36 + 3,)]


def test_malformed_records_are_counted_and_the_sink_keeps_going(
    kafka_bootstrap: str, topics: Topics, clickhouse: Any, unique: str
) -> None:
    asyncio.run(
        produce(
            kafka_bootstrap, topics.metrics, [(b"x", b"garbage"), (b"x", b'{"v": 2}'), *_batches(hosts=1, cycles=2)]
        )
    )
    sink = Sink(clickhouse, kafka_bootstrap, topics, database=unique, group_id=unique)
    _run_sink(sink, until_records=4)
    assert sink.stats.malformed == 2
    assert clickhouse.query(f"SELECT count() FROM {unique}.metrics").result_rows == [(6,)]


def test_a_retried_insert_of_the_same_offsets_writes_nothing_twice(
    kafka_bootstrap: str, topics: Topics, clickhouse: Any, unique: str
) -> None:
    asyncio.run(produce(kafka_bootstrap, topics.metrics, _batches(hosts=2, cycles=2)))

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
    from sinks.clickhouse import apply_schema

    apply_schema(clickhouse, unique)
    inserts = sink.prepare(fetched)
    sink.insert(inserts)
    sink.insert(inserts)  # as after a crash between insert and commit
    assert clickhouse.query(f"SELECT count() FROM {unique}.metrics").result_rows == [(12,)]
