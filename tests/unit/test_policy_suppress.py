"""What keeps alerts quiet: silences, maintenance windows and inhibition."""

from __future__ import annotations

from policies.control import parse_matcher
from policies.engine import Evaluator
from policies.model import InhibitRule, LabelMatch, MaintenanceWindow, Silence
from policies.suppress import Suppressor, alert_labels
from tests.policy_events import DAY_S, MONDAY, Fleet, batch, policy, said

HOT = """
rules:
  - name: cpu_hot
    metric: cpu_pct
    max: {warning: 80, critical: 95}
  - name: disk_full
    metric: disk_pct
    max: 90
"""


def silenced(*matchers: str, start: float = 0.0, end: float = 100.0) -> Suppressor:
    silence = Silence("s1", tuple(parse_matcher(m) for m in matchers), start, end, "ops", "deploy")
    return Suppressor(silences={"s1": silence})


def test_a_silenced_alert_is_not_announced_while_the_silence_lasts() -> None:
    fleet = Fleet.of(HOT, silenced("rule=cpu_hot"))
    assert fleet.feed(*(batch(t, cpu_pct=90) for t in range(10, 100, 10))) == []


def test_an_alert_still_firing_when_its_silence_ends_is_announced_then() -> None:
    fleet = Fleet.of(HOT, silenced("rule=cpu_hot"))
    alerts = fleet.feed(*(batch(t, cpu_pct=90) for t in range(10, 130, 10)))
    assert said(alerts) == [("firing", "warning", 100.0)]
    assert alerts[0].started_at == 10.0  # when the breach began, not when it was told


def test_a_silence_matches_on_labels_and_alert_fields() -> None:
    fleet = Fleet.of(HOT, silenced("env=prod", "severity=~warn.*"))
    alerts = fleet.feed(
        batch(10, host="p", labels={"env": "prod"}, cpu_pct=90, disk_pct=99),
        batch(10, host="d", labels={"env": "dev"}, cpu_pct=90),
    )
    assert sorted((a.host_id, a.rule) for a in alerts) == [("d", "cpu_hot")]
    # a critical breach on the silenced host is not covered by "severity=~warn.*"
    assert said(fleet.feed(batch(20, host="p", labels={"env": "prod"}, cpu_pct=99, disk_pct=99))) == [
        ("firing", "critical", 20.0)
    ]


def test_an_alert_that_escalates_under_a_silence_is_announced_at_its_severity_afterwards() -> None:
    fleet = Fleet.of(HOT, silenced("rule=cpu_hot", start=50.0))
    opened = fleet.feed(batch(0, cpu_pct=90))
    assert said(opened) == [("firing", "warning", 0.0)]
    assert fleet.feed(*(batch(t, cpu_pct=99) for t in range(50, 100, 10))) == []  # escalation held back
    assert said(fleet.feed(batch(100, cpu_pct=99))) == [("escalated", "critical", 100.0)]


def test_resolved_is_sent_even_while_silenced() -> None:
    fleet = Fleet.of(HOT, silenced("rule=cpu_hot", start=20.0, end=1000.0))
    alerts = fleet.feed(batch(0, cpu_pct=90), batch(30, cpu_pct=90), batch(40, cpu_pct=10))
    assert said(alerts) == [("firing", "warning", 0.0), ("resolved", "warning", 40.0)]


def test_a_silence_not_yet_started_or_already_over_does_nothing() -> None:
    early = Fleet.of(HOT, silenced("rule=cpu_hot", start=500.0, end=600.0))
    assert len(early.feed(batch(10, cpu_pct=90))) == 1
    late = Fleet.of(HOT, silenced("rule=cpu_hot", start=0.0, end=5.0))
    assert len(late.feed(batch(10, cpu_pct=90))) == 1


def test_silences_are_added_and_removed_at_run_time() -> None:
    suppressor = Suppressor()
    fleet = Fleet.of(HOT, suppressor)
    silence = Silence("x", (LabelMatch("host_id", "=", "h1"),), 0.0, 1e12)
    suppressor.put_silence(silence, "x")
    assert fleet.feed(batch(10, cpu_pct=90)) == []
    suppressor.put_silence(None, "x")
    assert said(fleet.feed(batch(20, cpu_pct=90))) == [("firing", "warning", 20.0)]


def test_prune_forgets_silences_that_ended() -> None:
    suppressor = Suppressor(
        silences={
            "old": Silence("old", (LabelMatch("a", "=", "b"),), 0.0, 10.0),
            "new": Silence("new", (LabelMatch("a", "=", "b"),), 0.0, 100.0),
        }
    )
    suppressor.prune(10.0)
    assert list(suppressor.silences) == ["new"]


# --- maintenance windows ---------------------------------------------------------------------

PATCHING = """
rules:
  - name: cpu_hot
    metric: cpu_pct
    max: 80
maintenance:
  - name: sunday_patching
    cron: "0 3 * * SUN"
    duration: 2h
    match:
      region: eu-west
"""
SUNDAY = MONDAY + 6 * DAY_S
HOUR = 3600.0


def test_a_maintenance_window_keeps_matching_alerts_quiet_for_its_duration() -> None:
    fleet = Fleet.of(PATCHING)
    during = [SUNDAY + 3 * HOUR + i * 600 for i in range(12)]  # 03:00 .. 04:50
    quiet = fleet.feed(*(batch(t, host="eu", region="eu-west", cpu_pct=99) for t in during))
    loud = fleet.feed(batch(during[0], host="us", region="us-east", cpu_pct=99))
    assert quiet == [] and [a.host_id for a in loud] == ["us"]
    after = fleet.feed(batch(SUNDAY + 5 * HOUR, host="eu", region="eu-west", cpu_pct=99))
    assert said(after) == [("firing", "warning", SUNDAY + 5 * HOUR)]
    assert after[0].started_at == SUNDAY + 3 * HOUR


