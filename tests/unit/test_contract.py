"""The wire contract: round trips, and rejection with a reason (never another exception)."""

from __future__ import annotations

import contextlib
import dataclasses
import math

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.contract import (
    SCHEMA_VERSION,
    Alert,
    DecodeError,
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
    decode,
    decode_as,
    encode,
)

BATCH = MetricBatch(
    "web-1", "eu-west", 1_700_000_000.25, 10.0, {"cpu_pct": 12.5, "disk_used_pct:/": 40}, {"role": "web"}
)
BEAT = Heartbeat("web-1", "eu-west", "boot-1", 7, 1_700_000_000.0, 10.0, "0.1.0", {"role": "web"})
ALERT = Alert(
    "fp1",
    "cpu_high",
    "firing",
    "critical",
    "web-1",
    "eu-west",
    "cpu_pct",
    95.0,
    90.0,
    1_700_000_000.0,
    1_700_000_060.0,
    "CPU high",
    "id1",
    {},
)


SUMMARY = ProcessSummary(
    "web-1",
    "eu-west",
    1_700_000_000.0,
    10.0,
    312,
    {"running": 2, "sleeping": 310},
    [ProcessInfo(10, "nginx", "www", 12.5, 10_000_000, 1_699_000_000.0)],
    [ProcessInfo(11, "java", "app", 1.0, 900_000_000, 1_698_000_000.0)],
    {"nginx": GroupStats(4, 12.5, 40_000_000, 1_699_000_000.0, 1_699_500_000.0), "batch": GroupStats(0, 0.0, 0)},
)
PROC_EVENT = ProcessEvent("web-1", "eu-west", 1_700_000_000.0, "batch", "exit", 99, "backup.sh", 1_699_999_990.0)
LOG_MATCH = LogMatch("web-1", "eu-west", 1_700_000_000.0, "/var/log/app.log", 4096, "oom", "critical", "Out of memory")
LOG_COUNTS = LogCounts("web-1", "eu-west", 1_700_000_000.0, 10.0, {"oom": 1, "timeout": 0})
FULL_BEAT = Heartbeat(
    "web-1",
    "eu-west",
    "boot-1",
    8,
    1.0,
    10.0,
    "0.1.0",
    {},
    1.25,
    30_000_000,
    100,
    5,
    3,
    {"disk_error": 2, "spool_full": 1},
)


@pytest.mark.parametrize("event", [BATCH, BEAT, ALERT, SUMMARY, PROC_EVENT, LOG_MATCH, LOG_COUNTS, FULL_BEAT])
def test_every_event_type_round_trips(event: object) -> None:
    assert decode(encode(event)) == event  # type: ignore[arg-type]


def test_encoding_carries_schema_version_and_type() -> None:
    body = orjson.loads(encode(BATCH))
    assert body["v"] == SCHEMA_VERSION
    assert body["type"] == "metric_batch"


def test_topic_names_come_from_one_prefix() -> None:
    topics = Topics("t1")
    assert (topics.metrics, topics.heartbeats, topics.alerts) == ("t1.metrics", "t1.heartbeats", "t1.alerts")
    assert topics.all() == [
        "t1.metrics",
        "t1.heartbeats",
        "t1.alerts",
        "t1.processes",
        "t1.logs",
        "t1.scale",
        "t1.deadletter",
        "t1.group-samples",
        "t1.downcheck",
    ]
    assert topics.compacted() == ["t1.policies", "t1.silences"]


def test_the_alert_topic_is_compacted_after_a_week_and_never_deleted() -> None:
    # it is the truth of what was announced: an alert open for longer than the broker's
    # retention must still be on it after a restart; subscribers see a week of transitions
    topics = Topics("t1")
    week_ms = str(7 * 24 * 3600 * 1000)
    assert topics.configs("t1.alerts") == {"cleanup.policy": "compact", "min.compaction.lag.ms": week_ms}
    assert topics.configs("t1.policies") == topics.configs("t1.silences") == {"cleanup.policy": "compact"}
    assert topics.configs("t1.metrics") == {}  # the broker's retention: deleted


def _body(**changes: object) -> bytes:
    body = orjson.loads(encode(BATCH))
    for key, value in changes.items():
        if value is _DELETE:
            del body[key]
        else:
            body[key] = value
    return orjson.dumps(body)


