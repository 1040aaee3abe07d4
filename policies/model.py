"""The policy model: what a policy file can say, as plain frozen data.

Every rule kind reduces to the same parts where it can: a *sample key* it watches, an
aggregation over a window, thresholds with severities and recovery points, a sustain time
(``for``), a scope and the notification settings. Process and log rules are metric rules on
the samples the evaluator derives from process summaries and log counts (see
``policies.samples``); schedule and group rules have their own evaluators.
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from collector.contract import capped_reason
from collector.patterns import compile_re2
from policies.downcheck import DownCheckSettings

SEVERITIES = ("info", "warning", "critical")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES, start=1)}
AGGREGATIONS = ("last", "avg", "min", "max", "p95", "sum")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, None: 1.0}
MAX_DURATION_DAYS = 400
MAX_DURATION_S = MAX_DURATION_DAYS * 86400.0
"""The longest duration anything takes (policy windows and sustains, silences, report windows):
400 days, a year and a season. Beyond it a duration is a typo (``999999h``), and an unbounded
one becomes an infinity that JSON cannot carry and no clock can reach."""

Side = Literal["max", "min"]
RuleKind = Literal["metric", "process", "log", "schedule", "group"]


def parse_duration(text: str | int | float) -> float:
    """``"90s"``, ``"5m"``, ``"1.5h"``, ``"250ms"``, ``"2w"`` or a bare number of seconds -> seconds.

    Every duration is finite and at most :data:`MAX_DURATION_S`; anything else is a ``ValueError``
    (``TypeError`` for a value that is neither a string nor a number). Zero is accepted here: each
    caller says whether ``0s`` means something for its key.
    """
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        try:
            seconds = float(text)
        except OverflowError:
            seconds = math.inf
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"duration must be a finite number >= 0, got {_shown(text)}")
    else:
        match = _DURATION.match(text)
        if not match:
            raise ValueError(f"not a duration: {_shown(text)} (use e.g. 30s, 5m, 1h)")
        seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds > MAX_DURATION_S:
        raise ValueError(f"duration {_shown(text)} is longer than the maximum of {MAX_DURATION_DAYS}d")
    return seconds


def _shown(value: Any) -> str:
    """``repr(value)``, cut short: an error message quotes what it refused, not all of it."""
    return capped_reason(repr(value), 40)


def json_float(x: float) -> float | str | None:
    """``x`` as JSON can hold it: NaN as null, infinities as ``"inf"``/``"-inf"`` (JSON has neither)."""
    if math.isfinite(x):
        return x
    return None if math.isnan(x) else repr(x)


def from_json_float(x: float | str | None) -> float:
    """Inverse of :func:`json_float`."""
    return math.nan if x is None else float(x)


def short_hash(*parts: str, size: int = 8) -> str:
    """A stable hex id of some strings (fingerprints, event ids)."""
    return hashlib.blake2b("\x00".join(parts).encode(), digest_size=size).hexdigest()


# --- scoping -------------------------------------------------------------------------------


def compile_label_regex(pattern: str) -> Any:
    """A label regex as RE2 compiles it; ``ValueError`` saying why when it cannot.

    Label values come from agents, so matchers run on untrusted text: RE2 matches in time
    linear in the label (see :mod:`collector.patterns`); a backreference (``\\1``) or a
    lookaround (``(?=...)``) is refused.
    """
    try:
        return compile_re2(pattern)
    except ValueError as exc:
        raise ValueError(f"{exc} (label regexes are RE2: no backreferences or lookaround)") from None


@dataclass(frozen=True)
class LabelMatch:
    """One condition on a label: ``=`` equals, ``!=`` differs, ``=~``/``!~`` regex, ``in``/``not in``.

    A missing label is the empty string (as in Prometheus), so ``env != prod`` holds for a
    host without ``env``. Regexes are RE2 (see :func:`compile_label_regex`) and must match the
    whole value; a pattern RE2 refuses raises ``ValueError``.
    """

    label: str
    op: Literal["=", "!=", "=~", "!~", "in", "not in"]
    value: str = ""
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            object.__setattr__(self, "_regex", compile_label_regex(self.value))

    def matches(self, labels: Mapping[str, str]) -> bool:
        got = labels.get(self.label, "")
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        if self.op == "in":
            return got in self.values
        if self.op == "not in":
            return got not in self.values
        try:
            hit = self._regex.fullmatch(got) is not None  # type: ignore[attr-defined]
        except UnicodeEncodeError:  # a lone surrogate (not from the wire: orjson refuses them)
            hit = self._regex.fullmatch(got.encode("utf-8", "replace").decode()) is not None  # type: ignore[attr-defined]
        return hit if self.op == "=~" else not hit


@dataclass(frozen=True)
class Selector:
    """Which hosts a rule covers: all conditions hold, and no exclusion matches.

    ``regions`` and ``hosts`` (globs on host ids) are shorthands for the most common
    conditions; ``exclude`` is a list of selectors any of which removes a host.
    """

    labels: tuple[LabelMatch, ...] = ()
    regions: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    exclude: tuple[Selector, ...] = ()

    def matches(self, host_id: str, region: str, labels: Mapping[str, str]) -> bool:
        if self.regions and region not in self.regions:
            return False
        if self.hosts and not any(fnmatch.fnmatchcase(host_id, glob) for glob in self.hosts):
            return False
        if not all(m.matches(labels) for m in self.labels):
            return False
        return not any(ex.matches(host_id, region, labels) for ex in self.exclude)

    @property
    def is_everything(self) -> bool:
        return not (self.labels or self.regions or self.hosts or self.exclude)


EVERYWHERE = Selector()


# --- thresholds ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    """One bound with its severity: ``max`` breaches above ``value``, ``min`` below it.

    ``recover`` is where an active breach of this bound ends (hysteresis): for a max bound a
    value at or below it, for a min bound at or above it. Without hysteresis it is ``value``.
    """

    side: Side
    value: float
    severity: str
    recover: float
    inclusive: bool = False  # also breach at ``value`` itself (counts: "at least N")

    @property
    def rank(self) -> int:
        return SEVERITY_RANK[self.severity]

    def crossed(self, value: float, active_rank: int) -> bool:
        """Is ``value`` beyond this bound, given the severity rank currently active?

        A bound at or below the active severity holds until ``recover`` is passed; a higher
        one needs its own ``value`` crossed. NaN crosses nothing.
        """
        if self.rank <= active_rank:
            return value > self.recover if self.side == "max" else value < self.recover
        if self.inclusive:
            return value >= self.value if self.side == "max" else value <= self.value
        return value > self.value if self.side == "max" else value < self.value


@dataclass(frozen=True)
class Notify:
    """How an alert's notifications behave once its state is known."""

    renotify_s: float = 0.0  # 0: never repeat a firing notification
    flap_window_s: float = 600.0
    flap_changes: int = 3  # this many firing<->inactive changes inside the window = flapping (0: off)
    summary: str = "{rule}: {metric}={value:g} on {host} (threshold {threshold:g})"
    annotations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class MetricRule:
    """Thresholds on one aggregated sample key (metric, process-group figure or log count).

    ``metric`` is a base name (``disk_used_pct``, every instance) or a full
    ``name:instance`` key. With ``window_s`` the rule sees ``agg`` over that window and
    decides only once it has watched a whole window (so a host just started, or one missed
    sample, is not an alert).
    """

    name: str
    metric: str
    thresholds: tuple[Threshold, ...]
    kind: RuleKind = "metric"
    agg: str = "last"
    window_s: float = 0.0
    for_s: float = 0.0
    selector: Selector = EVERYWHERE
    labels: tuple[tuple[str, str], ...] = ()
    notify: Notify = field(default_factory=Notify)
    source: str = ""  # file:line, for messages about this rule

    def breach(self, value: float, active_rank: int = 0) -> Threshold | None:
        """The most severe bound ``value`` is beyond (with hysteresis), or None."""
        worst: Threshold | None = None
        for bound in self.thresholds:
            if bound.crossed(value, active_rank) and (worst is None or bound.rank > worst.rank):
                worst = bound
        return worst

    def fingerprint(self, host_id: str, metric_key: str) -> str:
        """Stable identity of one alert: rule, host and the sample key it watches."""
        return short_hash(self.name, host_id, metric_key)


