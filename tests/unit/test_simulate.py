"""The fleet simulator: scenario files with file:line errors, the pure timeline, and the ground truth."""

from __future__ import annotations

import heapq
import itertools
import json
import math
import textwrap
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fleetpulse.sim.scenario
from collector.contract import Heartbeat, MetricBatch, PeerProbe
from fleetpulse.sim.faults import ALL_FAULT_KINDS, FAULT_KINDS
from fleetpulse.sim.scenario import (
    SCENARIO_DIR,
    Scenario,
    ScenarioError,
    describe,
    dump_scenario,
    load_scenario,
    load_scenario_text,
    make_fleet,
    resolve_scenario_path,
)
from fleetpulse.sim.timeline import Record, Timeline, TimelineStats, witness_targets
from fleetpulse.sim.truth import Truth, ground_truth, load_truth, write_truth

# Six hosts (r1-h001..h003, r2-h001..h003), one beat a second for 30 s; faults start on line 8.
HEAD = "seed: 1\nhosts: 6\nregions: 2\ninterval: 1\nduration: 30\nmetrics: false\nfaults:\n"
START = 1_700_000_000.0


def scenario(faults: str = "", head: str = HEAD) -> Scenario:
    return load_scenario_text(head + faults, "s.yaml")


def problems(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        load_scenario_text(text, "s.yaml")
    return caught.value.problems


def play(sc: Scenario, start: float = 0.0) -> tuple[list[Record], TimelineStats]:
    timeline = Timeline(sc, start)
    records = list(timeline.records())
    return records, timeline.stats


def beats(records: list[Record], host_id: str) -> list[Record]:
    """One host's heartbeat records, in delivery order."""
    return [r for r in records if r.key == host_id and isinstance(r.event, Heartbeat)]


def heartbeat(record: Record) -> Heartbeat:
    assert isinstance(record.event, Heartbeat)
    return record.event


# -- scenario files -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "where", "needle"),
    [
        (HEAD.replace("hosts: 6", "hots: 6"), "s.yaml:2", "unknown key 'hots'"),
        (HEAD.replace("duration: 30", "duration: soon"), "s.yaml:5", "'duration' must be seconds or a duration"),
        (HEAD.replace("interval: 1", "interval: 0"), "s.yaml:4", "'interval' must be > 0"),
        ("hosts: 0\n", "s.yaml:1", "'hosts' must be an integer >= 1"),
        ("regions: 1\nwitnesses: 2\n", "s.yaml:2", "give 2+ regions"),
        ("regions: [eu, eu]\n", "s.yaml:1", "distinct non-empty names"),
        (HEAD + "  - {at: 5, partition: r9, for: 5}\n", "s.yaml:8", "partition: unknown region 'r9'"),
        (HEAD + "  - {at: 5, crash: {region: r9}}\n", "s.yaml:8", "crash: unknown region 'r9'"),
        (HEAD + "  - {at: 5, slow: {region: r1}, delay: 1.5, jitter: 0.5}\n", "s.yaml:8", "= 2s must stay below"),
        (HEAD + "  - {at: 5, slow: {region: r1}, burst: 0}\n", "s.yaml:8", "give 'delay', 'jitter' and/or 'burst'"),
        (HEAD + "  - at: 10\n    crash: [r1-h001]\n    until: 5\n", "s.yaml:10", "'until' (5) must be after 'at' (10)"),
        (HEAD + "  - {at: 5, crash: [r1-h001}\n", "s.yaml:8", "invalid YAML"),
        (HEAD + "  - {at: 5, crash: [r1-h001], downtime: 2}\n", "s.yaml:8", "unknown key 'downtime' for crash"),
        (HEAD + "  - {at: 5, crash: [r1-h999]}\n", "s.yaml:8", "unknown host(s) r1-h999"),
        (HEAD + "  - {at: 5, crash: {region: r1, count: 4}}\n", "s.yaml:8", "wants 4 host(s) but region r1 has 3"),
        (HEAD + "  - {at: 30, crash: [r1-h001]}\n", "s.yaml:8", "not within the run's duration 30s"),
        (HEAD + "  - {at: 5, crash: [r1-h001], reboot: [r1-h002]}\n", "s.yaml:8", "exactly one kind"),
        (HEAD + "  - {at: 5, reboot: [r1-h001]}\n", "s.yaml:8", "reboot: 'downtime' is required"),
        (HEAD + "  - {crash: [r1-h001]}\n", "s.yaml:8", "'at' (seconds from the start) is required"),
        (HEAD + "  - {at: 5, ingest_outage: r1, for: 5}\n", "s.yaml:8", "write 'ingest_outage: true'"),
        (HEAD + "  - {at: 5, partition: r1, for: 5, spool: maybe}\n", "s.yaml:8", "'spool' must be true or false"),
        (HEAD + "  - {at: 5, clock_skew: [r1-h001], offset: .nan}\n", "s.yaml:8", "'offset' must be seconds"),
        (HEAD + "  - crash\n", "s.yaml:7", "fault #1 must be a mapping"),
        ("hosts: 2\ndowncheck:\n  missed: .inf\n", "s.yaml:3", "'missed' must be a number"),
        ("hosts: 2\ndowncheck:\n  misses: 3\n", "s.yaml:3", "unknown downcheck key 'misses'"),
        ("hosts: 2\ndowncheck: {missed: 2}\n", "s.yaml:2", "'late' must be at least 1 and below missed - 1"),
        ("- 1\n", "s.yaml:1", "a scenario is a mapping"),
    ],
)
def test_scenario_problems_name_file_and_line(text: str, where: str, needle: str) -> None:
    found = problems(text)
    assert len(found) == 1, found
    assert found[0].startswith(f"{where}: "), found
    assert needle in found[0], found


def test_every_bad_fault_is_reported_at_once() -> None:
    found = problems(
        HEAD + "  - {at: 5, crash: [nope]}\n  - {at: 6, reboot: [r1-h001]}\n  - {at: 7, partition: r9, for: 5}\n"
    )
    assert [p.split(": ")[0] for p in found] == ["s.yaml:8", "s.yaml:9", "s.yaml:10"]


