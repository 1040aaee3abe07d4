"""Metric rules driven by event time: sustain, levels, escalation, hysteresis, windows, scope."""

from __future__ import annotations

import math

import pytest

from collector.contract import decode, encode
from policies.window import aggregate
from tests.policy_events import Fleet, batch, metrics, said

CPU_FOR_60S = """
rules:
  - name: cpu_hot
    when: cpu_pct > 90 for 60s
"""


def cpu(fleet: Fleet, start: float, values: list[float], step: float = 10.0, host: str = "h1") -> list:
    return fleet.feed(*(batch(start + i * step, host=host, cpu_pct=v) for i, v in enumerate(values)))


def test_breach_shorter_than_for_does_not_fire() -> None:
    fleet = Fleet.of(CPU_FOR_60S)
    assert cpu(fleet, 0, [95, 95, 95, 95, 95, 95, 50, 50]) == []  # 0..50 s above, then back


def test_sustained_breach_fires_once_when_for_has_passed() -> None:
    fleet = Fleet.of(CPU_FOR_60S)
    alerts = cpu(fleet, 0, [95] * 20)
    assert said(alerts) == [("firing", "warning", 60.0)]
    (alert,) = alerts
    assert alert.state == "firing" and alert.started_at == 0.0 and alert.value == 95.0 and alert.threshold == 90.0
    assert alert.rule == "cpu_hot" and alert.kind == "metric" and alert.metric == "cpu_pct"


def test_a_dip_restarts_the_for_clock() -> None:
    fleet = Fleet.of(CPU_FOR_60S)
    # above 0..40, dip at 50, above again from 60: fires 60 s after 60, not 60 s after 0
    alerts = cpu(fleet, 0, [95, 95, 95, 95, 95, 50] + [95] * 10)
    assert said(alerts) == [("firing", "warning", 120.0)]
    assert alerts[0].started_at == 60.0


def test_missed_samples_restart_the_for_clock() -> None:
    fleet = Fleet.of(CPU_FOR_60S)
    # above at 0..30 s, then nothing for 30 s (three 10 s samples missed), above again from 60 s
    alerts = fleet.feed(*(batch(t, cpu_pct=95) for t in [0, 10, 20, 30, 60, 70, 80, 90, 100, 110, 120]))
    assert said(alerts) == [("firing", "warning", 120.0)]  # a host that was silent proved nothing
    assert alerts[0].started_at == 60.0


def test_one_missed_sample_does_not_restart_the_for_clock() -> None:
    fleet = Fleet.of(CPU_FOR_60S)
    alerts = fleet.feed(*(batch(t, cpu_pct=95) for t in [0, 10, 20, 40, 50, 60]))
    assert said(alerts) == [("firing", "warning", 60.0)]


def test_back_in_bounds_resolves_with_the_opening_started_at() -> None:
    fleet = Fleet.of(CPU_FOR_60S)
    alerts = cpu(fleet, 0, [95] * 8 + [40])
    assert said(alerts) == [("firing", "warning", 60.0), ("resolved", "warning", 80.0)]
    assert alerts[1].state == "resolved" and alerts[1].started_at == 0.0
    assert alerts[0].fingerprint == alerts[1].fingerprint


LEVELS = """
rules:
  - name: temp
    metric: temp_c
    max: {warning: 80, critical: 95}
    min: {warning: 10, critical: 0}
"""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (50, []),
        (80, []),  # a max bound breaches above its value, not at it
        (81, ["warning"]),
        (96, ["critical"]),
        (10, []),
        (9, ["warning"]),
        (-1, ["critical"]),
    ],
)
def test_levels_on_max_and_min_sides(value: float, expected: list[str]) -> None:
    fleet = Fleet.of(LEVELS)
    alerts = fleet.feed(batch(0, temp_c=value))
    assert [a.severity for a in alerts] == expected
    assert all(a.transition == "firing" for a in alerts)


