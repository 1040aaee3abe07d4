"""Every event the agent sends, seen by the evaluator as one flat set of samples.

Process and log rules are metric rules on these derived keys, so there is one evaluator,
one window implementation and one lifecycle for all of them:

* ``proc_count:<group>``, ``proc_cpu_pct:<group>``, ``proc_rss_bytes:<group>`` per watched
  process group of a :class:`~collector.contract.ProcessSummary`, and ``proc_age_s:<group>``
  (how long its oldest process has run; 0 while it has no members);
* ``log_count:<rule>`` per agent log rule of a :class:`~collector.contract.LogCounts`
  (matching lines in that interval; sum them over a window).
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.contract import LogCounts, MetricBatch, ProcessSummary

PROC_COUNT = "proc_count"
PROC_CPU = "proc_cpu_pct"
PROC_RSS = "proc_rss_bytes"
PROC_AGE = "proc_age_s"
LOG_COUNT = "log_count"


@dataclass(frozen=True)
class Samples:
    """One host's samples taken at ``ts`` (event time)."""

    host_id: str
    region: str
    ts: float
    interval_s: float
    values: dict[str, float]
    labels: dict[str, str]


def samples_of(event: MetricBatch | ProcessSummary | LogCounts) -> Samples:
    """The samples an event carries."""
    if isinstance(event, MetricBatch):
        values = event.metrics
    elif isinstance(event, ProcessSummary):
        values = {}
        for group, stats in event.groups.items():
            values[f"{PROC_COUNT}:{group}"] = float(stats.count)
            values[f"{PROC_CPU}:{group}"] = stats.cpu_pct
            values[f"{PROC_RSS}:{group}"] = float(stats.rss_bytes)
            # 0 without members, so a runtime alert ends with the run (not with the next one)
            age = 0.0 if stats.oldest_start is None else max(0.0, event.ts - stats.oldest_start)
            values[f"{PROC_AGE}:{group}"] = age
    else:
        values = {f"{LOG_COUNT}:{rule}": float(n) for rule, n in event.counts.items()}
    return Samples(event.host_id, event.region, event.ts, event.interval_s, values, event.labels)