_DELETE = object()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (None, "empty record"),
        (b"", "not JSON"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (_body(v=99), "unsupported schema version"),
        (_body(v=_DELETE), "unsupported schema version"),
        (_body(type="bogus"), "unknown event type"),
        (_body(host_id=_DELETE), "'host_id' must be a string"),
        (_body(host_id=""), "'host_id' must not be empty"),
        (_body(ts="yesterday"), "'ts' must be a number"),
        (_body(metrics=[1, 2]), "'metrics' must be an object"),
        (_body(metrics={"cpu_pct": "high"}), "metric 'cpu_pct' must be a number"),
        (_body(metrics={"cpu_pct": True}), "metric 'cpu_pct' must be a number"),
        (_body(metrics={"": 1.0}), "metric names must not be empty"),
        (_body(labels={"a": 1}), "'labels' must be an object of string values"),
        (b'{"v":1,"type":"metric_batch","ts":NaN}', "not JSON"),
    ],
)
def test_malformed_records_are_rejected_with_a_reason(payload: bytes | None, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode(payload)


def test_alert_state_must_be_firing_or_resolved() -> None:
    body = orjson.loads(encode(ALERT))
    body["state"] = "pending"
    with pytest.raises(DecodeError, match="'state' must be 'firing' or 'resolved'"):
        decode(orjson.dumps(body))


def test_heartbeat_sequence_must_be_an_integer() -> None:
    body = orjson.loads(encode(BEAT))
    body["seq"] = 1.5
    with pytest.raises(DecodeError, match="'seq' must be an integer"):
        decode(orjson.dumps(body))


def test_heartbeats_without_agent_cost_fields_still_decode() -> None:
    body = orjson.loads(encode(FULL_BEAT))
    for key in ("agent_cpu_s", "agent_rss_bytes", "events_sent", "events_spooled", "events_dropped", "dropped"):
        del body[key]
    expected = dataclasses.replace(
        FULL_BEAT, agent_cpu_s=0.0, agent_rss_bytes=0, events_sent=0, events_spooled=0, events_dropped=0, dropped={}
    )
    assert decode(orjson.dumps(body)) == expected


def test_heartbeat_dropped_counters_must_be_counts_by_reason() -> None:
    body = orjson.loads(encode(FULL_BEAT))
    for bad, reason in (([1], "'dropped' must be an object"), ({"disk_error": -1}, "dropped count 'disk_error'")):
        body["dropped"] = bad
        with pytest.raises(DecodeError, match=reason):
            decode(orjson.dumps(body))


@pytest.mark.parametrize(
    ("event", "change", "reason"),
    [
        (SUMMARY, {"top_cpu": [{"pid": "x"}]}, "'pid' must be an integer"),
        (SUMMARY, {"groups": {"nginx": 3}}, "group 'nginx' must be an object"),
        (SUMMARY, {"by_state": {"running": -1}}, "must be a non-negative integer"),
        (PROC_EVENT, {"kind": "restart"}, "'kind' must be 'start' or 'exit'"),
        (LOG_MATCH, {"offset": 1.5}, "'offset' must be an integer"),
        (LOG_COUNTS, {"counts": {"oom": True}}, "must be a non-negative integer"),
        # values no store column can take are malformed here, not a failing insert downstream
        (FULL_BEAT, {"seq": -1}, "'seq' must be between 0 and"),
        (PROC_EVENT, {"pid": 2**33}, "'pid' must be between 0 and 4294967295"),
        (SUMMARY, {"top_cpu": [{**SUMMARY.top_cpu[0].__dict__, "pid": -1}]}, "'pid' must be between 0 and"),
        (SUMMARY, {"by_state": {"running": 2**32}}, "must be a non-negative integer up to 4294967295"),
        (PROC_EVENT, {"ts": 1e20}, "'ts' must be seconds since the epoch"),
        (LOG_MATCH, {"ts": -5.0}, "'ts' must be seconds since the epoch"),
    ],
)
def test_nested_fields_are_validated(event: object, change: dict[str, object], reason: str) -> None:
    body = orjson.loads(encode(event))  # type: ignore[arg-type]
    body.update(change)
    with pytest.raises(DecodeError, match=reason):
        decode(orjson.dumps(body))


def test_decode_as_rejects_the_wrong_event_type() -> None:
    with pytest.raises(DecodeError, match="expected metric_batch, got heartbeat"):
        decode_as(encode(BEAT), MetricBatch)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode(data)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "v",
                "type",
                "host_id",
                "region",
                "ts",
                "interval_s",
                "metrics",
                "labels",
                "seq",
                "state",
                "boot_id",
            ]
        ),
        _json,
    )
)
def test_arbitrary_json_objects_raise_only_decode_error(body: dict[str, object]) -> None:
    with contextlib.suppress(DecodeError):
        decode(orjson.dumps(body))


_names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20)
_finite = st.floats(allow_nan=False, allow_infinity=False)