def test_escalation_and_deescalation_update_the_open_alert() -> None:
    fleet = Fleet.of(LEVELS)
    alerts = fleet.feed(*(batch(t, temp_c=v) for t, v in [(0, 85), (10, 97), (20, 97), (30, 85), (40, 50)]))
    assert said(alerts) == [
        ("firing", "warning", 0.0),
        ("escalated", "critical", 10.0),
        ("deescalated", "warning", 30.0),
        ("resolved", "warning", 40.0),
    ]
    assert [a.state for a in alerts] == ["firing", "firing", "firing", "resolved"]
    assert {a.started_at for a in alerts} == {0.0}
    assert len({a.fingerprint for a in alerts}) == 1


def test_min_side_escalates_too() -> None:
    fleet = Fleet.of(LEVELS)
    alerts = fleet.feed(*(batch(t, temp_c=v) for t, v in [(0, 5), (10, -5), (20, 5), (30, 20)]))
    assert [a.transition for a in alerts] == ["firing", "escalated", "deescalated", "resolved"]


def test_hysteresis_margin_holds_an_alert_until_the_value_is_clearly_back() -> None:
    fleet = Fleet.of(
        """
rules:
  - name: cpu
    metric: cpu_pct
    max: 90
    hysteresis: 5
    flap: {changes: 0}
"""
    )
    values = [(0, 91), (10, 88), (20, 86), (30, 85.5), (40, 85), (50, 89), (60, 90.5)]
    alerts = fleet.feed(*(batch(t, cpu_pct=v) for t, v in values))
    # 85 is the recovery point: above it the alert holds; at 89 (below 90) nothing re-fires
    assert said(alerts) == [("firing", "warning", 0.0), ("resolved", "warning", 40.0), ("firing", "warning", 60.0)]


def test_hysteresis_lets_a_critical_fall_back_to_warning_only_below_its_margin() -> None:
    fleet = Fleet.of(
        """
rules:
  - name: cpu
    metric: cpu_pct
    max: {warning: 85, critical: 95}
    hysteresis: 5
"""
    )
    values = [(0, 96), (10, 92), (20, 89), (30, 82), (40, 80)]
    alerts = fleet.feed(*(batch(t, cpu_pct=v) for t, v in values))
    assert said(alerts) == [
        ("firing", "critical", 0.0),
        ("deescalated", "warning", 20.0),
        ("resolved", "warning", 40.0),
    ]


def test_explicit_recovery_points_per_level() -> None:
    fleet = Fleet.of(
        """
rules:
  - name: disk
    metric: disk_used_pct
    max: {warning: 85, critical: 95}
    recover: {max: {warning: 80, critical: 92}}
"""
    )
    values = [(0, 96), (10, 93), (20, 91), (30, 81), (40, 79.5)]
    alerts = fleet.feed(*(metrics(t, {"disk_used_pct:/var": v}) for t, v in values))
    assert said(alerts) == [
        ("firing", "critical", 0.0),
        ("deescalated", "warning", 20.0),
        ("resolved", "warning", 40.0),
    ]
    assert {a.metric for a in alerts} == {"disk_used_pct:/var"}


def test_explicit_recovery_point_on_the_min_side() -> None:
    fleet = Fleet.of(
        """
rules:
  - name: free
    metric: mem_free_pct
    min: 10
    recover: {min: 20}
"""
    )
    alerts = fleet.feed(*(batch(t, mem_free_pct=v) for t, v in [(0, 5), (10, 15), (20, 19.9), (30, 20)]))
    assert said(alerts) == [("firing", "warning", 0.0), ("resolved", "warning", 30.0)]


def test_base_name_rule_covers_every_instance_with_its_own_alert() -> None:
    fleet = Fleet.of("rules:\n  - name: disk\n    metric: disk_used_pct\n    max: 90\n")
    alerts = fleet.feed(metrics(0, {"disk_used_pct:/": 95, "disk_used_pct:/var": 99, "disk_used_pct:/home": 10}))
    assert sorted(a.metric for a in alerts) == ["disk_used_pct:/", "disk_used_pct:/var"]
    assert len({a.fingerprint for a in alerts}) == 2


