"""Process rules (counts over windows, CPU, memory) and schedule rules (cron windows, runtime)."""

from __future__ import annotations

from collector.contract import Alert, GroupStats
from tests.policy_events import DAY_S, MONDAY, Fleet, policy, procs, said, started

NGINX = """
rules:
  - name: nginx_workers
    process: nginx
    count: {min: 2, max: 16}
    window: 60s
    severity: critical
"""


def counts(fleet: Fleet, values: list[int], start: float = 0.0, group: str = "nginx") -> list[Alert]:
    return fleet.feed(*(procs(start + 10 * i, {group: n}) for i, n in enumerate(values)))


def test_one_missed_sample_does_not_fire_a_count_minimum() -> None:
    fleet = Fleet.of(NGINX)
    assert counts(fleet, [4] * 10 + [0] + [4] * 10) == []


def test_a_few_low_samples_inside_the_window_do_not_fire() -> None:
    fleet = Fleet.of(NGINX)
    assert counts(fleet, [4] * 10 + [1, 1, 1, 4, 1, 1, 1] + [4] * 5) == []


def test_a_count_held_below_the_minimum_for_a_whole_window_fires() -> None:
    fleet = Fleet.of(NGINX)
    alerts = counts(fleet, [4] * 10 + [1] * 10)  # 4 until 90 s, 1 from 100 s
    assert said(alerts) == [("firing", "critical", 150.0)]  # 100..150: the window holds only 1s
    (alert,) = alerts
    assert alert.kind == "process" and alert.metric == "proc_count:nginx" and alert.rule == "nginx_workers.count_min"
    assert alert.labels["group"] == "nginx" and alert.threshold == 2.0 and alert.value == 1.0


def test_a_count_minimum_resolves_as_soon_as_the_group_is_back() -> None:
    fleet = Fleet.of(NGINX)
    alerts = counts(fleet, [4] * 10 + [1] * 10 + [3])
    assert said(alerts)[-1] == ("resolved", "critical", 200.0)


def test_a_count_maximum_fires_only_when_held_for_a_window() -> None:
    fleet = Fleet.of(NGINX)
    assert counts(fleet, [4] * 10 + [40, 4] * 5) == []  # spikes come and go
    fleet = Fleet.of(NGINX)
    alerts = counts(fleet, [4] * 10 + [40] * 10)
    assert said(alerts) == [("firing", "critical", 150.0)]
    assert alerts[0].rule == "nginx_workers.count_max"


def test_count_levels_of_one_figure_are_one_alert_that_escalates() -> None:
    fleet = Fleet.of(
        """
rules:
  - name: php
    process: php-fpm
    count: {max: {warning: 150, critical: 200}}
    window: 30s
"""
    )
    alerts = counts(fleet, [100] * 3 + [160] * 4 + [250] * 4, group="php-fpm")
    assert [a.transition for a in alerts] == ["firing", "escalated"]
    assert [a.severity for a in alerts] == ["warning", "critical"]
    assert len({a.fingerprint for a in alerts}) == 1


def test_cpu_and_rss_of_a_group_fire_when_held_above_their_bounds() -> None:
    fleet = Fleet.of(
        """
rules:
  - name: php
    process: php-fpm
    cpu_pct: {max: 350}
    rss_bytes: {max: 8e9}
    window: 30s
"""
    )

    def sample(ts: float, cpu: float, rss: int) -> object:
        return procs(ts, {"php-fpm": GroupStats(10, cpu, rss, 0.0, 0.0)})

    quiet = [sample(10 * i, 400 if i % 2 else 100, 1_000_000) for i in range(10)]
    assert fleet.feed(*quiet) == []  # type: ignore[arg-type]
    hot = [sample(100 + 10 * i, 400, 9_000_000_000) for i in range(4)]
    alerts = fleet.feed(*hot)  # type: ignore[arg-type]
    assert sorted(a.rule for a in alerts) == ["php.cpu_pct_max", "php.rss_bytes_max"]
    assert sorted(a.metric for a in alerts) == ["proc_cpu_pct:php-fpm", "proc_rss_bytes:php-fpm"]


def test_a_group_missing_from_the_summary_is_not_judged() -> None:
    fleet = Fleet.of(NGINX)
    assert fleet.feed(*(procs(10 * i, {}) for i in range(20))) == []


# --- schedules -------------------------------------------------------------------------------

BACKUP = """
rules:
  - name: nightly_backup
    schedule: "0 2 * * *"
    process: backup
    within: 60m
    max_runtime: 3h
"""
HOUR = 3600.0
STEP = 600.0  # one process summary every 10 minutes


def watch(fleet: Fleet, start: float, end: float, running: set[float] = frozenset()) -> list[Alert]:  # type: ignore[assignment]
    """Process summaries every 10 minutes from ``start`` up to ``end`` (exclusive); backup runs at ``running``."""
    out: list[Alert] = []
    t = start
    while t < end:
        out.extend(fleet.feed(procs(t, {"backup": 1 if t in running else 0}, interval_s=STEP)))
        t += STEP
    return out


def test_a_schedule_fires_after_its_window_when_the_group_was_not_seen() -> None:
    fleet = Fleet.of(BACKUP)
    alerts = watch(fleet, MONDAY + 1 * HOUR, MONDAY + 4 * HOUR)
    assert said(alerts) == [("firing", "warning", MONDAY + 3 * HOUR)]
    (alert,) = alerts
    assert alert.kind == "schedule" and alert.rule == "nightly_backup" and alert.metric == "proc_count:backup"
    assert "backup did not run in its window" in alert.summary


