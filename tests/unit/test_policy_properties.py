"""Properties of evaluation over arbitrary input: it never raises, and notifications stay consistent.

Per fingerprint ``firing`` and ``resolved`` strictly alternate (firing only when nothing is
open, resolved only when something is) and ``escalated``/``deescalated``/``repeat`` only
update an open alert, whatever the numbers, silences, flap settings and state round trips.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.contract import Alert, GroupStats, LogCounts, MetricBatch, ProcessEvent, ProcessSummary, decode, encode
from policies.engine import EvaluatedEvent, Evaluator, HostState
from policies.group import GroupState, evaluate_group
from policies.model import SEVERITY_RANK, LabelMatch, PolicySet, Silence
from policies.suppress import Suppressor
from tests.policy_events import MONDAY, policy

POLICY = """
rules:
  - name: levels
    metric: x
    max: {{warning: 10, critical: 100}}
    min: {{warning: -10, critical: -100}}
    hysteresis: 5
    for: {for_s}s
    {notify}
  - name: averaged
    metric: x
    agg: avg
    window: 30s
    max: 10
    {notify}
  - name: disks
    metric: disk_pct
    agg: p95
    window: 40s
    max: {{warning: 80, critical: 95}}
    recover: {{max: {{warning: 70}}}}
    {notify}
  - name: lowest
    metric: x
    agg: min
    window: 20s
    min: 0
    {notify}
  - name: job_procs
    process: job
    count: {{min: 1, max: 50}}
    cpu_pct: {{max: 100}}
    rss_bytes: {{max: 1e9}}
    window: 30s
    {notify}
  - name: job_schedule
    schedule: "*/5 * * * *"
    process: job
    within: 2m
    max_runtime: 100s
    {notify}
  - name: errors
    log: err
    at_least: 2
    within: 60s
    {notify}
  - name: heartbeat_line
    log: alive
    absent_for: 90s
    {notify}
  - name: fleet_x
    group: {{metric: x, agg: avg}}
    max: {{warning: 10, critical: 100}}
    scale: {{out_above: 50, in_below: -50, cooldown: 30s}}
    {notify}
  - name: fleet_sum
    group: {{metric: x, agg: sum}}
    min: -1000
    {notify}
  - name: job_hosts
    group: {{running: job}}
    min: 2
    {notify}