# --- windows ---------------------------------------------------------------------------------


def windowed(agg: str, bound: str = "max: 50") -> Fleet:
    return Fleet.of(f"rules:\n  - name: w\n    metric: x\n    agg: {agg}\n    window: 60s\n    {bound}\n")


def feed_x(fleet: Fleet, values: list[float], start: float = 0.0, step: float = 10.0) -> list:
    return fleet.feed(*(batch(start + i * step, x=v) for i, v in enumerate(values)))


@pytest.mark.parametrize("agg", ["avg", "min", "max", "p95", "last"])
def test_a_window_decides_only_once_it_has_been_watched_whole(agg: str) -> None:
    fleet = windowed(agg)
    assert feed_x(fleet, [100] * 5) == []  # 0..40 s: less than a window (60 s with a 10 s interval)
    assert said(fleet.feed(batch(50, x=100))) == [("firing", "warning", 50.0)]


@pytest.mark.parametrize(
    ("agg", "values", "fires"),
    [
        ("avg", [40, 40, 40, 40, 40, 100], False),  # avg exactly 50: not above 50
        ("avg", [40, 40, 40, 40, 40, 101], True),
        ("avg", [40, 40, 40, 40, 40, 70], False),  # avg 45
        ("max", [0, 0, 0, 0, 0, 51], True),
        ("max", [0, 0, 0, 0, 0, 50], False),
        ("min", [100, 100, 100, 100, 100, 50], False),
        ("min", [100, 100, 100, 100, 100, 51], True),
        ("last", [100, 100, 100, 100, 100, 10], False),
        ("last", [0, 0, 0, 0, 0, 51], True),
    ],
)
def test_window_aggregations(agg: str, values: list[float], fires: bool) -> None:
    fleet = windowed(agg)
    assert bool(feed_x(fleet, values)) is fires


def test_p95_is_the_nearest_rank_over_the_window() -> None:
    # 20 samples 1..20 in a 200 s window: nearest-rank p95 is the 19th smallest, 19
    def run(bound: float) -> list:
        fleet = Fleet.of(f"rules:\n  - name: p\n    metric: x\n    agg: p95\n    window: 200s\n    max: {bound}\n")
        return feed_x(fleet, [float(v) for v in range(1, 21)])

    assert run(18.5) and not run(19)


def test_a_window_forgets_samples_older_than_itself() -> None:
    fleet = windowed("max")
    # one spike at 0, then low: the spike leaves the 60 s window at 60 and the alert resolves
    alerts = feed_x(fleet, [100, 0, 0, 0, 0, 0, 0, 0])
    assert said(alerts) == [("firing", "warning", 50.0), ("resolved", "warning", 60.0)]


def test_a_gap_longer_than_the_window_restarts_observation() -> None:
    fleet = windowed("min")
    assert feed_x(fleet, [100] * 4) == []  # 0..30 s
    # back after a 170 s gap: what came before says nothing, so a whole new window is needed
    assert feed_x(fleet, [100] * 5, start=200) == []  # 200..240
    assert said(fleet.feed(batch(250, x=100))) == [("firing", "warning", 250.0)]


def test_a_late_or_repeated_sample_is_ignored_by_the_window() -> None:
    fleet = windowed("max")
    feed_x(fleet, [0] * 6)  # 0..50, watched whole
    assert fleet.feed(batch(30, x=1000)) == []  # older than the newest sample
    assert fleet.feed(batch(50, x=1000)) == []  # a repeat of the newest timestamp
    assert fleet.feed(batch(60, x=0)) == []