def test_a_schedule_stays_quiet_when_the_group_ran_in_its_window() -> None:
    fleet = Fleet.of(BACKUP)
    assert watch(fleet, MONDAY + HOUR, MONDAY + 5 * HOUR, running={MONDAY + 2 * HOUR + 20 * 60}) == []


def test_a_process_start_event_counts_as_a_run_between_summaries() -> None:
    fleet = Fleet.of(BACKUP)
    assert watch(fleet, MONDAY + HOUR, MONDAY + 2 * HOUR + 10 * 60) == []
    assert fleet.feed(started(MONDAY + 2 * HOUR + 12 * 60, "backup")) == []  # a short run, gone by the next sample
    assert fleet.feed(started(MONDAY + 2 * HOUR + 13 * 60, "other")) == []
    assert watch(fleet, MONDAY + 2 * HOUR + 20 * 60, MONDAY + 6 * HOUR) == []


def test_a_start_of_another_group_is_not_a_run() -> None:
    fleet = Fleet.of(BACKUP)
    watch(fleet, MONDAY + HOUR, MONDAY + 2 * HOUR + 10 * 60)
    fleet.feed(started(MONDAY + 2 * HOUR + 12 * 60, "not-backup"))
    assert said(watch(fleet, MONDAY + 2 * HOUR + 20 * 60, MONDAY + 4 * HOUR)) == [
        ("firing", "warning", MONDAY + 3 * HOUR)
    ]


def test_a_schedule_does_not_fire_for_a_window_that_began_before_watching() -> None:
    fleet = Fleet.of(BACKUP)
    # the evaluator first hears of the host at 02:10, inside the window: it cannot know
    assert watch(fleet, MONDAY + 2 * HOUR + 10 * 60, MONDAY + 20 * HOUR) == []
    # the next night's window is watched whole
    alerts = watch(fleet, MONDAY + 20 * HOUR, MONDAY + DAY_S + 4 * HOUR)
    assert said(alerts) == [("firing", "warning", MONDAY + DAY_S + 3 * HOUR)]


def test_a_start_event_alone_does_not_begin_watching() -> None:
    fleet = Fleet.of(BACKUP)
    assert fleet.feed(started(MONDAY + HOUR, "backup")) == []
    assert watch(fleet, MONDAY + 2 * HOUR + 10 * 60, MONDAY + 4 * HOUR) == []


def test_a_missed_schedule_resolves_when_the_group_runs_later() -> None:
    fleet = Fleet.of(BACKUP)
    alerts = watch(fleet, MONDAY + HOUR, MONDAY + 8 * HOUR, running={MONDAY + 5 * HOUR})
    assert said(alerts) == [("firing", "warning", MONDAY + 3 * HOUR), ("resolved", "warning", MONDAY + 5 * HOUR)]
    assert alerts[0].fingerprint == alerts[1].fingerprint


def test_a_missed_schedule_stays_open_until_the_next_window_says_otherwise() -> None:
    fleet = Fleet.of(BACKUP)
    alerts = watch(fleet, MONDAY + HOUR, MONDAY + DAY_S + 2 * HOUR + 30 * 60, running={MONDAY + DAY_S + 2 * HOUR})
    assert said(alerts) == [
        ("firing", "warning", MONDAY + 3 * HOUR),
        ("resolved", "warning", MONDAY + DAY_S + 2 * HOUR),
    ]


def test_schedule_in_a_time_zone() -> None:
    fleet = Fleet.of(
        """
rules:
  - name: report
    schedule: "0 2 * * *"
    timezone: America/New_York
    process: report
    within: 30m
"""
    )
    # 02:00 in New York is 07:00 UTC in November (EST)
    alerts = fleet.feed(*(procs(MONDAY + 6 * HOUR + i * STEP, {"report": 0}, interval_s=STEP) for i in range(0, 12)))
    assert said(alerts) == [("firing", "warning", MONDAY + 7.5 * HOUR)]


def test_max_runtime_fires_on_the_age_of_the_oldest_process() -> None:
    fleet = Fleet.of(BACKUP)
    began = MONDAY + 2 * HOUR

    def running_since(ts: float) -> object:
        return procs(ts, {"backup": GroupStats(1, 50.0, 1000, began, began)}, interval_s=STEP)

    alerts = fleet.feed(*(running_since(began + i * STEP) for i in range(1, 20)))  # type: ignore[arg-type]
    assert said(alerts) == [("firing", "warning", began + 3 * HOUR + STEP)]  # first sample past 3 h
    (alert,) = alerts
    assert alert.rule == "nightly_backup.runtime" and alert.metric == "proc_age_s:backup" and alert.kind == "schedule"
    # the run ends: the alert about it resolves, it does not wait for the next run
    done = fleet.feed(procs(began + 20 * STEP, {"backup": 0}, interval_s=STEP))
    assert said(done) == [("resolved", "warning", began + 20 * STEP)]


def test_the_example_schedule_loads_as_a_schedule_and_a_runtime_rule() -> None:
    loaded = policy(BACKUP)
    assert [r.name for r in loaded.schedule_rules] == ["nightly_backup"]
    assert [r.name for r in loaded.metric_rules] == ["nightly_backup.runtime"]
