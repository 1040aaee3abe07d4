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

# A crash wave at 11 s quorate as a fleet-wide instant, then a real ingest outage (30-74.7 s) while
# the crashed hosts are still held: the fleet is cut off again before its first cut ended.
RECUT = """
name: fuzz
seed: 2157
hosts: 21
regions: 4
interval: 2
duration: 125
metrics: false
downcheck:
  missed: 3.0
  late: 1.5
  grace: 1
  region_share: 0.5
  group_share: 0.5
  min_region_hosts: 5
  min_group_hosts: 3
  flap_window: 0
faults:
- until: 27.0
  crash:
  - r3-h004
  - r4-h001
  - r2-h001
  at: 2
- reboot:
  - r1-h004
  - r4-h003
  - r4-h001
  - r4-h004
  - r4-h002
  - r3-h005
  - r1-h003
  - r1-h006
  at: 15
  downtime: 30.2
- crash:
  - r2-h004
  - r1-h001
  - r3-h005
  - r2-h005
  - r3-h001
  - r1-h004
  - r1-h006
  - r2-h003
  at: 11
- restart:
  - r1-h001
  - r4-h005
  - r2-h002
  - r3-h001
  downtime: 25.7
  at: 49
- crash:
  - r2-h003
  - r2-h002
  - r1-h001
  - r1-h005
  - r3-h005
  - r4-h002
  until: 25.0
  at: 15
- at: 30
  spool: false
  for: 44.7
  ingest_outage: true
intervals:
- 5
- 2
- 5
jitter: 0.5
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


def _moved_page(played: Played, host_id: str, at: float) -> Played:
    def moved(n: DownNotice) -> DownNotice:
        return dataclasses.replace(n, at=at) if n.kind == "host_down" and n.host_id == host_id else n

    return _doctored(played, [moved(n) for n in played.notices])


def test_a_host_held_past_its_co_stoppers_return_is_flagged_late() -> None:
    played = play(load_scenario_text(RECUT, "<t>"))
    assert violations(played) == []
    page = next(n for n in played.notices if n.kind == "host_down" and n.host_id == "r3-h001")
    # Its co-stoppers were back by 77.4 s; the fleet stayed silent only by the outage's own
    # hosts (a silence it had no part in): the page is owed late x interval + grace (+ the
    # judge's slack) after that, by 86.9 s. Held until the outage's last host was back, it
    # came at 87.5 s: flagged.
    assert violations(_moved_page(played, "r3-h001", 86.8)) == []
    late = violations(_moved_page(played, "r3-h001", 87.5))
    assert any("r3-h001 down (under a blanket)" in p and "not paged by 86.9s" in p for p in late), late
    missing = violations(_doctored(played, [n for n in played.notices if n is not page]))
    assert any("r3-h001 down" in p and "(pages: none)" in p for p in missing), missing
