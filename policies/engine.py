"""The evaluator: one host's events and its state in, alerts out. Pure; the caller owns time.

Per host the evaluator keeps a :class:`HostState` (windows, alert lifecycles, schedule
observations), plain data the worker stores in a Faust table keyed by host. Event time is
the clock: every decision is taken at the event's ``ts``, so a replay after a crash takes
the same decisions and produces the same alerts (with the same ids).

Cost is what makes a 1,000-rule policy affordable: rules are compiled per host scope into
*series* (sample key, window, aggregation) with their thresholds sorted, so an in-bounds
sample of an inactive series costs one bisect, whatever the number of rules.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from collector.contract import Alert, LogCounts, MetricBatch, ProcessEvent, ProcessSummary
from policies import cron
from policies.alerts import Subject, to_alert
from policies.lifecycle import (
    STATE_VERSION,
    AlertState,
    AnnouncedLookup,
    Notice,
    advance,
    close_retired,
    stored_version,
    sync,
)
from policies.model import (
    GroupRule,
    MetricRule,
    Notify,
    PolicySet,
    ScheduleRule,
    Threshold,
    short_hash,
)
from policies.samples import PROC_COUNT, Samples, samples_of
from policies.suppress import Suppressor, alert_labels
from policies.window import Window, aggregate

log = logging.getLogger(__name__)

EvaluatedEvent = MetricBatch | ProcessSummary | LogCounts | ProcessEvent


# --- state ---------------------------------------------------------------------------------


@dataclass
class ScheduleState:
    """What one schedule rule has seen of its process group on one host."""

    watching_since: float
    last_run: float = -math.inf
    missed: AlertState = field(default_factory=AlertState)
    group: str = ""  # the rule's process group: its alert's key, once the rule has left the policy


@dataclass
class HostState:
    """Everything the evaluator remembers about one host; bounded by its rules and windows."""

    windows: dict[str, Window] = field(default_factory=dict)  # "<key>|<window_s>"
    alerts: dict[str, dict[str, AlertState]] = field(default_factory=dict)  # sample key -> rule -> state
    schedules: dict[str, ScheduleState] = field(default_factory=dict)
    # the event time of the last sweep for stale windows; not stored (a sweep is only a saving)
    swept_at: float = field(default=math.nan, compare=False, repr=False)

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "v": STATE_VERSION,
                "w": {k: w.to_list() for k, w in self.windows.items()},
                "a": {k: {r: s.to_list() for r, s in by.items()} for k, by in self.alerts.items()},
                "s": {
                    r: [
                        s.watching_since,
                        s.last_run if math.isfinite(s.last_run) else None,
                        s.missed.to_list(),
                        s.group,
                    ]
                    for r, s in self.schedules.items()
                },
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> HostState:
        if not raw:
            return cls()
        body: dict[str, Any] = orjson.loads(raw)
        version = stored_version(body)

        def schedule(s: list[Any]) -> ScheduleState:
            group = s[3] if version >= 1 or len(s) > 3 else ""  # version 0: stored before the group was kept
            return ScheduleState(s[0], -math.inf if s[1] is None else s[1], AlertState.from_list(s[2], version), group)

        return cls(
            windows={k: Window.from_list(v) for k, v in body.get("w", {}).items()},
            alerts={
                k: {r: AlertState.from_list(s, version) for r, s in by.items()} for k, by in body.get("a", {}).items()
            },
            schedules={r: schedule(s) for r, s in body.get("s", {}).items()},
        )


def _drop_stale_windows(windows: dict[str, Window], now: float) -> None:
    """Forget windows whose last sample is more than their own size before ``now``.

    Such a window is cleared by its next push anyway, so dropping it changes no decision; it
    keeps a host with churning instance keys (``net_rx_bytes_per_s:veth1``, ``veth2``, ...)
    from growing without bound. Only run when a window is created, which is what churn does.
    """
    stale = [
        wkey
        for wkey, window in windows.items()
        # "not >=" also drops windows that never took a sample (NaN last_ts): they hold nothing
        if not window.last_ts >= now - float(wkey.rpartition("|")[2])
    ]
    for wkey in stale:
        del windows[wkey]


class StateCache:
    """Decoded host states next to the bytes they were stored as, so a host's state is decoded
    only when the stored bytes are not the ones this process wrote (after a rebalance or a
    restore): the worker then pays one encode per event instead of a decode and an encode.
    """

    def __init__(self, max_hosts: int = 200_000) -> None:
        self._states: dict[bytes, tuple[bytes, HostState]] = {}
        self._max = max_hosts

    def load(self, key: bytes, raw: bytes | None) -> HostState:
        cached = self._states.get(key)
        if cached is not None and raw is not None and cached[0] is raw:
            return cached[1]
        return HostState.from_bytes(raw)

    def store(self, key: bytes, state: HostState) -> bytes:
        raw = state.to_bytes()
        if len(self._states) >= self._max and key not in self._states:
            self._states.clear()  # hosts come and go; never grow without bound
        self._states[key] = (raw, state)
        return raw


# --- compiled rules ------------------------------------------------------------------------


@dataclass
class Series:
    """Rules that read the same aggregate of the same sample key; thresholds sorted for bisect."""

    window_s: float
    agg: str
    by_max: list[MetricRule] = field(default_factory=list)  # by their lowest max-side bound
    max_entry: list[float] = field(default_factory=list)
    by_min: list[MetricRule] = field(default_factory=list)  # by their highest min-side bound, negated
    min_entry: list[float] = field(default_factory=list)
    # the window's key suffix in a host state, formatted once rather than per sample
    wsuffix: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.wsuffix = f"|{self.window_s:g}"

    def add(self, rule: MetricRule) -> None:
        maxes = [t.value for t in rule.thresholds if t.side == "max"]
        mins = [t.value for t in rule.thresholds if t.side == "min"]
        if maxes:
            at = bisect.bisect_left(self.max_entry, min(maxes))
            self.max_entry.insert(at, min(maxes))
            self.by_max.insert(at, rule)
        if mins:
            at = bisect.bisect_left(self.min_entry, -max(mins))
            self.min_entry.insert(at, -max(mins))
            self.by_min.insert(at, rule)

    def candidates(self, value: float) -> Iterable[MetricRule]:
        """Rules whose entry bound ``value`` is beyond (NaN is beyond none)."""
        if value != value:  # NaN: bisect would place it past every bound
            return ()
        # bisect_right: inclusive bounds breach at their entry value too (breach() decides)
        above = bisect.bisect_right(self.max_entry, value)
        below = bisect.bisect_right(self.min_entry, -value) if self.min_entry else 0
        if not below:
            return self.by_max[:above] if above else ()  # nearly every sample: in bounds, nothing to do
        return self.by_max[:above] + self.by_min[:below]


@dataclass
class HostPlan:
    """The rules that apply to one host scope, ready for lookups by sample key."""

    by_metric: dict[str, list[Series]] = field(default_factory=dict)  # full key or base name
    rules: dict[str, MetricRule] = field(default_factory=dict)
    schedules: list[ScheduleRule] = field(default_factory=list)
    groups: list[GroupRule] = field(default_factory=list)
    _resolved: dict[str, list[Series]] = field(default_factory=dict, repr=False)

    def series_for(self, key: str) -> list[Series]:
        """Series of rules naming ``key`` itself or, for ``name:instance`` keys, its base name."""
        found = self._resolved.get(key)
        if found is not None:
            return found
        exact = self.by_metric.get(key)
        base, sep, _ = key.partition(":")
        by_base = self.by_metric.get(base) if sep else None
        found = exact + by_base if exact and by_base else exact or by_base or []
        if len(self._resolved) < 100_000:  # sample keys of a fleet are few; never grow without bound
            self._resolved[key] = found
        return found


def _compile(policy: PolicySet, applies: list[bool]) -> HostPlan:
    """A plan from the rules whose scope matched (``applies`` follows ``_all_rules`` order)."""
    plan = HostPlan()
    metric_rules = len(policy.metric_rules)
    for rule, ok in zip(policy.metric_rules, applies, strict=False):
        if not ok:
            continue
        plan.rules[rule.name] = rule
        series_list = plan.by_metric.setdefault(rule.metric, [])
        for series in series_list:
            if series.window_s == rule.window_s and series.agg == rule.agg:
                break
        else:
            series = Series(rule.window_s, rule.agg)
            series_list.append(series)
        series.add(rule)
    rest = applies[metric_rules:]
    schedules = len(policy.schedule_rules)
    plan.schedules = [r for r, ok in zip(policy.schedule_rules, rest[:schedules], strict=True) if ok]
    plan.groups = [r for r, ok in zip(policy.group_rules, rest[schedules:], strict=True) if ok]
    return plan


# --- the evaluator -------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupSample:
    """One host's latest value for a group rule (sent on to the group evaluator)."""

    rule: str
    host_id: str
    value: float
    ts: float


