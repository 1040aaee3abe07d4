"""The worker stages' own logic (``streams.downcheck``) on plain dicts as tables, no broker.

The point here is the clock: a worker that reads heartbeats late must judge each partition
on how far it has read, so a backlog delays decisions instead of making its hosts silent.
"""

from __future__ import annotations

import orjson

from collector.contract import Heartbeat
from policies.downcheck import DownCheckSettings, Signal
from streams.downcheck import (
    SAVE_EVERY_S,
    CorrelatorState,
    HostWatches,
    batch_record,
    probe_body,
    signal_body,
    signal_record,
    tick_record,
)

CFG = DownCheckSettings()  # missed 3, late 1.5
INTERVAL = 5.0
T0 = 1_800_000_000.0


def _scoped(host_id: str, region: str, labels: object) -> DownCheckSettings:
    return CFG


def _watches(hosts: dict[str, int], fetches: dict[int, tuple[float, int]] | None = None) -> HostWatches:
    """Hosts (id -> partition) that beat once at T0 (offsets 0, 1, ... per partition), the
    worker ready before that; ``fetches`` plays the consumer's latest fetch reports."""
    w = HostWatches(_scoped, {}, None if fetches is None else fetches.get)
    w.ready_at = T0 - 100
    w.resync(frozenset(hosts.values()), T0)
    offsets: dict[int, int] = {}
    for host, partition in sorted(hosts.items()):
        offsets[partition] = offsets.get(partition, -1) + 1
        w.read(partition, T0, offsets[partition], T0)
        hb = Heartbeat(host, "eu", "b1", 1, T0, INTERVAL, "test")
        assert [s.kind for s in w.heartbeat(hb, partition, T0, T0)] == ["join"]
    return w


def _due(w: HostWatches, now: float) -> list[Signal]:
    return w.due(w.clocks(now), now)


def test_without_fetch_reports_a_worker_that_reads_nothing_judges_silence_on_the_wall_clock() -> None:
    w = _watches({"a": 0})  # nothing more arrives on partition 0
    assert _due(w, T0 + CFG.late * INTERVAL - 0.1) == []
    assert [s.kind for s in _due(w, T0 + CFG.late * INTERVAL)] == ["late"]
    assert [s.kind for s in _due(w, T0 + CFG.missed * INTERVAL)] == ["silent"]


def test_an_idle_partition_runs_on_with_the_consumers_fetches_that_find_nothing_new() -> None:
    fetches = {0: (T0, 1)}  # the fetch at T0 ended the log at "a"'s beat (offset 0)
    w = _watches({"a": 0}, fetches)
    fetches[0] = (T0 + CFG.late * INTERVAL - 0.1, 1)
    assert _due(w, T0 + 60) == []  # the clock is the last fetch's time, not the wall clock
    fetches[0] = (T0 + CFG.late * INTERVAL, 1)
    assert [s.kind for s in _due(w, T0 + 60)] == ["late"]
    fetches[0] = (T0 + CFG.missed * INTERVAL, 1)
    assert [s.kind for s in _due(w, T0 + 60)] == ["silent"]
    assert w.clock(0, T0 + 1) == T0 + 1  # never ahead of the wall clock


def test_a_worker_starved_of_cpu_stops_its_clock_instead_of_making_hosts_late() -> None:
    # The busy machine's case: partition 1 fetched and read at T0 and then nothing, no
    # fetch either, for a minute (the process was not scheduled). Its hosts are not late:
    # nobody knows what the broker holds for them.
    fetches = {0: (T0, 1), 1: (T0, 1)}
    w = _watches({"a": 0, "b": 1}, fetches)
    fetches[0] = (T0 + 60, 1)  # partition 0's fetches go on and find nothing
    assert w.clocks(T0 + 60) == {0: T0 + 60, 1: T0}
    assert [(s.host_id, s.kind) for s in _due(w, T0 + 60)] == [("a", "silent")]


