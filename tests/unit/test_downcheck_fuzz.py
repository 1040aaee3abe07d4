"""The down-checker against generated scenarios: random fleets (regions, zones, racks, 1-200
hosts, mixed intervals), random phases and jitter, random faults with random timing and
overlaps, each played through the pure logic and judged by :mod:`fleetpulse.sim.judge`.

``make test`` runs the scenarios it found (``FOUND``, each a regression test) and, once it
finds nothing, a bounded, seeded set of generated ones; ``pytest --fuzz-long`` (with ``FUZZ_EXAMPLES=N``, default 3000)
generates thousands. A failure is shrunk by hypothesis and printed as a scenario file: save it
and replay it with ``fleetpulse simulate FILE --offline``
(or through a real broker and worker with ``fleetpulse simulate FILE``).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetpulse.sim.judge import check, notice_lines, play
from fleetpulse.sim.scenario import Scenario, load_scenario_text

SETTINGS = [  # (missed, late): late below missed - 1, as the policy loader demands
    (3.0, 1.5),
    (4.0, 1.5),
    (4.0, 2.0),
    (5.0, 2.5),
]


@st.composite
def scenario_docs(draw: st.DrawFn) -> dict[str, Any]:
    """A scenario file's content: a random fleet and random faults on it."""
    regions = draw(st.integers(1, 4))
    big = draw(st.integers(0, 9)) == 0  # now and then a large fleet
    hosts = draw(st.integers(1, 200) if big else st.integers(1, 40))
    zones = draw(st.integers(0, 3))
    racks = draw(st.integers(0, 3)) if zones else 0
    intervals = draw(st.lists(st.sampled_from([1, 2, 5, 10]), min_size=1, max_size=3))
    missed, late = draw(st.sampled_from(SETTINGS))
    jitter_share = draw(st.sampled_from([0.0, 0.0, 0.5, 0.99]))
    longest, shortest = max(intervals), min(intervals)
    downcheck = {
        "missed": missed,
        "late": late,
        "grace": draw(st.sampled_from([0, 1, 2])),
        "region_share": draw(st.sampled_from([0.4, 0.5, 0.7])),
        "group_share": draw(st.sampled_from([0.4, 0.5, 0.7])),
        "min_region_hosts": draw(st.sampled_from([3, 5])),
        "min_group_hosts": draw(st.sampled_from([3, 5])),
        "flap_window": draw(st.sampled_from([0, 300])),
    }
    doc: dict[str, Any] = {
        "name": "fuzz",
        "seed": draw(st.integers(0, 2**16)),
        "hosts": hosts,
        "regions": regions,
        "interval": shortest,
        "duration": longest * draw(st.integers(20, 40)),
        "metrics": False,
        "downcheck": downcheck,
        "faults": [],
    }
    if len(intervals) > 1:
        doc["intervals"] = intervals
    if jitter_share:
        doc["jitter"] = round(jitter_share * (late - 1) * shortest, 3)
    if zones:
        doc["zones"] = zones
    if racks:
        doc["racks"] = racks
    fleet = load_scenario_text(yaml.safe_dump(doc, sort_keys=False), "<fuzz>")
    doc["faults"] = draw(st.lists(_fault(fleet, missed, late, shortest), max_size=6))
    return doc


def _fault(fleet: Scenario, missed: float, late: float, shortest: float) -> st.SearchStrategy[dict[str, Any]]:
    ids = [h.host_id for h in fleet.hosts]
    longest = max(h.interval_s for h in fleet.hosts)
    at = st.integers(1, int(fleet.duration_s * 0.8))
    length = st.floats(0.5, 10).map(lambda k: round(k * longest, 1))
    some = st.lists(st.sampled_from(ids), min_size=1, max_size=max(1, min(len(ids), 8)), unique=True)
    groups: list[dict[str, str]] = [{"region": r} for r in fleet.regions]
    for h in fleet.hosts:
        for label, value in h.labels.items():
            if label in ("zone", "rack") and {label: value} not in groups:
                groups.append({label: value})
    slow_bound = max(0.1, round((missed - late) * shortest * 0.9, 2))
    kinds = [
        st.fixed_dictionaries({"at": at, "crash": some}),
        st.fixed_dictionaries({"at": at, "crash": some, "until": st.integers(1, 12).map(lambda k: k * longest)}),
        st.fixed_dictionaries({"at": at, "reboot": some, "downtime": length}),
        st.fixed_dictionaries({"at": at, "restart": some, "downtime": length}),
        st.fixed_dictionaries({"at": at, "partition": st.sampled_from(groups), "for": length, "spool": st.booleans()}),
        st.fixed_dictionaries({"at": at, "partition": some, "for": length, "spool": st.booleans()}),
        st.fixed_dictionaries({"at": at, "ingest_outage": st.just(True), "for": length, "spool": st.booleans()}),
        st.fixed_dictionaries(
            {"at": at, "flap": st.sampled_from(ids).map(lambda h: [h]), "for": length, "down": length, "up": length}
        ),
        st.fixed_dictionaries({"at": at, "clock_skew": some, "offset": st.sampled_from([-3600, -5, 7, 86400])}),
        st.fixed_dictionaries(
            {"at": at, "slow": some, "delay": st.floats(0.05, slow_bound).map(lambda d: round(d, 2)), "for": length}
        ),
    ]
    return st.one_of(kinds).map(_after_at)


def _after_at(fault: dict[str, Any]) -> dict[str, Any]:
    """A crash's ``until`` is drawn as a length: make it a time after its ``at``."""
    if "until" in fault:
        return {**fault, "until": fault["at"] + fault["until"]}
    return fault


BOUNDED_EXAMPLES = 150  # under a minute here: make test stays short
BOUNDED_RUN_FINDS_NOTHING = True


def _examples() -> int:
    return int(os.environ.get("FUZZ_EXAMPLES", "3000"))


def _replay_text(doc: dict[str, Any]) -> str:
    return "# a scenario the down-checker failed; replay: fleetpulse simulate FILE --offline\n" + yaml.safe_dump(
        doc, sort_keys=False
    )


def _check_doc(doc: dict[str, Any]) -> None:
    text = yaml.safe_dump(doc, sort_keys=False)
    scenario = load_scenario_text(text, "<fuzz>")
    problems = check(scenario)
    if problems:
        played = play(scenario)
        lines = "\n".join(notice_lines(played.notices)[:80])
        pytest.fail(
            "the down-checker broke its promise:\n  " + "\n  ".join(problems[:20])
            + f"\nscenario file:\n{_replay_text(doc)}\nnotices:\n{lines}",
            pytrace=False,
        )  # fmt: skip


