"""Group rules: one aggregate across every host in scope, and optional scale signals.

Each host in scope contributes its latest value (a :class:`~policies.engine.GroupSample`);
the group's clock is the newest contribution's event time, and hosts silent for
``stale_s`` drop out. A group is judged only once it has been watched for ``stale_s``: until
then, hosts that have not reported yet are not missing (a rule just applied, or a first
start, is not an alert or a scale signal). The alert has one fingerprint per rule and the
same lifecycle as any other alert.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import orjson

from collector.contract import Alert, ScaleSignal
from policies.alerts import Subject, to_alert
from policies.engine import GroupSample
from policies.lifecycle import STATE_VERSION, AlertState, AnnouncedLookup, advance, close_retired, stored_version, sync
from policies.model import GroupRule, Notify, from_json_float, json_float, short_hash
from policies.suppress import Suppressor, alert_labels


@dataclass
class GroupState:
    """Latest value per host, the rule's alert lifecycle, when it last asked to scale and since when it is watched."""

    hosts: dict[str, list[float]] = field(default_factory=dict)  # host -> [value, ts]
    alert: AlertState = field(default_factory=AlertState)
    now: float = 0.0
    last_scale_at: float = -math.inf
    since: float = math.nan  # the first contribution's time (NaN: none yet)

    def to_bytes(self) -> bytes:
        last = self.last_scale_at if math.isfinite(self.last_scale_at) else None
        hosts = {h: [json_float(v), json_float(ts)] for h, (v, ts) in self.hosts.items()}
        return orjson.dumps(
            {
                "v": STATE_VERSION,
                "h": hosts,
                "a": self.alert.to_list(),
                "n": self.now,
                "l": last,
                "s": json_float(self.since),
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> GroupState:
        if not raw:
            return cls()
        body: dict[str, Any] = orjson.loads(raw)
        last = body.get("l")
        hosts = {h: [from_json_float(v), from_json_float(ts)] for h, (v, ts) in body["h"].items()}
        version = stored_version(body)
        # version 0: a state written before "s" existed has been watching for long enough
        since = from_json_float(body["s"]) if version >= 1 or "s" in body else -math.inf
        alert = AlertState.from_list(body["a"], version)
        return cls(hosts, alert, body["n"], -math.inf if last is None else last, since)


def group_value(rule: GroupRule, state: GroupState) -> tuple[float, int]:
    """The aggregate over fresh hosts, and how many hosts it covers (NaN when none)."""
    fresh = [v for v, ts in state.hosts.values() if ts > state.now - rule.stale_s and not math.isnan(v)]
    if not fresh:
        return math.nan, 0
    if rule.agg == "count":
        return float(sum(1 for v in fresh if v > 0)), len(fresh)
    if rule.agg == "sum":
        return sum(fresh), len(fresh)
    if rule.agg == "max":
        return max(fresh), len(fresh)
    if rule.agg == "min":
        return min(fresh), len(fresh)
    return sum(fresh) / len(fresh), len(fresh)


def evaluate_group(
    rule: GroupRule,
    state: GroupState,
    sample: GroupSample,
    suppressor: Suppressor,
    announced: AnnouncedLookup | None = None,
) -> tuple[list[Alert], list[ScaleSignal]]:
    """Take one host's contribution into ``state`` (in place); the alerts and signals it causes."""
    previous = state.hosts.get(sample.host_id)
    if previous is not None and sample.ts <= previous[1]:
        return [], []  # a repeat or an older value: the host's latest stands
    state.hosts[sample.host_id] = [sample.value, sample.ts]
    state.now = max(state.now, sample.ts)
    if math.isnan(state.since):
        state.since = sample.ts
    for host in [h for h, (_, ts) in state.hosts.items() if ts <= state.now - rule.stale_s]:
        del state.hosts[host]  # bounded: hosts that left the scope are forgotten
    value, hosts = group_value(rule, state)
    if state.now - state.since < rule.stale_s:
        value = math.nan  # not watched for long enough: no judgement yet
    crossed = rule.breach(value, state.alert.active_rank) if not math.isnan(value) else None
    fp = short_hash(rule.name, "", rule.metric)
    if announced is not None:
        sync(state.alert, announced(fp))
    labels = alert_labels(
        {}, rule.labels, rule=rule.name, kind="group", severity=crossed.severity if crossed else "", metric=rule.metric
    )
    suppressed = crossed is not None and suppressor.reason(labels, state.now, fp) is not None
    alerts: list[Alert] = []
    notice = advance(state.alert, crossed, value, state.now, rule.for_s, rule.notify, suppressed)
    if notice is not None:
        subject = Subject(rule.name, "group", rule.notify, fp, "", "", rule.metric, host_label=f"{hosts} hosts")
        alerts.append(to_alert(subject, notice, labels))
        suppressor.note_firing(fp, labels if notice.state == "firing" else None)
    return alerts, _scale(rule, state, value, hosts)


def retire_group(name: str, metric: str, state: GroupState, announced: AnnouncedLookup | None = None) -> list[Alert]:
    """A group rule left the policy: close what it announced (nothing judges it again).

    ``metric`` is what the removed rule read (its fingerprint is made of it).
    """
    fp = short_hash(name, "", metric)
    notice = close_retired(state.alert, fp, state.now, announced)
    if notice is None:
        return []
    labels = alert_labels({}, (), rule=name, kind="group", severity=notice.severity, metric=metric)
    subject = Subject(name, "group", Notify(), fp, "", "", metric, host_label="the group")
    return [to_alert(subject, notice, labels)]


def _scale(rule: GroupRule, state: GroupState, value: float, hosts: int) -> list[ScaleSignal]:
    spec = rule.scale
    if spec is None or math.isnan(value) or state.now - state.last_scale_at < spec.cooldown_s:
        return []
    if spec.out_above is not None and value > spec.out_above:
        action, threshold = "scale_out", spec.out_above
    elif spec.in_below is not None and value < spec.in_below:
        action, threshold = "scale_in", spec.in_below
    else:
        return []
    state.last_scale_at = state.now
    return [
        ScaleSignal(
            rule=rule.name,
            action=action,  # type: ignore[arg-type]
            at=state.now,
            value=value,
            threshold=threshold,
            hosts=hosts,
            event_id=short_hash(rule.name, action, repr(float(state.now)), size=12),
            labels=dict(rule.labels),
        )
    ]


__all__ = ["GroupState", "evaluate_group", "group_value", "retire_group"]