@given(
    host=_names,
    region=_names,
    ts=st.floats(min_value=0, max_value=4e9),
    metrics=st.dictionaries(_names, _finite, max_size=20),
    labels=st.dictionaries(_names, st.text(max_size=10), max_size=5),
)
def test_any_valid_batch_round_trips(
    host: str, region: str, ts: float, metrics: dict[str, float], labels: dict[str, str]
) -> None:
    batch = MetricBatch(host, region, ts, 5.0, metrics, labels)
    decoded = decode_as(encode(batch), MetricBatch)
    assert decoded == batch
    assert all(math.isfinite(v) for v in decoded.metrics.values())


def test_alert_lifecycle_fields_round_trip_and_old_records_default() -> None:
    alert = Alert(
        fingerprint="f",
        rule="r",
        state="firing",
        severity="critical",
        host_id="",
        region="",
        metric="",
        value=1.0,
        threshold=0.5,
        started_at=1.0,
        at=2.0,
        summary="s",
        event_id="e",
        kind="group",
        transition="escalated",
        annotations={"runbook": "x"},
    )
    assert decode(encode(alert)) == alert
    old = orjson.loads(encode(alert))
    for key in ("kind", "transition", "annotations"):
        del old[key]
    back = decode(orjson.dumps(old))
    assert isinstance(back, Alert)
    assert (back.kind, back.notice, back.annotations) == ("metric", "firing", {})


def test_alert_transition_must_agree_with_state() -> None:
    body = orjson.loads(encode(_alert_for_transition()))
    body["transition"] = "resolved"
    with pytest.raises(DecodeError, match="needs state"):
        decode(orjson.dumps(body))
    body["transition"] = "bogus"
    with pytest.raises(DecodeError, match="transition"):
        decode(orjson.dumps(body))


def _alert_for_transition() -> Alert:
    return Alert("f", "r", "firing", "warning", "h", "eu", "m", 1.0, 0.5, 1.0, 2.0, "s", "e")


def test_scale_signal_round_trips_and_checks_action() -> None:
    sig = ScaleSignal("web", "scale_out", 10.0, 91.0, 80.0, 4, "id", {"tier": "web"})
    assert decode(encode(sig)) == sig
    body = orjson.loads(encode(sig))
    body["action"] = "grow"
    with pytest.raises(DecodeError, match="action"):
        decode(orjson.dumps(body))


# --- inputs that used to escape validation (security review) ---------------------------------


@pytest.mark.parametrize("interval_s", [0, -10, 0.0, 86_401, 1e308])
def test_the_contract_refuses_an_interval_s_that_is_not_positive_or_beyond_a_day(interval_s: float) -> None:
    from collector.contract import Heartbeat, LogCounts, MetricBatch, ProcessSummary

    events = [
        MetricBatch("h", "eu", 1000.0, interval_s, {"cpu_pct": 1.0}),
        Heartbeat("h", "eu", "boot", 1, 1000.0, interval_s, "0.1.0"),
        ProcessSummary("h", "eu", 1000.0, interval_s, 0, {}, [], [], {}),
        LogCounts("h", "eu", 1000.0, interval_s, {}),
    ]
    for event in events:
        with pytest.raises(DecodeError, match="'interval_s' must be more than 0"):
            decode(encode(event))


def test_a_reject_reason_is_at_most_200_characters_however_large_the_record() -> None:
    """A 900 KB record's reason repeated its whole value: copied into a dead letter's header, the
    copy was too large to produce and the record was dropped instead of dead-lettered."""
    from collector.contract import MAX_REASON_CHARS

    huge = "x" * 900_000
    for raw in (
        orjson.dumps({"v": 1, "type": huge}),
        orjson.dumps({"v": huge}),
        orjson.dumps({"v": 1, "type": "metrics", "host_id": "h", "region": huge}),
    ):
        with pytest.raises(DecodeError) as info:
            decode(raw)
        assert len(str(info.value)) <= MAX_REASON_CHARS == 200
    with pytest.raises(DecodeError, match=r"^unknown event type 'xxx.*\.\.\.$"):
        decode(orjson.dumps({"v": 1, "type": huge}))


def test_the_deadletter_topic_takes_any_record_a_data_topic_holds_plus_its_headers() -> None:
    from collector.contract import DEADLETTER_MAX_BYTES, Topics

    topics = Topics("t1")
    assert topics.configs(topics.deadletter) == {"max.message.bytes": str(DEADLETTER_MAX_BYTES)}
    assert DEADLETTER_MAX_BYTES > 1_048_588 + 64 * 1024  # the broker's default message.max.bytes, and headers
