"""Scoring a run's down-check alerts against its ground truth (pure; the CLI without a broker)."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.contract import Alert, Heartbeat, PeerProbe, encode
from fleetpulse.sim.scenario import load_scenario_text
from fleetpulse.sim.score import Report, dedupe, percentile, score
from fleetpulse.sim.timeline import Timeline
from fleetpulse.sim.truth import Down, Expectation, FaultWindow, Truth, ground_truth, write_truth
from policies.alerts import downcheck_alert
from policies.downcheck import Correlator, DownNotice, HostWatch
from tests.cli import fleetpulse

START = 1000.0
END = 1120.0  # a 120 s run; timeout 4 s, slack 6 s, so pages count until 1126


def truth(
    faults: list[FaultWindow] | None = None,
    downs: list[Down] | None = None,
    expectations: list[Expectation] | None = None,
    flap_window_s: float = 300.0,
) -> Truth:
    return Truth(
        scenario="unit",
        origin="<unit>",
        seed=1,
        run_id="run1",
        start=START,
        end=END,
        interval_s=1.0,
        timeout_s=4.0,
        slack_s=6.0,
        flap_window_s=flap_window_s,
        regions=["r1", "r2", "r3"],
        host_count=30,
        faults=faults or [],
        downs=downs or [],
        expectations=expectations or [],
    )


def fired(kind: str, at: float, host: str = "", region: str = "") -> Alert:
    """The wire alert the worker publishes for a firing notice (same ids as the real thing)."""
    if host and not region:
        region = host.split("-")[0]
    notice = DownNotice(kind, "firing", region, host, at, "unit")  # type: ignore[arg-type]
    return downcheck_alert(notice, at)


def resolved(first: Alert, at: float) -> Alert:
    notice = DownNotice(first.rule, "resolved", first.region, first.host_id, at, "unit")  # type: ignore[arg-type]
    return downcheck_alert(notice, first.started_at)


def partition(index: int, region: str, at: float, end: float) -> tuple[FaultWindow, Expectation]:
    fault = FaultWindow(index, "partition", at, end, region=region, details={"for_s": end - at})
    expect = Expectation("region_unreachable", index, at, end + 6.0, 1, 1, region=region, note="exactly one")
    return fault, expect


def crash(
    index: int, host: str, at: float, until: float | None = None, covered_by: str = ""
) -> tuple[FaultWindow, Down]:
    region = host.split("-")[0]
    fault = FaultWindow(index, "crash", at, until, hosts=[host])
    return fault, Down(host, region, at, until, index, required=True, covered_by=covered_by)


def flap(index: int, host: str, at: float, end: float) -> tuple[FaultWindow, Expectation]:
    fault = FaultWindow(index, "flap", at, end, hosts=[host])
    expect = Expectation(
        "flap", index, at, end + 6.0, 0, 1, region=host.split("-")[0], host_id=host, host_down_allowed=True
    )
    return fault, expect


def reboot(index: int, host: str, at: float, downtime_s: float, allowed: bool) -> tuple[FaultWindow, Expectation]:
    fault = FaultWindow(index, "reboot", at, at + downtime_s, hosts=[host], details={"downtime_s": downtime_s})
    expect = Expectation(
        "host_rebooted",
        index,
        at,
        at + downtime_s + 6.0,
        1,
        1,
        region=host.split("-")[0],
        host_id=host,
        host_down_allowed=allowed,
    )
    return fault, expect


def suite_truth() -> Truth:
    """A crash of r1-h001 at 10 s, a reboot of r3-h002 at 30 s and a partition of r2 from 40 to 55 s."""
    f_crash, down = crash(0, "r1-h001", START + 10)
    f_reboot, e_reboot = reboot(1, "r3-h002", START + 30, 5.0, allowed=True)
    f_part, e_part = partition(2, "r2", START + 40, START + 55)
    return truth([f_crash, f_reboot, f_part], [down], [e_reboot, e_part])


def suite_alerts() -> list[Alert]:
    down = fired("host_down", START + 13.5, "r1-h001")
    rebooted = fired("host_rebooted", START + 35.4, "r3-h002")
    region = fired("region_unreachable", START + 42.5, region="r2")
    return [down, rebooted, resolved(rebooted, START + 35.4), region, resolved(region, START + 55.5)]


def failures_of(report: Report) -> list[str]:
    return list(report.failures)


# -- verdicts ---------------------------------------------------------------------------------


def test_a_perfect_run_passes() -> None:
    report = score(suite_truth(), suite_alerts())
    assert report.verdict == "pass", report.failures
    assert report.failures == ()
    assert (report.host_down_precision, report.host_down_recall) == (1.0, 1.0)
    assert (report.required_downs, report.detected_downs, report.missed) == (1, 1, ())
    counts = {k.kind: (k.pages, k.true_pages, k.false_pages) for k in report.kinds}
    assert counts["host_down"] == (1, 1, 0)
    assert counts["host_rebooted"] == (1, 1, 0)
    assert counts["region_unreachable"] == (1, 1, 0)
    assert counts["ingest_outage"] == (0, 0, 0)
    assert [e.ok for e in report.expectations] == [True, True]
    assert report.latencies_s == (3.5,) and report.latency_ok is True


def test_a_host_down_for_a_live_host_in_a_partitioned_region_is_false_and_fails() -> None:
    alerts = [*suite_alerts(), fired("host_down", START + 44.0, "r2-h004")]
    report = score(suite_truth(), alerts)
    assert report.verdict == "fail"
    (false,) = report.false_pages
    assert (false.kind, false.host_id) == ("host_down", "r2-h004")
    assert "r2-h004 was not down; during partition r2 (#2)" in false.reason
    assert "1 false host_down: r2-h004 t=44.0s" in failures_of(report)
    assert report.host_down_precision == 0.5
    assert report.host_down_recall == 1.0


def test_two_region_unreachable_for_one_partition_fail_the_partition() -> None:
    again = fired("region_unreachable", START + 50.0, region="r2")
    first = fired("region_unreachable", START + 42.5, region="r2")
    alerts = [*suite_alerts()[:3], first, resolved(first, START + 48.0), again]
    report = score(suite_truth(), alerts)
    assert report.verdict == "fail"
    assert failures_of(report) == ["partition r2 (#2): 2 region_unreachable, want exactly 1"]
    counts = {k.kind: (k.pages, k.true_pages, k.false_pages) for k in report.kinds}
    assert counts["region_unreachable"] == (2, 1, 1)


def test_a_partition_without_its_region_alert_fails() -> None:
    report = score(suite_truth(), suite_alerts()[:3])
    assert failures_of(report) == ["partition r2 (#2): 0 region_unreachable, want exactly 1"]


def test_a_region_unreachable_without_a_partition_is_false() -> None:
    report = score(suite_truth(), [*suite_alerts(), fired("region_unreachable", START + 80.0, region="r1")])
    assert failures_of(report) == ["1 false region_unreachable: r1 t=80.0s"]


def test_a_required_down_without_host_down_is_missed_and_a_short_one_is_not() -> None:
    f_short, short = crash(3, "r3-h009", START + 70, START + 73)
    t = suite_truth()
    t = replace(t, faults=[*t.faults, f_short], downs=[*t.downs, replace(short, required=False)])
    report = score(t, suite_alerts()[1:])  # no host_down for r1-h001
    (missed,) = report.missed
    assert (missed.host_id, missed.fault, missed.since) == ("r1-h001", 0, START + 10)
    assert missed.deadline == END + 6.0  # down to the end: a page counts until end + slack
    assert report.host_down_recall == 0.0 and report.host_down_precision == 1.0
    assert failures_of(report) == ["missed down r1-h001 (#0): no host_down between t=10.0s and t=126.0s"]


def test_a_host_down_after_the_host_came_back_does_not_detect_its_down() -> None:
    f_crash, down = crash(0, "r1-h001", START + 10, START + 20)
    report = score(truth([f_crash], [down]), [fired("host_down", START + 40.0, "r1-h001")])
    assert [m.host_id for m in report.missed] == ["r1-h001"]
    assert [p.verdict for p in report.pages] == ["false"]


def test_a_down_under_a_partition_may_be_paged_after_the_partition_ends() -> None:
    f_part, e_part = partition(0, "r2", START + 40, START + 80)
    f_crash, down = crash(1, "r2-h003", START + 45, covered_by="partition r2")
    region = fired("region_unreachable", START + 42.5, region="r2")
    alerts = [region, resolved(region, START + 80.5), fired("host_down", START + 82.0, "r2-h003")]
    report = score(truth([f_part, f_crash], [down], [e_part]), alerts)
    assert report.verdict == "pass", report.failures
    assert report.detected_downs == 1
    assert report.latencies_s == ()  # it waited for the partition by design: not a detection latency
    assert report.latency_ok is None


def test_detection_latency_percentiles_are_nearest_rank() -> None:
    delays = [3.0, 4.0, 5.0, 10.0]
    faults, downs, alerts = [], [], []
    for i, delay in enumerate(delays):
        f, d = crash(i, f"r1-h00{i + 1}", START + 10 * (i + 1))
        faults.append(f)
        downs.append(d)
        alerts.append(fired("host_down", d.since + delay, d.host_id))
    report = score(truth(faults, downs), alerts)
    assert report.latencies_s == (3.0, 4.0, 5.0, 10.0)
    assert (report.latency_p50_s, report.latency_p99_s) == (4.0, 10.0)
    assert report.latency_limit_s == 6.0
    assert report.latency_ok is False  # reported, not failed on
    assert report.verdict == "pass"


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 0.5, None),
        ([7.0], 0.99, 7.0),
        ([4.0, 1.0, 3.0, 2.0], 0.5, 2.0),
        ([float(i) for i in range(1, 101)], 0.99, 99.0),
        ([float(i) for i in range(1, 101)], 0.5, 50.0),
        ([float(i) for i in range(1, 201)], 0.99, 198.0),
    ],
)
def test_percentile_is_the_nearest_rank(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


# -- duplicates -------------------------------------------------------------------------------


def test_redelivered_and_reannounced_firings_count_once() -> None:
    down = fired("host_down", START + 13.5, "r1-h001")
    announced_again = fired("host_down", START + 14.0, "r1-h001")  # a worker replay: new id, still open
    alerts = [*suite_alerts(), down, announced_again, suite_alerts()[3]]
    report = score(suite_truth(), alerts)
    assert report.verdict == "pass", report.failures
    assert report.duplicates == 3
    assert [p.kind for p in report.pages].count("host_down") == 1


def test_a_host_rebooted_twice_counts_twice_even_when_read_out_of_order() -> None:
    first = fired("host_rebooted", START + 35.0, "r3-h002")
    second = fired("host_rebooted", START + 90.0, "r3-h002")
    # firing and resolution share a time: read in either order, the second reboot still counts
    alerts = [second, resolved(second, START + 90.0), resolved(first, START + 35.0), first]
    firings, duplicates = dedupe(alerts)
    assert [a.at for a in firings] == [START + 35.0, START + 90.0] and duplicates == 0


def test_other_runs_other_kinds_and_resolutions_are_not_pages() -> None:
    earlier = fired("host_down", START - 500.0, "r1-h001")  # a previous run on the same topic
    metric = replace(fired("host_down", START + 20.0, "r1-h005"), kind="metric", rule="cpu_high")
    report = score(suite_truth(), [earlier, metric, *suite_alerts()])
    assert report.verdict == "pass", report.failures
    assert report.outside_window == 1
    assert len(report.pages) == 3


# -- allowed host_down: long reboots, flapping --------------------------------------------------


def test_a_long_reboot_allows_one_host_down_and_not_two() -> None:
    alerts = [*suite_alerts(), fired("host_down", START + 33.5, "r3-h002")]
    assert score(suite_truth(), alerts).verdict == "pass"
    first = alerts[-1]
    alerts += [resolved(first, START + 35.4), fired("host_down", START + 38.0, "r3-h002")]
    report = score(suite_truth(), alerts)
    assert report.verdict == "fail"
    assert [p.reason for p in report.false_pages] == ["one more than reboot r3-h002 (#1) allows"]


def test_a_short_reboot_allows_no_host_down() -> None:
    f_reboot, e_reboot = reboot(0, "r3-h002", START + 30, 2.0, allowed=False)
    alerts = [fired("host_down", START + 33.0, "r3-h002"), fired("host_rebooted", START + 33.4, "r3-h002")]
    report = score(truth([f_reboot], [], [e_reboot]), alerts)
    assert failures_of(report) == ["1 false host_down: r3-h002 t=33.0s"]


def flap_alerts(*down_at: float) -> list[Alert]:
    out = []
    for at in down_at:
        page = fired("host_down", START + at, "r1-h007")
        out += [page, resolved(page, START + at + 3)]
    return out


def test_flapping_with_one_host_down_per_window_passes() -> None:
    f_flap, e_flap = flap(0, "r1-h007", START + 20, START + 80)
    alerts = [*flap_alerts(24.0), fired("host_flapping", START + 36.0, "r1-h007")]
    report = score(truth([f_flap], [], [e_flap]), alerts)
    assert report.verdict == "pass", report.failures
    assert [(p.kind, p.verdict) for p in report.pages] == [("host_down", "true"), ("host_flapping", "true")]


def test_flapping_with_two_host_downs_in_one_window_fails() -> None:
    f_flap, e_flap = flap(0, "r1-h007", START + 20, START + 80)
    report = score(truth([f_flap], [], [e_flap]), flap_alerts(24.0, 36.0))
    assert report.verdict == "fail"
    assert failures_of(report) == ["flap r1-h007 (#0): 2 host_down within one 300s flap window, want at most 1"]
    assert report.host_down_precision == 0.5


def test_flapping_longer_than_the_flap_window_allows_one_host_down_per_window() -> None:
    f_flap, e_flap = flap(0, "r1-h007", START + 20, START + 110)
    report = score(truth([f_flap], [], [e_flap], flap_window_s=40.0), flap_alerts(24.0, 70.0))
    assert report.verdict == "pass", report.failures


def test_host_flapping_for_a_steady_host_is_false() -> None:
    report = score(suite_truth(), [*suite_alerts(), fired("host_flapping", START + 60.0, "r1-h002")])
    assert failures_of(report) == ["1 false host_flapping: r1-h002 t=60.0s"]


# -- the run's end -----------------------------------------------------------------------------


def test_the_fleets_silence_after_the_end_is_not_scored() -> None:
    alerts = [*suite_alerts(), fired("ingest_outage", END + 2.5), fired("host_down", END + 3.5, "r1-h002")]
    report = score(suite_truth(), alerts)
    assert report.verdict == "pass", report.failures
    assert [(p.kind, p.verdict) for p in report.after_end] == [
        ("ingest_outage", "after_end"),
        ("host_down", "after_end"),
    ]
    assert {k.kind: k.pages for k in report.kinds}["ingest_outage"] == 0


def test_hosts_known_from_an_earlier_run_rebooting_at_the_start_are_not_scored() -> None:
    carried = [fired("host_rebooted", START + 0.3, "r1-h004"), fired("host_rebooted", START + 0.6, "r2-h001")]
    report = score(suite_truth(), [*carried, *suite_alerts()])
    assert report.verdict == "pass", report.failures
    assert [(p.host_id, p.verdict) for p in report.unscored] == [
        ("r1-h004", "carried_over"),
        ("r2-h001", "carried_over"),
    ]
    assert {k.kind: k.pages for k in report.kinds}["host_rebooted"] == 1
    later = score(suite_truth(), [*suite_alerts(), fired("host_rebooted", START + 60.0, "r1-h004")])
    assert later.failures == ("1 false host_rebooted: r1-h004 t=60.0s",)


def test_a_fault_near_the_end_may_still_be_paged_after_it() -> None:
    f_crash, down = crash(0, "r1-h001", END - 2)
    report = score(truth([f_crash], [down]), [fired("host_down", END + 2.0, "r1-h001")])
    assert report.verdict == "pass" and report.detected_downs == 1


# -- report -------------------------------------------------------------------------------------


def test_the_report_is_json_and_a_readable_table() -> None:
    report = score(suite_truth(), [*suite_alerts(), fired("host_down", START + 44.0, "r2-h004")])
    body = json.loads(json.dumps(report.to_json()))
    assert body["verdict"] == "fail"
    assert body["kinds"]["host_down"] == {"pages": 2, "true": 1, "false": 1}
    assert body["host_down_precision"] == 0.5 and body["latency_p99_s"] == 3.5
    assert body["failures"] == ["1 false host_down: r2-h004 t=44.0s"]
    lines = report.lines()
    assert lines[0] == "score of unit run run1: FAIL"
    assert any(line.split() == ["host_down", "2", "1", "1"] for line in lines)
    assert "  ok   partition r2 (#2): 1 region_unreachable, want exactly 1" in lines
    assert lines[-1] == "verdict: fail"


# -- properties ---------------------------------------------------------------------------------

HOSTS = [f"r{r}-h00{i}" for r in (1, 2) for i in range(1, 5)]


@st.composite
def runs(draw: st.DrawFn) -> tuple[Truth, list[Alert]]:
    """Some crashed hosts (required or not) and host_down pages at any time, for any host."""
    downs = []
    for i, host in enumerate(draw(st.lists(st.sampled_from(HOSTS), unique=True, max_size=4))):
        since = START + draw(st.floats(0, 100))
        until = draw(st.one_of(st.none(), st.floats(since + 1, END)))
        downs.append(Down(host, host[:2], since, until, i, required=draw(st.booleans())))
    pages = [
        fired("host_down", START + draw(st.floats(-20, 140)), draw(st.sampled_from(HOSTS)))
        for _ in range(draw(st.integers(0, 8)))
    ]
    faults = [FaultWindow(d.fault, "crash", d.since, d.until, hosts=[d.host_id]) for d in downs]
    return truth(faults, downs), pages


@settings(max_examples=200, deadline=None)
@given(runs(), st.floats(0, 119.9), st.randoms())
def test_precision_and_recall_are_shares_and_a_false_page_never_raises_precision(
    run: tuple[Truth, list[Alert]], false_at: float, rnd: random.Random
) -> None:
    t, alerts = run
    report = score(t, alerts)
    assert 0.0 <= report.host_down_precision <= 1.0 and 0.0 <= report.host_down_recall <= 1.0
    assert report.detected_downs + len(report.missed) == report.required_downs
    assert (report.verdict == "pass") == (not report.failures)
    worse = score(t, [*alerts, fired("host_down", START + false_at, "r3-h099")])  # never down
    assert worse.host_down_precision <= report.host_down_precision
    assert worse.host_down_recall == report.host_down_recall
    shuffled = list(alerts)
    rnd.shuffle(shuffled)
    assert score(t, shuffled) == report  # the order alerts are read in does not matter


# -- against the pure down-checker, in virtual time ----------------------------------------------

SCENARIO = """\
name: suite
seed: 7
hosts: 30
regions: 3
interval: 1
duration: 120
witnesses: 2
downcheck: {missed: 3, grace: 1, flap_window: 300}
faults:
  - {at: 10, crash: {count: 1}}
  - {at: 20, crash: [r1-h003], until: 40}
  - {at: 30, reboot: {region: r2, count: 1}, downtime: 5}
  - {at: 40, partition: r2, for: 15, spool: true}
  - {at: 60, ingest_outage: true, for: 10, spool: true}
  - {at: 80, flap: {count: 1}, for: 30, down: 5, up: 5}
  - {at: 90, clock_skew: {count: 3}, offset: 120}
  - {at: 95, slow: {region: r3}, delay: 0.5, jitter: 0.5, for: 15}