def test_a_scenario_file_is_named_by_its_path_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(HEAD + "  - {at: 5, partition: r9, for: 5}\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert caught.value.problems[0].startswith(f"{path}:8: ")


def test_durations_and_command_line_overrides() -> None:
    sc = load_scenario_text("hosts: 4\nduration: 2m\ninterval: 500ms\ndowncheck: {flap_window: 5m}\n", "x/quick.yaml")
    assert (sc.name, sc.duration_s, sc.interval_s, sc.downcheck.flap_window_s) == ("quick", 120.0, 0.5, 300.0)
    assert sc.timeout_s == 3 * 0.5 + 1.0  # missed intervals + grace
    small = load_scenario_text("hosts: 4\nregions: 1\n", hosts=9, regions=3, interval_s=2.0, duration_s=10.0)
    assert (len(small.hosts), small.regions, small.interval_s, small.duration_s) == (9, ("r1", "r2", "r3"), 2.0, 10.0)


def test_fleet_hosts_are_named_per_region_round_robin() -> None:
    fleet = make_fleet(5, ("r1", "r2"))
    assert [(h.host_id, h.region, h.index) for h in fleet] == [
        ("r1-h001", "r1", 0),
        ("r2-h001", "r2", 1),
        ("r1-h002", "r1", 2),
        ("r2-h002", "r2", 3),
        ("r1-h003", "r1", 4),
    ]
    big = make_fleet(2000, ("eu",))
    assert (big[0].host_id, big[-1].host_id) == ("eu-h0001", "eu-h2000")  # the width fits the region
    named = load_scenario_text("hosts: 3\nregions: [eu-west, us-east]\n")
    assert [h.host_id for h in named.hosts] == ["eu-west-h001", "us-east-h001", "eu-west-h002"]


def test_region_count_selections_are_seeded_and_never_reuse_a_host() -> None:
    faults = "  - {at: 5, crash: {region: r1, count: 2}}\n  - {at: 6, reboot: {region: r1, count: 1}, downtime: 1}\n"
    sc = scenario(faults)
    crashed, rebooted = sc.faults[0].hosts, sc.faults[1].hosts
    assert len(crashed) == 2 and len(rebooted) == 1 and not set(crashed) & set(rebooted)
    assert {h[:2] for h in crashed + rebooted} == {"r1"}
    assert scenario(faults).faults == sc.faults  # same seed, same picks


# -- the timeline ---------------------------------------------------------------------------


def test_without_faults_every_heartbeat_arrives_on_time_in_sequence() -> None:
    sc = scenario(head=HEAD.replace("metrics: false", "metrics: true"))
    records, stats = play(sc, START)
    for host in sc.hosts:
        mine = beats(records, host.host_id)
        assert [heartbeat(r).seq for r in mine] == list(range(1, 31))
        assert {heartbeat(r).boot_id for r in mine} == {f"sim-1-{host.host_id}-b0"}
        assert all(r.deliver_at == r.emitted_at for r in mine)
        assert all(heartbeat(r).sent_at == START + r.emitted_at for r in mine)  # event time = start + t
        assert all(b.emitted_at - a.emitted_at == pytest.approx(1.0) for a, b in itertools.pairwise(mine))
        batches = [r for r in records if r.key == host.host_id and isinstance(r.event, MetricBatch)]
        assert len(batches) == 30
    assert stats.emitted == stats.delivered == 6 * 30 * 2
    assert stats.dropped == stats.spooled == stats.delayed == 0
    assert stats.heartbeats_emitted == stats.heartbeats_delivered == 180


def test_a_crash_stops_beats_at_its_time_and_until_brings_a_new_boot_id() -> None:
    sc = scenario("  - {at: 10, crash: [r1-h001], until: 20}\n  - {at: 12, crash: [r2-h002]}\n")
    records, stats = play(sc)
    back = beats(records, "r1-h001")
    assert not [r for r in back if 10 <= r.emitted_at < 20]
    before = [heartbeat(r) for r in back if r.emitted_at < 10]
    after = [heartbeat(r) for r in back if r.emitted_at >= 20]
    assert [b.seq for b in before] == list(range(1, 11)) and {b.boot_id for b in before} == {"sim-1-r1-h001-b0"}
    assert [b.seq for b in after] == list(range(1, 11)) and {b.boot_id for b in after} == {"sim-1-r1-h001-b1"}
    gone = beats(records, "r2-h002")
    assert len(gone) == 12 and max(r.emitted_at for r in gone) < 12
    assert stats.dropped == 0  # a dead host emits nothing; nothing was lost on the way


def test_a_reboot_brings_a_new_boot_id_after_its_downtime() -> None:
    records, _ = play(scenario("  - {at: 10, reboot: [r2-h001], downtime: 3}\n"))
    mine = beats(records, "r2-h001")
    assert not [r for r in mine if 10 <= r.emitted_at < 13]
    assert {heartbeat(r).boot_id for r in mine if r.emitted_at < 10} == {"sim-1-r2-h001-b0"}
    after = [heartbeat(r) for r in mine if r.emitted_at >= 13]
    assert {b.boot_id for b in after} == {"sim-1-r2-h001-b1"} and after[0].seq == 1


def test_a_spooled_partition_delivers_the_held_beats_at_heal_time() -> None:
    sc = scenario("  - {at: 10, partition: r2, for: 5, spool: true}\n")
    records, stats = play(sc)
    for host in sc.hosts:
        mine = beats(records, host.host_id)
        assert [heartbeat(r).seq for r in mine] == list(range(1, 31))  # nothing lost, order kept
        held = [r for r in mine if r.deliver_at != r.emitted_at]
        if host.region == "r1":
            assert held == []
        else:
            assert len(held) == 5
            assert all(10 <= r.emitted_at < 15 and r.deliver_at == 15 for r in held)
            assert not [r for r in mine if 10 <= r.deliver_at < 15]  # silence while cut
    assert stats.dropped == 0
    assert stats.spooled == 3 * 5 == sum(1 for r in records if r.deliver_at > r.emitted_at)


def test_spooled_and_delayed_count_records_like_emitted_and_dropped() -> None:
    head = HEAD.replace("metrics: false", "metrics: true\nwitnesses: 1")  # 3 records per host and interval
    faults = "  - {at: 5, partition: r2, for: 5}\n  - {at: 15, slow: {region: r1}, delay: 0.5, for: 5}\n"
    records, stats = play(scenario(faults, head))
    late = [r for r in records if r.deliver_at > r.emitted_at]
    assert stats.spooled == sum(1 for r in late if r.emitted_at < 10) == 3 * 5 * 3
    assert stats.delayed == sum(1 for r in late if r.emitted_at >= 15) == 3 * 5 * 3


def test_an_unspooled_partition_loses_the_beats_sent_while_cut() -> None:
    sc = scenario("  - {at: 10, partition: r2, for: 5, spool: false}\n")
    records, stats = play(sc)
    for host in ("r2-h001", "r2-h002", "r2-h003"):
        mine = beats(records, host)
        assert [heartbeat(r).seq for r in mine] == [*range(1, 11), *range(16, 31)]  # the gap shows the loss
        assert all(r.deliver_at == r.emitted_at for r in mine)
    assert stats.dropped == stats.heartbeats_dropped == 15
    assert stats.emitted == stats.delivered + stats.dropped


def test_a_host_that_dies_behind_a_partition_takes_its_spool_with_it() -> None:
    faults = "  - {at: 10, partition: r2, for: 10, spool: true}\n  - {at: 14, crash: [r2-h001]}\n"
    faults += "  - {at: 12, crash: [r2-h002], until: 25}\n"
    records, stats = play(scenario(faults))
    assert max(r.emitted_at for r in beats(records, "r2-h001")) < 10  # the 10..13 beats died with it
    late = [r for r in beats(records, "r2-h002") if r.deliver_at > r.emitted_at]
    assert [r.emitted_at // 1 for r in late] == [10, 11] and {r.deliver_at for r in late} == {25}  # sent once back
    assert stats.dropped == 4 and stats.held == 0


def test_an_ingest_outage_cuts_every_host() -> None:
    records, stats = play(scenario("  - {at: 10, ingest_outage: true, for: 5, spool: true}\n"))
    assert not [r for r in records if 10 <= r.deliver_at < 15]
    assert {r.key for r in records if r.deliver_at == 15} == {f"r{i}-h00{j}" for i in (1, 2) for j in (1, 2, 3)}
    assert stats.spooled == 6 * 5 and stats.dropped == 0
    _, lossy = play(scenario("  - {at: 10, ingest_outage: true, for: 5, spool: false}\n"))
    assert lossy.dropped == 6 * 5


def test_a_flap_alternates_down_and_up() -> None:
    records, stats = play(scenario("  - {at: 10, flap: [r1-h002], for: 12, down: 2, up: 2, spool: false}\n"))
    sent = {int(r.emitted_at) for r in beats(records, "r1-h002")}
    assert sent == set(range(30)) - {10, 11, 14, 15, 18, 19}
    assert stats.dropped == 6
    spooled, _ = play(scenario("  - {at: 10, flap: [r1-h002], for: 12, down: 2, up: 2}\n"))
    heals = sorted({r.deliver_at for r in beats(spooled, "r1-h002") if r.deliver_at > r.emitted_at})
    assert heals == [12, 16, 20]


def test_clock_skew_shifts_event_times_but_not_delivery_times() -> None:
    plain, _ = play(scenario(), START)
    skewed, _ = play(scenario("  - {at: 10, clock_skew: [r1-h003], offset: 120, for: 5}\n"), START)
    assert [(r.deliver_at, r.emitted_at, r.key) for r in plain] == [(r.deliver_at, r.emitted_at, r.key) for r in skewed]
    for before, after in zip(beats(plain, "r1-h003"), beats(skewed, "r1-h003"), strict=True):
        shift = 120 if 10 <= before.emitted_at < 15 else 0
        assert heartbeat(after).sent_at - heartbeat(before).sent_at == pytest.approx(shift)
    assert beats(plain, "r1-h001") == beats(skewed, "r1-h001")


def test_slow_delivery_stays_within_delay_plus_jitter() -> None:
    records, stats = play(scenario("  - {at: 10, slow: {region: r1}, delay: 0.5, jitter: 0.4, for: 10}\n"))
    for r in records:
        lag = r.deliver_at - r.emitted_at
        if r.key.startswith("r1-") and 10 <= r.emitted_at < 20:
            assert 0.5 <= lag < 0.9
        else:
            assert lag == 0  # before, after (the lag is below one interval) and in the other region
    assert stats.delayed == 3 * 10 and stats.dropped == 0


def test_bursty_delivery_releases_at_burst_boundaries() -> None:
    records, _ = play(scenario("  - {at: 10, slow: [r1-h001], burst: 1.5, for: 6}\n"))
    late = [r for r in beats(records, "r1-h001") if 10 <= r.emitted_at < 16]
    assert all(0 < r.deliver_at - r.emitted_at <= 1.5 for r in late)
    assert {(r.deliver_at - 10) % 1.5 for r in late} == {0.0}


def test_witnesses_probe_peers_in_other_regions_and_see_crashes() -> None:
    sc = scenario("  - {at: 10, crash: [r2-h001]}\n", head=HEAD.replace("metrics: false", "witnesses: 2"))
    targets = witness_targets(sc)
    region = {h.host_id: h.region for h in sc.hosts}
    assert all(len(t) == 2 and all(region[p] != region[h] for p in t) for h, t in targets.items())
    watched: defaultdict[str, int] = defaultdict(int)
    for t in targets.values():
        for peer in t:
            watched[peer] += 1
    assert set(watched.values()) == {2}  # every host is watched by two peers
    records, _ = play(sc)
    probes = [r.event for r in records if isinstance(r.event, PeerProbe) and r.event.target == "r2-h001"]
    assert {p.ok for p in probes if p.at < 10} == {True} and {p.ok for p in probes if p.at >= 10} == {False}
    assert all(p.error == "timed out" and p.latency_ms == 0 for p in probes if not p.ok)


def test_a_spool_healing_after_the_end_is_still_delivered() -> None:
    records, stats = play(scenario("  - {at: 25, partition: r1, for: 20}\n"))
    assert stats.held == 0 and stats.dropped == 0
    assert max(r.deliver_at for r in records) == 45


def test_the_same_seed_gives_the_same_records() -> None:
    faults = "  - {at: 5, slow: {region: r2}, jitter: 0.9}\n  - {at: 8, flap: {count: 1}, for: 10, down: 2, up: 3}\n"
    head = HEAD.replace("metrics: false", "metrics: true\nwitnesses: 1")
    first, _ = play(scenario(faults, head), START)
    again, _ = play(scenario(faults, head), START)
    assert first == again
    other, _ = play(scenario(faults, head.replace("seed: 1", "seed: 2")), START)
    assert [r.emitted_at for r in other] != [r.emitted_at for r in first]


# -- properties -----------------------------------------------------------------------------


@st.composite
def fault_sets(draw: st.DrawFn) -> str:
    """A small scenario's YAML with a random set of faults (some of which the loader may refuse)."""
    host_count, region_count = draw(st.integers(1, 7)), draw(st.integers(1, 3))
    regions = [f"r{i + 1}" for i in range(region_count)]
    ids = [h.host_id for h in make_fleet(host_count, tuple(regions))]
    at, span, small = st.integers(0, 19), st.integers(1, 12), st.integers(1, 3)
    host, region = st.sampled_from(ids).map(lambda h: [h]), st.sampled_from(regions)
    fault = st.one_of(
        st.fixed_dictionaries({"at": at, "crash": host}, optional={"until": st.integers(20, 30)}),
        st.fixed_dictionaries({"at": at, "reboot": host, "downtime": small}),
        st.fixed_dictionaries({"at": at, "partition": region, "for": span, "spool": st.booleans()}),
        st.fixed_dictionaries({"at": at, "ingest_outage": st.just(True), "for": span, "spool": st.booleans()}),
        st.fixed_dictionaries(
            {"at": at, "flap": host, "for": span, "down": small, "up": small, "spool": st.booleans()}
        ),
        st.fixed_dictionaries({"at": at, "clock_skew": host, "offset": st.integers(-300, 300)}),
        st.fixed_dictionaries(
            {"at": at, "slow": st.fixed_dictionaries({"region": region})},
            optional={"delay": st.floats(0, 1.5), "jitter": st.floats(0, 1.5), "burst": st.sampled_from([0.5, 1.0])},
        ),
    )
    doc = {
        "seed": draw(st.integers(0, 99)),
        "hosts": host_count,
        "regions": region_count,
        "interval": draw(st.sampled_from([0.5, 1, 2])),
        "duration": 20,
        "metrics": draw(st.booleans()),
        "witnesses": draw(st.integers(0, 2)) if region_count > 1 else 0,
        "downcheck": {"missed": 4, "late": 1.5},
        "faults": draw(st.lists(fault, max_size=5)),
    }
    return yaml.safe_dump(doc)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fault_sets())
def test_records_come_out_in_delivery_order_and_the_counters_add_up(text: str) -> None:
    try:
        sc = load_scenario_text(text, "p.yaml")
    except ScenarioError as exc:
        assert all(p.startswith("p.yaml:") for p in exc.problems)
        return
    records, stats = play(sc)
    assert all(a.deliver_at <= b.deliver_at for a, b in itertools.pairwise(records))
    assert all(r.deliver_at >= r.emitted_at for r in records)
    assert stats.held == 0 and stats.emitted == stats.delivered + stats.dropped == len(records) + stats.dropped
    assert stats.heartbeats_emitted == stats.heartbeats_delivered + stats.heartbeats_dropped
    assert stats.heartbeats_delivered == sum(isinstance(r.event, Heartbeat) for r in records)
    assert stats.spooled + stats.delayed <= stats.delivered
    last: dict[str, Heartbeat] = {}
    for record in records:  # one host's records arrive in the order it sent them
        if isinstance(record.event, Heartbeat):
            prev = last.get(record.key)
            if prev is not None and prev.boot_id == record.event.boot_id:
                assert record.event.seq > prev.seq
            last[record.key] = record.event
    truth = ground_truth(sc, START)
    assert Truth.from_json(json.loads(json.dumps(truth.to_json(), allow_nan=False))) == truth
    assert len(describe(sc)) == 1 + len(sc.faults)


_junk = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 40) | st.floats() | st.sampled_from(["r1", "r1-h001", "5s", "x", ""]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["region", "count"]), inner, max_size=2)
    ),
    max_leaves=4,
)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["hosts", "regions", "interval", "duration", "witnesses", "seed", "metrics", "downcheck"]),
        _junk,
    ),
    st.lists(st.dictionaries(st.sampled_from(["at", "until", "for", "spool", "down", "offset", *FAULT_KINDS]), _junk)),
)
def test_the_loader_only_ever_raises_scenario_errors(top: dict[str, object], faults: list[object]) -> None:
    try:
        load_scenario_text(yaml.safe_dump({**top, "faults": faults}), "j.yaml")
    except ScenarioError as exc:
        assert exc.problems and all(p.startswith("j.yaml:") for p in exc.problems)