# Scenarios the fuzzer found the down-checker failing, each a regression test now.
FOUND = {
    "one_host_regions_ingest_outage_pages_nobody": """
name: fuzz
hosts: 2
regions: 2
interval: 1
duration: 20
metrics: false
downcheck: {missed: 3.0, late: 1.5, grace: 0, region_share: 0.4, min_region_hosts: 3, flap_window: 0}
faults:
- {at: 1, ingest_outage: true, for: 3.0, spool: false}
""",
    "an_ingest_outage_does_not_hide_a_host_that_stopped_on_its_own_later": """
name: fuzz
hosts: 3
regions: 2
interval: 1
duration: 20
metrics: false
downcheck: {missed: 3.0, late: 1.5, grace: 0, region_share: 0.4, min_region_hosts: 3, flap_window: 0}
faults:
- {at: 1, crash: [r1-h001, r2-h001]}
- {at: 3, crash: [r1-h002]}
""",
    "a_lone_live_host_cut_after_its_region_crashed_is_judged_alone": """
name: fuzz
hosts: 4
regions: 1
interval: 1
duration: 20
metrics: false
downcheck: {missed: 3.0, late: 1.5, grace: 0, region_share: 0.4, min_region_hosts: 3, flap_window: 0}
faults:
- {at: 1, crash: [r1-h001, r1-h002, r1-h003]}
- {at: 3, partition: r1, for: 3.0, spool: false}
""",
    "a_short_cut_healing_before_its_alert_gives_the_others_a_fresh_deadline": """
name: fuzz
seed: 1
hosts: 2
regions: 1
interval: 1
duration: 20
metrics: false
downcheck: {missed: 3.0, late: 1.5, grace: 0, region_share: 0.4, min_region_hosts: 3, flap_window: 0}
faults:
- {at: 1, partition: r1, for: 2.0, spool: false}
- {at: 1, flap: [r1-h001], for: 3.0, down: 1.0, up: 1.0}
""",
    "most_of_a_region_crashing_after_its_cut_healed_is_the_crash_s_one_alert": """
name: fuzz
hosts: 3
regions: 1
interval: 1
duration: 20
metrics: false
downcheck: {missed: 3.0, late: 1.5, grace: 0, region_share: 0.4, group_share: 0.4, min_region_hosts: 3,
  min_group_hosts: 3, flap_window: 0}
faults:
- {at: 1, partition: {region: r1}, for: 3.0, spool: false}
- {at: 5, crash: [r1-h001, r1-h002]}
""",
    "a_host_cut_just_before_an_ingest_outage_stopped_with_the_fleet": """
name: fuzz
hosts: 5
regions: 3
interval: 1
duration: 20
metrics: false
downcheck: {missed: 3.0, late: 1.5, grace: 0, region_share: 0.4, group_share: 0.4, min_region_hosts: 3,
  min_group_hosts: 3, flap_window: 0}
faults:
- {at: 1, crash: [r1-h001]}
- {at: 12, partition: {region: r1}, for: 1.0, spool: false}
- {at: 13, ingest_outage: true, for: 2.0, spool: false}
""",
    "an_ingest_outage_reaching_fast_regions_first_is_one_alert_not_a_region_alert_each": """
name: fuzz
hosts: 16
regions: 4
interval: 5
intervals: [5, 10]
duration: 120
metrics: false
downcheck: {missed: 3, late: 1.5, grace: 1}
faults:
- {at: 25, ingest_outage: true, for: 60, spool: false}
""",
    "a_host_still_cut_when_its_cut_heals_for_the_others_is_judged_from_their_return": """
name: fuzz
hosts: 7
regions: 1
interval: 5
duration: 100
metrics: false
downcheck: {missed: 3.0, late: 1.5, grace: 1}
faults:
- {at: 1, crash: [r1-h001]}
- {at: 50, partition: {region: r1}, for: 5.0, spool: false}
- {at: 53, partition: [r1-h001, r1-h002], for: 10.0, spool: false}
""",
    "a_short_ingest_outage_healing_before_its_alert_gives_the_others_a_fresh_deadline": """
name: fuzz
hosts: 3
regions: 2
interval: 2
duration: 40
metrics: false
downcheck: {missed: 4.0, late: 1.5, grace: 0, region_share: 0.4, group_share: 0.4, min_region_hosts: 3}
faults:
- {at: 1, crash: [r1-h001]}
- {at: 17, partition: {region: r1}, for: 4.0, spool: false}
- {at: 14, ingest_outage: true, for: 4.0, spool: false}
""",
    "an_ingest_outage_on_mixed_intervals_waits_for_the_slowest_hosts_before_judging_a_fast_one": """
name: fuzz
seed: 7807
hosts: 3
regions: 2
interval: 1
duration: 270
metrics: false
downcheck:
  flap_window: 300
  grace: 0
  group_share: 0.4
  late: 1.5
  min_group_hosts: 3
  min_region_hosts: 5
  missed: 3.0
  region_share: 0.4
faults:
- {at: 120, for: 54.7, ingest_outage: true, spool: true}
intervals: [10, 1, 10]
zones: 3
racks: 3
""",
    "the_rest_of_a_region_stopping_at_once_is_one_region_alert_not_one_per_zone": """
name: fuzz
seed: 251
hosts: 35
regions: 1
interval: 2
duration: 330
metrics: false
downcheck:
  flap_window: 300
  grace: 0
  group_share: 0.5
  late: 2.0
  min_group_hosts: 5
  min_region_hosts: 3
  missed: 4.0
  region_share: 0.7
faults:
- {at: 264, clock_skew: [r1-h031, r1-h021, r1-h035, r1-h011], offset: 86400}
- {at: 181, downtime: 96.6, reboot: [r1-h035, r1-h033, r1-h029, r1-h032, r1-h023, r1-h016, r1-h020, r1-h015]}
- {at: 2, down: 64.1, flap: [r1-h031], for: 6.0, up: 8.1}
- {at: 165, down: 10.0, flap: [r1-h028], for: 98.2, up: 11.0}
- {at: 198, downtime: 65.2, restart: [r1-h009, r1-h028, r1-h006, r1-h031]}
- {at: 220, for: 35.0, ingest_outage: true, spool: true}
intervals: [10, 2, 2]
jitter: 1.0
zones: 3
""",
    "a_region_cut_is_named_before_a_zone_whose_first_quorum_came_earlier": """
name: fuzz
seed: 112
hosts: 133
regions: 2
interval: 1
duration: 38
metrics: false
downcheck:
  flap_window: 300
  grace: 0
  group_share: 0.5
  late: 2.0
  min_group_hosts: 3
  min_region_hosts: 5
  missed: 4.0
  region_share: 0.7
faults:
- {at: 19, downtime: 9.7, restart: [r1-h032]}
- {at: 27, downtime: 3.0, restart: [r2-h025, r1-h041, r1-h035, r1-h034, r1-h002]}
- {at: 19, for: 1.8, partition: {rack: r1-z2-r1}, spool: false}
- {at: 7, downtime: 3.2, restart: [r1-h043, r1-h003, r2-h015, r2-h043, r2-h035, r1-h001, r1-h027, r2-h001]}
- {at: 12, crash: [r1-h043, r1-h003, r2-h015, r2-h043, r2-h035, r1-h001, r1-h027, r2-h001], until: 22.0}
- {at: 9, for: 10.0, partition: {region: r2}, spool: false}
zones: 2
racks: 3
""",
    "half_a_zone_crashed_inside_a_region_alert_is_not_a_zone_alert_after_it_lifts": """
name: fuzz
seed: 34
hosts: 24
regions: 3
interval: 2
duration: 185
metrics: false
downcheck:
  flap_window: 300
  grace: 0
  group_share: 0.4
  late: 1.5
  min_group_hosts: 3
  min_region_hosts: 3
  missed: 3.0
  region_share: 0.4
faults:
- {at: 144, for: 43.7, partition: [r2-h007, r1-h002, r3-h007, r3-h001, r2-h005, r1-h007, r3-h002], spool: false}
- {at: 21, for: 9.6, ingest_outage: true, spool: false}
- {at: 93, crash: [r2-h002, r1-h008, r1-h004], until: 133.0}
- {at: 91, crash: [r1-h007, r1-h001]}
- {at: 19, for: 2.5, partition: [r1-h001], spool: false}
- {at: 1, for: 2.5, partition: {rack: r3-z2-r2}, spool: false}
intervals: [5, 5, 2]
zones: 2
racks: 2
""",
    "a_whole_fleet_crash_before_some_hosts_first_beat_is_one_ingest_outage": """
name: fuzz
seed: 9096
hosts: 5
regions: 2
interval: 1
duration: 210
metrics: false
downcheck:
  flap_window: 300
  grace: 0
  group_share: 0.7
  late: 1.5
  min_group_hosts: 5
  min_region_hosts: 3
  missed: 4.0
  region_share: 0.7
faults:
- {at: 120, crash: [r2-h002, r1-h002]}
- {at: 1, crash: [r1-h001, r2-h002, r2-h001, r1-h002, r1-h003]}
intervals: [1, 10, 2]
""",
    "a_host_that_stopped_on_its_own_keeps_its_deadline_when_an_ingest_outage_ends": """
name: fuzz
seed: 6071
hosts: 7
regions: 3
interval: 2
duration: 195
metrics: false
downcheck:
  flap_window: 0
  grace: 2
  group_share: 0.7
  late: 2.5
  min_group_hosts: 5
  min_region_hosts: 3
  missed: 5.0
  region_share: 0.5
faults:
- {at: 34, crash: [r1-h001]}
- {at: 17, crash: [r2-h002, r2-h001, r3-h002, r3-h001], until: 47.0}
- {at: 147, downtime: 35.8, restart: [r2-h001, r2-h002, r3-h002, r3-h001]}
intervals: [5, 2, 5]
zones: 2
racks: 1
""",
    "a_slow_host_s_fresh_deadline_runs_out_before_its_region_is_named_after_an_ingest_outage": """
name: fuzz
hosts: 3
regions: 2
interval: 1
intervals: [1, 1, 10]
duration: 200
metrics: false
downcheck: {missed: 3.0, late: 1.5, grace: 0, region_share: 0.4, group_share: 0.4, min_region_hosts: 3}
faults:
- {at: 114, crash: [r1-h001]}
- {at: 115, ingest_outage: true, for: 30.0, spool: false}
""",
    "most_single_host_regions_crashing_for_good_is_an_ingest_outage_for_good": """
name: fuzz
seed: 20293
hosts: 3
regions: 3
interval: 5
duration: 185
metrics: false
downcheck:
  missed: 4.0
  late: 1.5
  grace: 0
  region_share: 0.7
  group_share: 0.4
  min_region_hosts: 3
  min_group_hosts: 3
  flap_window: 300
faults:
- at: 10
  crash:
  - r1-h001
  - r2-h001
jitter: 2.475
zones: 2
""",
    "a_small_rack_s_share_counts_the_hosts_still_reporting_at_the_instant": """
name: fuzz
seed: 43462
hosts: 25
regions: 1
interval: 2
duration: 210
metrics: false
downcheck:
  missed: 4.0
  late: 2.0
  grace: 0
  region_share: 0.4
  group_share: 0.7
  min_region_hosts: 5
  min_group_hosts: 5
  flap_window: 300
faults:
- crash:
  - r1-h013
  - r1-h002
  - r1-h019
  at: 100
  until: 210.0
- reboot:
  - r1-h013
  - r1-h002
  - r1-h019
  at: 100
  downtime: 5.0
- for: 17.5
  partition:
  - r1-h019
  - r1-h015
  - r1-h014
  - r1-h011
  - r1-h002
  - r1-h013
  - r1-h006
  at: 166
  spool: false
- clock_skew:
  - r1-h018
  at: 54
  offset: 86400
- at: 31
  restart:
  - r1-h014
  - r1-h013
  downtime: 100.0
- downtime: 44.9
  at: 93
  reboot:
  - r1-h010
  - r1-h020
  - r1-h011
  - r1-h012
  - r1-h025
  - r1-h005
  - r1-h003
  - r1-h018
intervals:
- 10
- 2
jitter: 1.0
zones: 3
racks: 3
""",
    "a_host_back_since_still_counts_as_gone_at_the_instant_it_was_silent": """
name: fuzz
seed: 664
hosts: 15
regions: 1
interval: 2
duration: 350
metrics: false
downcheck:
  missed: 3.0
  late: 1.5
  grace: 2
  region_share: 0.7
  group_share: 0.5
  min_region_hosts: 3
  min_group_hosts: 3
  flap_window: 300
faults:
- downtime: 6.0
  restart:
  - r1-h007
  - r1-h004
  - r1-h008
  - r1-h015
  - r1-h009
  - r1-h014
  at: 131
- downtime: 63.2
  at: 14
  restart:
  - r1-h006
  - r1-h012
  - r1-h008
- crash:
  - r1-h011
  at: 25
  until: 75.0
- partition:
  - r1-h008
  - r1-h010
  - r1-h009
  - r1-h014
  - r1-h001
  for: 54.1
  spool: false
  at: 84
- restart:
  - r1-h007
  - r1-h004
  - r1-h010
  - r1-h015
  - r1-h008
  - r1-h005
  - r1-h013
  - r1-h012
  at: 13
  downtime: 100.0
- at: 280
  partition:
    zone: r1-z1
  for: 50.0
  spool: false
intervals:
- 2
- 2
- 10
jitter: 0.5
zones: 1
racks: 1
""",
    "hosts_of_a_cut_are_not_judged_while_the_blanket_waits_for_a_released_host": """
name: fuzz
seed: 301
hosts: 7
regions: 3
interval: 1
duration: 280
metrics: false
downcheck:
  missed: 4.0
  late: 2.0
  grace: 2
  region_share: 0.5
  group_share: 0.5
  min_region_hosts: 5
  min_group_hosts: 5
  flap_window: 300
faults:
- at: 139
  downtime: 53.3
  restart:
  - r2-h001
- down: 21.5
  up: 39.4
  at: 210
  for: 90.2
  flap:
  - r1-h003
- at: 59
  for: 27.1
  spool: false
  ingest_outage: true
- spool: true
  for: 19.0
  at: 87
  partition:
  - r3-h001
  - r1-h002
  - r1-h001
  - r2-h002
  - r3-h002
  - r1-h003
  - r2-h001
- at: 93
  crash:
  - r3-h002
- at: 85
  spool: false
  for: 96.3
  partition:
    region: r1
intervals:
- 1
- 10
""",
    "an_agent_restart_of_most_of_a_region_is_a_cause_of_its_own": """
name: fuzz
seed: 2418
hosts: 12
regions: 2
interval: 2
duration: 105
metrics: false
downcheck:
  missed: 5.0
  late: 2.5
  grace: 0
  region_share: 0.5
  group_share: 0.7
  min_region_hosts: 3
  min_group_hosts: 3
  flap_window: 300
faults:
- crash:
  - r2-h001
  - r2-h004
  - r1-h006
  - r2-h005
  - r1-h002
  - r1-h005
  - r1-h001
  - r2-h006
  at: 45
- at: 39
  restart:
  - r1-h001
  - r2-h002
  - r1-h005
  - r2-h004
  - r1-h006
  - r1-h002
  downtime: 18.7
- at: 18
  crash:
  - r1-h003
  - r2-h004
- offset: 7
  at: 77
  clock_skew:
  - r2-h003
  - r2-h001
  - r1-h003
  - r1-h001
  - r2-h002
  - r2-h004
  - r1-h004
  - r1-h006
- for: 23.7
  spool: true
  at: 4
  ingest_outage: true
- reboot:
  - r1-h003
  at: 20
  downtime: 15.4
intervals:
- 5
- 2
- 2
zones: 1
""",
    "a_region_still_silent_after_an_ingest_outage_lifted_may_be_named_once": """
name: fuzz
seed: 814
hosts: 15
regions: 4
interval: 1
duration: 300
metrics: false
downcheck:
  missed: 3.0
  late: 1.5
  grace: 1
  region_share: 0.5
  group_share: 0.5
  min_region_hosts: 3
  min_group_hosts: 5
  flap_window: 0
faults:
- at: 111
  crash:
  - r4-h002
  - r3-h001
  - r1-h002
  - r4-h003
  - r3-h003
- at: 39
  until: 129.0
  crash:
  - r1-h001
  - r2-h001
  - r1-h003
  - r3-h001
  - r3-h003
  - r4-h001
  - r2-h003
  - r2-h004
- slow:
  - r1-h002
  delay: 0.47
  for: 33.0
  at: 195
intervals:
- 1
- 5
- 10
zones: 1
""",
    "a_reboot_inside_a_zone_then_a_region_cut_are_two_causes_two_alerts": """
name: fuzz
seed: 434
hosts: 19
regions: 1
interval: 5
duration: 380
metrics: false
downcheck:
  missed: 4.0
  late: 1.5
  grace: 0
  region_share: 0.5
  group_share: 0.5
  min_region_hosts: 3
  min_group_hosts: 5
  flap_window: 300
faults:
- at: 263
  downtime: 90.3
  reboot:
  - r1-h002
  - r1-h006
  - r1-h013
  - r1-h008
  - r1-h007
  - r1-h019
  - r1-h009
  - r1-h010
- for: 15.0
  spool: true
  at: 35
  partition:
    zone: r1-z3
- at: 274
  for: 50.0
  partition:
    region: r1
  spool: false
intervals:
- 5
- 10
- 5
jitter: 2.475
zones: 3
racks: 2
""",
    "a_host_back_up_and_cut_by_the_bound_is_alive_not_owed_a_page": """
name: fuzz
seed: 25286
hosts: 25
regions: 1
interval: 5
duration: 135
metrics: false
downcheck:
  missed: 3.0
  late: 1.5
  grace: 1
  region_share: 0.5
  group_share: 0.5
  min_region_hosts: 3
  min_group_hosts: 3
  flap_window: 300
faults:
- downtime: 3.2
  reboot:
  - r1-h001
  - r1-h013
  - r1-h018
  - r1-h005
  - r1-h021
  - r1-h007
  - r1-h016
  - r1-h011
  at: 81
- spool: true
  at: 93
  for: 45.8
  partition:
    zone: r1-z1
- ingest_outage: true
  at: 88
  spool: false
  for: 3.0
- for: 10.0
  partition:
    region: r1
  spool: false
  at: 15
- up: 30.2
  at: 85
  for: 16.7
  flap:
  - r1-h007
  down: 5.0
zones: 2
""",
    "a_held_host_its_blanket_no_longer_explains_is_released_while_a_later_cut_keeps_it_open": """
name: fuzz
seed: 14318
hosts: 14
regions: 1
interval: 2
duration: 56
metrics: false
downcheck:
  missed: 4.0
  late: 1.5
  grace: 0
  region_share: 0.5
  group_share: 0.5
  min_region_hosts: 5
  min_group_hosts: 3
  flap_window: 300
faults:
- at: 41
  until: 45.0
  crash:
  - r1-h010
  - r1-h008
  - r1-h002
  - r1-h005
  - r1-h013
  - r1-h006
- crash:
  - r1-h011
  at: 1
  until: 17.0
- at: 14
  spool: true
  for: 10.4
  ingest_outage: true
- crash:
  - r1-h008
  - r1-h012
  - r1-h003
  - r1-h007
  - r1-h009
  - r1-h001
  - r1-h013
  - r1-h006
  at: 35
- downtime: 9.9
  reboot:
  - r1-h013
  - r1-h010
  - r1-h003
  - r1-h009
  - r1-h008
  - r1-h002
  - r1-h011
  at: 28
jitter: 0.99
""",
    "a_release_from_an_earlier_silence_does_not_stop_the_release_from_a_cut_healing_later": """
name: fuzz
seed: 570
hosts: 29
regions: 4
interval: 1
duration: 33
metrics: false
downcheck:
  missed: 5.0
  late: 2.5
  grace: 0
  region_share: 0.5
  group_share: 0.5
  min_region_hosts: 3
  min_group_hosts: 5
  flap_window: 300
faults:
- spool: true
  for: 1.1
  at: 6
  partition:
  - r1-h007
  - r4-h005
  - r1-h005
  - r1-h001
  - r3-h002
  - r3-h007
- for: 2.1
  ingest_outage: true
  spool: true
  at: 3
- for: 4.6
  spool: true
  ingest_outage: true
  at: 7
- spool: true
  at: 10
  partition:
  - r1-h003
  - r3-h006
  - r3-h003
  - r1-h007
  for: 9.6
intervals:
- 1
- 1
jitter: 0.75
""",
    "a_crash_like_a_cut_is_judged_by_the_silence_after_a_late_beat": """
name: fuzz
seed: 901
hosts: 34
regions: 3
interval: 5
duration: 330
metrics: false
downcheck:
  missed: 4.0
  late: 1.5
  grace: 1
  region_share: 0.7
  group_share: 0.4
  min_region_hosts: 5
  min_group_hosts: 3
  flap_window: 0
faults:
- crash:
  - r3-h002
  - r1-h005
  - r1-h008
  - r3-h007
  - r2-h009
  - r2-h004
  - r2-h005
  until: 234.0
  at: 194
- slow:
  - r1-h007
  - r2-h004
  - r3-h004
  for: 96.3
  delay: 10.64
  at: 156
- delay: 10.9
  slow:
  - r3-h011
  - r2-h001
  for: 29.2
  at: 258
- delay: 10.73
  at: 181
  slow:
  - r3-h010
  - r1-h005
  - r2-h008
  - r2-h004
  - r3-h004
  - r1-h010
  - r1-h011
  for: 69.5
- for: 40.0
  at: 146
  spool: true
  partition:
  - r3-h010
intervals:
- 10
- 5
- 5
jitter: 1.25
zones: 3
racks: 2
""",
    "a_small_zone_still_cut_when_its_region_alert_lifts_is_handed_to_the_zone_not_paged": """
name: fuzz
seed: 9084
hosts: 25
regions: 4
interval: 5
duration: 210
metrics: false
downcheck:
  missed: 5.0
  late: 2.5
  grace: 0
  region_share: 0.5
  group_share: 0.5
  min_region_hosts: 3
  min_group_hosts: 3
  flap_window: 0
faults:
- downtime: 69.6
  reboot:
  - r2-h001
  - r1-h002
  - r3-h006
  - r2-h004
  - r3-h005
  at: 47
- downtime: 47.7
  reboot:
  - r2-h005
  at: 117
- down: 96.6
  up: 100.0
  at: 90
  for: 58.6
  flap:
  - r2-h003
- clock_skew:
  - r1-h006
  - r1-h007
  - r4-h002
  - r4-h001
  - r2-h004
  - r2-h006
  at: 168
  offset: -5
- for: 95.7
  at: 48
  spool: false
  partition: &id001
    zone: r2-z3
- partition: *id001
  at: 36
  for: 98.4
  spool: false
intervals:
- 5
- 10
- 10
jitter: 7.425
zones: 3
racks: 1
""",
    "hosts_crashed_inside_an_ingest_outage_keep_it_open_as_a_share_of_their_regions": """
name: fuzz
seed: 2915
hosts: 8
regions: 2
interval: 2
duration: 42
metrics: false
downcheck:
  missed: 3.0
  late: 1.5
  grace: 1
  region_share: 0.5
  group_share: 0.5
  min_region_hosts: 5
  min_group_hosts: 5
  flap_window: 300
faults:
- at: 1
  for: 16.6
  slow:
  - r2-h001
  - r2-h002
  - r1-h003
  - r2-h004
  - r2-h003
  - r1-h004
  - r1-h001
  - r1-h002
  delay: 1.1
- down: 3.5
  flap:
  - r2-h001
  for: 17.3
  up: 8.0
  at: 1
- reboot:
  - r2-h002
  - r1-h001
  - r1-h002
  - r1-h003
  - r1-h004
  - r2-h004
  at: 29
  downtime: 1.2
- spool: false
  for: 8.4
  partition:
  - r2-h001
  - r2-h003
  - r1-h004
  - r2-h004
  - r1-h001
  at: 32
- at: 5
  crash:
  - r1-h002
  - r2-h001
  - r1-h004
  - r2-h003
  - r2-h002
- at: 3
  ingest_outage: true
  for: 3.7
  spool: false
zones: 3
""",
    "a_host_an_open_ingest_outage_no_longer_explains_is_released_and_paged": """
name: fuzz
seed: 420
hosts: 8
regions: 4
interval: 5
duration: 260
metrics: false
downcheck:
  missed: 5.0
  late: 2.5
  grace: 1
  region_share: 0.5
  group_share: 0.5
  min_region_hosts: 5
  min_group_hosts: 5
  flap_window: 300
faults:
- ingest_outage: true
  spool: false
  for: 5.0
  at: 185
- at: 198
  until: 268.0
  crash:
  - r3-h002
  - r4-h002
  - r3-h001
  - r4-h001
  - r1-h001
- downtime: 91.5
  at: 119
  restart:
  - r1-h001
  - r3-h002
  - r3-h001
  - r4-h002
  - r2-h002
  - r4-h001
  - r2-h001
  - r1-h002
- crash:
  - r1-h001
  - r2-h001
  - r3-h002
  - r1-h002
  at: 49
intervals:
- 5
- 10
- 10
jitter: 7.425
""",
    "the_judge_finds_the_instant_that_cuts_the_fleet_off_not_only_the_largest_set": """
name: fuzz
seed: 5864
hosts: 7
regions: 3
interval: 1
duration: 58
metrics: false
downcheck:
  missed: 4.0
  late: 1.5
  grace: 1
  region_share: 0.4
  group_share: 0.4
  min_region_hosts: 3
  min_group_hosts: 3
  flap_window: 300
faults:
- restart:
  - r3-h001
  downtime: 17.7
  at: 36
- at: 34
  until: 54.0
  crash:
  - r2-h001
  - r3-h002
- restart:
  - r1-h002
  - r1-h003
  at: 15
  downtime: 6.7
- at: 36
  downtime: 4.6
  reboot:
  - r1-h003
intervals:
- 2
- 1
""",
    "a_crash_of_a_third_of_a_zone_then_an_outage_are_two_cuts_a_host_may_be_in": """
name: fuzz
seed: 747
hosts: 13
regions: 1
interval: 2
duration: 250
metrics: false
downcheck:
  missed: 5.0
  late: 2.5
  grace: 1
  region_share: 0.4
  group_share: 0.4
  min_region_hosts: 5
  min_group_hosts: 3
  flap_window: 0
faults:
- downtime: 97.1
  at: 197
  restart:
  - r1-h012
  - r1-h008
  - r1-h007
  - r1-h010
  - r1-h002
  - r1-h013
  - r1-h005
- at: 159
  for: 15.0
  ingest_outage: true
  spool: false
- at: 138
  crash:
  - r1-h005
  - r1-h010
  - r1-h009
  - r1-h003
- at: 199
  clock_skew:
  - r1-h004
  - r1-h001
  - r1-h003
  - r1-h005
  - r1-h009
  - r1-h006
  - r1-h010
  - r1-h007
  offset: 86400
intervals:
- 2
- 10
- 5
jitter: 1.5
zones: 2
racks: 2
""",
    "a_cut_that_began_inside_an_ingest_outage_is_the_cause_of_the_groups_it_still_cuts": """
name: fuzz
seed: 65536
hosts: 36
regions: 3
interval: 1
duration: 39
metrics: false
downcheck:
  missed: 4.0
  late: 1.5
  grace: 0
  region_share: 0.5
  group_share: 0.4
  min_region_hosts: 3
  min_group_hosts: 3
  flap_window: 300
faults:
- spool: true
  partition:
  - r1-h011
  - r1-h007
  - r3-h003
  - r2-h005
  - r3-h002
  - r3-h004
  - r2-h007
  - r3-h010
  for: 8.6
  at: 8
- spool: true
  for: 9.0
  at: 1
  ingest_outage: true
- at: 1
  restart:
  - r3-h011
  - r2-h011
  - r1-h004
  - r3-h003
  - r2-h009
  - r2-h007
  - r2-h010
  - r3-h009
  downtime: 0.5
intervals:
- 1
- 1
- 1
zones: 2
racks: 2
""",
    "a_group_an_open_region_alert_held_does_not_fire_when_the_region_s_cut_moves_to_a_later_silence": """
name: fuzz
seed: 65535
hosts: 14
regions: 1
interval: 1
duration: 50
metrics: false
downcheck:
  missed: 4.0
  late: 1.5
  grace: 0
  region_share: 0.5
  group_share: 0.7
  min_region_hosts: 3
  min_group_hosts: 3
  flap_window: 300
faults:
- at: 19
  crash:
  - r1-h013
  - r1-h012
  - r1-h003
  - r1-h011
- spool: false
  for: 1.6
  partition:
    rack: r1-z3-r3
  at: 10
- partition:
  - r1-h014
  - r1-h004
  spool: false
  at: 28
  for: 1.0
- downtime: 17.8
  reboot:
  - r1-h006
  - r1-h004
  - r1-h009
  - r1-h013
  - r1-h014
  - r1-h008
  - r1-h003
  - r1-h002
  at: 23
- ingest_outage: true
  at: 35
  spool: false
  for: 9.1
- down: 1.2
  flap:
  - r1-h011
  for: 1.9
  at: 4
  up: 10.4
intervals:
- 1
- 1
- 2
jitter: 0.25
zones: 3
racks: 3
""",
    "a_lift_releases_only_the_hosts_its_blanket_held_a_host_silent_on_its_own_keeps_its_deadline": """
name: fuzz
seed: 166
hosts: 22
regions: 1
interval: 10
duration: 280
metrics: false
downcheck:
  missed: 4.0
  late: 1.5
  grace: 1
  region_share: 0.7
  group_share: 0.4
  min_region_hosts: 3
  min_group_hosts: 5
  flap_window: 0
faults:
- at: 108
  reboot:
  - r1-h009
  - r1-h006
  - r1-h007
  - r1-h012
  - r1-h021
  - r1-h016
  downtime: 43.5
- downtime: 65.5
  restart:
  - r1-h003
  - r1-h017
  - r1-h009
  - r1-h022
  - r1-h006
  at: 12
- crash:
  - r1-h003
  - r1-h020
  - r1-h011
  - r1-h022
  - r1-h005
  - r1-h013
  - r1-h021
  - r1-h001
  at: 175
- downtime: 20.7
  reboot:
  - r1-h006
  - r1-h009
  - r1-h003
  - r1-h002
  - r1-h020
  - r1-h022
  - r1-h005
  - r1-h011
  at: 136
- downtime: 52.7
  at: 142
  restart:
  - r1-h021
  - r1-h002
  - r1-h017
  - r1-h011
  - r1-h001
  - r1-h020
- downtime: 54.6
  at: 10
  reboot:
  - r1-h001
  - r1-h022
  - r1-h002
  - r1-h018
  - r1-h010
  - r1-h004
jitter: 2.5
zones: 3
""",
    "a_host_late_on_its_own_in_a_zone_whose_alert_lifts_is_paged_on_its_own_timeout": """
name: fuzz
seed: 166
hosts: 22
regions: 1
interval: 10
duration: 280
metrics: false
downcheck:
  missed: 4.0
  late: 1.5
  grace: 1
  region_share: 0.7
  group_share: 0.4
  min_region_hosts: 3
  min_group_hosts: 5
  flap_window: 0
faults:
- at: 108
  reboot:
  - r1-h009
  - r1-h006
  - r1-h007
  - r1-h012
  - r1-h021
  - r1-h016
  downtime: 43.5
- downtime: 65.5
  restart:
  - r1-h003
  - r1-h017
  - r1-h009
  - r1-h022
  - r1-h006
  at: 12
- crash:
  - r1-h003
  - r1-h020
  - r1-h011
  - r1-h022
  - r1-h005
  - r1-h013
  - r1-h021
  - r1-h001
  at: 175
- downtime: 20.7
  reboot:
  - r1-h006
  - r1-h009
  - r1-h003
  - r1-h002
  - r1-h020
  - r1-h022
  - r1-h005
  - r1-h011
  at: 136
- downtime: 52.7
  at: 142
  restart:
  - r1-h006
  - r1-h009
  - r1-h003
  - r1-h002
  - r1-h020
  - r1-h022
  - r1-h005
  - r1-h011
- downtime: 54.6
  at: 10
  reboot:
  - r1-h001
  - r1-h022
  - r1-h002
  - r1-h018
  - r1-h010
  - r1-h004
jitter: 2.5
zones: 3
""",
    "a_short_region_cut_healed_before_a_jittery_host_showed_late_gives_it_a_fresh_deadline": """
name: fuzz
seed: 0
hosts: 15
regions: 1
interval: 5
duration: 100
metrics: false
downcheck:
  missed: 3.0
  late: 1.5
  grace: 0
  region_share: 0.7
  group_share: 0.4
  min_region_hosts: 3
  min_group_hosts: 3
  flap_window: 0
faults:
- at: 7
  partition:
    region: r1
  for: 5.0
  spool: false
jitter: 2.475

""",
    "a_host_cut_with_a_zone_whose_other_hosts_a_region_alert_explains_is_held_by_the_region": """
name: fuzz
seed: 159
hosts: 15
regions: 2
interval: 10
duration: 310
metrics: false
downcheck:
  missed: 3.0
  late: 1.5
  grace: 0
  region_share: 0.7
  group_share: 0.5
  min_region_hosts: 3
  min_group_hosts: 5
  flap_window: 0
faults:
- restart:
  - r1-h008
  - r1-h003
  - r2-h005
  - r1-h006
  - r2-h003
  - r1-h005
  - r2-h006
  at: 248
  downtime: 84.8
- at: 114
  downtime: 62.9
  reboot:
  - r2-h004
- downtime: 39.3
  reboot:
  - r1-h005
  - r2-h002
  at: 22
- delay: 11.28
  at: 212
  for: 38.8
  slow:
  - r1-h005
  - r2-h004
  - r1-h007
  - r2-h002
  - r2-h005
  - r1-h003
  - r1-h002
  - r1-h006
- partition:
    zone: r1-z1
  at: 244
  for: 79.3
  spool: true
- spool: false
  at: 147
  partition:
    region: r1
  for: 80.4
intervals:
- 10
- 10
jitter: 4.95
zones: 2
racks: 1
""",
    "a_healed_cut_s_fresh_deadline_runs_from_the_hosts_that_stopped_with_it_only": """
name: fuzz
seed: 658
hosts: 35
regions: 2
interval: 1
duration: 21
metrics: false
downcheck:
  missed: 3.0
  late: 1.5
  grace: 2
  region_share: 0.4
  group_share: 0.4
  min_region_hosts: 3
  min_group_hosts: 3
  flap_window: 0
faults:
- at: 13
  crash:
  - r1-h006
  - r1-h013
  - r2-h007
  - r1-h003
  - r2-h010
  - r2-h001
  until: 14.0
- partition:
  - r2-h010
  - r2-h002
  - r1-h016
  - r2-h005
  spool: false
  at: 5
  for: 3.5
- downtime: 0.8
  at: 9
  restart:
  - r1-h013
  - r1-h016
  - r1-h008
  - r2-h017
  - r1-h017
  - r1-h001
  - r2-h009
  - r2-h014
- at: 16
  offset: 86400
  clock_skew:
  - r1-h006
- at: 5
  downtime: 4.5
  restart:
  - r1-h016
  - r1-h002
  - r2-h009
  - r1-h006
  - r1-h003
  - r2-h015
  - r1-h017
  - r1-h011
- at: 6
  downtime: 9.5
  reboot:
  - r2-h011
  - r2-h007
intervals:
- 1
- 1
jitter: 0.495
zones: 3
racks: 1
""",
    "a_cut_outliving_an_ingest_release_shown_by_a_lost_beat_renews_the_deadline": """
name: fuzz
seed: 65536
hosts: 4
regions: 2
interval: 5
duration: 170
metrics: false
downcheck:
  missed: 3.0
  late: 1.5
  grace: 0
  region_share: 0.4
  group_share: 0.4
  min_region_hosts: 3
  min_group_hosts: 3
  flap_window: 0
faults:
- at: 1
  crash:
  - r1-h001
- at: 97
  ingest_outage: true
  for: 38.8
  spool: false
- at: 135
  partition:
    region: r2
  for: 5.0
  spool: false

""",
    "an_ingest_outage_waits_for_a_region_it_held_still_cut_before_it_releases": """
name: fuzz
seed: 3
hosts: 27
regions: 3
interval: 2
duration: 150
metrics: false
downcheck:
  missed: 3.0
  late: 1.5
  grace: 1
  region_share: 0.5
  group_share: 0.5
  min_region_hosts: 3
  min_group_hosts: 3
  flap_window: 300
faults:
- spool: false
  for: 36.2
  partition:
  - r1-h002
  - r1-h001
  - r2-h007
  - r3-h006
  - r3-h007
  - r1-h003
  - r3-h004
  - r2-h006
  at: 19
- reboot:
  - r1-h003
  - r3-h008
  - r2-h001
  - r2-h009
  - r1-h002
  - r1-h005
  - r1-h007
  at: 72
  downtime: 11.8
- at: 102
  for: 10.0
  partition:
    region: r1
  spool: true
- for: 7.0
  partition:
  - r3-h001
  - r2-h004
  - r2-h005
  - r1-h002
  - r1-h009
  - r2-h003
  - r1-h004
  - r2-h006
  spool: true
  at: 50
- partition:
    rack: r3-z2-r2
  at: 7
  spool: false
  for: 13.0
- spool: false
  for: 26.9
  ingest_outage: true
  at: 16
intervals:
- 5
- 2
zones: 2
racks: 3
""",
    "a_settling_ingest_outage_releases_the_hosts_outside_the_still_cut_groups_at_once": """
name: fuzz
seed: 20000
hosts: 13
regions: 4
interval: 2
duration: 195
metrics: false
downcheck:
  missed: 3.0
  late: 1.5
  grace: 1
  region_share: 0.4
  group_share: 0.7
  min_region_hosts: 3
  min_group_hosts: 5
  flap_window: 0
faults:
- at: 34
  downtime: 46.7
  reboot:
  - r4-h003
  - r2-h003
  - r3-h001
  - r1-h004
  - r4-h002
- downtime: 9.0
  reboot:
  - r2-h003
  - r2-h002
  - r1-h004
  - r4-h001
  - r1-h002
  - r2-h001
  - r3-h001
  - r1-h003
  at: 37
- at: 1
  spool: true
  for: 34.1
  partition:
  - r1-h003
  - r2-h003
- restart:
  - r2-h002
  - r3-h003
  - r1-h001
  - r1-h002
  - r3-h002
  - r2-h003
  - r3-h001
  - r1-h004
  downtime: 30.6
  at: 132
- at: 37
  crash:
  - r2-h003
  - r2-h002
  - r1-h004
  - r4-h001
  - r1-h002
  - r2-h001
  - r3-h001
  - r1-h003
intervals:
- 2
- 5
- 5
zones: 1
""",
    "a_blanket_cut_off_again_while_it_settled_is_in_force_again": """
name: fuzz
seed: 471
hosts: 13
regions: 4
interval: 1
duration: 33
metrics: false
downcheck:
  missed: 3.0
  late: 1.5
  grace: 0
  region_share: 0.7
  group_share: 0.4
  min_region_hosts: 5
  min_group_hosts: 3
  flap_window: 0
faults:
- at: 12
  for: 9.1
  spool: true
  ingest_outage: true
- spool: true
  at: 6
  for: 5.4
  ingest_outage: true
- crash:
  - r4-h003
  - r1-h002
  - r2-h001
  - r1-h004
  - r2-h003
  - r4-h001
  - r4-h002
  - r3-h001
  at: 6
- partition:
    zone: r2-z1
  for: 8.6
  at: 25
  spool: true
- for: 5.5
  spool: true
  partition:
  - r3-h002
  - r2-h002
  at: 12
- at: 11
  crash:
  - r2-h001
  - r2-h003
  - r4-h001
  - r3-h003
intervals:
- 1
- 1
jitter: 0.495
zones: 1
""",
    "a_deadline_a_rebooted_co_stoppers_return_gave_is_extended_by_the_cuts_own_returns": """
name: fuzz
seed: 5315
hosts: 24
regions: 4
interval: 5
duration: 170
metrics: false
downcheck:
  missed: 4.0
  late: 2.0
  grace: 2
  region_share: 0.4
  group_share: 0.7
  min_region_hosts: 3
  min_group_hosts: 5
  flap_window: 0
faults:
- at: 130
  partition:
  - r3-h006
  - r3-h005
  - r4-h003
  - r2-h001
  - r2-h003
  - r1-h002
  spool: false
  for: 8.3
- at: 26
  downtime: 19.1
  reboot:
  - r2-h006
  - r4-h002
  - r4-h004
- at: 29
  for: 24.1
  spool: false
  partition:
    zone: r2-z1
intervals:
- 5
- 5
jitter: 2.5
zones: 2
""",
    "a_renewed_deadline_is_no_blanket_release_later_returns_extend_it": """
name: fuzz
seed: 255
hosts: 17
regions: 1
interval: 1
duration: 330
metrics: false
downcheck:
  missed: 4.0
  late: 2.0
  grace: 1
  region_share: 0.7
  group_share: 0.7
  min_region_hosts: 5
  min_group_hosts: 5
  flap_window: 0
faults:
- downtime: 22.3
  at: 3
  reboot:
  - r1-h010
- downtime: 100.0
  at: 151
  reboot:
  - r1-h004
  - r1-h009
  - r1-h006
  - r1-h017
  - r1-h013
  - r1-h011
- downtime: 61.2
  restart:
  - r1-h005
  - r1-h016
  - r1-h011
  - r1-h002
  - r1-h001
  at: 41
- for: 47.7
  spool: false
  at: 158
  partition:
  - r1-h007
  - r1-h014
  - r1-h011
  - r1-h006
  - r1-h017
  - r1-h012
  - r1-h002
- for: 13.2
  spool: false
  at: 149
  ingest_outage: true
- until: 198.0
  crash:
  - r1-h013
  - r1-h003
  - r1-h017
  - r1-h012
  - r1-h004
  - r1-h010
  - r1-h005
  - r1-h009
  at: 88
intervals:
- 10
- 1
zones: 1
""",
    "region-sized-before-all-hosts-joined": """
name: fuzz
seed: 391
hosts: 24
regions: 4
interval: 1
duration: 42
metrics: false
downcheck:
  missed: 4.0
  late: 2.0
  grace: 0
  region_share: 0.7
  group_share: 0.7
  min_region_hosts: 3
  min_group_hosts: 3
  flap_window: 0
faults:
- for: 12.3
  partition:
  - r4-h003
  - r3-h006
  - r3-h002
  - r1-h005
  - r3-h004
  - r1-h002
  - r3-h001
  spool: false
  at: 1
- for: 8.2
  at: 1
  delay: 0.05
  slow:
  - r1-h001
- at: 1
  clock_skew:
  - r1-h005
  - r3-h005
  - r1-h001
  - r4-h003
  - r2-h004
  - r3-h003
  - r4-h002
  - r3-h001
  offset: -3600
intervals:
- 1
- 2
- 1
zones: 3
racks: 2
""",
    "false-page-at-fleet-start": """
name: fuzz
seed: 0
hosts: 14
regions: 2
interval: 5
duration: 100
metrics: false
downcheck:
  missed: 3.0
  late: 1.5
  grace: 0
  region_share: 0.4
  group_share: 0.4
  min_region_hosts: 3
  min_group_hosts: 3
  flap_window: 0
faults:
- at: 1
  crash:
  - r1-h001
- at: 1
  partition:
    region: r1
  for: 15.0
  spool: false
- at: 1
  partition:
    region: r2
  for: 10.0
  spool: false

""",
    "isolated-pages-late-after-overlapping-faults": """
name: fuzz
seed: 45
hosts: 19
regions: 1
interval: 5
duration: 110
metrics: false
downcheck:
  missed: 4.0
  late: 2.0
  grace: 0
  region_share: 0.7
  group_share: 0.5
  min_region_hosts: 3
  min_group_hosts: 5
  flap_window: 300
faults:
- for: 7.5
  spool: false
  at: 66
  partition:
  - r1-h018
  - r1-h001
  - r1-h002
  - r1-h014
  - r1-h012
  - r1-h017
- at: 58
  reboot:
  - r1-h018
  - r1-h007
  - r1-h009
  - r1-h001
  - r1-h008
  downtime: 41.6
- restart:
  - r1-h004
  - r1-h015
  - r1-h006
  - r1-h002
  - r1-h012
  - r1-h005
  - r1-h009
  - r1-h018
  at: 7
  downtime: 47.3
- for: 25.9
  partition:
    region: r1
  spool: true
  at: 32
jitter: 2.5
zones: 1
racks: 2
""",
    "false-page-and-late-page-mixed-faults": """
name: fuzz
seed: 65535
hosts: 19
regions: 4
interval: 10
duration: 200
metrics: false
downcheck:
  missed: 3.0
  late: 1.5
  grace: 1
  region_share: 0.4
  group_share: 0.4
  min_region_hosts: 5
  min_group_hosts: 5
  flap_window: 0
faults:
- until: 56.0
  at: 6
  crash:
  - r4-h002
- until: 197.0
  at: 147
  crash:
  - r4-h003
  - r1-h004
  - r3-h005
  - r2-h003
  - r2-h005
  - r3-h004
  - r3-h001
  - r1-h003
- crash:
  - r4-h003
  at: 19
  until: 39.0
- downtime: 82.3
  reboot:
  - r4-h002
  - r1-h005
  - r3-h003
  - r2-h003
  - r3-h004
  - r1-h004
  - r4-h003
  - r2-h005
  at: 31
- downtime: 15.0
  at: 93
  reboot:
  - r2-h003
  - r1-h001
  - r1-h002
  - r1-h005
  - r2-h005
  - r4-h002
  - r3-h002
  - r4-h004
- at: 77
  for: 55.7
  spool: true
  partition:
  - r1-h003
  - r1-h002
  - r3-h003
  - r1-h004
  - r4-h002
  - r3-h002
  - r2-h004
  - r2-h002
zones: 2
""",
    "late-isolated-page-under-heavy-jitter": """
name: fuzz
seed: 128
hosts: 10
regions: 4
interval: 10
duration: 240
metrics: false
downcheck:
  missed: 5.0
  late: 2.5
  grace: 2
  region_share: 0.7
  group_share: 0.4
  min_region_hosts: 3
  min_group_hosts: 5
  flap_window: 300
faults:
- for: 64.7
  spool: false
  at: 81
  partition:
    rack: r3-z2-r1
- at: 120
  downtime: 50.0
  reboot:
  - r2-h001
  - r4-h002
  - r2-h003
  - r1-h001
  - r1-h002
  - r1-h003
- at: 121
  down: 74.4
  up: 14.2
  for: 56.6
  flap:
  - r2-h001
- at: 119
  spool: false
  partition:
  - r3-h001
  - r1-h001
  for: 5.0
- crash:
  - r3-h002
  - r4-h002
  - r2-h003
  - r4-h001
  - r2-h001
  - r1-h003
  - r1-h002
  - r1-h001
  at: 171
- crash:
  - r3-h002
  - r4-h002
  - r2-h003
  - r4-h001
  - r2-h001
  - r1-h003
  - r1-h002
  - r1-h001
  at: 104
jitter: 14.85
zones: 3
racks: 2
""",
    "ingest-outage-forever-at-fleet-start": """
name: fuzz
seed: 1687
hosts: 16
regions: 3
interval: 1
duration: 80
metrics: false
downcheck:
  missed: 4.0
  late: 2.0
  grace: 0
  region_share: 0.5
  group_share: 0.4
  min_region_hosts: 3
  min_group_hosts: 5
  flap_window: 0
faults:
- at: 1
  crash:
  - r3-h001
  - r2-h001
  - r1-h004
  - r3-h003
  - r2-h004
- up: 14.6
  at: 1
  for: 1.8
  down: 12.1
  flap:
  - r3-h004
- until: 17.0
  at: 1
  crash:
  - r2-h003
  - r3-h005
  - r2-h001
  - r1-h004
- at: 1
  crash:
  - r3-h001
  - r2-h001
  - r1-h004
  - r3-h003
  - r2-h004
- at: 1
  crash:
  - r1-h001
  until: 5.0
intervals:
- 2
- 1
- 1
jitter: 0.99
zones: 3
""",
    "back-to-back-ingest-outages-one-alert": """
name: fuzz
seed: 5049
hosts: 39
regions: 2
interval: 2
duration: 70
metrics: false
downcheck:
  missed: 4.0
  late: 1.5
  grace: 1
  region_share: 0.5
  group_share: 0.5
  min_region_hosts: 5
  min_group_hosts: 5
  flap_window: 300
faults:
- ingest_outage: true
  at: 23
  for: 12.0
  spool: false
- at: 5
  crash:
  - r2-h010
  - r1-h008
  - r1-h017
  - r2-h007
  - r2-h002
  - r2-h005
  - r1-h009
  until: 25.0
- spool: false
  at: 36
  ingest_outage: true
  for: 10.0
jitter: 0.99
zones: 2
racks: 3
""",
    "zone-alert-open-then-its-region-cut": """
name: fuzz
seed: 7301
hosts: 27
regions: 2
interval: 2
duration: 56
metrics: false
downcheck:
  missed: 5.0
  late: 2.5
  grace: 0
  region_share: 0.4
  group_share: 0.4
  min_region_hosts: 3
  min_group_hosts: 3
  flap_window: 0
faults:
- spool: true
  at: 15
  partition:
  - r2-h006
  - r1-h014
  - r2-h007
  - r1-h009
  - r1-h012
  - r2-h004
  for: 14.9
- spool: false
  at: 2
  partition:
  - r1-h004
  - r2-h009
  for: 3.0
- partition:
  - r2-h013
  - r2-h009
  - r2-h007
  - r2-h005
  - r2-h001
  - r2-h004
  - r1-h005
  - r1-h004
  at: 27
  spool: false
  for: 17.0
intervals:
- 2
- 2
jitter: 1.5
zones: 3
racks: 2
""",
    "a_crash_wave_held_under_a_later_ingest_outage_is_released_when_the_outage_ends": """
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
""",
    "a_whole_fleet_dead_in_turns_is_one_ingest_outage_that_stays": """
name: fuzz
seed: 0
hosts: 3
regions: 2
interval: 10
duration: 200
metrics: false
downcheck:
  missed: 3.0
  late: 1.5
  grace: 0
  region_share: 0.7
  group_share: 0.4
  min_region_hosts: 3
  min_group_hosts: 3
  flap_window: 0
faults:
- at: 5
  crash:
  - r1-h002
- at: 19
  crash:
  - r1-h001
- at: 26
  crash:
  - r1-h001
  - r2-h001
""",
}


