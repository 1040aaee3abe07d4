"""Threshold evaluation, driven by an injected clock: pending, firing, resolved."""

from __future__ import annotations

import itertools
import math

from hypothesis import given
from hypothesis import strategies as st

from policies.model import ThresholdRule
from policies.threshold import AlertStatus, RuleIndex, Transition, step

CPU_HIGH = ThresholdRule("cpu_high", "cpu_pct", max=90.0, for_s=60.0)


def run(rule: ThresholdRule, samples: list[tuple[float, float]]) -> tuple[AlertStatus | None, list[Transition]]:
    status: AlertStatus | None = None
    notes: list[Transition] = []
    for at, value in samples:
        status, note = step(rule, status, value, at)
        if note is not None:
            notes.append(note)
    return status, notes


def test_breach_shorter_than_for_does_not_fire() -> None:
    status, notes = run(CPU_HIGH, [(0, 95), (30, 96), (59, 97), (60, 50)])
    assert notes == []
    assert status is None


def test_breach_sustained_for_the_whole_for_duration_fires_once() -> None:
    status, notes = run(CPU_HIGH, [(0, 95), (30, 96), (60, 97), (70, 98), (80, 99)])
    assert [n.state for n in notes] == ["firing"]
    assert notes[0].started_at == 0 and notes[0].at == 60 and notes[0].value == 97
    assert status is not None and status.phase == "firing"


def test_back_in_bounds_resolves_with_the_original_start() -> None:
    _, notes = run(CPU_HIGH, [(0, 95), (60, 97), (70, 40)])
    assert [(n.state, n.started_at, n.at) for n in notes] == [("firing", 0, 60), ("resolved", 0, 70)]


def test_a_dip_during_pending_restarts_the_sustain_clock() -> None:
    _, notes = run(CPU_HIGH, [(0, 95), (50, 10), (60, 95), (110, 95), (120, 95)])
    assert [(n.state, n.started_at, n.at) for n in notes] == [("firing", 60, 120)]


def test_for_zero_fires_on_the_first_breaching_sample() -> None:
    rule = ThresholdRule("now", "cpu_pct", max=90.0)
    _, notes = run(rule, [(5, 91)])
    assert [(n.state, n.at) for n in notes] == [("firing", 5)]


def test_min_side_fires_below_min_and_reports_the_min_threshold() -> None:
    rule = ThresholdRule("workers_low", "nginx_workers", min=2.0, max=16.0)
    _, notes = run(rule, [(0, 1), (10, 5), (20, 17)])
    assert [(n.state, n.threshold) for n in notes] == [("firing", 2.0), ("resolved", 2.0), ("firing", 16.0)]


def test_threshold_itself_is_in_bounds() -> None:
    assert CPU_HIGH.breach(90.0) is None
    assert CPU_HIGH.breach(90.0001) == 90.0


def test_nan_is_never_a_breach_and_resolves_a_firing_alert() -> None:
    rule = ThresholdRule("r", "m", max=1.0, min=0.0)
    assert rule.breach(math.nan) is None
    _, notes = run(rule, [(0, 5), (1, math.nan)])
    assert [n.state for n in notes] == ["firing", "resolved"]


def test_unchanged_status_is_returned_as_is_so_callers_skip_the_write() -> None:
    status, _ = step(CPU_HIGH, None, 95, 0)
    again, note = step(CPU_HIGH, status, 99, 10)
    assert again is status and note is None


def test_rule_index_matches_full_keys_and_base_names() -> None:
    every_disk = ThresholdRule("disk", "disk_used_pct", max=90)
    root_only = ThresholdRule("root", "disk_used_pct:/", max=80)
    index = RuleIndex([every_disk, root_only, CPU_HIGH])
    assert index.matching("disk_used_pct:/") == [root_only, every_disk]
    assert index.matching("disk_used_pct:/var") == [every_disk]
    assert index.matching("cpu_pct") == [CPU_HIGH]
    assert index.matching("mem_used_pct") == []


def test_status_round_trips_through_a_table_dict() -> None:
    status = AlertStatus("firing", 1.5, 95.0, 90.0)
    assert AlertStatus.from_dict(status.to_dict()) == status


_values = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**12), 10**12).map(float)


@given(
    samples=st.lists(st.tuples(st.floats(0, 1e4), _values), max_size=60),
    low=st.none() | st.floats(-1e6, 1e6),
    high=st.none() | st.floats(-1e6, 1e6),
    for_s=st.floats(0, 100),
)
def test_evaluation_never_raises_and_firing_resolved_alternate(
    samples: list[tuple[float, float]], low: float | None, high: float | None, for_s: float
) -> None:
    rule = ThresholdRule("prop", "m", max=high, min=low, for_s=for_s)
    samples.sort(key=lambda s: s[0])
    _, notes = run(rule, samples)
    states = [n.state for n in notes]
    assert all(a != b for a, b in itertools.pairwise(states))
    assert not states or states[0] == "firing"
