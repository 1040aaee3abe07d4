"""Evaluating whole metric batches: fingerprints per instance, deterministic alert ids."""

from __future__ import annotations

from collector.contract import MetricBatch
from policies.engine import evaluate_batch
from policies.model import ThresholdRule
from policies.threshold import AlertStatus, RuleIndex

DISK = ThresholdRule(
    "disk_full", "disk_used_pct", max=90.0, severity="critical", summary="{metric} at {value:.0f}% on {host}"
)


def batch(ts: float, **metrics: float) -> MetricBatch:
    return MetricBatch(
        "db-1", "us-east", ts, 10.0, {k.replace("__", ":/"): v for k, v in metrics.items()}, {"role": "db"}
    )


def test_each_instance_of_a_metric_is_its_own_alert() -> None:
    table: dict[str, AlertStatus] = {}
    outcomes = evaluate_batch(RuleIndex([DISK]), batch(100, disk_used_pct__=95, disk_used_pct__var=50), table.get)
    assert len(outcomes) == 1
    alert = outcomes[0].alert
    assert alert is not None
    assert (alert.state, alert.metric, alert.host_id, alert.region, alert.severity) == (
        "firing",
        "disk_used_pct:/",
        "db-1",
        "us-east",
        "critical",
    )
    assert alert.summary == "disk_used_pct:/ at 95% on db-1"
    assert alert.labels == {"role": "db"}
    assert alert.fingerprint == DISK.fingerprint("db-1", "disk_used_pct:/")
    assert alert.fingerprint != DISK.fingerprint("db-1", "disk_used_pct:/var")


def test_in_bounds_inactive_metrics_produce_no_writes() -> None:
    assert evaluate_batch(RuleIndex([DISK]), batch(100, disk_used_pct__=10), {}.get) == []


def test_replaying_the_same_samples_gives_the_same_event_ids() -> None:
    def play() -> list[str]:
        table: dict[str, AlertStatus] = {}
        ids = []
        for ts, value in [(0, 95), (10, 96), (20, 10)]:
            for out in evaluate_batch(RuleIndex([DISK]), batch(ts, disk_used_pct__=value), table.get):
                if out.status is None:
                    table.pop(out.fingerprint, None)
                else:
                    table[out.fingerprint] = out.status
                if out.alert:
                    ids.append(out.alert.event_id)
        return ids

    first, second = play(), play()
    assert len(first) == 2 and first == second and first[0] != first[1]
