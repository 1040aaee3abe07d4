"""Canned reports and the Grafana panels on a fixture fleet, against hand-computed numbers.

The fixture (window: yesterday 00:00 UTC to tomorrow 00:00 UTC, two days):

- eu: e1, e2; us: u1. Three samples each in the minute at D0+10 min (D0 = yesterday 00:00):
  e1 cpu 10/20/30 mem 40; e2 cpu 50/60/70 mem 80; u1 cpu 90 mem 10/20/30; and a disk
  series (instance "/") at 99 on every host that the CPU/memory reports must ignore.
- Alerts: cpu_high on e2 fires, repeats, resolves (the firing replayed once, as after a worker
  crash); cpu_high on u1 fires twice (two episodes); mem_low on e1 fires once.
- Heartbeats: e1 every minute of both days, e2 the first 12 hours of day 1, u1 twice a minute
  all of day 1 and never on day 2.
- Process groups: nginx on e1 (4, then 6 a minute later) and e2 (2) in the first hour; batch
  on u1 (1) in the second hour.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from collector.contract import Alert, GroupStats, Heartbeat, MetricBatch, ProcessSummary
from sinks.query import run_query
from sinks.reports import REPORTS, grafana_sql, run_report
from sinks.rows import TableRows
from sinks.schema import apply_migrations

pytestmark = pytest.mark.integration

DAY = 86400
D0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
T0 = D0.timestamp()
SINCE, UNTIL = D0, D0 + timedelta(days=2)


def _alert(host: str, region: str, rule: str, at: float, started: float, state: str, transition: str = "") -> Alert:
    return Alert(
        f"{rule}-{host}", rule, state, "warning", host, region, "cpu_pct", 95.0, 90.0,  # type: ignore[arg-type]
        started, at, f"{rule} on {host}", f"{rule}-{host}-{state}-{started}", transition=transition,
    )  # fmt: skip


def _fixture() -> TableRows:
    rows = TableRows()
    series = {
        "e1": ("eu", [10, 20, 30], [40] * 3),
        "e2": ("eu", [50, 60, 70], [80] * 3),
        "u1": ("us", [90] * 3, [10, 20, 30]),
    }
    for host, (region, cpu, mem) in series.items():
        for k in range(3):
            metrics = {"cpu_pct": float(cpu[k]), "mem_used_pct": float(mem[k]), "disk_used_pct:/": 99.0}
            rows.add(MetricBatch(host, region, T0 + 600 + 20 * k, 20.0, metrics))
    for a in (
        _alert("e2", "eu", "cpu_high", T0 + 700, T0 + 700, "firing"),
        _alert("e2", "eu", "cpu_high", T0 + 700, T0 + 700, "firing"),  # replayed after a worker crash
        _alert("e2", "eu", "cpu_high", T0 + 800, T0 + 700, "firing", "repeat"),
        _alert("e2", "eu", "cpu_high", T0 + 900, T0 + 700, "resolved"),
        _alert("u1", "us", "cpu_high", T0 + 700, T0 + 700, "firing"),
        _alert("u1", "us", "cpu_high", T0 + 1000, T0 + 1000, "firing"),
        _alert("e1", "eu", "mem_low", T0 + 750, T0 + 750, "firing"),
    ):
        rows.add(a)
    beats = {"e1": ("eu", 2 * 1440, 60), "e2": ("eu", 720, 60), "u1": ("us", 2 * 1440, 30)}
    for host, (region, count, every_s) in beats.items():
        for seq in range(count):
            rows.add(Heartbeat(host, region, "boot", seq, T0 + seq * every_s, every_s, "0.1"))
    for host, region, ts, group, count in (
        ("e1", "eu", T0 + 600, "nginx", 4),
        ("e1", "eu", T0 + 660, "nginx", 6),
        ("e2", "eu", T0 + 600, "nginx", 2),
        ("u1", "us", T0 + 3600, "batch", 1),
    ):
        rows.add(ProcessSummary(host, region, ts, 60.0, 100, {}, [], [], {group: GroupStats(count, 1.0, 1000)}))
    return rows


@pytest.fixture(scope="module")
def fleet(clickhouse: Any) -> str:
    """A database holding the fixture, written through the sink's columnar inserts."""
    database = f"reports_{int(T0)}_{id(clickhouse) % 1000}"
    apply_migrations(clickhouse, database)
    for table, cols in _fixture().tables.items():
        clickhouse.insert(table, cols.data, column_names=list(cols.names), database=database, column_oriented=True)
    return database


def _report(client: Any, database: str, name: str, **kw: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in run_report(client, database, name, SINCE, UNTIL, **kw)[1]]


