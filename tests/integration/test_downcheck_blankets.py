"""Blankets and their release through a real broker and worker: ``fleetpulse/scenarios/blankets.yaml``.

A 60-host fleet (r1, r3 beating every 5 s; r2, r4 every 10 s) goes through a 60 s ingest
outage, a region cut on each interval and a cut of a zone holding 40 % of its region on each
interval, all with lost beats, and a host dies under each. One run (about 4 minutes) scored
against its ground truth; the asserts name the promises one by one.
"""

from __future__ import annotations

from pathlib import Path

from collector.contract import Alert, Topics
from fleetpulse.sim.scenario import load_scenario
from tests.integration.helpers import play_scenario

LAG_S = 2.0  # the worker's tick (0.5 s) plus delivery through the broker, both ways


def _subject(a: Alert) -> str:
    return a.labels.get("group") or (f"region={a.region}" if a.rule == "region_unreachable" else "fleet")


def test_blankets_page_nobody_alive_raise_one_alert_each_and_release_the_dead_in_time(
    kafka_bootstrap: str, topics: Topics, unique: str, home: Path
) -> None:
    scenario = load_scenario("blankets")
    run = play_scenario(kafka_bootstrap, topics, f"blankets-{unique}", scenario, home)
    truth, alerts, story = run.truth, run.alerts, run.story()
    # One alert per cut, each true: the outage, both region cuts, both 40 % zones.
    assert run.pages("ingest_outage") == [("fleet", "true")], story
    assert sorted(run.pages("region_unreachable")) == [("r1", "true"), ("r2", "true")], story
    assert sorted(run.pages("group_unreachable")) == [("zone=r3-z2", "true"), ("zone=r4-z2", "true")], story
    # Zero host_down for a live host, before or after any blanket lifted ...
    assert all(v == "true" for _, v in run.pages("host_down")), story
    # ... and every host that died under a blanket paged, within late x interval + grace
    # of that blanket's release.
    crashed = {h: f for f in truth.faults if f.kind == "crash" for h in f.hosts}
    assert len(crashed) == 6, story
    d = scenario.downcheck
    resolved = [a for a in alerts if a.state == "resolved" and a.rule in ("ingest_outage", "region_unreachable",
                                                                            "group_unreachable")]  # fmt: skip
    intervals = {h.host_id: h.interval_s for h in scenario.hosts}
    groups = {h.host_id: {"fleet", f"region={h.region}", f"zone={h.labels['zone']}"} for h in scenario.hosts}
    for host_id, fault in crashed.items():
        page = next((a for a in alerts if a.rule == "host_down" and a.host_id == host_id), None)
        assert page is not None and page.state == "firing", f"{host_id} not paged\n{story}"
        crash_at = fault.at
        release = next(a for a in resolved if _subject(a) in groups[host_id] and a.at > crash_at)
        bound = release.at + d.late * intervals[host_id] + d.grace_s + LAG_S
        assert page.at <= bound, f"{host_id} paged {page.at - release.at:.1f}s after its release\n{story}"
    assert run.report.verdict == "pass", story
    print(story)  # with -s: the run's score and alerts
