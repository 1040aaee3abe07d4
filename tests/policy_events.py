"""Events and an evaluation driver for the policy tests: the clock is each event's ``ts``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from collector.contract import Alert, GroupStats, LogCounts, MetricBatch, ProcessEvent, ProcessSummary
from policies.engine import EvaluatedEvent, Evaluator, HostState
from policies.loader import load_policy_text
from policies.model import PolicySet
from policies.suppress import Suppressor

DAY_S = 86400.0
# 2026-11-02 00:00:00 UTC, a Monday: schedule and maintenance tests count from here.
MONDAY = 1_793_577_600.0


def policy(text: str) -> PolicySet:
    return load_policy_text(text, "test.yaml")


def batch(
    ts: float,
    host: str = "h1",
    region: str = "eu-west",
    labels: dict[str, str] | None = None,
    interval_s: float = 10.0,
    **metrics: float,
) -> MetricBatch:
    return MetricBatch(host, region, ts, interval_s, dict(metrics), labels or {})


def metrics(ts: float, values: dict[str, float], host: str = "h1", interval_s: float = 10.0) -> MetricBatch:
    """A batch with metric names that are not Python identifiers (``disk_used_pct:/var``)."""
    return MetricBatch(host, "eu-west", ts, interval_s, values, {})


def procs(
    ts: float,
    groups: dict[str, int | GroupStats],
    host: str = "h1",
    interval_s: float = 10.0,
    labels: dict[str, str] | None = None,
) -> ProcessSummary:
    stats = {
        name: g if isinstance(g, GroupStats) else GroupStats(g, 0.0, 0, ts - 5 if g else None, ts - 5 if g else None)
        for name, g in groups.items()
    }
    return ProcessSummary(host, "eu-west", ts, interval_s, 100, {}, [], [], stats, labels or {})


def started(ts: float, group: str, host: str = "h1") -> ProcessEvent:
    return ProcessEvent(host, "eu-west", ts, group, "start", 4242, group, ts)


def logs(ts: float, counts: dict[str, int], host: str = "h1", interval_s: float = 60.0) -> LogCounts:
    return LogCounts(host, "eu-west", ts, interval_s, counts, {})


@dataclass
class Fleet:
    """An evaluator with one state per host, keeping every alert it produced."""

    evaluator: Evaluator
    states: dict[str, HostState] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)

    @classmethod
    def of(cls, text: str, suppressor: Suppressor | None = None) -> Fleet:
        return cls(Evaluator(policy(text), suppressor))

    def feed(self, *events: EvaluatedEvent) -> list[Alert]:
        """Evaluate events in order; the alerts they produced."""
        out: list[Alert] = []
        for event in events:
            state = self.states.setdefault(event.host_id, HostState())
            out.extend(self.evaluator.evaluate(event, state).alerts)
        self.alerts.extend(out)
        return out

    def feed_all(self, events: Iterable[EvaluatedEvent]) -> list[Alert]:
        return self.feed(*events)


def said(alerts: Iterable[Alert]) -> list[tuple[str, str, float]]:
    """``(transition, severity, at)`` of each alert: what a subscriber was told, and when."""
    return [(a.transition, a.severity, a.at) for a in alerts]
