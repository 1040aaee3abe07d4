"""Log rules (at least N within W, absent for W) and group rules (aggregates, staleness, scaling)."""

from __future__ import annotations

import math

import pytest

from collector.contract import Alert, ScaleSignal
from policies.engine import GroupSample, HostState
from policies.group import GroupState, evaluate_group, group_value, retire_group
from policies.lifecycle import Announced
from policies.model import GroupRule, short_hash
from policies.suppress import Suppressor
from tests.policy_events import Fleet, batch, logs, policy, procs, said

OOM = """
rules:
  - name: oom_kills
    log: oom
    at_least: 3
    within: 10m
    severity: critical
"""


def log_counts(fleet: Fleet, counts: list[int], start: float = 0.0, rule: str = "oom") -> list[Alert]:
    return fleet.feed(*(logs(start + 60 * i, {rule: n}) for i, n in enumerate(counts)))


def test_at_least_n_within_a_window_fires_at_the_nth_match() -> None:
    fleet = Fleet.of(OOM)
    assert log_counts(fleet, [0] * 10) == []  # 0..540 s: watched whole from here on
    alerts = log_counts(fleet, [1, 0, 1, 0, 1], start=600)
    assert said(alerts) == [("firing", "critical", 840.0)]  # the third match inside 10 minutes
    (alert,) = alerts
    assert alert.kind == "log" and alert.metric == "log_count:oom" and alert.value == 3.0 and alert.threshold == 3.0


def test_fewer_than_n_within_the_window_do_not_fire() -> None:
    fleet = Fleet.of(OOM)
    # two matches every 11 minutes: never three inside one 10-minute window
    assert log_counts(fleet, ([2] + [0] * 10) * 5) == []


def test_at_least_resolves_when_the_matches_leave_the_window() -> None:
    fleet = Fleet.of(OOM)
    alerts = log_counts(fleet, [0] * 10 + [3] + [0] * 10)
    assert said(alerts) == [("firing", "critical", 600.0), ("resolved", "critical", 1200.0)]


ABSENT = """
rules:
  - name: backup_report_missing
    log: backup_done
    absent_for: 1h
"""


def test_absent_for_fires_only_after_a_whole_window_without_matches() -> None:
    fleet = Fleet.of(ABSENT)
    assert log_counts(fleet, [0] * 59, rule="backup_done") == []  # 0..3480 s: not a whole hour yet
    alerts = log_counts(fleet, [0], start=3540, rule="backup_done")
    assert said(alerts) == [("firing", "warning", 3540.0)]  # an hour watched, allowing one interval
    assert alerts[0].kind == "log"


def test_absent_for_counts_from_the_last_match() -> None:
    fleet = Fleet.of(ABSENT)
    counts = [0] * 10 + [1] + [0] * 70  # a match at 600 s
    alerts = log_counts(fleet, counts, rule="backup_done")
    assert said(alerts) == [("firing", "warning", 4200.0)]  # the match left the hour at 600 + 3600


def test_absent_for_resolves_on_a_match() -> None:
    fleet = Fleet.of(ABSENT)
    alerts = log_counts(fleet, [0] * 70 + [2] + [0] * 5, rule="backup_done")
    assert said(alerts) == [("firing", "warning", 3540.0), ("resolved", "warning", 4200.0)]


def test_absent_for_never_judges_a_host_not_watched_for_a_whole_window() -> None:
    fleet = Fleet.of(ABSENT)
    # samples every minute for 50 minutes, a 2-hour silence of the agent, 50 minutes again
    assert log_counts(fleet, [0] * 50, rule="backup_done") == []
    assert log_counts(fleet, [0] * 50, start=3000 + 7200, rule="backup_done") == []


# --- groups ----------------------------------------------------------------------------------

WEB_CPU = """
rules:
  - name: web_cpu
    group: {metric: cpu_pct, agg: avg}
    max: 80
    stale: 2m
"""


def group_rule(text: str) -> GroupRule:
    (rule,) = policy(text).group_rules
    return rule


def watched() -> GroupState:
    """The state of a group watched for longer than its stale time already."""
    return GroupState(since=-1e9)


def run_group(
    rule: GroupRule, samples: list[tuple[str, float, float]], state: GroupState | None = None
) -> tuple[list[Alert], list[ScaleSignal]]:
    state = state if state is not None else watched()
    suppressor = Suppressor()
    alerts: list[Alert] = []
    signals: list[ScaleSignal] = []
    for host, ts, value in samples:
        more, scale = evaluate_group(rule, state, GroupSample(rule.name, host, value, ts), suppressor)
        alerts.extend(more)
        signals.extend(scale)
    return alerts, signals