@dataclass(frozen=True)
class ScheduleRule:
    """A process group must be seen running inside each cron window.

    Window: from each time ``cron`` matches (in ``timezone``) for ``within_s`` seconds. A
    policy's ``max_runtime`` becomes a metric rule on ``proc_age_s:<group>`` next to it.
    """

    name: str
    group: str
    cron: str
    within_s: float
    timezone: str = "UTC"
    severity: str = "warning"
    selector: Selector = EVERYWHERE
    labels: tuple[tuple[str, str], ...] = ()
    notify: Notify = field(default_factory=Notify)
    source: str = ""
    kind: RuleKind = "schedule"


@dataclass(frozen=True)
class ScaleSpec:
    """Signals for clouds without autoscaling: ask for more/fewer hosts, at most once per cooldown."""

    out_above: float | None = None
    in_below: float | None = None
    cooldown_s: float = 600.0


@dataclass(frozen=True)
class GroupRule:
    """An aggregate across every host the selector matches, against thresholds.

    ``agg`` is avg/max/min/sum of ``metric`` (each host's latest value), or ``count`` of
    hosts whose ``metric`` (then a process-count key such as ``proc_count:nginx``) is > 0.
    Hosts not heard from for ``stale_s`` drop out of the aggregate.
    """

    name: str
    metric: str
    agg: str
    thresholds: tuple[Threshold, ...]
    for_s: float = 0.0
    stale_s: float = 120.0
    selector: Selector = EVERYWHERE
    scale: ScaleSpec | None = None
    labels: tuple[tuple[str, str], ...] = ()
    notify: Notify = field(default_factory=Notify)
    source: str = ""
    kind: RuleKind = "group"

    def breach(self, value: float, active_rank: int = 0) -> Threshold | None:
        return MetricRule.breach(self, value, active_rank)  # type: ignore[arg-type]