# -- ground truth ---------------------------------------------------------------------------

# 12 hosts in 2 regions of 6 (min_region_hosts 5); the timeout is 3 x 1 + 1 = 4 s.
TRUTH_HEAD = HEAD.replace("hosts: 6", "hosts: 12")


def test_crashes_are_downs_required_when_longer_than_the_timeout() -> None:
    sc = scenario(
        "  - {at: 5, crash: [r1-h001]}\n"
        "  - {at: 5, crash: [r1-h002], until: 8}\n"
        "  - {at: 5, crash: [r1-h003], until: 15}\n",
        TRUTH_HEAD,
    )
    truth = ground_truth(sc, START)
    downs = {d.host_id: d for d in truth.downs}
    assert (downs["r1-h001"].since, downs["r1-h001"].until, downs["r1-h001"].required) == (START + 5, None, True)
    assert downs["r1-h002"].required is False  # 3 s: not longer than timeout + interval
    assert (downs["r1-h003"].until, downs["r1-h003"].required) == (START + 15, True)
    assert all(d.covered_by == "" for d in truth.downs)
    rebooted = [e for e in truth.expectations if e.kind == "host_rebooted"]
    assert {e.host_id for e in rebooted} == {"r1-h002", "r1-h003"}
    three = next(e for e in rebooted if e.host_id == "r1-h003")
    assert (three.start, three.end, three.min_count, three.max_count) == (START + 15, START + 15 + truth.slack_s, 0, 1)
    assert truth.slack_s == truth.timeout_s + 2 * truth.interval_s == 6