@pytest.mark.parametrize("name", sorted(FOUND))
def test_scenarios_the_fuzzer_found_keep_the_promise(name: str) -> None:
    _check_doc(yaml.safe_load(FOUND[name]))


@pytest.mark.fuzz
def test_generated_scenarios_keep_the_promise(request: pytest.FixtureRequest) -> None:
    """A bounded, seeded run in ``make test`` (the same scenarios every time, so CI is
    repeatable); ``--fuzz-long`` draws ``FUZZ_EXAMPLES`` fresh ones."""
    long = request.config.getoption("--fuzz-long")
    # Off in make test while its seeded set still finds a defect (tests/unit/fuzz_open/).
    if not long and not BOUNDED_RUN_FINDS_NOTHING:
        pytest.skip("run with --fuzz-long (FUZZ_EXAMPLES=N); the bounded run is off until it finds nothing")
    examples = _examples() if long else BOUNDED_EXAMPLES
    checked = [0]

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
        derandomize=not long,
    )
    @given(scenario_docs())
    def run(doc: dict[str, Any]) -> None:
        checked[0] += 1
        if long and checked[0] % 250 == 0:
            print(f"fuzz: {checked[0]} scenarios checked", flush=True)  # seen with pytest -s
        _check_doc(doc)

    run()
    if long:
        print(f"fuzz: {checked[0]} scenarios checked, no broken promise", flush=True)
