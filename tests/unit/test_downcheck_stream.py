"""The worker stages' own logic (``streams.downcheck``) on plain dicts as tables, no broker.

The point here is the clock: a worker that reads heartbeats late must judge each partition
on how far it has read, so a backlog delays decisions instead of making its hosts silent.
"""

from __future__ import annotations

import orjson

from collector.contract import Heartbeat
from policies.downcheck import DownCheckSettings, Signal
from streams.downcheck import CorrelatorState, HostWatches, signal_record, tick_record

CFG = DownCheckSettings()  # missed 3, late 1.5
INTERVAL = 5.0
T0 = 1_800_000_000.0


def _scoped(host_id: str, region: str, labels: object) -> DownCheckSettings:
    return CFG


def _watches(hosts: dict[str, int]) -> HostWatches:
    """Hosts (id -> partition) that beat once at T0, the worker ready before that."""
    w = HostWatches(_scoped, {})
    w.ready_at = T0 - 100
    w.resync(frozenset(hosts.values()), T0)
    for host, partition in sorted(hosts.items()):
        w.read(partition, T0, T0)
        hb = Heartbeat(host, "eu", "b1", 1, T0, INTERVAL, "test")
        assert [s.kind for s in w.heartbeat(hb, partition, T0, T0)] == ["join"]
    return w


def test_a_worker_that_reads_nothing_judges_silence_on_the_wall_clock() -> None:
    w = _watches({"a": 0})  # nothing more arrives on partition 0
    assert w.due(T0 + CFG.late * INTERVAL - 0.1) == []
    assert [s.kind for s in w.due(T0 + CFG.late * INTERVAL)] == ["late"]
    assert [s.kind for s in w.due(T0 + CFG.missed * INTERVAL)] == ["silent"]


def test_a_worker_behind_on_a_partition_judges_it_on_how_far_it_has_read() -> None:
    w = _watches({"a": 0, "b": 1})
    later = T0 + 10 * INTERVAL
    # At ``later`` partition 0 is still being read, its last record appended at T0 + 1: it is
    # 49 s behind. Partition 1 has had nothing to read since T0.
    w.read(0, T0 + 1, later)
    assert w.clock(0, later) == T0 + 1 and w.clock(1, later) == later
    assert w.watermark(later) == T0 + 1
    assert [(s.host_id, s.kind) for s in w.due(later)] == [("b", "silent")]
    # It reads on (records of other hosts); "a" sent nothing in them.
    w.read(0, T0 + 2 * INTERVAL, later)
    assert [(s.host_id, s.kind) for s in w.due(later)] == [("a", "late")]
    # Once nothing more is read, its clock runs on with the wall clock from there.
    assert w.clock(0, later + 3) == T0 + 2 * INTERVAL + 3


def test_the_correlator_runs_on_the_slowest_workers_clock() -> None:
    state = CorrelatorState(_scoped, {}, {})
    for i in range(6):  # a healthy region of six, one of which is about to go silent
        body = orjson.loads(signal_record(_join(f"h{i}")))
        assert state.apply(body, T0) == []
    for worker in ("w1", "w2"):
        state.apply(orjson.loads(tick_record(worker, T0 + 19)), T0 + 19)
    silent = orjson.loads(signal_record(_silent("h0", T0 + 20)))
    assert state.apply(silent, T0 + 20) == []  # pending for the grace
    # At T0 + 30 one worker is caught up, another has only read up to T0 + 20.5 (both tick
    # every half second): the grace has not passed on the fleet's clock.
    assert state.apply(orjson.loads(tick_record("w2", T0 + 20.5)), T0 + 29.9) == []
    assert state.apply(orjson.loads(tick_record("w1", T0 + 30)), T0 + 30) == []
    assert state.correlator.hosts["h0"].status != "down"
    # Once the slow one reads past the grace, the page goes out.
    notices = state.apply(orjson.loads(tick_record("w2", T0 + 22)), T0 + 30.5)
    assert [(n.kind, n.host_id) for n in notices] == [("host_down", "h0")]


def test_a_worker_not_heard_from_lately_no_longer_holds_the_clock_back() -> None:
    state = CorrelatorState(_scoped, {}, {})
    state.apply(orjson.loads(tick_record("gone", T0)), T0)
    state.apply(orjson.loads(tick_record("live", T0 + 10)), T0 + 10)
    assert state.last_tick == T0 + 10


def _join(host: str) -> Signal:
    return Signal("join", host, "eu", T0)


def _silent(host: str, at: float) -> Signal:
    return Signal("silent", host, "eu", at)


def test_a_host_taken_over_in_a_rebalance_counts_its_silence_from_the_handover() -> None:
    first = _watches({"a": 0})  # saved "a" at T0 (and then only every minute while it beats)
    second = HostWatches(_scoped, first.table)
    second.ready_at = T0 - 100
    handover = T0 + 50
    second.resync(frozenset({0}), handover)
    assert second.due(handover + CFG.late * INTERVAL - 0.1) == []
    assert [s.kind for s in second.due(handover + CFG.missed * INTERVAL)] == ["silent"]
    # ... and the next beat reports it back, whatever the correlator last heard.
    hb = Heartbeat("a", "eu", "b1", 11, T0 + 50, INTERVAL, "test")
    assert [s.kind for s in second.heartbeat(hb, 0, handover + 1, handover + 1)] == ["back"]