def test_a_late_sample_cannot_resolve_an_alert_its_window_keeps_open() -> None:
    fleet = windowed("avg")
    assert said(feed_x(fleet, [100] * 21)) == [("firing", "warning", 50.0)]  # 0..200 s
    # judged at its own ts, a sample from before the window was watched whole would be "no
    # judgement" and close the alert; it was judged when it was new
    assert fleet.feed(batch(20, x=100)) == []
    assert fleet.feed(batch(210, x=100)) == []


def test_windows_of_instances_that_went_away_are_dropped() -> None:
    # a container host: every veth lives for one sample; eth0 stays and breaches
    fleet = Fleet.of("rules:\n  - name: rx\n    metric: net_rx\n    agg: avg\n    window: 60s\n    max: 1000\n")
    alerts = fleet.feed_all(metrics(10 * i, {"net_rx:eth0": 2000, f"net_rx:veth{i}": 0}) for i in range(200))
    assert said(alerts) == [("firing", "warning", 50.0)]
    # what is left: eth0 and the veths of the last 60 s (an older window would restart anyway)
    assert set(fleet.states["h1"].windows) == {"net_rx:eth0|60", *(f"net_rx:veth{i}|60" for i in range(193, 200))}


def test_window_and_for_combine() -> None:
    fleet = Fleet.of("rules:\n  - name: w\n    metric: x\n    agg: avg\n    window: 60s\n    max: 50\n    for: 30s\n")
    alerts = feed_x(fleet, [100] * 12)
    assert said(alerts) == [("firing", "warning", 80.0)]  # judged from 50, sustained 30 s


# --- notification settings -----------------------------------------------------------------


def test_renotify_repeats_a_firing_alert_after_the_interval() -> None:
    fleet = Fleet.of("rules:\n  - name: r\n    metric: x\n    max: 1\n    renotify: 1m\n")
    alerts = feed_x(fleet, [5] * 14)  # 0..130 s
    assert said(alerts) == [("firing", "warning", 0.0), ("repeat", "warning", 60.0), ("repeat", "warning", 120.0)]
    assert all(a.state == "firing" and a.started_at == 0.0 for a in alerts)


def test_without_renotify_a_firing_alert_is_said_once() -> None:
    fleet = Fleet.of("rules:\n  - name: r\n    metric: x\n    max: 1\n")
    assert len(feed_x(fleet, [5] * 500)) == 1


def test_summary_and_annotations_are_rendered_from_the_alert() -> None:
    fleet = Fleet.of(
        """
rules:
  - name: cpu
    metric: cpu_pct
    max: 90
    summary: "CPU {value:.0f}% on {host} (threshold {threshold:g}%)"
    annotations:
      runbook: "https://runbooks.example/cpu?host={host}"
      team: "{labels[team]}"
    labels: {team: platform}
"""
    )
    (alert,) = fleet.feed(batch(0, host="web-1", cpu_pct=97.4))
    assert alert.summary == "CPU 97% on web-1 (threshold 90%)"
    assert alert.annotations == {"runbook": "https://runbooks.example/cpu?host=web-1", "team": "platform"}
    assert alert.labels["team"] == "platform"


# --- scope -----------------------------------------------------------------------------------

SCOPED = """
rules:
  - name: scoped
    metric: x
    max: 1
    scope:
{scope}
"""


