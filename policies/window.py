"""Sliding windows of one sample series: bounded, expiring, plain data.

A window keeps the points of the last ``window_s`` seconds (event time) and when its
unbroken observation began, so a rule can wait until it has seen a whole window before it
decides. Points older than the window are dropped on every push: memory is bounded by
``window_s / interval`` points per series, with no timers and no wall clock involved.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from policies.model import from_json_float, json_float


@dataclass
class Window:
    """Points ``(ts, value)`` oldest first, the last sample time, and when observation began."""

    since: float = math.nan
    last_ts: float = math.nan
    points: list[tuple[float, float]] = field(default_factory=list)

    def push(self, ts: float, value: float, window_s: float, keep: bool = True) -> bool:
        """Take a sample; False (and nothing changes) for a repeat, a late sample or NaN.

        ``keep=False`` records that the sample was seen without storing its point (zeros of
        a sum). A gap longer than the window restarts observation: what came before says
        nothing about the window now ending.
        """
        if value != value or ts != ts:  # NaN (a comparison, not a call: this is the hot path)
            return False
        last = self.last_ts
        if last == last:
            if ts <= last:
                return False
            if ts - last > window_s:
                self.points.clear()
                self.since = ts
        else:
            self.since = ts
        self.last_ts = ts
        points = self.points
        if keep:
            points.append((ts, value))
        horizon = ts - window_s
        if points and points[0][0] <= horizon:
            drop = 1
            while drop < len(points) and points[drop][0] <= horizon:
                drop += 1
            del points[:drop]
        return True

    def covers(self, now: float, window_s: float, interval_s: float) -> bool:
        """Has the series been watched for a whole window (allowing one sample interval)?"""
        return not math.isnan(self.since) and now - self.since + interval_s >= window_s

    def to_list(self) -> list[float | str | None]:
        flat: list[float] = [self.since, self.last_ts, *itertools.chain.from_iterable(self.points)]
        # C-speed check first: windows never hold NaN points, and infinities are rare
        if math.isfinite(self.since) and math.isfinite(self.last_ts) and _finite_values(self.points):
            return flat  # type: ignore[return-value]  # every element is a plain float
        return [json_float(x) for x in flat]

    @classmethod
    def from_list(cls, flat: list[float | str | None]) -> Window:
        """Inverse of :meth:`to_list` (non-finite numbers as :func:`~policies.model.json_float` writes them)."""
        if None in flat or str in set(map(type, flat)):
            flat = [from_json_float(x) for x in flat]
        pairs = iter(flat[2:])
        return cls(flat[0], flat[1], list(zip(pairs, pairs, strict=False)))  # type: ignore[arg-type]


def _finite_values(points: list[tuple[float, float]]) -> bool:
    if not points:
        return True
    values = [v for _, v in points]
    return -math.inf < min(values) and max(values) < math.inf


def aggregate(values: list[float], agg: str) -> float:
    """``last``, ``avg``, ``min``, ``max``, ``p95`` (nearest rank) or ``sum`` (0 when empty).

    Other aggregations of nothing are NaN, which breaches no bound.
    """
    if agg == "sum":
        return _fsum(values) if all(map(math.isfinite, values)) else sum(values)
    if not values:
        return math.nan
    if agg == "last":
        return values[-1]
    if agg == "avg":
        if not all(map(math.isfinite, values)):
            return sum(values) / len(values)
        try:
            return math.fsum(values) / len(values)
        except OverflowError:  # huge values: as in _fsum, scaled down and back; the mean is finite
            return math.fsum(v * 2.0**-64 for v in values) / len(values) * 2.0**64
    if agg == "min":
        return min(values)
    if agg == "max":
        return max(values)
    if agg == "p95":
        ordered = sorted(values)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    raise ValueError(f"unknown aggregation {agg!r}")


def _fsum(values: list[float]) -> float:
    """``math.fsum`` of finite values, which raises on intermediate overflow: infinite only if the sum is."""
    try:
        return math.fsum(values)
    except OverflowError:  # huge values: add them scaled down by a power of two (exact), scale back
        return math.fsum(v * 2.0**-64 for v in values) * 2.0**64
