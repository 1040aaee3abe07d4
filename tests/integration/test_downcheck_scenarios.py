"""The down-checker against the shipped scenario suite: the simulator's fleet, a real broker and worker.

One run of ``fleetpulse/scenarios/suite.yaml`` (60 hosts in 3 regions, every fault kind the
simulator knows, about 150 s) scored against its ground truth. The scorer's verdict covers
every rule; the asserts below name the promises one by one so a failure says which broke.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from collector.contract import Topics
from fleetpulse.alerts import read_alerts
from fleetpulse.score import Report, score
from fleetpulse.simulate import load_scenario, load_truth, run_simulation
from tests.integration.helpers import wait_for_log, worker, write_policy


def _policy(path: Path) -> Path:
    sc = load_scenario("suite")
    d = sc.downcheck
    return write_policy(
        path,
        "downcheck:\n"
        f"  - {{name: suite, missed: {d.missed:g}, late: {d.late:g}, grace: {d.grace_s:g}s,"
        f" flap_window: {d.flap_window_s:g}s}}\n",
    )


def _pages(report: Report, kind: str) -> list[tuple[str, str]]:
    return [(p.host_id or p.region, p.verdict) for p in report.pages if p.kind == kind and p.verdict != "after_end"]


def test_the_scenario_suite_pages_every_real_down_and_one_alert_per_shared_cause(
    kafka_bootstrap: str, topics: Topics, unique: str, home: Path
) -> None:
    w = worker(kafka_bootstrap, topics, f"suite-{unique}", _policy(home / "policy.yaml"), home)
    try:
        wait_for_log(w, "event=worker_started")
        scenario = load_scenario("suite")
        truth_path = home / "truth.json"
        asyncio.run(run_simulation(scenario, kafka_bootstrap, topics, truth_path=truth_path, create_topics=False))
        assert w.alive(), w.log()[-4000:]
        truth = load_truth(truth_path)
        alerts = asyncio.run(read_alerts(kafka_bootstrap, topics, truth.start, max(time.time(), truth.end) + 2))
        report = score(truth, alerts)
        story = "\n".join([*report.lines(), f"{len(alerts)} alerts read from {topics.alerts}"])

        by_kind = {f.kind: f for f in truth.faults}
        partition = by_kind["partition"]
        # A partition and an ingest outage: exactly one alert each, naming the cause ...
        assert _pages(report, "region_unreachable") == [(partition.region, "true")], story
        assert [v for _, v in _pages(report, "ingest_outage")] == ["true"], story
        # ... and no host_down for a host that was alive behind either (every host_down true).
        assert all(v == "true" for _, v in _pages(report, "host_down")), story
        # A crash inside the partition is still reported.
        inside = [d for d in truth.downs if d.covered_by == f"partition {partition.region}"]
        assert inside and all(d.host_id in dict(_pages(report, "host_down")) for d in inside), story
        # A reboot is a host_rebooted.
        rebooted = next(f for f in truth.faults if f.kind == "reboot").hosts
        assert set(rebooted) <= {h for h, v in _pages(report, "host_rebooted") if v == "true"}, story
        # A flapping host pages at most once in its flap window.
        flapper = next(f for f in truth.faults if f.kind == "flap").hosts[0]
        assert [h for h, _ in _pages(report, "host_down")].count(flapper) <= 1, story
        assert report.missed == () and report.host_down_recall == 1.0, story
        assert report.verdict == "pass", story
        print(story)  # with -s: the run's score
    finally:
        w.kill()
