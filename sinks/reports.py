"""Canned analytics reports: one SQL definition each, used by ``fleetpulse query --report`` and
rendered into the Grafana dashboard (``sinks.grafana``), so both always show the same numbers.

A report's SQL uses four placeholders, filled per consumer:

=============  ===========================  ===================
placeholder    command line (bound server-   Grafana macro
               side, never spliced)
=============  ===========================  ===================
``{since}``    ``{since:DateTime64(3)}``     ``$__fromTime``
``{until}``    ``{until:DateTime64(3)}``     ``$__toTime``
``{limit}``    ``{limit:UInt32}``            the report's default
``{step_s}``   ``{step_s:UInt32}``           ``$__interval_s``
=============  ===========================  ===================

Reports read the 1-minute rollups where they can (cheap over months); windows therefore have
minute resolution: a rollup row at minute *m* covers samples in [m, m + 60 s). Days are
server-timezone days (UTC for the embedded engine on a UTC host).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

PLACEHOLDERS = ("{since}", "{until}", "{limit}", "{step_s}")

# The notification a row stands for; rows written before transitions existed carry ''.
_NOTICE = "if(transition = '', state, transition)"


@dataclass(frozen=True)
class Report:
    """One canned report."""

    name: str
    title: str
    description: str
    sql: str
    default_limit: int = 10
    panel: str = "table"  # Grafana panel type: table | timeseries


def _top_hosts(metric: str) -> str:
    return f"""
SELECT host_id,
       any(region) AS region,
       round(sum(sum) / sum(count), 2) AS avg_{metric},
       round(max(max), 2) AS max_{metric},
       sum(count) AS samples
FROM metrics_1m
WHERE name = '{metric}' AND instance = ''
  AND minute >= toStartOfMinute({{since}}) AND minute < {{until}}
GROUP BY host_id
ORDER BY avg_{metric} DESC, host_id
LIMIT {{limit}}"""


REPORTS: tuple[Report, ...] = (
    Report(
        "fleet-overview",
        "Fleet overview",
        "Per region: hosts reporting, average and peak CPU %, average memory %, alerts that fired.",
        f"""
WITH m AS (
    SELECT region,
           uniqExact(host_id) AS hosts,
           sumIf(sum, name = 'cpu_pct') / sumIf(count, name = 'cpu_pct') AS avg_cpu,
           maxIf(max, name = 'cpu_pct') AS max_cpu,
           sumIf(sum, name = 'mem_used_pct') / sumIf(count, name = 'mem_used_pct') AS avg_mem
    FROM metrics_1m
    WHERE minute >= toStartOfMinute({{since}}) AND minute < {{until}} AND instance = ''
    GROUP BY region
), a AS (
    SELECT region, countIf({_NOTICE} = 'firing') AS fired
    FROM alerts FINAL
    WHERE at >= {{since}} AND at < {{until}}
    GROUP BY region
)
SELECT m.region AS region,
       m.hosts AS hosts,
       round(m.avg_cpu, 2) AS avg_cpu_pct,
       round(m.max_cpu, 2) AS max_cpu_pct,
       round(m.avg_mem, 2) AS avg_mem_used_pct,
       a.fired AS alerts_fired
FROM m LEFT JOIN a ON a.region = m.region
ORDER BY region""",
    ),
    Report(
        "top-hosts-cpu",
        "Top hosts by CPU",
        "Hosts with the highest average CPU % over the window (peak and sample count beside).",
        _top_hosts("cpu_pct"),
    ),
    Report(
        "top-hosts-memory",
        "Top hosts by memory",
        "Hosts with the highest average memory used % over the window.",
        _top_hosts("mem_used_pct"),
    ),
    Report(
        "alert-history",
        "Alert history",
        "Every alert transition (firing, escalated, deescalated, repeat, resolved), newest first.",
        f"""
SELECT at,
       {_NOTICE} AS transition,
       rule,
       severity,
       host_id,
       region,
       metric,
       value,
       threshold,
       summary
FROM alerts FINAL
WHERE at >= {{since}} AND at < {{until}}
ORDER BY at DESC, fingerprint
LIMIT {{limit}}""",
        default_limit=100,
    ),
    Report(
        "noisiest-rules",
        "Noisiest rules",
        "Rules by how often they fired, with all their notifications and the hosts they touched.",
        f"""
SELECT rule,
       countIf(notice = 'firing') AS fired,
       count() AS notifications,
       uniqExact(host_id) AS hosts,
       max(at) AS last_at
FROM (SELECT rule, host_id, at, {_NOTICE} AS notice FROM alerts FINAL WHERE at >= {{since}} AND at < {{until}})
GROUP BY rule
ORDER BY fired DESC, notifications DESC, rule
LIMIT {{limit}}""",
    ),
    Report(
        "region-availability",
        "Region availability % per day",
        "Share of host-minutes with at least one heartbeat, per region and day (a day without any "
        "is 0 %); the hosts of a region are those seen in the window, the minutes those of the "
        "day inside the window.",
        """