def test_a_crash_inside_a_partition_or_outage_is_still_a_required_down() -> None:
    faults = "  - {at: 5, partition: r2, for: 10}\n  - {at: 8, crash: [r2-h001]}\n  - {at: 8, crash: [r1-h001]}\n"
    faults += "  - {at: 18, ingest_outage: true, for: 6}\n  - {at: 20, crash: [r1-h002]}\n"
    truth = ground_truth(scenario(faults, TRUTH_HEAD), START)
    covered = {d.host_id: (d.covered_by, d.required) for d in truth.downs}
    assert covered == {
        "r2-h001": ("partition r2", True),
        "r1-h001": ("", True),  # the other region is healthy
        "r1-h002": ("ingest_outage", True),
    }


def test_a_crash_over_before_its_blanket_lifts_cannot_be_paged_without_witnesses() -> None:
    faults = "  - {at: 5, partition: r2, for: 20}\n  - {at: 8, crash: [r2-h001], until: 18}\n"
    truth = ground_truth(scenario(faults, TRUTH_HEAD), START)
    (down,) = truth.downs
    assert (down.covered_by, down.required) == ("partition r2", False)
    rebooted = next(e for e in truth.expectations if e.kind == "host_rebooted")
    # Its new boot id is seen when the partition heals (25 s), not when it came back (18 s).
    assert rebooted.end == START + 25 + truth.slack_s
    with_witnesses = ground_truth(scenario(faults, TRUTH_HEAD.replace("faults:", "witnesses: 1\nfaults:")), START)
    assert with_witnesses.downs[0].required


def test_a_partition_owes_one_region_alert_and_no_host_down() -> None:
    truth = ground_truth(scenario("  - {at: 5, partition: r2, for: 10}\n", TRUTH_HEAD), START)
    (owed,) = truth.expectations
    assert (owed.kind, owed.region, owed.min_count, owed.max_count) == ("region_unreachable", "r2", 1, 1)
    assert (owed.start, owed.end, owed.host_down_allowed) == (START + 5, START + 15 + 6, False)
    assert truth.downs == []
    short = ground_truth(scenario("  - {at: 5, partition: r2, for: 4}\n", TRUTH_HEAD), START)
    assert (short.expectations[0].min_count, short.expectations[0].max_count) == (0, 1)  # at most one


def test_a_partition_of_a_small_region_expects_region_unknown() -> None:
    truth = ground_truth(scenario("  - {at: 5, partition: r2, for: 10}\n"), START)  # 3 hosts < 5
    assert [(e.kind, e.min_count) for e in truth.expectations] == [("region_unknown", 1)]
    assert "below min_region_hosts" in truth.expectations[0].note


def test_an_ingest_outage_owes_one_ingest_outage() -> None:
    truth = ground_truth(scenario("  - {at: 5, ingest_outage: true, for: 10}\n", TRUTH_HEAD), START)
    assert [(e.kind, e.region, e.min_count, e.max_count) for e in truth.expectations] == [("ingest_outage", "", 1, 1)]
    assert truth.downs == []


def test_a_reboot_owes_host_rebooted_and_allows_a_down_only_when_long() -> None:
    faults = "  - {at: 5, reboot: [r1-h001], downtime: 2}\n  - {at: 5, reboot: [r1-h002], downtime: 3}\n"
    truth = ground_truth(scenario(faults, TRUTH_HEAD), START)
    owed = {e.host_id: e for e in truth.expectations}
    assert {(e.kind, e.min_count, e.max_count) for e in owed.values()} == {("host_rebooted", 1, 1)}
    assert owed["r1-h001"].host_down_allowed is False
    assert owed["r1-h002"].host_down_allowed is True  # 3 s of silence = missed x interval
    assert owed["r1-h001"].end == START + 7 + truth.slack_s
    assert truth.downs == []


def test_a_flap_allows_a_host_down_and_skew_and_slow_owe_nothing() -> None:
    faults = "  - {at: 5, flap: [r1-h001], for: 10, down: 2, up: 2}\n"
    faults += "  - {at: 5, clock_skew: [r1-h002], offset: 120}\n  - {at: 5, slow: {region: r2}, delay: 1}\n"
    truth = ground_truth(scenario(faults, TRUTH_HEAD), START)
    assert [(e.kind, e.host_id, e.min_count, e.max_count, e.host_down_allowed) for e in truth.expectations] == [
        ("flap", "r1-h001", 0, 1, True)
    ]
    assert truth.downs == []
    skew, slow = truth.faults[1], truth.faults[2]
    assert (skew.end, skew.hosts, skew.details) == (None, ["r1-h002"], {"offset_s": 120.0})
    assert (slow.end, slow.region, slow.hosts) == (None, "r2", [])  # open-ended, the whole region