# --- suppression ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MaintenanceWindow:
    """Recurring quiet time: from each ``cron`` match for ``duration_s``, matching alerts stay quiet."""

    name: str
    cron: str
    duration_s: float
    matchers: tuple[LabelMatch, ...]
    timezone: str = "UTC"
    source: str = ""


@dataclass(frozen=True)
class InhibitRule:
    """While a ``source`` alert fires, ``target`` alerts sharing the ``equal`` labels stay quiet."""

    name: str
    source_match: tuple[LabelMatch, ...]
    target_match: tuple[LabelMatch, ...]
    equal: tuple[str, ...]
    source: str = ""


@dataclass(frozen=True)
class Silence:
    """An operator's silence: alerts matching every matcher stay quiet from start to end."""

    id: str
    matchers: tuple[LabelMatch, ...]
    starts_at: float
    ends_at: float
    created_by: str = ""
    comment: str = ""

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at


@dataclass(frozen=True)
class DownCheckScope:
    """Down-check settings for the hosts (or regions) a selector covers; the first match wins."""

    name: str
    selector: Selector
    settings: DownCheckSettings
    source: str = ""


@dataclass(frozen=True)
class PolicySet:
    """Everything one policy directory says; ``version`` identifies its content."""

    metric_rules: tuple[MetricRule, ...] = ()
    schedule_rules: tuple[ScheduleRule, ...] = ()
    group_rules: tuple[GroupRule, ...] = ()
    maintenance: tuple[MaintenanceWindow, ...] = ()
    inhibit: tuple[InhibitRule, ...] = ()
    downcheck: tuple[DownCheckScope, ...] = ()
    version: str = ""

    def downcheck_for(self, host_id: str, region: str, labels: Mapping[str, str]) -> DownCheckSettings:
        """The down-check settings of a host (first matching scope), or the defaults.

        Region-wide questions pass an empty host id and labels: only region scopes (and the
        unscoped one) match them.
        """
        for scope in self.downcheck:
            if scope.selector.matches(host_id, region, labels):
                return scope.settings
        return DownCheckSettings()

    def __len__(self) -> int:
        return len(self.metric_rules) + len(self.schedule_rules) + len(self.group_rules)

    def names(self) -> list[str]:
        rules: list[MetricRule | ScheduleRule | GroupRule] = [
            *self.metric_rules,
            *self.schedule_rules,
            *self.group_rules,
        ]
        return [r.name for r in rules]