WITH
    toDateTime({since}) AS t0,
    toDateTime({until}) AS t1,
    days AS (
        SELECT toDate(t0) + number AS day
        FROM numbers(toUInt64(greatest(dateDiff('day', toDate(t0), toDate(t1 - 1)) + 1, 0)))
    ),
    hosts AS (
        SELECT region, uniqExact(host_id) AS hosts
        FROM heartbeats_1m
        WHERE minute >= toStartOfMinute(t0) AND minute < t1
        GROUP BY region
    ),
    seen AS (
        SELECT toDate(minute) AS day, region, count() AS host_minutes
        FROM (
            SELECT region, host_id, minute
            FROM heartbeats_1m
            WHERE minute >= toStartOfMinute(t0) AND minute < t1
            GROUP BY region, host_id, minute
        )
        GROUP BY day, region
    )
SELECT days.day AS day,
       hosts.region AS region,
       hosts.hosts AS hosts,
       seen.host_minutes AS host_minutes,
       dateDiff('minute', greatest(toDateTime(days.day), t0), least(toDateTime(days.day) + 86400, t1)) AS minutes,
       round(100 * seen.host_minutes / (hosts.hosts * minutes), 2) AS availability_pct
FROM days CROSS JOIN hosts
LEFT JOIN seen ON seen.day = days.day AND seen.region = hosts.region
ORDER BY day, region""",
        default_limit=0,
    ),
    Report(
        "process-groups",
        "Process-group counts over time",
        "Per time bucket (--step) and watched group: hosts reporting it and the min/avg/max "
        "process count per host sample.",
        """
SELECT toStartOfInterval(ts, toIntervalSecond({step_s})) AS bucket,
       group,
       uniqExact(host_id) AS hosts,
       min(count) AS min_count,
       round(avg(count), 2) AS avg_count,
       max(count) AS max_count
FROM process_groups
WHERE ts >= {since} AND ts < {until}
GROUP BY bucket, group
ORDER BY bucket, group""",
        default_limit=0,
    ),
    Report(
        "cpu-by-region",
        "CPU % by region",
        "Average CPU % of each region's hosts and the p90 across them, per time bucket (--step).",
        """
SELECT toStartOfInterval(minute, toIntervalSecond({step_s})) AS time,
       region,
       round(sum(sum) / sum(count), 2) AS avg_cpu_pct,
       round(quantilesTDigestMerge(0.5, 0.9, 0.99)(quantiles)[2], 2) AS p90_cpu_pct
FROM metrics_region_1m
WHERE name = 'cpu_pct' AND instance = ''
  AND minute >= toStartOfMinute({since}) AND minute < {until}
GROUP BY time, region
ORDER BY time, region""",
        default_limit=0,
        panel="timeseries",
    ),
)

BY_NAME = {r.name: r for r in REPORTS}


def get_report(name: str) -> Report:
    """The report called ``name``; the error lists the names there are."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown report {name!r}; reports: {', '.join(BY_NAME)}") from None


def cli_sql(report: Report) -> str:
    """The report's SQL with server-side parameters (values are bound, never spliced)."""
    sql = report.sql.strip()
    sql = sql.replace("{since}", "{since:DateTime64(3)}").replace("{until}", "{until:DateTime64(3)}")
    sql = sql.replace("{step_s}", "{step_s:UInt32}")
    if "{limit}" in sql:
        sql = sql.replace("{limit}", "{limit:UInt32}")
    return sql


def grafana_sql(report: Report) -> str:
    """The report's SQL with the Grafana ClickHouse data source's time macros."""
    sql = report.sql.strip()
    sql = sql.replace("{since}", "$__fromTime").replace("{until}", "$__toTime").replace("{step_s}", "$__interval_s")
    return sql.replace("{limit}", str(report.default_limit or 100))


def run_report(
    client: Any,
    database: str,
    name: str,
    since: datetime,
    until: datetime,
    limit: int | None = None,
    step_s: int = 3600,
) -> tuple[list[str], list[Sequence[Any]]]:
    """Run a canned report over [since, until); returns column names and rows."""
    report = get_report(name)
    if step_s < 1:
        raise ValueError(f"step must be >= 1 s, got {step_s}")
    params: dict[str, Any] = {"since": since, "until": until, "step_s": step_s}
    params["limit"] = limit if limit is not None else (report.default_limit or 1_000_000)
    from sinks.query import run_query

    return run_query(client, cli_sql(report), database, params)


def parse_when(text: str, now: datetime) -> datetime:
    """``now``, a duration back from now (``90s``, ``15m``, ``24h``, ``7d``, ``2w``; at most
    ``MAX_DURATION_S``) or an ISO time (UTC if naive); anything else is a ``ValueError``."""
    from datetime import UTC, timedelta

    from policies.model import parse_duration

    text = text.strip()
    if text == "now":
        return now
    if re.fullmatch(r"\d+(?:\.\d+)?\s*[a-z]+", text):  # a duration needs its unit here ("24" is no time)
        return now - timedelta(seconds=parse_duration(text))
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expected now, a duration like 24h / 7d, or an ISO time; got {text[:40]!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