def test_truth_files_round_trip(tmp_path: Path) -> None:
    truth = ground_truth(
        scenario("  - {at: 5, crash: [r1-h001], until: 9}\n  - {at: 12, partition: r1, for: 9}\n"), START
    )
    path = tmp_path / "truth.json"
    write_truth(truth, path)
    assert load_truth(path) == truth
    assert not path.with_name("truth.json.tmp").exists()


# -- shipped scenarios ----------------------------------------------------------------------


def test_the_shipped_scenarios_load_and_describe_themselves() -> None:
    assert resolve_scenario_path("suite") == SCENARIO_DIR / "suite.yaml"
    assert resolve_scenario_path("scale") == SCENARIO_DIR / "scale.yaml"
    for name in ("suite", "scale"):
        sc = load_scenario(name)
        lines = describe(sc)
        assert lines[0].startswith(f"scenario {name}: {len(sc.hosts)} hosts")
        assert len(lines) == 1 + len(sc.faults)
        ground_truth(sc, START)
    scale = load_scenario("scale")
    assert (len(scale.hosts), len(scale.regions), scale.interval_s, scale.metrics, scale.witnesses) == (
        15000,
        5,
        5.0,
        False,
        0,
    )
    assert {f.kind for f in scale.faults} == {"crash", "partition"}


def test_an_unknown_scenario_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ScenarioError, match="shipped scenarios: blankets, scale, suite"):
        resolve_scenario_path("nope")


def test_the_suite_has_every_fault_apart_and_quiet_at_the_end() -> None:
    sc = load_scenario("suite")
    assert (len(sc.hosts), sc.regions, sc.interval_s, sc.witnesses, sc.metrics) == (
        60,
        ("r1", "r2", "r3"),
        1.0,
        2,
        True,
    )
    assert 100 <= sc.duration_s <= 150
    assert {f.kind for f in sc.faults} == set(FAULT_KINDS)
    truth = ground_truth(sc, 0.0)
    # A fault is judged from its start to its end plus the slack; one that lasts to the end of
    # the run (the lone crash, the skewed clocks) only around its onset.
    windows = sorted(
        [
            (w.at - truth.start, (w.end if w.end is not None else w.at) - truth.start + truth.slack_s, f)
            for w, f in zip(truth.faults, sc.faults, strict=True)
        ],
        key=lambda window: window[:2],
    )
    for i, (_, end, f) in enumerate(windows):
        for other_start, _, g in windows[i + 1 :]:
            if other_start >= end:
                continue
            # Intended overlaps: a crash inside a partition of its region, and faults that owe
            # nothing (skew, slow) on disjoint hosts.
            inside = f.kind == "partition" and g.kind == "crash" and g.hosts[0].startswith(f.region + "-")
            harmless = {f.kind, g.kind} <= {"clock_skew", "slow"} and not set(f.hosts) & set(g.hosts)
            assert inside or harmless, (f, g)
    assert sc.duration_s - max(end for _, end, _ in windows) >= 15
    assert [d.covered_by for d in truth.downs if d.region == "r2"] == ["partition r2"]
    assert all(d.required for d in truth.downs)


# -- topology, intervals, jitter, agent restarts, group partitions ---------------------------

# 24 hosts in 2 regions x 2 zones x 2 racks: 6 hosts per zone, 3 per rack; faults start on line 10.
TOPO = "seed: 1\nhosts: 24\nregions: 2\nzones: 2\nracks: 2\ninterval: 1\nduration: 30\nmetrics: false\nfaults:\n"
# 40 hosts: 10 per zone (min_group_hosts 5), 5 per rack.
GROUP_HEAD = TOPO.replace("hosts: 24", "hosts: 40")


@pytest.mark.parametrize(
    ("text", "where", "needle"),
    [
        ("zones: -1\n", "s.yaml:1", "'zones' must be an integer >= 0"),
        ("hosts: 4\nracks: 2\n", "s.yaml:2", "'racks' are per zone: give 'zones' (zones per region) too"),
        ("intervals: []\n", "s.yaml:1", "'intervals' must be a non-empty list of seconds"),
        ("intervals:\n  - 1\n  - 0\n", "s.yaml:1", "'intervals' must be > 0"),
        ("interval: 1\njitter: 0.6\n", "s.yaml:2", "'jitter' 0.6s must be at most (late - 1) x the smallest interval"),
        ("interval: 1\nintervals: [2, 0.5]\njitter: 0.3\n", "s.yaml:3", "= 0.25s (late 1.5, interval 0.5s)"),
        ("interval: 1\ndowncheck: {late: 2, missed: 4}\njitter: 1.5\n", "s.yaml:3", "= 1s (late 2, interval 1s)"),
        ("interval: 1\njitter: 1\n", "s.yaml:2", "beyond it a healthy host's beats come more than late x interval"),
        (
            TOPO + "  - {at: 5, partition: {zone: r1-z9}, for: 5}\n",
            "s.yaml:10",
            "partition: unknown zone 'r1-z9' (zone values: r1-z1, r1-z2, r2-z1, r2-z2)",
        ),
        (TOPO + "  - at: 5\n    partition:\n      zone: r1-z9\n    for: 5\n", "s.yaml:12", "unknown zone 'r1-z9'"),
        (TOPO + "  - {at: 5, partition: {rack: r1-z1-r3}, for: 5}\n", "s.yaml:10", "unknown rack 'r1-z1-r3'"),
        (
            HEAD + "  - {at: 5, partition: {zone: r1-z1}, for: 5}\n",
            "s.yaml:8",
            "no host has a label 'zone' (labels: region;",
        ),
        (TOPO + "  - {at: 5, partition: {region: r9}, for: 5}\n", "s.yaml:10", "partition: unknown region 'r9'"),
        (
            TOPO + "  - {at: 5, partition: {zone: r1-z1, rack: r1-z1-r1}, for: 5}\n",
            "s.yaml:10",
            "partition: give a region, a label group like {zone: r1-z2}, host ids or {region: R, count: N}",
        ),
        (TOPO + "  - {at: 5, partition: [r1-h001, r1-h999], for: 5}\n", "s.yaml:10", "unknown host(s) r1-h999"),
        (
            TOPO + "  - {at: 5, partition: {region: r1, count: 13}}\n",
            "s.yaml:10",
            "wants 13 host(s) but region r1 has 12",
        ),
        (HEAD + "  - {at: 5, restart: [r1-h001]}\n", "s.yaml:8", "restart: 'downtime' is required"),
        (HEAD + "  - {at: 5, restart: [r1-h001], downtime: 0}\n", "s.yaml:8", "'downtime' must be > 0"),
        (
            HEAD + "  - {at: 5, restart: [r1-h001], downtime: 2, until: 9}\n",
            "s.yaml:8",
            "unknown key 'until' for restart",
        ),
        ("downcheck:\n  correlate_by: zone\n", "s.yaml:2", "'correlate_by' must be a list of label names"),
        ("downcheck:\n  min_group_hosts: 1\n", "s.yaml:2", "'min_group_hosts' must be an integer >= 2"),
        ("downcheck:\n  correlate_by: [zone, zone]\n", "s.yaml:1", "'correlate_by' must list distinct label names"),
        ("downcheck: {group_share: 0}\n", "s.yaml:1", "'group_share' must be in (0, 1]"),
    ],
)
def test_new_scenario_keys_and_fault_forms_report_file_and_line(text: str, where: str, needle: str) -> None:
    found = problems(text)
    assert len(found) == 1, found
    assert found[0].startswith(f"{where}: "), found
    assert needle in found[0], found


