"""Bad input, the wire contract: whatever a record holds, ``decode`` raises nothing but DecodeError,
and its reason (copied into dead letters' headers) is at most MAX_REASON_CHARS long."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.contract import (
    MAX_REASON_CHARS,
    Alert,
    DecodeError,
    GroupStats,
    Heartbeat,
    LogCounts,
    LogMatch,
    MetricBatch,
    PeerProbe,
    ProcessEvent,
    ProcessInfo,
    ProcessSummary,
    ScaleSignal,
    decode,
    decode_as,
    encode,
)
from tests.bad_input import hostile_numbers, hostile_text, json_values, mutations, only

VALID: list[Any] = [
    MetricBatch("h", "eu", 1_700_000_000.0, 10.0, {"cpu_pct": 1.0, "disk_used_pct:/": 2.0}, {"role": "web"}),
    Heartbeat("h", "eu", "boot", 7, 1_700_000_000.0, 10.0, "0.1.0", {"role": "web"}, 1.0, 2, 3, 4, 5),
    PeerProbe("h", "eu", "peer", "10.0.0.1:22", True, 1_700_000_000.0, 0.01),
    ProcessSummary(
        "h",
        "eu",
        1_700_000_000.0,
        10.0,
        3,
        {"running": 1},
        [ProcessInfo(1, "init", "root", 0.1, 1000, 1.0)],
        [],
        {"nginx": GroupStats(2, 0.5, 2000, 1.0, 10.0)},
    ),
    ProcessEvent("h", "eu", 1_700_000_000.0, "nginx", "exit", 9, "nginx", 1_699_999_000.0),
    LogMatch("h", "eu", 1_700_000_000.0, "/var/log/x", 10, "oom", "critical", "Out of memory"),
    LogCounts("h", "eu", 1_700_000_000.0, 10.0, {"oom": 1}),
    Alert("fp", "r", "firing", "critical", "h", "eu", "m", 1.0, 0.5, 1_700_000_000.0, 1_700_000_001.0, "s", "id"),
    ScaleSignal("g", "scale_out", 1_700_000_000.0, 90.0, 80.0, 3, "id"),
]
BODIES = [orjson.loads(encode(event)) for event in VALID]
KINDS = [type(event) for event in VALID]


def _decodes_or_says_why(raw: bytes | str | None) -> None:
    try:
        decode(raw)
    except DecodeError as exc:
        assert 0 < len(str(exc)) <= MAX_REASON_CHARS, str(exc)
    except Exception as exc:  # the finding
        raise AssertionError(f"{type(exc).__name__} escaped decode: {exc!r}"[:500]) from exc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(BODIES).flatmap(lambda body: mutations(body)))
def test_any_valid_event_with_fields_replaced_deleted_or_added_decodes_or_is_a_decode_error(
    body: dict[str, Any],
) -> None:
    _decodes_or_says_why(orjson.dumps(body))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(BODIES),
    st.sampled_from(["metrics", "labels", "groups", "counts", "top_cpu", "by_state"]),
    json_values,
)
def test_nested_fields_of_any_shape_are_decode_errors(body: dict[str, Any], key: str, value: Any) -> None:
    _decodes_or_says_why(orjson.dumps({**body, key: value}))


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(BODIES),
    st.sampled_from(["ts", "interval_s", "sent_at", "seq", "value", "at", "pid"]),
    hostile_numbers,
)
def test_hostile_numbers_in_any_numeric_field_are_decode_errors(body: dict[str, Any], key: str, number: Any) -> None:
    try:
        raw = orjson.dumps({**body, key: number})
    except TypeError:  # beyond 64 bits: as JSON text instead
        raw = orjson.dumps({**body, key: 0}).replace(b'"' + key.encode() + b'":0', f'"{key}":{number}'.encode())
    _decodes_or_says_why(raw)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(BODIES),
    st.sampled_from(["host_id", "region", "type", "v", "state", "boot_id", "rule"]),
    hostile_text,
)
def test_hostile_text_in_any_field_is_a_decode_error_with_a_bounded_reason(
    body: dict[str, Any], key: str, text: str
) -> None:
    try:
        raw = orjson.dumps({**body, key: text})
    except TypeError:  # a lone surrogate: orjson will not write it, a producer may
        raw = orjson.dumps({**body, key: ""}).replace(b'""', b'"\\ud800"', 1)
    _decodes_or_says_why(raw)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=500), st.text(max_size=200), st.none(), json_values.map(orjson.dumps)))
def test_arbitrary_records_are_decode_errors(raw: bytes | str | None) -> None:
    _decodes_or_says_why(raw)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(BODIES), st.sampled_from(KINDS))
def test_decode_as_any_kind_raises_only_decode_error(body: dict[str, Any], kind: type) -> None:
    with only(DecodeError):
        assert isinstance(decode_as(orjson.dumps(body), kind), kind)


def test_the_events_the_mutations_start_from_are_valid() -> None:
    assert [decode(encode(event)) for event in VALID] == VALID