def test_a_partition_with_records_still_to_read_is_judged_on_the_last_one_read() -> None:
    fetches = {0: (T0 + 40, 30)}  # the broker holds offsets up to 29; "a" at 0 was read
    w = _watches({"a": 0}, fetches)
    assert w.clock(0, T0 + 40) == T0
    w.read(0, T0 + 2 * INTERVAL, 28, T0 + 41)  # other hosts' records, "a" not among them
    assert [s.kind for s in _due(w, T0 + 41)] == ["late"]
    w.read(0, T0 + 2 * INTERVAL + 1, 29, T0 + 41)  # the last record the fetch reported
    assert w.clock(0, T0 + 41) == T0 + 40


def test_a_worker_behind_on_a_partition_judges_it_on_how_far_it_has_read() -> None:
    w = _watches({"a": 0, "b": 1})
    later = T0 + 10 * INTERVAL
    # At ``later`` partition 0 is still being read, its last record appended at T0 + 1: it is
    # 49 s behind. Partition 1 has had nothing to read since T0.
    w.read(0, T0 + 1, 1, later)
    assert w.clock(0, later) == T0 + 1 and w.clock(1, later) == later
    assert w.watermark(w.clocks(later), later) == T0 + 1
    assert [(s.host_id, s.kind) for s in _due(w, later)] == [("b", "silent")]
    # It reads on (records of other hosts); "a" sent nothing in them.
    w.read(0, T0 + 2 * INTERVAL, 2, later)
    assert [(s.host_id, s.kind) for s in _due(w, later)] == [("a", "late")]
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
    assert _due(second, handover + CFG.late * INTERVAL - 0.1) == []
    assert [s.kind for s in _due(second, handover + CFG.missed * INTERVAL)] == ["silent"]
    # ... and the next beat reports it back, whatever the correlator last heard.
    hb = Heartbeat("a", "eu", "b1", 11, T0 + 50, INTERVAL, "test")
    assert [s.kind for s in second.heartbeat(hb, 0, handover + 1, handover + 1)] == ["back"]


def test_a_batch_of_signals_is_applied_in_order_like_the_same_signals_one_by_one() -> None:
    signals = [*(_join(f"h{i}") for i in range(6)), _silent("h0", T0 + 20)]
    one_by_one = CorrelatorState(_scoped, {}, {})
    for sig in signals:
        one_by_one.apply(orjson.loads(signal_record(sig)), T0 + 20)
    batched = CorrelatorState(_scoped, {}, {})
    items = [signal_body(sig) for sig in signals] + [probe_body("h1", "h0", False)]
    assert batched.apply(orjson.loads(batch_record(items)), T0 + 20) == []
    assert batched.table == one_by_one.table and len(batched.table) == 6
    assert batched.correlator.pending == {"h0"} and batched.correlator.probes["h0"]["h1"].ok is False
    for state in (one_by_one, batched):
        state.apply(orjson.loads(tick_record("w1", T0 + 21)), T0 + 21)
    assert batched.correlator.hosts["h0"].status == one_by_one.correlator.hosts["h0"].status == "down"


class _CountingTable(dict[bytes, bytes]):
    """A table that counts its writes per key."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: dict[bytes, int] = {}

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.writes[key] = self.writes.get(key, 0) + 1
        super().__setitem__(key, value)


def test_hosts_met_at_once_are_saved_once_a_period_each_at_its_own_time() -> None:
    table = _CountingTable()
    w = HostWatches(_scoped, table)
    w.ready_at = T0 - 100
    w.resync(frozenset({0}), T0)
    hosts = [f"h{i}" for i in range(1000)]
    per_window: dict[int, int] = {}
    for beat in range(int(SAVE_EVERY_S / INTERVAL) * 2 + 1):  # every host beats for two periods
        now = T0 + beat * INTERVAL
        before = sum(table.writes.values())
        for seq, host in enumerate(hosts):
            w.heartbeat(Heartbeat(host, "eu", "b1", beat + 1, now, INTERVAL, "test"), 0, now, now + seq * 1e-4)
        per_window[beat] = sum(table.writes.values()) - before
    assert per_window[0] == len(hosts)  # each one saved when first seen
    # ... then once in each period, spread over it: no interval holds more than a few times
    # the fair share (about 1000 / 12 per 5 s interval), none of them all of it.
    assert all(n == 3 for n in table.writes.values()), sorted(set(table.writes.values()))
    fair = len(hosts) * INTERVAL / SAVE_EVERY_S
    assert max(per_window[b] for b in range(1, len(per_window))) < 2 * fair, per_window
