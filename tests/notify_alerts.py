"""Wire alerts for the notifier's tests: one builder with readable defaults."""

from __future__ import annotations

from typing import Any

from collector.contract import Alert
from policies.alerts import alert_event_id


def alert(
    fingerprint: str = "fp1",
    state: str = "firing",
    *,
    rule: str = "cpu_hot",
    severity: str = "warning",
    host_id: str = "web-1",
    region: str = "eu-1",
    started_at: float = 1000.0,
    at: float | None = None,
    summary: str = "",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    kind: str = "metric",
    **fields: Any,
) -> Alert:
    """An alert transition as the workers send it (``at`` defaults to ``started_at``)."""
    at = started_at if at is None else at
    transition = "resolved" if state == "resolved" else "firing"
    return Alert(
        fingerprint=fingerprint,
        rule=rule,
        state=state,  # type: ignore[arg-type]
        severity=severity,
        host_id=host_id,
        region=region,
        metric=fields.pop("metric", "cpu_pct"),
        value=fields.pop("value", 97.5),
        threshold=fields.pop("threshold", 90.0),
        started_at=started_at,
        at=at,
        summary=summary or f"{rule} on {host_id}",
        event_id=alert_event_id(fingerprint, transition, severity, started_at, at),
        labels=labels or {},
        kind=kind,
        transition=transition,
        annotations=annotations or {},
    )