@dataclass
class Result:
    """What one event produced."""

    alerts: list[Alert] = field(default_factory=list)
    group_samples: list[GroupSample] = field(default_factory=list)
    changed: bool = False  # the host state must be written back


class Evaluator:
    """Evaluates events of any host against one policy set; swap ``policy`` to apply a new one."""

    def __init__(
        self, policy: PolicySet, suppressor: Suppressor | None = None, announced: AnnouncedLookup | None = None
    ) -> None:
        self.suppressor = suppressor or Suppressor(maintenance=policy.maintenance, inhibit=policy.inhibit)
        self.policy = policy
        # Where the truth about published alerts lives (the worker's alert-topic table); without
        # it, the announced part of each state is trusted as it is.
        self.announced = announced

    @property
    def policy(self) -> PolicySet:
        return self._policy

    @policy.setter
    def policy(self, policy: PolicySet) -> None:
        self._policy = policy
        rules: list[MetricRule | ScheduleRule | GroupRule] = [
            *policy.metric_rules,
            *policy.schedule_rules,
            *policy.group_rules,
        ]
        # Scopes are few even when rules are many: each distinct selector is judged once per
        # host, and hosts judged alike share one compiled plan.
        distinct: dict[Any, int] = {}
        self._selector_of = [distinct.setdefault(rule.selector, len(distinct)) for rule in rules]
        self._selectors = list(distinct)
        self._host_keys: dict[tuple[str, str, tuple[tuple[str, str], ...]], tuple[bool, ...]] = {}
        self._plans: dict[tuple[bool, ...], HostPlan] = {}
        self.suppressor.maintenance = policy.maintenance
        self.suppressor.inhibit = policy.inhibit

    def plan(self, host_id: str, region: str, labels: dict[str, str]) -> HostPlan:
        """The compiled rules for a host (cached by host identity, shared by scope outcome)."""
        host = (host_id, region, tuple(sorted(labels.items())))
        verdict = self._host_keys.get(host)
        if verdict is None:
            if len(self._host_keys) > 200_000:  # hosts come and go; never grow without bound
                self._host_keys.clear()
            verdict = self._host_keys[host] = tuple(s.matches(host_id, region, labels) for s in self._selectors)
        plan = self._plans.get(verdict)
        if plan is None:
            plan = self._plans[verdict] = _compile(self.policy, [verdict[i] for i in self._selector_of])
        return plan

    def evaluate(self, event: EvaluatedEvent, state: HostState) -> Result:
        """Run every applicable rule over ``event``, updating ``state`` in place."""
        result = Result()
        plan = self.plan(event.host_id, event.region, event.labels)
        if isinstance(event, ProcessEvent):
            if event.kind == "start":
                self._schedules(plan, event, state, result, started_group=event.group)
            return result
        samples = samples_of(event)
        for key, value in samples.values.items():
            self._sample(plan, samples, key, value, state, result)
        if isinstance(event, ProcessSummary) and (plan.schedules or state.schedules):
            self._schedules(plan, event, state, result, samples=samples)
        for rule in plan.groups:
            contribution = samples.values.get(rule.metric)
            if contribution is not None:
                result.group_samples.append(GroupSample(rule.name, event.host_id, contribution, event.ts))
        return result

    def _sample(self, plan: HostPlan, samples: Samples, key: str, value: float, state: HostState, out: Result) -> None:
        known_map = state.alerts.get(key)
        known = list(known_map) if known_map else []
        retired: Sequence[str] = ()  # a constant: no allocation for the in-bounds majority
        if known:
            base = key.partition(":")[0]
            # removed, out of scope, or now reading another metric: no sample of this key will
            # ever judge it again, so what it announced would stay open forever
            retired = [n for n in known if (r := plan.rules.get(n)) is None or r.metric not in (key, base)]
            if retired:
                known = [n for n in known if n not in retired]
        for series in plan.series_for(key):
            current = value
            if series.window_s > 0:
                wkey = key + series.wsuffix
                window = state.windows.get(wkey)
                if window is None:
                    if state.swept_at != samples.ts:  # once per event: later sweeps would find nothing
                        state.swept_at = samples.ts
                        _drop_stale_windows(state.windows, samples.ts)
                    window = state.windows[wkey] = Window()
                # a sum is unchanged by zeros: keep only the non-zero points (log counts are
                # mostly zero, and a day-long absence window would otherwise hold every one)
                if window.push(samples.ts, value, series.window_s, keep=value != 0 or series.agg != "sum"):
                    out.changed = True
                if window.covers(samples.ts, series.window_s, samples.interval_s):
                    current = aggregate([v for _, v in window.points], series.agg)
                else:
                    current = math.nan  # not watched for a whole window yet: no judgement
            for rule in series.candidates(current):
                if rule.name not in known:
                    self._step(rule, key, current, samples, state, out)
            if known:
                for name in known:
                    known_rule = plan.rules.get(name)
                    if (
                        known_rule is not None
                        and known_rule.window_s == series.window_s
                        and known_rule.agg == series.agg
                    ):
                        self._step(known_rule, key, current, samples, state, out)
        for name in retired:
            self._retire(name, key, samples, state, out)

    def _step(self, rule: MetricRule, key: str, value: float, samples: Samples, state: HostState, out: Result) -> None:
        by_rule = state.alerts.get(key)
        st = by_rule.get(rule.name) if by_rule else None
        if st is None:
            st = AlertState()
        elif samples.ts <= st.seen_at:
            # judged already: a replay after a crash (the state is ahead of the events) or a
            # late sample; judging it again could reopen an alert that has since resolved
            return
        crossed = rule.breach(value, st.active_rank) if not math.isnan(value) else None
        if crossed is None and st.idle:
            return
        fp = rule.fingerprint(samples.host_id, key)
        if self.announced is not None:
            sync(st, self.announced(fp))
        labels = self._labels(rule.name, rule.kind, rule.labels, samples, key, crossed or st)
        suppressed = crossed is not None and self.suppressor.reason(labels, samples.ts, fp) is not None
        # two missed samples in a row break a sustained breach
        gap_s = 2.5 * samples.interval_s if samples.interval_s > 0 else math.inf
        notice = advance(st, crossed, value, samples.ts, rule.for_s, rule.notify, suppressed, gap_s)
        self._store(state.alerts, key, rule.name, st)
        out.changed = True
        if notice is not None:
            out.alerts.append(self._alert(rule.name, rule.kind, rule.notify, fp, key, notice, samples, labels))

    def _retire(self, name: str, key: str, samples: Samples, state: HostState, out: Result) -> None:
        st = state.alerts[key].pop(name)
        if not state.alerts[key]:
            del state.alerts[key]
        out.changed = True
        self._resolve_retired(name, "metric", key, st, samples, out)

    def _resolve_retired(self, name: str, kind: str, key: str, st: AlertState, samples: Samples, out: Result) -> None:
        """A rule left the policy (or the host left its scope): close what it announced."""
        fp = short_hash(name, samples.host_id, key)
        notice = close_retired(st, fp, samples.ts, self.announced)
        if notice is not None:
            labels = self._labels(name, kind, (), samples, key, st)
            out.alerts.append(self._alert(name, kind, Notify(), fp, key, notice, samples, labels))

    def _retire_schedule(self, name: str, state: HostState, ctx: Samples, out: Result) -> None:
        """Forget a schedule's observations and close the missed-run alert of the group it watched."""
        gone = state.schedules.pop(name)
        out.changed = True
        if gone.group:
            self._resolve_retired(name, "schedule", f"{PROC_COUNT}:{gone.group}", gone.missed, ctx, out)

    @staticmethod
    def _store(table: dict[str, dict[str, AlertState]], key: str, name: str, st: AlertState) -> None:
        if st.idle:
            by_rule = table.get(key)
            if by_rule is not None:
                by_rule.pop(name, None)
                if not by_rule:
                    del table[key]
        else:
            table.setdefault(key, {})[name] = st

    # --- schedules -------------------------------------------------------------------------

    def _schedules(
        self,
        plan: HostPlan,
        event: ProcessSummary | ProcessEvent,
        state: HostState,
        out: Result,
        samples: Samples | None = None,
        started_group: str | None = None,
    ) -> None:
        now = event.ts
        ctx = samples or Samples(event.host_id, event.region, now, 0.0, {}, event.labels)
        if samples is not None and state.schedules:
            names = {rule.name for rule in plan.schedules}
            for name in [n for n in state.schedules if n not in names]:
                self._retire_schedule(name, state, ctx, out)
        for rule in plan.schedules:
            if started_group is not None and rule.group != started_group:
                continue
            sst = state.schedules.get(rule.name)
            if sst is not None and sst.group and sst.group != rule.group:
                # same name, another process group: the old group's alert has another key and
                # would never be judged again; what was seen of the old group says nothing new
                self._retire_schedule(rule.name, state, ctx, out)
                sst = None
            if sst is None:
                if samples is None:
                    continue  # start observations only from a process summary
                sst = state.schedules[rule.name] = ScheduleState(watching_since=now, group=rule.group)
                out.changed = True
            running = started_group is not None or ctx.values.get(f"{PROC_COUNT}:{rule.group}", 0.0) > 0
            if running and sst.last_run < now:
                sst.last_run = now
                out.changed = True
            window_start = cron.last_start(rule.cron, rule.timezone, now)
            if now < window_start + rule.within_s:
                # inside a window: judge the one before it (unless already seen since)
                window_start = cron.last_start(rule.cron, rule.timezone, window_start - 1)
            missed = sst.watching_since <= window_start and sst.last_run < window_start
            bound = Threshold("min", 1.0, rule.severity, 1.0)
            key = f"{PROC_COUNT}:{rule.group}"
            fp = short_hash(rule.name, event.host_id, key)
            crossed = bound if missed else None
            if crossed is None and sst.missed.idle:
                continue
            if self.announced is not None:
                sync(sst.missed, self.announced(fp))
            labels = self._labels(rule.name, rule.kind, rule.labels, ctx, key, bound)
            suppressed = missed and self.suppressor.reason(labels, now, fp) is not None
            notice = advance(sst.missed, crossed, 0.0 if missed else 1.0, now, 0.0, rule.notify, suppressed)
            out.changed = True
            if notice is not None:
                out.alerts.append(self._alert(rule.name, rule.kind, rule.notify, fp, key, notice, ctx, labels))

    # --- alerts ----------------------------------------------------------------------------

    @staticmethod
    def _labels(
        rule: str,
        kind: str,
        rule_labels: Iterable[tuple[str, str]],
        samples: Samples,
        key: str,
        sev: Threshold | AlertState,
    ) -> dict[str, str]:
        severity = sev.severity if isinstance(sev, Threshold) else (sev.severity or sev.announced)
        return alert_labels(
            samples.labels,
            rule_labels,
            rule=rule,
            kind=kind,
            severity=severity,
            host_id=samples.host_id,
            region=samples.region,
            metric=key,
        )

    def _alert(
        self,
        rule: str,
        kind: str,
        notify: Notify,
        fp: str,
        key: str,
        notice: Notice,
        samples: Samples,
        labels: dict[str, str],
    ) -> Alert:
        alert = to_alert(Subject(rule, kind, notify, fp, samples.host_id, samples.region, key), notice, labels)
        self.suppressor.note_firing(fp, labels if notice.state == "firing" else None)
        return alert