def test_the_downcheck_mapping_takes_the_group_settings() -> None:
    sc = load_scenario_text("downcheck: {group_share: 0.7, min_group_hosts: 3, correlate_by: [region, zone]}\n")
    assert (sc.downcheck.group_share, sc.downcheck.min_group_hosts) == (0.7, 3)
    assert sc.downcheck.correlate_by == ("region", "zone")


def test_uneven_zones_take_hosts_by_their_weights_and_racks_count_within_each_zone() -> None:
    fleet = make_fleet(10, ("r1",), zones=(3, 2), racks=2)
    zones = [h.labels["zone"] for h in fleet]
    assert zones.count("r1-z1") == 6 and zones.count("r1-z2") == 4  # 3 of each 5, 2 of each 5
    assert [h.labels["rack"] for h in fleet if h.labels["zone"] == "r1-z2"] == [
        "r1-z2-r1", "r1-z2-r2", "r1-z2-r1", "r1-z2-r2",
    ]  # fmt: skip
    sc = load_scenario_text("hosts: 15\nregions: 1\nzones: [3, 2]\n")
    assert (sc.zones, sc.zone_weights) == (2, (3, 2))
    assert len(sc.group_hosts("zone=r1-z2")) == 6  # 40 % of the region
    assert load_scenario_text(dump_scenario(sc)) == sc
    assert load_scenario_text("zones: [1, 1]\n").zone_weights == ()  # equal weights are plain zones
    with pytest.raises(ScenarioError, match=r"<scenario>:1: 'zones' as a list"):
        load_scenario_text("zones: [2, 0]\n")


def test_hosts_are_spread_round_robin_over_zones_and_racks_and_beat_with_their_labels() -> None:
    fleet = make_fleet(8, ("r1", "r2"), zones=2, racks=2)
    assert [(h.host_id, dict(h.labels)) for h in fleet if h.region == "r1"] == [
        ("r1-h001", {"zone": "r1-z1", "rack": "r1-z1-r1"}),
        ("r1-h002", {"zone": "r1-z2", "rack": "r1-z2-r1"}),
        ("r1-h003", {"zone": "r1-z1", "rack": "r1-z1-r2"}),
        ("r1-h004", {"zone": "r1-z2", "rack": "r1-z2-r2"}),
    ]
    assert {h.labels["zone"] for h in fleet if h.region == "r2"} == {"r2-z1", "r2-z2"}
    assert [dict(h.labels) for h in make_fleet(3, ("r1",), zones=3)] == [{"zone": f"r1-z{k}"} for k in (1, 2, 3)]
    assert all(not h.labels for h in make_fleet(4, ("r1",)))  # no zones: no labels
    assert len(set(fleet)) == 8  # hosts stay hashable
    sc = scenario(head=TOPO)
    assert (sc.zones, sc.racks) == (2, 2)
    records, _ = play(sc)
    labels = {r.key: heartbeat(r).labels for r in records if isinstance(r.event, Heartbeat)}
    assert labels["r2-h005"] == {"simulated": "true", "zone": "r2-z1", "rack": "r2-z1-r1"}
    plain, _ = play(scenario())
    assert all(heartbeat(r).labels == {"simulated": "true"} for r in plain if isinstance(r.event, Heartbeat))


def test_hosts_with_mixed_intervals_beat_on_their_own_schedules_merged_in_time_order() -> None:
    head = HEAD.replace("interval: 1", "interval: 1\nintervals: [1, 2, 3]").replace("metrics: false", "metrics: true")
    sc = scenario(head=head)
    assert [h.interval_s for h in sc.hosts] == [1, 2, 3, 1, 2, 3]
    assert (sc.interval_s, sc.longest_interval_s) == (1, 3)
    records, stats = play(sc)
    assert [r.emitted_at for r in records] == sorted(r.emitted_at for r in records)
    plans = Timeline(sc).plans
    for host in sc.hosts:
        phase, interval = plans[host.host_id].phase, host.interval_s
        assert 0 <= phase < interval
        mine = beats(records, host.host_id)
        schedule = [k * interval + phase for k in range(math.ceil((30 - phase) / interval))]
        assert [r.emitted_at for r in mine] == pytest.approx(schedule)
        assert {heartbeat(r).interval_s for r in mine} == {interval}
        assert [heartbeat(r).seq for r in mine] == list(range(1, len(mine) + 1))
        batches = [r.event for r in records if r.key == host.host_id and isinstance(r.event, MetricBatch)]
        assert len(batches) == len(mine) and {b.interval_s for b in batches} == {interval}
    assert stats.heartbeats_emitted == sum(len(beats(records, h.host_id)) for h in sc.hosts)


def tick_by_tick(timeline: Timeline) -> list[Record]:
    """How the timeline played before hosts had their own intervals: one tick of the scenario's
    interval after another, hosts in (phase, index) order within a tick."""
    sc = timeline.scenario
    order = sorted(timeline.plans.values(), key=lambda p: (p.phase, p.host.index))
    out: list[Record] = []
    held: list[tuple[float, int, Record]] = []
    pushed = itertools.count()
    tick = 0
    while tick * sc.interval_s < sc.duration_s:
        for plan in order:
            t = tick * sc.interval_s + plan.phase
            if t >= sc.duration_s:
                continue
            while held and held[0][0] <= t:
                out.append(heapq.heappop(held)[2])
            for record in timeline.emit(plan, t):
                if record.deliver_at <= t:
                    out.append(record)
                else:
                    heapq.heappush(held, (record.deliver_at, next(pushed), record))
        tick += 1
    return out + [r for _, _, r in sorted(held)]


def test_one_shared_interval_plays_exactly_as_tick_by_tick() -> None:
    faults = "  - {at: 5, partition: r2, for: 5}\n  - {at: 8, slow: {region: r1}, delay: 0.5, jitter: 0.9}\n"
    faults += "  - {at: 12, crash: {count: 1}, until: 20}\n  - {at: 14, flap: {count: 1}, for: 8, down: 1, up: 2}\n"
    head = HEAD.replace("metrics: false", "metrics: true\nwitnesses: 1")
    sc = scenario(faults, head)
    assert list(Timeline(sc, START).records()) == tick_by_tick(Timeline(sc, START))
    same = scenario(faults, head.replace("interval: 1", "interval: 1\nintervals: [1]"))
    assert list(Timeline(same, START).records()) == tick_by_tick(Timeline(sc, START))


def test_jitter_moves_each_beat_within_its_bound_from_a_stream_of_its_own() -> None:
    head = HEAD.replace("interval: 1", "interval: 1\njitter: 0.5").replace("metrics: false", "metrics: true")
    sc = scenario(head=head)
    records, _ = play(sc)
    plain = Timeline(scenario(head=HEAD.replace("metrics: false", "metrics: true"))).plans
    late = sc.downcheck.late * sc.interval_s
    for host_id, plan in Timeline(sc).plans.items():
        # The scenario's other random streams draw exactly as without jitter.
        assert (plan.phase, plan.base) == (plain[host_id].phase, plain[host_id].base)
        sent = [r.emitted_at for r in beats(records, host_id)]
        offsets = [t - (k * sc.interval_s + plan.phase) for k, t in enumerate(sent)]
        assert all(0 <= o < 0.5 for o in offsets) and len(set(offsets)) > 1
        assert all(0 < b - a <= late for a, b in itertools.pairwise(sent))  # never late while healthy
    assert play(scenario(head=head))[0] == records  # seeded
    no_jitter = HEAD.replace("interval: 1", "interval: 1\njitter: 0")
    assert play(scenario(head=no_jitter))[0] == play(scenario())[0]


