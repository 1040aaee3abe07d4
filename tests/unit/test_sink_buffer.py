"""The sink's buffer: records to per-partition column segments, batch cuts, recovered ranges."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from collector.contract import Alert, MetricBatch, encode
from sinks.schema import SchemaSettings
from sinks.writer import Buffer, SinkSettings

TP0 = TopicPartition("fp.metrics", 0)
TP1 = TopicPartition("fp.metrics", 1)


def rec(tp: TopicPartition, offset: int, value: bytes | None) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, b"k", value, None, 1, len(value or b""), [])


def metrics(n: int = 3, ts: float = 1_790_000_000.0) -> bytes:
    return encode(MetricBatch("h1", "eu", ts, 10.0, {f"m{i}:/dev/sd{i}": float(i) for i in range(n)}))


def test_records_become_columns_and_bad_ones_dead_letters() -> None:
    buf = Buffer()
    buf.add(TP0, [rec(TP0, 5, metrics()), rec(TP0, 6, b"{oops"), rec(TP0, 7, None), rec(TP0, 8, metrics(2))])
    (seg,) = buf.take()
    assert (seg.first, seg.last, seg.records, seg.nrows) == (5, 8, 4, 3 + 1 + 1 + 2)
    cols = seg.rows.tables["metrics"]
    data = dict(zip(cols.names, cols.data, strict=True))
    assert data["name"] == ["m0", "m1", "m2", "m0", "m1"]
    assert data["instance"] == ["/dev/sd0", "/dev/sd1", "/dev/sd2", "/dev/sd0", "/dev/sd1"]
    assert data["ts"] == [1_790_000_000_000] * 5 and data["host_id"] == ["h1"] * 5
    assert [(d.offset, d.reason.split(":")[0]) for d in seg.dead] == [(6, "not JSON"), (7, "empty record (null value)")]
    assert seg.rows.tables["dead_letters"].rows == 2
    assert buf.rows == 0 and buf.bytes == 0 and not buf.segments


def test_inserts_are_per_table_and_carry_the_offset_range_token() -> None:
    buf = Buffer()
    alert = Alert("fp", "r", "firing", "warning", "h1", "eu", "cpu_pct", 1.0, 0.5, 1.0, 2.0, "", "e1")
    buf.add(TP1, [rec(TP1, 10, metrics()), rec(TP1, 11, encode(alert)), rec(TP1, 12, b"x")])
    (seg,) = buf.take()
    assert [(i.table, i.rows, i.token) for i in seg.inserts()] == [
        ("alerts", 1, "fp.metrics-1-10-12-alerts"),
        ("dead_letters", 1, "fp.metrics-1-10-12-dead_letters"),
        ("metrics", 3, "fp.metrics-1-10-12-metrics"),
    ]


def test_a_batch_is_due_by_rows_bytes_or_age() -> None:
    buf = Buffer()
    buf.add(TP0, [rec(TP0, 0, metrics(4))])
    created = buf.segments[TP0][0].created
    assert not buf.ready(batch_rows=5, batch_bytes=10**6, wait_s=1.0, now=created + 0.5)
    assert buf.ready(batch_rows=4, batch_bytes=10**6, wait_s=1.0, now=created + 0.5)
    assert buf.ready(batch_rows=5, batch_bytes=100, wait_s=1.0, now=created + 0.5)
    assert buf.ready(batch_rows=5, batch_bytes=10**6, wait_s=1.0, now=created + 1.0)


def test_a_recovered_range_is_cut_again_at_exactly_the_same_offsets() -> None:
    buf = Buffer()
    buf.boundaries[TP0] = 12  # a crashed sink was inserting offsets 10..12 of partition 0
    buf.add(TP0, [rec(TP0, 10, metrics()), rec(TP0, 11, metrics())])
    buf.add(TP1, [rec(TP1, 3, metrics())])
    # Partition 0 waits for offset 12 even when the batch is due; partition 1 goes.
    assert [s.tp for s in buf.take()] == [TP1]
    buf.add(TP0, [rec(TP0, 12, metrics()), rec(TP0, 13, metrics()), rec(TP0, 14, metrics())])
    (first,) = buf.take()
    assert (first.first, first.last, first.sealed) == (10, 12, True)
    (second,) = buf.take()
    assert (second.first, second.last, second.sealed) == (13, 14, False)
    assert TP0 not in buf.boundaries


def test_dropping_revoked_partitions_forgets_their_rows() -> None:
    buf = Buffer()
    buf.add(TP0, [rec(TP0, 0, metrics(3))])
    buf.add(TP1, [rec(TP1, 0, metrics(2))])
    buf.boundaries[TP1] = 9
    buf.drop([TP1])
    assert buf.rows == 3 and set(buf.segments) == {TP0} and not buf.boundaries


def test_settings_are_validated_with_the_key_named() -> None:
    with pytest.raises(ValueError, match="max_buffered_rows"):
        SinkSettings(batch_rows=1000, max_buffered_rows=10)
    with pytest.raises(ValueError, match="batch_wait_s"):
        SinkSettings(batch_wait_s=0)
    with pytest.raises(ValueError, match="raw_ttl_days"):
        SchemaSettings(raw_ttl_days=-1)


def test_sink_options_come_from_flags_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from fleetpulse.cli import build_parser
    from sinks.options import sink_settings

    monkeypatch.setenv("FLEETPULSE_SINK_RAW_TTL_DAYS", "7")
    args = build_parser().parse_args(["sink", "--batch-rows", "5000", "--batch-wait", "0.5"])
    settings = sink_settings(args)
    assert (settings.batch_rows, settings.batch_wait_s, settings.schema.raw_ttl_days) == (5000, 0.5, 7)
    assert settings.crash_after_batches == 0
    monkeypatch.setenv("FLEETPULSE_SINK_RAW_TTL_DAYS", "a week")
    with pytest.raises(SystemExit, match="FLEETPULSE_SINK_RAW_TTL_DAYS must be int"):
        build_parser()


def test_a_900_kb_malformed_record_is_dead_lettered_whole_with_a_reason_cut_to_200_characters() -> None:
    import orjson

    value = orjson.dumps({"v": 1, "type": "x" * 900_000})
    buf = Buffer()
    buf.add(TP0, [rec(TP0, 3, value)])
    (seg,) = buf.take()
    (dead,) = seg.dead
    assert dead.value == value and len(dead.reason) <= 200 and dead.reason.startswith("unknown event type 'xxx")
    stored = dict(zip(seg.rows.tables["dead_letters"].names, seg.rows.tables["dead_letters"].data, strict=True))
    assert stored["reason"] == [dead.reason] and stored["size_bytes"] == [len(value)]
