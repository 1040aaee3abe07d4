"""Notices become wire alerts here, for every rule kind: one shape, one id, one renderer."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

from collector.contract import Alert
from policies import downcheck
from policies.lifecycle import Notice
from policies.model import Notify, short_hash
from policies.suppress import alert_labels

# Alert fields that matchers see as labels but that travel as fields of their own.
ALERT_FIELDS = frozenset({"rule", "kind", "severity", "host_id", "region", "metric"})


@dataclass(frozen=True)
class Subject:
    """What an alert is about: the rule, and the host (or a group of hosts) and sample key."""

    rule: str
    kind: str
    notify: Notify
    fingerprint: str
    host_id: str
    region: str
    metric: str
    host_label: str = ""  # how templates name the subject ({host}); the host id by default


def alert_event_id(fingerprint: str, transition: str, severity: str, started_at: float, at: float) -> str:
    """Every alert kind's id: deterministic, so a replayed decision gets the same id and stores dedupe."""
    # float(): the same time gives the same id whether it came as 50 or 50.0 (state read back from JSON)
    return short_hash(fingerprint, transition, severity, repr(float(started_at)), repr(float(at)), size=12)


def event_id(fp: str, notice: Notice) -> str:
    """The id of a rule's notice (see :func:`alert_event_id`)."""
    return alert_event_id(fp, notice.transition, notice.severity, notice.started_at, notice.at)


def labels_of(alert: Alert) -> dict[str, str]:
    """The label set matchers (silences, inhibition, routes) see for a wire alert: its labels
    and its label-like fields (:data:`ALERT_FIELDS`), the fields winning over labels."""
    return alert_labels(alert.labels, (), **{name: getattr(alert, name) for name in sorted(ALERT_FIELDS)})


def render(template: str, fields: dict[str, Any]) -> str:
    """A summary/annotation template; a template that cannot be filled is shown as written."""
    try:
        return template.format(**fields)
    except (KeyError, IndexError, ValueError, TypeError, AttributeError):
        return template


def wire_number(x: float) -> float:
    """JSON has no NaN or infinities: a reading beyond any float becomes the largest float."""
    if math.isfinite(x):
        return x
    if math.isnan(x):
        return 0.0
    return math.copysign(sys.float_info.max, x)


def to_alert(subject: Subject, notice: Notice, labels: dict[str, str]) -> Alert:
    """The wire alert of a notice; ``labels`` is the full label set matchers saw."""
    labels["severity"] = notice.severity
    value, threshold = wire_number(notice.value), wire_number(notice.threshold)
    fields = {
        "rule": subject.rule,
        "host": subject.host_label or subject.host_id,
        "region": subject.region,
        "metric": subject.metric,
        "value": value,
        "threshold": threshold,
        "severity": notice.severity,
        "labels": labels,
    }
    return Alert(
        fingerprint=subject.fingerprint,
        rule=subject.rule,
        state=notice.state,  # type: ignore[arg-type]  # "firing" or "resolved"
        severity=notice.severity,
        host_id=subject.host_id,
        region=subject.region,
        metric=subject.metric,
        value=value,
        threshold=threshold,
        started_at=notice.started_at,
        at=notice.at,
        summary=render(subject.notify.summary, fields),
        event_id=event_id(subject.fingerprint, notice),
        labels={k: v for k, v in labels.items() if k not in ALERT_FIELDS},
        kind=subject.kind,
        transition=notice.transition,
        annotations={name: render(template, fields) for name, template in subject.notify.annotations},
    )


def downcheck_alert(notice: downcheck.DownNotice, started_at: float) -> Alert:
    """The wire alert of a down-check notice: ``rule`` and ``kind`` are the notice's kind.

    Pages are ``critical``, the rest (flapping, a small region that cannot be judged) are
    ``warning``; ``started_at`` is when the alert first fired (its resolution keeps it).
    """
    severity = "critical" if notice.page else "warning"
    transition = "firing" if notice.state == "firing" else "resolved"
    at, started = float(notice.at), float(started_at)
    return Alert(
        fingerprint=notice.fingerprint,
        rule=notice.kind,
        state=notice.state,
        severity=severity,
        host_id=notice.host_id,
        region=notice.region,
        metric="heartbeat",
        value=wire_number(notice.value),
        threshold=0.0,
        started_at=started,
        at=at,
        summary=notice.reason,
        event_id=alert_event_id(notice.fingerprint, transition, severity, started, at),
        kind="downcheck",
        transition=transition,
        labels={"group": notice.group} if notice.group else {},
    )


def downcheck_notice(alert: Alert) -> downcheck.DownNotice | None:
    """The open down-check notice an announced alert stands for (``None``: not one, or resolved)."""
    if alert.kind != "downcheck" or alert.state != "firing" or alert.rule not in downcheck.NOTICE_KINDS:
        return None
    return downcheck.DownNotice(
        alert.rule,  # type: ignore[arg-type]  # checked against NOTICE_KINDS above
        "firing",
        alert.region,
        alert.host_id,
        alert.started_at,
        alert.summary,
        page=alert.severity == "critical",
        value=alert.value,
        group=alert.labels.get("group", ""),
    )