def test_an_agent_restart_keeps_the_boot_id_and_continues_the_sequence() -> None:
    sc = scenario("  - {at: 10, restart: [r1-h002], downtime: 4}\n", HEAD.replace("metrics: false", "witnesses: 1"))
    (fault,) = sc.faults
    assert (fault.kind, fault.hosts, fault.downtime_s, fault.end_s(30)) == ("restart", ("r1-h002",), 4.0, 14.0)
    records, stats = play(sc)
    mine = beats(records, "r1-h002")
    assert not [r for r in mine if 10 <= r.emitted_at < 14]
    assert {heartbeat(r).boot_id for r in mine} == {"sim-1-r1-h002-b0"}  # unlike a reboot
    assert [heartbeat(r).seq for r in mine] == list(range(1, 27))  # no reset: 10 before, 16 after
    # Only the agent stopped: its peers still reach the host.
    probes = [r.event for r in records if isinstance(r.event, PeerProbe) and r.event.target == "r1-h002"]
    assert probes and all(p.ok for p in probes)
    assert stats.dropped == 0


def test_a_partition_of_a_zone_or_rack_cuts_exactly_its_hosts() -> None:
    sc = scenario(
        "  - {at: 10, partition: {zone: r1-z2}, for: 5}\n  - {at: 20, partition: {rack: r2-z1-r2}, for: 5}\n", TOPO
    )
    zone, rack = sc.faults
    assert (zone.group, zone.region, zone.hosts) == (
        "zone=r1-z2",
        "",
        ("r1-h002", "r1-h004", "r1-h006", "r1-h008", "r1-h010", "r1-h012"),
    )
    assert (rack.group, rack.hosts) == ("rack=r2-z1-r2", ("r2-h003", "r2-h007", "r2-h011"))
    assert [h.host_id for h in sc.group_hosts("rack=r2-z1-r2")] == list(rack.hosts)
    records, stats = play(sc)
    held = [r for r in records if r.deliver_at > r.emitted_at]
    assert {r.key for r in held} == set(zone.hosts) | set(rack.hosts)
    assert {r.deliver_at for r in held if r.key in zone.hosts} == {15}
    assert {r.deliver_at for r in held if r.key in rack.hosts} == {25}
    assert stats.spooled == 6 * 5 + 3 * 5


def test_a_region_partition_names_its_hosts_and_a_subset_partition_uses_its_hosts_up() -> None:
    sc = scenario(
        "  - {at: 5, partition: r2, for: 5}\n"
        "  - {at: 6, partition: {region: r2}, for: 5}\n"
        "  - {at: 7, partition: {region: r1, count: 2}, for: 5}\n"
        "  - {at: 8, partition: [r2-h001], for: 5}\n"
        "  - {at: 9, crash: {region: r1, count: 1}}\n"
        "  - {at: 9, crash: {region: r2, count: 2}}\n"
    )
    whole, mapping, subset, listed, crash_r1, crash_r2 = sc.faults
    assert whole == replace(mapping, at_s=5.0)  # two spellings of one partition
    assert (whole.group, whole.region, whole.hosts) == ("region=r2", "r2", ("r2-h001", "r2-h002", "r2-h003"))
    assert (subset.group, len(subset.hosts), {h[:2] for h in subset.hosts}) == ("", 2, {"r1"})
    assert (listed.group, listed.hosts) == ("", ("r2-h001",))
    # A subset picks hosts, so later selections avoid them; a whole region picks none.
    assert not set(crash_r1.hosts) & set(subset.hosts)
    assert set(crash_r2.hosts) == {"r2-h002", "r2-h003"}
    records, _ = play(sc)
    cut = {r.key for r in records if 7 <= r.emitted_at < 12 and r.deliver_at > r.emitted_at and r.key[:2] == "r1"}
    assert cut == set(subset.hosts)


def test_a_zone_partition_owes_one_group_alert_naming_it_and_no_host_down() -> None:
    truth = ground_truth(scenario("  - {at: 5, partition: {zone: r1-z2}, for: 10}\n", GROUP_HEAD), START)
    (owed,) = truth.expectations
    assert (owed.kind, owed.group, owed.region, owed.min_count, owed.max_count) == (
        "group_unreachable",
        "zone=r1-z2",
        "r1",
        1,
        1,
    )
    assert (owed.start, owed.end, owed.host_down_allowed) == (START + 5, START + 15 + 6, False)
    assert truth.downs == []
    (window,) = truth.faults
    assert (window.group, window.region, len(window.hosts)) == ("zone=r1-z2", "", 10)
    short = ground_truth(scenario("  - {at: 5, partition: {zone: r1-z2}, for: 4}\n", GROUP_HEAD), START)
    assert (short.expectations[0].min_count, short.expectations[0].max_count) == (0, 1)
    region = ground_truth(scenario("  - {at: 5, partition: r1, for: 10}\n", GROUP_HEAD), START)
    assert [(e.kind, e.region, e.group) for e in region.expectations] == [("region_unreachable", "r1", "")]
    assert (region.faults[0].group, region.faults[0].hosts) == ("region=r1", [])  # a region is named, not listed


def test_a_small_group_owes_nothing_and_a_zone_that_is_its_whole_region_owes_the_region_alert() -> None:
    small = ground_truth(scenario("  - {at: 5, partition: {rack: r1-z1-r1}, for: 10}\n", TOPO), START)  # 3 hosts
    assert [(e.kind, e.group, e.min_count, e.max_count) for e in small.expectations] == [
        ("group_unknown", "rack=r1-z1-r1", 0, 1)
    ]
    strict = GROUP_HEAD.replace("faults:", "downcheck: {min_group_hosts: 11}\nfaults:")
    below = ground_truth(scenario("  - {at: 5, partition: {zone: r1-z2}, for: 10}\n", strict), START)
    assert [(e.kind, e.min_count) for e in below.expectations] == [("group_unknown", 0)]
    # With one zone per region the zone is the region: the down-checker names the region.
    one_zone = GROUP_HEAD.replace("zones: 2\nracks: 2\n", "zones: 1\n")
    whole = ground_truth(scenario("  - {at: 5, partition: {zone: r1-z1}, for: 10}\n", one_zone), START)
    assert [(e.kind, e.region, e.group, e.min_count) for e in whole.expectations] == [
        ("region_unreachable", "r1", "", 1)
    ]


def test_a_partition_of_a_subset_or_of_an_uncorrelated_label_allows_one_host_down_per_host() -> None:
    truth = ground_truth(scenario("  - {at: 5, partition: [r1-h001, r2-h004], for: 10}\n", GROUP_HEAD), START)
    assert [(e.kind, e.host_id, e.min_count, e.max_count, e.host_down_allowed) for e in truth.expectations] == [
        ("partition_host", "r1-h001", 0, 1, True),
        ("partition_host", "r2-h004", 0, 1, True),
    ]
    assert (truth.faults[0].hosts, truth.faults[0].group) == (["r1-h001", "r2-h004"], "")
    # Half of r1 stopping together is what the down-checker calls r1 cut off: allowed, not owed.
    by_region = GROUP_HEAD.replace("faults:", "downcheck: {correlate_by: [region]}\nfaults:")
    zone = ground_truth(scenario("  - {at: 5, partition: {zone: r1-z2}, for: 10}\n", by_region), START)
    assert sorted({(e.kind, e.min_count, e.max_count) for e in zone.expectations}) == [
        ("partition_host", 0, 1),
        ("region_unreachable", 0, 1),
    ]
    assert sum(e.host_down_allowed for e in zone.expectations) == 10


