"""Evaluate a whole metric batch against a rule index: the worker's unit of work, kept pure."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from collector.contract import Alert, MetricBatch
from policies.model import ThresholdRule
from policies.threshold import AlertStatus, RuleIndex, Transition, step


@dataclass(frozen=True)
class Outcome:
    """One fingerprint touched by a batch: its new status and the alert to emit, if any."""

    fingerprint: str
    status: AlertStatus | None
    alert: Alert | None


def evaluate_batch(
    index: RuleIndex,
    batch: MetricBatch,
    status_of: Callable[[str], AlertStatus | None],
) -> list[Outcome]:
    """Run every matching rule over every metric of ``batch`` at the batch's event time.

    Only fingerprints whose status changed are returned, so the caller writes (and
    changelogs) nothing for the common in-bounds, already-inactive case.
    """
    outcomes: list[Outcome] = []
    for key, value in batch.metrics.items():
        for rule in index.matching(key):
            fp = rule.fingerprint(batch.host_id, key)
            before = status_of(fp)
            after, transition = step(rule, before, value, batch.ts)
            if after == before and transition is None:
                continue
            alert = None if transition is None else make_alert(rule, batch, key, fp, transition)
            outcomes.append(Outcome(fp, after, alert))
    return outcomes


def make_alert(rule: ThresholdRule, batch: MetricBatch, metric_key: str, fp: str, tr: Transition) -> Alert:
    """The wire event for a transition; its id is deterministic so replays can be deduped."""
    event_id = hashlib.blake2b(
        f"{fp}\x00{tr.state}\x00{tr.started_at!r}".encode(), digest_size=12
    ).hexdigest()
    return Alert(
        fingerprint=fp,
        rule=rule.name,
        state=tr.state,
        severity=rule.severity,
        host_id=batch.host_id,
        region=batch.region,
        metric=metric_key,
        value=tr.value,
        threshold=tr.threshold,
        started_at=tr.started_at,
        at=tr.at,
        summary=rule.render_summary(batch.host_id, metric_key, tr.value, tr.threshold),
        event_id=event_id,
        labels=dict(batch.labels),
    )