def test_fleet_overview(clickhouse: Any, fleet: str) -> None:
    cols, rows = run_report(clickhouse, fleet, "fleet-overview", SINCE, UNTIL)
    assert cols == ["region", "hosts", "avg_cpu_pct", "max_cpu_pct", "avg_mem_used_pct", "alerts_fired"]
    # eu cpu: (10+20+30+50+60+70)/6 = 40, peak 70; mem (3*40+3*80)/6 = 60; fired: e2 cpu_high, e1 mem_low
    # us cpu 90, mem (10+20+30)/3 = 20; fired: u1 cpu_high twice
    assert [tuple(r) for r in rows] == [("eu", 2, 40.0, 70.0, 60.0, 2), ("us", 1, 90.0, 90.0, 20.0, 2)]


def test_top_hosts_by_cpu_and_memory(clickhouse: Any, fleet: str) -> None:
    assert _report(clickhouse, fleet, "top-hosts-cpu") == [
        ("u1", "us", 90.0, 90.0, 3),
        ("e2", "eu", 60.0, 70.0, 3),
        ("e1", "eu", 20.0, 30.0, 3),
    ]
    assert _report(clickhouse, fleet, "top-hosts-memory", limit=2) == [
        ("e2", "eu", 80.0, 80.0, 3),
        ("e1", "eu", 40.0, 40.0, 3),
    ]


def test_alert_history_and_noisiest_rules(clickhouse: Any, fleet: str) -> None:
    history = _report(clickhouse, fleet, "alert-history")
    assert [(r[1], r[2], r[4]) for r in history] == [  # newest first; the replayed firing appears once
        ("firing", "cpu_high", "u1"),
        ("resolved", "cpu_high", "e2"),
        ("repeat", "cpu_high", "e2"),
        ("firing", "mem_low", "e1"),
        ("firing", "cpu_high", "e2"),
        ("firing", "cpu_high", "u1"),
    ]
    noisiest = _report(clickhouse, fleet, "noisiest-rules")
    # cpu_high: fired 3 (e2 once, u1 twice), 5 notifications (3 firing + repeat + resolved), 2 hosts
    assert [r[:4] for r in noisiest] == [("cpu_high", 3, 5, 2), ("mem_low", 1, 1, 1)]


def test_region_availability_per_day(clickhouse: Any, fleet: str) -> None:
    day1, day2 = D0.date(), (D0 + timedelta(days=1)).date()
    assert _report(clickhouse, fleet, "region-availability") == [
        # eu day 1: (1440 + 720) / (2 hosts * 1440) = 75 %; day 2: 1440 / 2880 = 50 %
        (day1, "eu", 2, 2160, 1440, 75.0),
        (day1, "us", 1, 1440, 1440, 100.0),
        (day2, "eu", 2, 1440, 1440, 50.0),
        (day2, "us", 1, 0, 1440, 0.0),  # a day without any heartbeat is 0 %, not missing
    ]


def test_process_group_counts_over_time(clickhouse: Any, fleet: str) -> None:
    hour0, hour1 = D0.replace(tzinfo=None), (D0 + timedelta(hours=1)).replace(tzinfo=None)
    rows = _report(clickhouse, fleet, "process-groups", step_s=3600)
    # nginx in hour 0: samples 4, 6 (e1) and 2 (e2): 2 hosts, min 2, avg 4, max 6
    assert rows == [(hour0, "nginx", 2, 2, 4.0, 6), (hour1, "batch", 1, 1, 1.0, 1)]


def test_cpu_by_region_reads_the_region_rollup_with_quantiles(clickhouse: Any, fleet: str) -> None:
    rows = _report(clickhouse, fleet, "cpu-by-region", step_s=3600)
    assert [(r[1], r[2]) for r in rows] == [("eu", 40.0), ("us", 90.0)]
    assert 60.0 <= rows[0][3] <= 70.0  # p90 of eu's six samples (t-digest: approximate)


def _as_grafana_would(sql: str) -> str:
    """Expand the data source's macros the way the Grafana ClickHouse plugin does."""
    sql = sql.replace("$__fromTime", f"toDateTime({int(SINCE.timestamp())})")
    sql = sql.replace("$__toTime", f"toDateTime({int(UNTIL.timestamp())})")
    sql = sql.replace("$__interval_s", "3600")
    assert not re.search(r"\$__\w+", sql), sql
    return sql


@pytest.mark.parametrize("report", REPORTS, ids=[r.name for r in REPORTS])
def test_each_dashboard_panel_returns_what_the_report_returns(clickhouse: Any, fleet: str, report: Any) -> None:
    columns, rows = run_query(clickhouse, _as_grafana_would(grafana_sql(report)), fleet)
    cli = run_report(clickhouse, fleet, report.name, SINCE, UNTIL, limit=report.default_limit or None, step_s=3600)
    assert columns == cli[0]
    assert [tuple(r) for r in rows] == [tuple(r) for r in cli[1]]
    assert rows, f"{report.name}: the fixture should give every panel something to show"


def test_an_empty_window_still_names_the_columns(clickhouse: Any, fleet: str) -> None:
    before = SINCE - timedelta(days=10)
    columns, rows = run_report(clickhouse, fleet, "top-hosts-cpu", before, before + timedelta(days=1))
    assert (columns, rows) == (["host_id", "region", "avg_cpu_pct", "max_cpu_pct", "samples"], [])