def test_outside_its_window_a_maintenance_window_does_nothing() -> None:
    fleet = Fleet.of(PATCHING)
    for t in (SUNDAY + 2 * HOUR + 3000, MONDAY + 3 * HOUR + 60, SUNDAY + 5 * HOUR):
        assert len(fleet.feed(batch(t, host=f"eu-{t}", region="eu-west", cpu_pct=99))) == 1


def test_maintenance_in_a_time_zone() -> None:
    window = MaintenanceWindow("nightly", "0 1 * * *", 3600.0, (), "Europe/Berlin")
    suppressor = Suppressor(maintenance=(window,))
    # 01:00 in Berlin is 00:00 UTC in November (CET)
    assert suppressor.reason({}, MONDAY + 1800) == "maintenance:nightly"
    assert suppressor.reason({}, MONDAY + 3600) is None
    assert suppressor.reason({}, MONDAY - 60) is None


# --- inhibition ------------------------------------------------------------------------------

INHIBIT = """
rules:
  - name: cpu_hot
    metric: cpu_pct
    max: 80
  - name: disk_full
    metric: disk_pct
    max: 90
inhibit:
  - name: host_down_mutes_its_alerts
    source: {rule: host_down}
    target: {rule: {not: host_down}}
    equal: [host_id]
  - name: full_disk_mutes_cpu
    source: {rule: disk_full}
    target: {rule: cpu_hot}
    equal: [host_id]
"""


def host_down(host: str) -> dict[str, str]:
    return alert_labels({}, (), rule="host_down", kind="host", severity="critical", host_id=host, region="eu-west")


def test_a_firing_source_alert_inhibits_targets_with_equal_labels() -> None:
    fleet = Fleet.of(INHIBIT)
    fleet.evaluator.suppressor.note_firing("down-h1", host_down("h1"))
    alerts = fleet.feed(batch(0, host="h1", cpu_pct=99), batch(0, host="h2", cpu_pct=99))
    assert [a.host_id for a in alerts] == ["h2"]


def test_when_the_source_ends_the_target_is_announced() -> None:
    fleet = Fleet.of(INHIBIT)
    fleet.evaluator.suppressor.note_firing("down-h1", host_down("h1"))
    assert fleet.feed(batch(0, host="h1", cpu_pct=99)) == []
    fleet.evaluator.suppressor.note_firing("down-h1", None)
    alerts = fleet.feed(batch(10, host="h1", cpu_pct=99))
    assert said(alerts) == [("firing", "warning", 10.0)] and alerts[0].started_at == 0.0


def test_alerts_from_the_evaluator_are_inhibition_sources() -> None:
    fleet = Fleet.of(INHIBIT)
    opened = fleet.feed(batch(0, disk_pct=99))
    assert [a.rule for a in opened] == ["disk_full"]
    assert fleet.feed(batch(10, disk_pct=99, cpu_pct=99)) == []  # cpu_hot inhibited by disk_full on h1
    assert [a.rule for a in fleet.feed(batch(10, host="h2", cpu_pct=99))] == ["cpu_hot"]
    closed = fleet.feed(batch(20, disk_pct=10, cpu_pct=99))
    # the source resolves first (metrics in batch order), so the target is told in the same batch
    assert [(a.rule, a.transition) for a in closed] == [("disk_full", "resolved"), ("cpu_hot", "firing")]


def test_an_alert_does_not_inhibit_itself() -> None:
    suppressor = Suppressor(inhibit=(InhibitRule("self", (), (), ()),))
    labels = {"rule": "x"}
    suppressor.note_firing("fp", labels)
    assert suppressor.reason(labels, 0.0, "fp") is None
    assert suppressor.reason(labels, 0.0, "other") == "inhibited:self"


def test_inhibition_needs_the_equal_labels_to_match() -> None:
    rule = InhibitRule(
        "zone", (LabelMatch("rule", "=", "zone_down"),), (LabelMatch("rule", "!=", "zone_down"),), ("zone",)
    )
    suppressor = Suppressor(inhibit=(rule,))
    suppressor.note_firing("z", {"rule": "zone_down", "zone": "a"})
    assert suppressor.reason({"rule": "cpu", "zone": "a"}, 0.0) == "inhibited:zone"
    assert suppressor.reason({"rule": "cpu", "zone": "b"}, 0.0) is None
    assert suppressor.reason({"rule": "cpu"}, 0.0) is None


def test_the_policy_supplies_maintenance_and_inhibit_rules_to_the_suppressor() -> None:
    evaluator = Evaluator(policy(INHIBIT))
    assert [r.name for r in evaluator.suppressor.inhibit] == ["host_down_mutes_its_alerts", "full_disk_mutes_cpu"]
    evaluator.policy = policy(PATCHING)
    assert evaluator.suppressor.inhibit == () and [w.name for w in evaluator.suppressor.maintenance] == [
        "sunday_patching"
    ]


def test_reasons_name_what_keeps_an_alert_quiet() -> None:
    suppressor = silenced("rule=cpu_hot")
    assert suppressor.reason({"rule": "cpu_hot"}, 50.0) == "silence:s1"
    assert suppressor.reason({"rule": "disk"}, 50.0) is None