@pytest.mark.parametrize(
    ("scope", "host", "region", "labels", "covered"),
    [
        ("      labels: {env: prod}", "h", "eu", {"env": "prod"}, True),
        ("      labels: {env: prod}", "h", "eu", {"env": "dev"}, False),
        ("      labels: {env: prod}", "h", "eu", {}, False),
        ("      labels: {env: {not: prod}}", "h", "eu", {}, True),  # a missing label is ""
        ("      labels: {env: {not: prod}}", "h", "eu", {"env": "prod"}, False),
        ("      labels: {host_class: {regex: 'web-[0-9]+'}}", "h", "eu", {"host_class": "web-12"}, True),
        ("      labels: {host_class: {regex: 'web-[0-9]+'}}", "h", "eu", {"host_class": "web-12x"}, False),
        ("      labels: {host_class: {not_regex: 'web-.*'}}", "h", "eu", {"host_class": "db-1"}, True),
        ("      labels: {host_class: {not_regex: 'web-.*'}}", "h", "eu", {"host_class": "web-1"}, False),
        ("      labels: {tier: {in: [web, api]}}", "h", "eu", {"tier": "api"}, True),
        ("      labels: {tier: {in: [web, api]}}", "h", "eu", {"tier": "db"}, False),
        ("      labels: {tier: [web, api]}", "h", "eu", {"tier": "web"}, True),
        ("      labels: {tier: {not_in: [web, api]}}", "h", "eu", {"tier": "db"}, True),
        ("      labels: {tier: {not_in: [web, api]}}", "h", "eu", {"tier": "web"}, False),
        ("      region: eu-west", "h", "eu-west", {}, True),
        ("      region: [eu-west, us-east]", "h", "us-east", {}, True),
        ("      region: [eu-west, us-east]", "h", "ap-south", {}, False),
        ("      host: 'web-*'", "web-7", "eu", {}, True),
        ("      host: ['web-*', 'api-?']", "api-1", "eu", {}, True),
        ("      host: ['web-*', 'api-?']", "db-1", "eu", {}, False),
        ("      exclude: [{labels: {role: scratch}}]", "h", "eu", {"role": "scratch"}, False),
        ("      exclude: [{labels: {role: scratch}}]", "h", "eu", {"role": "web"}, True),
        ("      host: 'web-*'\n      exclude: {host: web-13}", "web-13", "eu", {}, False),
        ("      host: 'web-*'\n      exclude: {host: web-13}", "web-12", "eu", {}, True),
        ("      labels: {env: prod, tier: web}", "h", "eu", {"env": "prod", "tier": "db"}, False),
    ],
)
def test_scope_selects_hosts(scope: str, host: str, region: str, labels: dict[str, str], covered: bool) -> None:
    fleet = Fleet.of(SCOPED.format(scope=scope))
    alerts = fleet.feed(batch(0, host=host, region=region, labels=labels, x=5))
    assert bool(alerts) is covered
    if covered:
        assert alerts[0].host_id == host and alerts[0].region == region


def test_host_labels_travel_with_the_alert() -> None:
    fleet = Fleet.of("rules:\n  - name: r\n    metric: x\n    max: 1\n    labels: {team: db}\n")
    (alert,) = fleet.feed(batch(0, labels={"env": "prod", "rule": "spoofed"}, x=5))
    assert alert.labels == {"env": "prod", "team": "db"}  # the alert's own fields are not labels
    assert alert.rule == "r"


def test_a_window_restarted_by_a_gap_resolves_with_a_value_the_alert_topic_accepts() -> None:
    fleet = windowed("avg")
    opened = feed_x(fleet, [100] * 6)
    assert said(opened) == [("firing", "warning", 50.0)]
    # the agent was away for longer than the window: nothing can be judged, the alert ends
    (closed,) = fleet.feed(batch(500, x=100))
    assert (closed.transition, closed.at) == ("resolved", 500.0)
    assert decode(encode(closed)) == closed  # finite numbers only on the wire (the last value judged)
    assert closed.value == 100.0


def test_aggregates_of_huge_finite_values_do_not_overflow() -> None:
    assert aggregate([1e308, 1e308], "avg") == 1e308
    assert aggregate([1e308, 1e308, -1e308, -1e308], "sum") == 0.0
    assert aggregate([1e308, 1e308], "sum") == math.inf  # beyond a float: infinite, not an error
    assert aggregate([], "sum") == 0.0 and math.isnan(aggregate([], "avg"))
    fleet = windowed("avg")
    assert said(feed_x(fleet, [1e308] * 6)) == [("firing", "warning", 50.0)]