"""


def play_through_downchecker(text: str, start: float = START) -> tuple[Truth, list[Alert]]:
    """What a worker would publish for the scenario: its timeline fed to HostWatch + Correlator."""
    sc = load_scenario_text(text, "suite.yaml")
    c = Correlator(settings=sc.downcheck)
    watches: dict[str, HostWatch] = {}
    alerts: list[Alert] = []
    started: dict[str, float] = {}

    def publish(notices: list[DownNotice]) -> None:
        for n in notices:
            if n.state == "firing":
                started[n.fingerprint] = n.at
            alerts.append(downcheck_alert(n, started.get(n.fingerprint, n.at)))

    clock = start

    def advance(now: float) -> None:  # the worker's half-second tick
        nonlocal clock
        while clock + 0.5 <= now:
            clock += 0.5
            for watch in watches.values():
                sig = watch.due(clock, sc.downcheck)
                if sig is not None:
                    publish(c.signal(sig))
            publish(c.tick(clock))

    for record in Timeline(sc, start, "run1").records():
        now = start + record.deliver_at
        advance(now)
        ev = record.event
        if isinstance(ev, Heartbeat):
            if ev.host_id not in watches:
                watches[ev.host_id], sig = HostWatch.first(
                    ev.host_id, ev.region, ev.boot_id, ev.seq, ev.sent_at, ev.interval_s, now, ev.labels
                )
                publish(c.signal(sig))
            else:
                for sig in watches[ev.host_id].observe(ev.boot_id, ev.seq, ev.sent_at, ev.interval_s, now):
                    publish(c.signal(sig))
        elif isinstance(ev, PeerProbe):
            c.probe(ev.host_id, ev.target, ev.ok, now)
    advance(start + sc.duration_s + 30)
    return ground_truth(sc, start, "run1"), alerts


def test_the_down_checker_passes_the_suite_played_in_virtual_time() -> None:
    t, alerts = play_through_downchecker(SCENARIO)
    report = score(t, alerts)
    assert report.verdict == "pass", report.lines()
    assert report.detected_downs == report.required_downs == 2
    assert report.latency_ok is True
    assert [e.text for e in report.expectations if e.kind == "region_unreachable"] == [
        "1 region_unreachable, want exactly 1"
    ]
    # every host stops at the end: the ingest outage that follows is not held against the run
    assert [p.kind for p in report.after_end] == ["ingest_outage"]


# -- command line (no broker) ---------------------------------------------------------------------


def test_simulate_describe_prints_the_fleet_and_faults_without_kafka(tmp_path: Path) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text(SCENARIO)
    done = fleetpulse("simulate", str(path), "--describe", "--hosts", "12", "--bootstrap", "127.0.0.1:1")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("scenario suite: 12 hosts in 3 regions (r1, r2, r3), interval 1s, duration 120s")
    assert lines[4] == "  #3 t=40s..55s partition r2"


def test_simulate_refuses_a_bad_scenario_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("hosts: 4\nregions: 2\nfaults:\n  - {at: 5, partition: r9, for: 10}\n  - {at: 1, crash: []}\n")
    done = fleetpulse("simulate", str(path), "--describe")
    assert done.returncode == 2
    assert f"{path}:4: partition: unknown region 'r9' (regions: r1, r2)" in done.stderr
    assert f"{path}:5: crash: no hosts given" in done.stderr
    assert done.stdout == ""


def test_score_reads_alert_lines_and_exits_by_verdict(tmp_path: Path) -> None:
    truth_file = tmp_path / "truth.json"
    write_truth(suite_truth(), truth_file)
    good = tmp_path / "good.jsonl"
    good.write_text("".join(encode(a).decode() + "\n" for a in suite_alerts()))
    done = fleetpulse("score", "--truth", str(truth_file), "--alerts", str(good))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "verdict: pass"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good.read_text() + encode(fired("host_down", START + 44.0, "r2-h004")).decode() + "\n")
    done = fleetpulse("score", "--truth", str(truth_file), "--alerts", str(bad), "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["failures"] == ["1 false host_down: r2-h004 t=44.0s"]


def test_score_refuses_a_file_that_is_not_a_truth(tmp_path: Path) -> None:
    path = tmp_path / "truth.json"
    path.write_text('{"scenario": "x"}\n')
    done = fleetpulse("score", "--truth", str(path), "--alerts", str(path))
    assert done.returncode == 2
    assert f"fleetpulse score: {path}: not a truth file written by 'fleetpulse simulate'" in done.stderr


def test_simulate_and_score_have_help() -> None:
    for command in ("simulate", "score"):
        done = fleetpulse(command, "--help")
        assert done.returncode == 0 and "usage: fleetpulse" in done.stdout, command


def test_latency_is_measured_to_when_the_page_was_announced_not_to_its_decision_time() -> None:
    # A worker reading heartbeats late decides on the fleet's clock (at) and publishes later.
    fault, down = crash(0, "r1-h001", START + 10)
    page = fired("host_down", START + 14, host="r1-h001")
    late = replace(page, annotations={"announced_at": f"{START + 25:.3f}"})
    report = score(truth(faults=[fault], downs=[down]), [late])
    assert report.latencies_s == (15.0,) and report.latency_ok is False
    assert report.host_down_precision == 1.0 and report.verdict == "pass"


# -- group partitions, agent restarts, hosts cut off alone ---------------------------------------

ZONE = "zone=r1-z2"


def zone_partition(index: int, at: float, end: float, group: str = ZONE) -> tuple[FaultWindow, Expectation]:
    fault = FaultWindow(index, "partition", at, end, hosts=["r1-h002", "r1-h004"], group=group)
    expect = Expectation("group_unreachable", index, at, end + 6.0, 1, 1, region="r1", group=group, note="exactly one")
    return fault, expect


def group_fired(at: float, group: str = ZONE, region: str = "r1") -> Alert:
    notice = DownNotice("group_unreachable", "firing", region, "", at, "unit", group=group)
    return downcheck_alert(notice, at)


def group_resolved(first: Alert, at: float) -> Alert:
    group = first.labels["group"]
    notice = DownNotice("group_unreachable", "resolved", first.region, "", at, "unit", group=group)
    return downcheck_alert(notice, first.started_at)


def test_a_group_alert_naming_the_partitioned_zone_is_owed_and_true() -> None:
    fault, expect = zone_partition(0, START + 40, START + 55)
    first = group_fired(START + 42.5)
    report = score(truth([fault], [], [expect]), [first, group_resolved(first, START + 55.5)])
    assert report.verdict == "pass", report.failures
    assert {k.kind: (k.pages, k.true_pages, k.false_pages) for k in report.kinds}["group_unreachable"] == (1, 1, 0)
    (result,) = report.expectations
    assert (result.label, result.text) == ("partition zone=r1-z2 (#0)", "1 group_unreachable, want exactly 1")
    assert report.pages[0].group == ZONE and report.pages[0].subject == ZONE


def test_a_group_alert_is_matched_by_its_group_label_not_its_region() -> None:
    fault, expect = zone_partition(0, START + 40, START + 55)
    other = group_fired(START + 42.5, group="zone=r1-z1")  # same region, another zone
    region = fired("region_unreachable", START + 43.0, region="r1")  # the zone's region was not cut off
    report = score(truth([fault], [], [expect]), [other, region])
    assert failures_of(report) == [
        "partition zone=r1-z2 (#0): 0 group_unreachable, want exactly 1",
        "1 false group_unreachable: zone=r1-z1 t=42.5s",
        "1 false region_unreachable: r1 t=43.0s",
    ]
    wrong = {p.kind: p.reason for p in report.false_pages}
    assert wrong["group_unreachable"] == "zone=r1-z1 was not cut off; no fault explains it"
    assert wrong["region_unreachable"] == "r1 was not cut off; no fault explains it"


def test_two_group_alerts_for_one_partition_fail_it_one_alert_per_shared_cause() -> None:
    fault, expect = zone_partition(0, START + 40, START + 55)
    first = group_fired(START + 42.5)
    alerts = [first, group_resolved(first, START + 47.0), group_fired(START + 49.0)]
    report = score(truth([fault], [], [expect]), alerts)
    assert failures_of(report) == ["partition zone=r1-z2 (#0): 2 group_unreachable, want exactly 1"]
    assert [p.verdict for p in report.pages] == ["true", "false"]


def test_a_down_under_a_group_partition_may_be_paged_after_the_partition_ends() -> None:
    fault, expect = zone_partition(0, START + 40, START + 80)
    f_crash, down = crash(1, "r1-h002", START + 45, START + 60, covered_by=f"group {ZONE}")
    first = group_fired(START + 42.5)
    alerts = [first, group_resolved(first, START + 80.5), fired("host_down", START + 82.0, "r1-h002")]
    report = score(truth([fault, f_crash], [down], [expect]), alerts)
    assert report.verdict == "pass", report.failures
    assert report.detected_downs == 1 and report.latencies_s == ()  # it waited for the group by design
    uncovered = replace(down, covered_by="")  # without the cover the page comes after the down ended
    assert score(truth([fault, f_crash], [uncovered], [expect]), alerts).verdict == "fail"


@pytest.mark.parametrize(("kind", "fault_kind"), [("restart", "restart"), ("partition_host", "partition")])
def test_a_long_agent_restart_or_a_host_cut_off_alone_allows_one_host_down_and_owes_nothing(
    kind: str, fault_kind: str
) -> None:
    fault = FaultWindow(0, fault_kind, START + 30, START + 40, hosts=["r1-h004"])
    expect = Expectation(kind, 0, START + 30, START + 46, 0, 1, region="r1", host_id="r1-h004", host_down_allowed=True)
    t = truth([fault], [], [expect])
    assert score(t, []).verdict == "pass"
    page = fired("host_down", START + 35.0, "r1-h004")
    report = score(t, [page])
    assert report.verdict == "pass", report.failures
    assert report.expectations[0].text == "1 host_down allowed, want at most 1"
    again = score(t, [page, resolved(page, START + 36.0), fired("host_down", START + 38.0, "r1-h004")])
    assert [p.reason for p in again.false_pages] == [f"one more than {fault_kind} r1-h004 (#0) allows"]
    assert score(t, [fired("host_rebooted", START + 40.5, "r1-h004")]).verdict == "fail"  # same boot: no reboot


def test_a_short_agent_restart_allows_no_host_down() -> None:
    fault = FaultWindow(0, "restart", START + 30, START + 32, hosts=["r1-h004"], details={"downtime_s": 2.0})
    expect = Expectation("restart", 0, START + 30, START + 38, 0, 0, region="r1", host_id="r1-h004")
    report = score(truth([fault], [], [expect]), [fired("host_down", START + 34.0, "r1-h004")])
    assert failures_of(report) == ["1 false host_down: r1-h004 t=34.0s"]
    assert report.expectations[0].text == "0 host_down allowed, want exactly 0"


GROUPS_SCENARIO = """\
name: groups
seed: 5
hosts: 60
regions: 2
zones: 3
racks: 2
interval: 1
intervals: [1, 1, 2]
jitter: 0.3
duration: 120
downcheck: {missed: 4, late: 1.5, grace: 1, flap_window: 300}
faults:
  - {at: 10, partition: {zone: r1-z2}, for: 15}
  - {at: 14, crash: [r1-h005]}
  - {at: 35, restart: {region: r2, count: 1}, downtime: 10}
  - {at: 50, partition: {rack: r2-z3-r1}, for: 15}
  - {at: 75, partition: {region: r1, count: 2}, for: 10}
  - {at: 95, restart: {region: r1, count: 1}, downtime: 2}
"""


def test_the_down_checker_passes_group_partitions_restarts_and_mixed_intervals_in_virtual_time() -> None:
    t, alerts = play_through_downchecker(GROUPS_SCENARIO)
    report = score(t, alerts)
    assert report.verdict == "pass", report.lines()
    groups = [(p.group, p.verdict) for p in report.pages if p.kind == "group_unreachable"]
    assert groups == [("zone=r1-z2", "true"), ("rack=r2-z3-r1", "true")]
    # The crash inside the zone is paged once the zone is back (no witnesses to see it earlier).
    (down,) = t.downs
    assert (down.host_id, down.covered_by, down.required) == ("r1-h005", "group zone=r1-z2", True)
    assert report.detected_downs == 1 and not report.missed