def test_a_crash_inside_a_group_partition_is_covered_by_the_group() -> None:
    faults = "  - {at: 5, partition: {zone: r1-z2}, for: 10}\n  - {at: 8, crash: [r1-h002]}\n"
    faults += (
        "  - {at: 8, crash: [r1-h001]}\n  - {at: 20, partition: [r2-h001], for: 8}\n  - {at: 22, crash: [r2-h001]}\n"
    )
    truth = ground_truth(scenario(faults, GROUP_HEAD), START)
    assert {d.host_id: (d.covered_by, d.required) for d in truth.downs} == {
        "r1-h002": ("group zone=r1-z2", True),
        "r1-h001": ("", True),  # the other zone is healthy
        "r2-h001": ("", False),  # cut off alone, it looked down before it crashed: its page may come first
    }


def test_a_restart_owes_nothing_and_allows_a_host_down_only_when_long() -> None:
    faults = "  - {at: 5, restart: [r1-h001], downtime: 1}\n  - {at: 5, restart: [r1-h002], downtime: 3}\n"
    truth = ground_truth(scenario(faults, TRUTH_HEAD), START)
    owed = {e.host_id: e for e in truth.expectations}
    assert {(e.kind, e.min_count) for e in owed.values()} == {("restart", 0)}
    assert (owed["r1-h001"].host_down_allowed, owed["r1-h001"].max_count) == (False, 0)
    assert (owed["r1-h002"].host_down_allowed, owed["r1-h002"].max_count) == (True, 1)  # 3 + 2 intervals > 4 s
    assert owed["r1-h002"].end == START + 8 + truth.slack_s
    assert truth.downs == []  # the host never went down, and no host_rebooted is owed


def test_mixed_intervals_give_each_host_its_own_timeout() -> None:
    head = TRUTH_HEAD.replace("interval: 1", "interval: 1\nintervals: [1, 1, 1, 4]")  # r1 all 1 s, r2 1 s and 4 s
    sc = scenario("  - {at: 5, crash: [r1-h001], until: 11}\n  - {at: 5, crash: [r2-h001], until: 11}\n", head)
    assert {h.interval_s for h in sc.hosts if h.region == "r1"} == {1} and sc.hosts[1].host_id == "r2-h001"
    assert {h.interval_s for h in sc.hosts if h.region == "r2"} == {1, 4} and sc.hosts[1].interval_s == 1
    truth = ground_truth(sc, START)
    assert truth.timeout_s == 3 * 4 + 1 and truth.slack_s == 13 + 2 * 4  # the longest host's
    # r2-h001 is judged only once its region's 4 s hosts could be late too: 1.5 x (1 + 4) + 1 s
    # after its last beat, so its 6 s crash may end before any page; r1-h001's may not.
    assert {d.host_id: d.required for d in truth.downs} == {"r1-h001": True, "r2-h001": False}


# -- writing scenarios ------------------------------------------------------------------------

EVERY_KIND = (
    TOPO.replace("duration: 30", "duration: 60")
    .replace("interval: 1", "interval: 1\nintervals: [1, 1, 2]\njitter: 0.25")
    .replace(
        "metrics: false",
        "metrics: true\nwitnesses: 1\ndowncheck: {missed: 4, late: 1.5, grace: 2, group_share: 0.6,"
        " min_group_hosts: 3, correlate_by: [region, zone]}",
    )
    + """\
  - {at: 2, crash: {count: 1}}
  - {at: 3, crash: {region: r1, count: 1}, until: 20}
  - {at: 4, reboot: {count: 2}, downtime: 2}
  - {at: 5, restart: {region: r2, count: 1}, downtime: 3}
  - {at: 6, partition: r1, for: 5, spool: false}
  - {at: 7, partition: {zone: r2-z1}, for: 5}
  - {at: 8, partition: {rack: r1-z2-r1}, for: 5}
  - {at: 9, partition: {region: r2, count: 2}, for: 5}
  - {at: 10, ingest_outage: true, for: 3}
  - {at: 11, flap: {count: 1}, for: 10, down: 2, up: 1, spool: false}
  - {at: 12, clock_skew: {count: 2}, offset: -90, for: 20}
  - {at: 13, clock_skew: [r1-h001], offset: 30}
  - {at: 14, slow: {region: r2}, delay: 0.5, burst: 0.5}
  - {at: 15, slow: {count: 2}, jitter: 0.75, for: 5}
"""
)


def test_dump_scenario_writes_a_file_that_loads_back_as_the_same_scenario() -> None:
    sc = scenario(head=EVERY_KIND)
    assert {f.kind for f in sc.faults} == set(ALL_FAULT_KINDS)
    text = dump_scenario(sc)
    again = load_scenario_text(text, "s.yaml")
    assert again == sc
    assert play(again, START)[0] == play(sc, START)[0]
    before, after = ground_truth(sc, START), ground_truth(again, START)
    assert (after.downs, after.expectations) == (before.downs, before.expectations)
    assert [replace(w, line=0) for w in after.faults] == [replace(w, line=0) for w in before.faults]
    doc = yaml.safe_load(text)
    faults = doc["faults"]
    assert faults[0]["crash"] == list(sc.faults[0].hosts)  # selections are written out
    assert (faults[4]["partition"], faults[5]["partition"], faults[6]["partition"]) == (
        "r1",
        {"zone": "r2-z1"},
        {"rack": "r1-z2-r1"},
    )
    assert faults[7]["partition"] == list(sc.faults[7].hosts) and len(faults[7]["partition"]) == 2
    assert (faults[12]["slow"], doc["jitter"], doc["intervals"]) == ({"region": "r2"}, 0.25, [1, 1, 2])
    assert doc["downcheck"]["correlate_by"] == ["region", "zone"]


def test_the_shipped_scenarios_survive_a_dump_and_reload() -> None:
    for name in ("suite", "scale"):
        shipped = load_scenario(name)
        assert load_scenario_text(dump_scenario(shipped), shipped.origin) == shipped
    small = load_scenario("scale", hosts=600, interval_s=2.0)  # command-line overrides are kept
    assert load_scenario_text(dump_scenario(small), small.origin) == small


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fault_sets())
def test_every_loadable_scenario_survives_a_dump_and_reload(text: str) -> None:
    try:
        sc = load_scenario_text(text, "p.yaml")
    except ScenarioError:
        return
    assert load_scenario_text(dump_scenario(sc), "p.yaml") == sc


def test_the_module_docstring_example_is_a_valid_scenario() -> None:
    example = textwrap.dedent((fleetpulse.sim.scenario.__doc__ or "").split("::\n\n", 1)[1].split("\n\n")[0])
    sc = load_scenario_text(example, "doc.yaml")
    assert {f.kind for f in sc.faults} == set(ALL_FAULT_KINDS)
    assert (sc.zones, sc.racks, sc.intervals, sc.jitter_s) == (2, 2, (1.0, 1.0, 5.0), 0.2)
    assert [f.group for f in sc.faults if f.kind == "partition"] == ["region=r2", "zone=r1-z2", ""]
