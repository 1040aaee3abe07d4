"""The judge of generated scenarios catches each kind of broken promise: plays are doctored
(a page removed, a false page or a second blanket added) and must be flagged, so a fuzz run
that finds nothing means the checker kept its promise, not that the judge looked away."""

from __future__ import annotations

import dataclasses

from fleetpulse.sim.judge import Played, play, violations
from fleetpulse.sim.scenario import load_scenario_text
from policies.downcheck import DownNotice

CRASH = """
name: crash
hosts: 12
regions: 2
interval: 5
duration: 200
metrics: false
faults:
  - at: 40
    crash: [r1-h001]
"""

CUT = """
name: cut
hosts: 20
regions: 2
interval: 5
duration: 240
metrics: false
faults:
  - at: 60
    partition: {region: r2}
    for: 60
    spool: false
"""


def _doctored(played: Played, notices: list[DownNotice]) -> Played:
    return dataclasses.replace(played, notices=sorted(notices, key=lambda n: n.at))


def test_the_untouched_plays_keep_the_promise() -> None:
    for text in (CRASH, CUT):
        assert violations(play(load_scenario_text(text, "<t>"))) == []


def test_a_missing_page_is_flagged() -> None:
    played = play(load_scenario_text(CRASH, "<t>"))
    kept = [n for n in played.notices if n.kind != "host_down"]
    assert len(kept) < len(played.notices)
    problems = violations(_doctored(played, kept))
    assert any("r1-h001 down" in p and "not paged" in p for p in problems), problems


def test_a_page_for_a_live_host_is_flagged() -> None:
    played = play(load_scenario_text(CRASH, "<t>"))
    false = DownNotice("host_down", "firing", "r2", "r2-h003", 100.0, "doctored")
    problems = violations(_doctored(played, [*played.notices, false]))
    assert any("host_down r2-h003" in p for p in problems), problems


def test_a_page_inside_a_cut_region_is_flagged() -> None:
    played = play(load_scenario_text(CUT, "<t>"))
    assert any(n.kind == "region_unreachable" and n.state == "firing" for n in played.notices)
    cut_host = next(h for h, spans in played.cuts.items() if spans)
    false = DownNotice("host_down", "firing", "r2", cut_host, 90.0, "doctored")
    problems = violations(_doctored(played, [*played.notices, false]))
    assert any(f"host_down {cut_host}" in p for p in problems), problems


def test_a_repeated_transition_is_flagged() -> None:
    played = play(load_scenario_text(CRASH, "<t>"))
    page = next(n for n in played.notices if n.kind == "host_down" and n.state == "firing")
    again = dataclasses.replace(page, at=page.at + 1.0)
    problems = violations(_doctored(played, [*played.notices, again]))
    assert any("twice in a row" in p or "paged 2 times" in p for p in problems), problems


def test_a_second_blanket_for_one_cause_is_flagged() -> None:
    played = play(load_scenario_text(CUT, "<t>"))
    region = next(n for n in played.notices if n.kind == "region_unreachable" and n.state == "firing")
    zone = DownNotice("group_unreachable", "firing", "r2", "", region.at + 0.5, "doctored", group="region=r2")
    lifted = dataclasses.replace(zone, state="resolved", at=region.at + 30)
    problems = violations(_doctored(played, [*played.notices, zone, lifted]))
    assert any("fault #0 raised 2 blanket alerts" in p for p in problems), problems