"""

HOSTS = ("h1", "h2", "h3")
SPECIAL = [0.0, -0.0, 9.0, 11.0, 99.0, 101.0, -11.0, -101.0, 1e308, -1e308, 5e-324, math.inf, -math.inf, math.nan]
any_number = st.floats() | st.sampled_from(SPECIAL) | st.integers(-200, 200).map(float)
finite_number = st.floats(-1e12, 1e12) | st.integers(-200, 200).map(float)


def build_policy(for_s: int, flap_changes: int, flap_window_s: int, renotify_s: int) -> PolicySet:
    notify = f"flap: {{window: {flap_window_s}s, changes: {flap_changes}}}"
    if renotify_s:
        notify += f"\n    renotify: {renotify_s}s"
    return policy(POLICY.format(for_s=for_s, notify=notify))


settings_st = st.tuples(
    st.sampled_from([0, 10, 30]),  # for
    st.integers(0, 4),  # flap changes (0: off)
    st.sampled_from([20, 60, 600]),  # flap window
    st.sampled_from([0, 15, 60]),  # renotify
)

silence_st = st.builds(
    lambda matcher, start, length: Silence("s", (matcher,), MONDAY + start, MONDAY + start + length),
    st.sampled_from(
        [
            LabelMatch("host_id", "=", "h1"),
            LabelMatch("severity", "=", "critical"),
            LabelMatch("rule", "=~", "levels|averaged|fleet_x"),
            LabelMatch("kind", "in", values=("log", "schedule")),
        ]
    ),
    st.integers(0, 600),
    st.integers(1, 600),
)


Step = tuple[int, str, int, list[float], int]


def event_st(number: st.SearchStrategy[float]) -> st.SearchStrategy[Step]:
    """(seconds after the previous event, host, event kind, numbers, repeats 10 s apart) of one step.

    Repeats fill windows with the same odd numbers, which single random events rarely do.
    """
    return st.tuples(
        st.integers(-5, 70),
        st.sampled_from(HOSTS),
        st.integers(0, 4),
        st.lists(number, min_size=4, max_size=4),
        st.integers(1, 5),
    )


def make_event(ts: float, host: str, kind: int, n: list[float]) -> EvaluatedEvent:
    labels = {"role": "web"} if host != "h3" else {}
    if kind == 0:
        return MetricBatch(host, "eu", ts, 10.0, {"x": n[0], "disk_pct:/": n[1], "disk_pct:/var": n[2]}, labels)
    if kind == 1:
        count = int(n[0]) if math.isfinite(n[0]) and abs(n[0]) < 1e6 else 0
        rss = int(n[2]) if math.isfinite(n[2]) and abs(n[2]) < 1e18 else 0
        oldest = ts - abs(n[3]) if math.isfinite(n[3]) else None
        stats = GroupStats(count, n[1], rss, oldest if count else None, oldest if count else None)
        return ProcessSummary(host, "eu", ts, 10.0, 10, {}, [], [], {"job": stats}, labels)
    if kind == 2:
        counts = {"err": int(abs(n[0])) % 4 if math.isfinite(n[0]) else 0, "alive": int(n[1] > 50)}
        return LogCounts(host, "eu", ts, 10.0, counts, labels)
    if kind == 3:
        return ProcessEvent(host, "eu", ts, "job", "start", 1, "job", ts, labels)
    return MetricBatch(host, "eu", ts, 10.0, {"x": n[3]}, labels)


@dataclass
class Checker:
    """What each fingerprint has announced, checked against every notification as it comes."""

    open: dict[str, str] = field(default_factory=dict)  # fingerprint -> announced severity

    def see(self, alert: Alert) -> None:
        fp, told = alert.fingerprint, self.open.get(alert.fingerprint)
        if alert.transition == "firing":
            assert told is None, f"firing while already open: {alert}"
            assert alert.state == "firing"
            self.open[fp] = alert.severity
        elif alert.transition == "resolved":
            assert told is not None, f"resolved while nothing open: {alert}"
            assert alert.state == "resolved" and alert.severity == told
            del self.open[fp]
        else:
            assert told is not None, f"{alert.transition} while nothing open: {alert}"
            assert alert.state == "firing"
            rank, before = SEVERITY_RANK[alert.severity], SEVERITY_RANK[told]
            expected = {"escalated": rank > before, "deescalated": rank < before, "repeat": rank == before}
            assert expected[alert.transition], f"{alert.transition} from {told} to {alert.severity}"
            self.open[fp] = alert.severity


def run(
    policy_set: PolicySet,
    steps: list[Step],
    silences: list[Silence],
    persist: bool,
) -> list[Alert]:
    """Evaluate ``steps`` as the worker would (host rules, then group rules); every notification in order."""
    suppressor = Suppressor(silences={f"s{i}": s for i, s in enumerate(silences)})
    evaluator = Evaluator(policy_set, suppressor)
    groups = {rule.name: rule for rule in policy_set.group_rules}
    hosts: dict[str, bytes] = {}
    group_states: dict[str, bytes] = {}
    live_hosts: dict[str, HostState] = {}
    live_groups: dict[str, GroupState] = {}
    checker = Checker()
    out: list[Alert] = []
    ts = MONDAY
    events = [(dt if i == 0 else 10, host, kind, numbers) for dt, host, kind, numbers, n in steps for i in range(n)]
    for dt, host, kind, numbers in events:
        ts += dt
        state = HostState.from_bytes(hosts.get(host)) if persist else live_hosts.setdefault(host, HostState())
        result = evaluator.evaluate(make_event(ts, host, kind, numbers), state)
        if persist:
            hosts[host] = state.to_bytes()
        alerts = list(result.alerts)
        for sample in result.group_samples:
            rule = groups[sample.rule]
            gstate = (
                GroupState.from_bytes(group_states.get(rule.name))
                if persist
                else live_groups.setdefault(rule.name, GroupState())
            )
            more, _signals = evaluate_group(rule, gstate, sample, suppressor)
            alerts.extend(more)
            if persist:
                group_states[rule.name] = gstate.to_bytes()
        for alert in alerts:
            checker.see(alert)
        out.extend(alerts)
    return out


COMMON = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@COMMON
@given(settings_st, st.lists(event_st(any_number), max_size=40), st.lists(silence_st, max_size=2), st.booleans())
def test_evaluation_never_raises_and_notifications_alternate_per_fingerprint(
    knobs: tuple[int, int, int, int],
    steps: list[Step],
    silences: list[Silence],
    persist: bool,
) -> None:
    run(build_policy(*knobs), steps, silences, persist)


@COMMON
@given(settings_st, st.lists(event_st(finite_number), max_size=40), st.lists(silence_st, max_size=2))
def test_state_round_trips_change_no_decision_and_alerts_are_valid_records(
    knobs: tuple[int, int, int, int],
    steps: list[Step],
    silences: list[Silence],
) -> None:
    policy_set = build_policy(*knobs)
    in_memory = run(policy_set, steps, silences, persist=False)
    written_back = run(policy_set, steps, silences, persist=True)
    assert written_back == in_memory
    for alert in in_memory:
        assert decode(encode(alert)) == alert


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.sampled_from([0.0, 1.0, 12.0, 150.0, -20.0])), max_size=80))
def test_busy_alerts_alternate_under_every_flap_setting(values: list[tuple[int, float]]) -> None:
    # values around the thresholds, so alerts open, escalate, close and flap a lot
    for knobs in [(0, 0, 600, 0), (0, 2, 60, 15), (10, 3, 600, 0), (0, 4, 20, 60)]:
        steps = [(dt, "h1", 4, [0.0, 0.0, 0.0, v], 1) for dt, v in values]
        run(build_policy(*knobs), steps, [], persist=False)
