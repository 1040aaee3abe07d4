"""Pure evaluation of threshold rules: samples and a clock in, state transitions out.

An alert is a small state machine per fingerprint (after Prometheus' alerting rules):

    inactive --breach--> pending --breach for >= for_s--> firing --back in bounds--> inactive
                            ^---- back in bounds (no notification) ----'

Only ``firing`` and ``resolved`` are notifications. State is plain data so the caller can
keep it in any table (a Faust table in the worker, a dict in tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from policies.model import ThresholdRule

Phase = Literal["pending", "firing"]


@dataclass(frozen=True)
class AlertStatus:
    """Where one fingerprint stands; absence from the table means *inactive*."""

    phase: Phase
    since: float  # when the breach started (event time), the alert's started_at
    value: float
    threshold: float

    def to_dict(self) -> dict[str, object]:
        return {"phase": self.phase, "since": self.since, "value": self.value, "threshold": self.threshold}

    @classmethod
    def from_dict(cls, raw: Mapping[str, object]) -> AlertStatus:
        phase = raw["phase"]
        if phase not in ("pending", "firing"):
            raise ValueError(f"bad phase {phase!r}")
        return cls(phase, float(raw["since"]), float(raw["value"]), float(raw["threshold"]))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Transition:
    """A notification: the alert started firing or was resolved at ``at``."""

    state: Literal["firing", "resolved"]
    started_at: float
    at: float
    value: float
    threshold: float


def step(
    rule: ThresholdRule, status: AlertStatus | None, value: float, now: float
) -> tuple[AlertStatus | None, Transition | None]:
    """Advance one fingerprint by one sample taken at ``now``.

    Returns the new status (None = inactive) and the notification to send, if any.
    """
    crossed = rule.breach(value)
    if crossed is None:
        if status is not None and status.phase == "firing":
            return None, Transition("resolved", status.since, now, value, status.threshold)
        return None, None
    if status is None:
        status = AlertStatus("pending", now, value, crossed)
    if status.phase == "pending" and now - status.since >= rule.for_s:
        fired = AlertStatus("firing", status.since, value, crossed)
        return fired, Transition("firing", status.since, now, value, crossed)
    if status.threshold == crossed:
        return status, None  # unchanged: the caller need not write (or changelog) anything
    return AlertStatus(status.phase, status.since, value, crossed), None


class RuleIndex:
    """Rules grouped by the metric base name they watch, so a batch costs O(its metrics)."""

    def __init__(self, rules: Iterable[ThresholdRule]) -> None:
        self.rules = list(rules)
        self._by_metric: dict[str, list[ThresholdRule]] = {}
        for rule in self.rules:
            self._by_metric.setdefault(rule.metric, []).append(rule)

    def matching(self, metric_key: str) -> list[ThresholdRule]:
        """Rules for ``name:instance`` keys: those naming the full key or its base name."""
        exact = self._by_metric.get(metric_key, [])
        base, sep, _ = metric_key.partition(":")
        if not sep:
            return exact
        return exact + self._by_metric.get(base, [])

    def __len__(self) -> int:
        return len(self.rules)