@pytest.mark.parametrize(
    ("agg", "expected"),
    [("avg", 50.0), ("max", 90.0), ("min", 10.0), ("sum", 150.0)],
)
def test_group_aggregates_over_the_latest_value_of_each_host(agg: str, expected: float) -> None:
    rule = group_rule(f"rules:\n  - name: g\n    group: {{metric: cpu_pct, agg: {agg}}}\n    max: 1000\n")
    state = watched()
    run_group(rule, [("a", 0, 99), ("a", 10, 10), ("b", 11, 90), ("c", 12, 50)], state)
    assert group_value(rule, state) == (expected, 3)


def test_group_count_of_hosts_running_a_process_group() -> None:
    rule = group_rule(
        "rules:\n  - name: serving\n    group: {running: nginx}\n    min: 3\n    for: 30s\n    severity: critical\n"
    )
    assert rule.metric == "proc_count:nginx" and rule.agg == "count"
    three = [("a", 0, 4), ("b", 1, 2), ("c", 2, 1)]
    alerts, _ = run_group(rule, three)
    assert alerts == []
    # c stops running nginx at 12 but still reports: 2 of 3 hosts, held for 30 s
    alerts, _ = run_group(rule, [*three, ("c", 12, 0), ("a", 20, 4), ("b", 30, 2), ("c", 42, 0)])
    assert said(alerts) == [("firing", "critical", 42.0)]
    (alert,) = alerts
    assert alert.kind == "group" and alert.value == 2.0 and alert.host_id == ""
    assert alert.summary == "serving: proc_count:nginx 2 across 3 hosts (threshold 3)"


def test_a_new_group_is_judged_only_once_watched_for_its_stale_time() -> None:
    rule = group_rule("rules:\n  - name: serving\n    group: {running: nginx}\n    min: 3\n    stale: 60s\n")
    state = GroupState()
    # hosts report one after the other after a (re)start: the first ones alone are not "too few"
    alerts, _ = run_group(rule, [("a", 0, 4), ("b", 20, 2), ("c", 40, 1), ("a", 50, 4)], state)
    assert alerts == []
    alerts, _ = run_group(rule, [("b", 60, 2), ("c", 70, 0)], state)
    assert said(alerts) == [("firing", "warning", 70.0)]  # watched 60 s: two of three is too few


def test_a_new_group_asks_for_no_scaling_before_it_is_watched() -> None:
    rule = group_rule(SCALED)
    _, signals = run_group(rule, [("a", t, 5) for t in range(0, 200, 30)], GroupState())
    assert [(s.action, s.at) for s in signals] == [("scale_in", 120.0)]


def test_group_alert_fires_and_resolves_with_one_fingerprint() -> None:
    rule = group_rule(WEB_CPU)
    alerts, _ = run_group(rule, [("a", 0, 70), ("b", 1, 80), ("a", 10, 90), ("b", 11, 40), ("a", 20, 50)])
    assert said(alerts) == [("firing", "warning", 10.0), ("resolved", "warning", 11.0)]
    assert len({a.fingerprint for a in alerts}) == 1
    assert alerts[0].summary == "web_cpu: cpu_pct 85 across 2 hosts (threshold 80)"


def test_stale_hosts_drop_out_of_the_group() -> None:
    rule = group_rule(WEB_CPU)
    state = watched()
    # b is hot but goes silent at 0; a keeps reporting low values
    alerts, _ = run_group(rule, [("a", 0, 0), ("b", 0, 100), ("a", 60, 0), ("a", 119, 0)], state)
    assert alerts == [] and group_value(rule, state) == (50.0, 2)
    run_group(rule, [("a", 121, 0)], state)
    assert group_value(rule, state) == (0.0, 1) and "b" not in state.hosts


def test_group_value_leaves_out_stale_hosts_and_nan_values() -> None:
    rule = group_rule(WEB_CPU)
    state = GroupState(hosts={"old": [100.0, 0.0], "nan": [math.nan, 200.0], "new": [10.0, 200.0]}, now=200.0)
    assert group_value(rule, state) == (10.0, 1)


def test_a_host_that_went_stale_and_was_the_breach_resolves_the_alert() -> None:
    rule = group_rule(WEB_CPU.replace("agg: avg", "agg: max"))
    alerts, _ = run_group(rule, [("b", 0, 100), ("a", 0, 10), ("a", 60, 10), ("a", 130, 10)])
    assert said(alerts) == [("firing", "warning", 0.0), ("resolved", "warning", 130.0)]


