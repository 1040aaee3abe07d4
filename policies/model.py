"""The policy model: threshold rules on metrics, with min and max sides and a sustain time."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass

SEVERITIES = ("info", "warning", "critical")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(text: str | int | float) -> float:
    """``"90s"``, ``"5m"``, ``"1.5h"``, ``"250ms"`` or a bare number of seconds -> seconds."""
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        if not math.isfinite(text) or text < 0:
            raise ValueError(f"duration must be a finite number >= 0, got {text!r}")
        return float(text)
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 1h)")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


@dataclass(frozen=True)
class ThresholdRule:
    """Fire when a metric leaves ``[min, max]`` for at least ``for_s`` seconds.

    ``max`` breaches when value > max; ``min`` breaches when value < min. A rule names a
    metric's base name (``disk_used_pct``) to cover every instance (``disk_used_pct:/var``),
    or a full ``name:instance`` for one.
    """

    name: str
    metric: str
    max: float | None = None
    min: float | None = None
    for_s: float = 0.0
    severity: str = "warning"
    summary: str = "{rule}: {metric}={value:g} on {host} (threshold {threshold:g})"
    source: str = ""  # file:line, for messages about this rule

    def breach(self, value: float) -> float | None:
        """The threshold crossed by ``value``, or None when it is inside bounds.

        NaN is never a breach: a broken sample must not page (nor keep an alert firing).
        """
        if self.max is not None and value > self.max:
            return self.max
        if self.min is not None and value < self.min:
            return self.min
        return None

    def fingerprint(self, host_id: str, metric_key: str) -> str:
        """Stable identity of one alert: rule, host and the metric instance it watches."""
        raw = f"{self.name}\x00{host_id}\x00{metric_key}".encode()
        return hashlib.blake2b(raw, digest_size=8).hexdigest()

    def render_summary(self, host: str, metric: str, value: float, threshold: float) -> str:
        """The human line of an alert, from the rule's template."""
        return self.summary.format(rule=self.name, host=host, metric=metric, value=value, threshold=threshold)
