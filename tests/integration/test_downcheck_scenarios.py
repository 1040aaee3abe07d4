"""The down-checker against the shipped scenario suite: the simulator's fleet, a real broker and worker.

One run of ``fleetpulse/scenarios/suite.yaml`` (60 hosts in 3 regions, every fault kind the
simulator knows, about 150 s) scored against its ground truth. The scorer's verdict covers
every rule; the asserts below name the promises one by one so a failure says which broke.
"""

from __future__ import annotations

from pathlib import Path

from collector.contract import Topics
from fleetpulse.sim.scenario import load_scenario
from tests.integration.helpers import play_scenario


def test_the_scenario_suite_pages_every_real_down_and_one_alert_per_shared_cause(
    kafka_bootstrap: str, topics: Topics, unique: str, home: Path
) -> None:
    run = play_scenario(kafka_bootstrap, topics, f"suite-{unique}", load_scenario("suite"), home)
    truth, report, story = run.truth, run.report, run.story(alerts=False)
    by_kind = {f.kind: f for f in truth.faults}
    partition = by_kind["partition"]
    # A partition and an ingest outage: exactly one alert each, naming the cause ...
    assert run.pages("region_unreachable") == [(partition.region, "true")], story
    assert [v for _, v in run.pages("ingest_outage")] == ["true"], story
    # ... and no host_down for a host that was alive behind either (every host_down true).
    assert all(v == "true" for _, v in run.pages("host_down")), story
    # A crash inside the partition is still reported.
    inside = [d for d in truth.downs if d.covered_by == f"partition {partition.region}"]
    assert inside and all(d.host_id in dict(run.pages("host_down")) for d in inside), story
    # A reboot is a host_rebooted.
    rebooted = next(f for f in truth.faults if f.kind == "reboot").hosts
    assert set(rebooted) <= {h for h, v in run.pages("host_rebooted") if v == "true"}, story
    # A flapping host pages at most once in its flap window.
    flapper = next(f for f in truth.faults if f.kind == "flap").hosts[0]
    assert [h for h, _ in run.pages("host_down")].count(flapper) <= 1, story
    assert report.missed == () and report.host_down_recall == 1.0, story
    assert report.verdict == "pass", story
    print(story)  # with -s: the run's score
