"""Why an alert is kept quiet: silences, maintenance windows and inhibition.

All three work on an alert's *label set*: the host's labels, the rule's labels and the
alert's own fields (``rule``, ``severity``, ``kind``, ``host_id``, ``region``, ``metric``).
Suppression holds back notifications only; evaluation goes on, so an alert still firing
when its silence ends is announced then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from policies import cron
from policies.model import InhibitRule, LabelMatch, MaintenanceWindow, Silence


def alert_labels(
    host_labels: Mapping[str, str],
    rule_labels: Iterable[tuple[str, str]],
    **fields: str,
) -> dict[str, str]:
    """The label set matchers see; the alert's own fields win over labels of the same name."""
    labels = dict(host_labels)
    labels.update(rule_labels)
    labels.update(fields)
    return labels


def matches_all(matchers: Iterable[LabelMatch], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


@dataclass
class Suppressor:
    """Decides, for a label set at a time, whether notifications are held back (and why)."""

    silences: dict[str, Silence] = field(default_factory=dict)
    maintenance: tuple[MaintenanceWindow, ...] = ()
    inhibit: tuple[InhibitRule, ...] = ()
    # fingerprint -> label set of alerts announced as firing, fleet-wide (inhibition sources)
    firing: dict[str, dict[str, str]] = field(default_factory=dict)

    def reason(self, labels: Mapping[str, str], now: float, fingerprint: str = "") -> str | None:
        """``silence:<id>``, ``maintenance:<name>``, ``inhibited:<rule>`` or None."""
        for silence in self.silences.values():
            if silence.active(now) and matches_all(silence.matchers, labels):
                return f"silence:{silence.id}"
        for window in self.maintenance:
            if matches_all(window.matchers, labels) and cron.in_window(
                window.cron, window.timezone, window.duration_s, now
            ):
                return f"maintenance:{window.name}"
        for rule in self.inhibit:
            if not matches_all(rule.target_match, labels):
                continue
            for fp, source in self.firing.items():
                if (
                    fp != fingerprint
                    and matches_all(rule.source_match, source)
                    and all(source.get(k, "") == labels.get(k, "") for k in rule.equal)
                ):
                    return f"inhibited:{rule.name}"
        return None

    def note_firing(self, fingerprint: str, labels: Mapping[str, str] | None) -> None:
        """Record an announced alert (labels) or its end (None), as inhibition source."""
        if labels is None:
            self.firing.pop(fingerprint, None)
        else:
            self.firing[fingerprint] = dict(labels)

    def put_silence(self, silence: Silence | None, silence_id: str) -> None:
        if silence is None:
            self.silences.pop(silence_id, None)
        else:
            self.silences[silence_id] = silence

    def prune(self, now: float) -> None:
        """Forget silences that have ended."""
        for sid in [sid for sid, s in self.silences.items() if s.ends_at <= now]:
            del self.silences[sid]