def test_an_older_or_repeated_contribution_of_a_host_is_ignored() -> None:
    rule = group_rule(WEB_CPU)
    state = watched()
    run_group(rule, [("a", 10, 50), ("a", 5, 100), ("a", 10, 100)], state)
    assert group_value(rule, state) == (50.0, 1)


def test_group_for_needs_a_sustained_breach() -> None:
    rule = group_rule(WEB_CPU + "    for: 30s\n")
    alerts, _ = run_group(rule, [("a", t, 90) for t in range(0, 50, 10)])
    assert said(alerts) == [("firing", "warning", 30.0)]


SCALED = """
rules:
  - name: web_capacity
    group: {metric: cpu_pct, agg: avg}
    max: 95
    scale: {out_above: 80, in_below: 20, cooldown: 10m}
"""


def test_scale_out_is_asked_at_most_once_per_cooldown() -> None:
    rule = group_rule(SCALED)
    _, signals = run_group(rule, [("a", t, 90) for t in range(0, 1300, 60)])
    assert [(s.action, s.at) for s in signals] == [("scale_out", 0.0), ("scale_out", 600.0), ("scale_out", 1200.0)]
    assert signals[0].value == 90.0 and signals[0].threshold == 80.0 and signals[0].hosts == 1
    assert len({s.event_id for s in signals}) == 3


def test_scale_in_when_the_group_is_idle_and_nothing_in_between() -> None:
    rule = group_rule(SCALED)
    _, signals = run_group(rule, [("a", 0, 50), ("b", 1, 10), ("a", 2, 5)])
    assert [(s.action, s.at, s.value) for s in signals] == [("scale_in", 2.0, 7.5)]


def test_scale_cooldown_applies_across_directions() -> None:
    rule = group_rule(SCALED)
    _, signals = run_group(rule, [("a", 0, 90), ("a", 300, 5), ("a", 600, 5)])
    assert [(s.action, s.at) for s in signals] == [("scale_out", 0.0), ("scale_in", 600.0)]


def test_no_hosts_means_no_judgement() -> None:
    rule = group_rule(WEB_CPU)
    state = GroupState()
    value, hosts = group_value(rule, state)
    assert math.isnan(value) and hosts == 0


def test_the_host_evaluator_forwards_samples_of_group_rules_in_scope() -> None:
    fleet = Fleet.of(
        """
rules:
  - name: web_cpu
    group: {metric: cpu_pct, agg: avg}
    scope:
      labels: {role: web}
    max: 80
  - name: serving
    group: {running: nginx}
    min: 1
"""
    )
    state_web = HostState()
    result = fleet.evaluator.evaluate(batch(5, host="w", labels={"role": "web"}, cpu_pct=42), state_web)
    assert [(g.rule, g.host_id, g.value, g.ts) for g in result.group_samples] == [("web_cpu", "w", 42.0, 5.0)]
    result = fleet.evaluator.evaluate(batch(5, host="d", labels={"role": "db"}, cpu_pct=42), state_web)
    assert result.group_samples == []
    result = fleet.evaluator.evaluate(procs(6, {"nginx": 3}, host="d"), state_web)
    assert [(g.rule, g.value) for g in result.group_samples] == [("serving", 3.0)]


def test_a_removed_group_rule_resolves_its_open_alert_once() -> None:
    rule = group_rule("rules:\n  - name: g\n    group: {metric: cpu_pct, agg: avg}\n    max: 80\n")
    state = watched()
    fired, _ = run_group(rule, [("a", 0, 95), ("b", 1, 90)], state)
    assert [a.transition for a in fired] == ["firing"]
    closed = retire_group("g", "cpu_pct", state)
    assert [(a.transition, a.fingerprint, a.started_at, a.at) for a in closed] == [
        ("resolved", fired[0].fingerprint, fired[0].started_at, 1.0)
    ]
    assert retire_group("g", "cpu_pct", state) == []  # nothing open any more


def test_a_removed_group_rule_that_announced_nothing_resolves_nothing() -> None:
    rule = group_rule("rules:\n  - name: g\n    group: {metric: cpu_pct, agg: avg}\n    max: 80\n")
    state = watched()
    run_group(rule, [("a", 0, 10)], state)
    assert retire_group("g", "cpu_pct", state) == []
    # the alert topic is the truth: an open alert the state lost is still closed
    told = {short_hash("g", "", "cpu_pct"): Announced("warning", 0.0, 0.0)}
    assert [a.transition for a in retire_group("g", "cpu_pct", state, told.get)] == ["resolved"]
