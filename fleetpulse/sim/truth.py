"""A run's ground truth: the faults at absolute times, the hosts really down, and the alerts
each fault owes (:func:`ground_truth`), written as JSON for :mod:`fleetpulse.sim.score`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fleetpulse.sim.faults import Fault, cut_hosts
from fleetpulse.sim.scenario import Scenario, SimHost

# Expectation kinds that only allow a host_down (no alert of their own is owed).
ALLOWANCE_KINDS = ("restart", "partition_host")

@dataclass(frozen=True)
class FaultWindow:
    """A fault as it happened in one run, with absolute times (``end`` None = to the end)."""

    index: int
    kind: str
    at: float
    end: float | None
    line: int = 0
    hosts: list[str] = field(default_factory=list)
    region: str = ""
    spool: bool = True
    details: dict[str, float] = field(default_factory=dict)
    group: str = ""  # partition: "region=r2", "zone=r1-z2", ...; "" for a host subset


@dataclass(frozen=True)
class Down:
    """A host that really stopped: ``host_down`` is owed once it was silent for the timeout."""

    host_id: str
    region: str
    since: float
    until: float | None  # back (new boot id) at; None = still down at the end
    fault: int
    required: bool  # long enough that not paging it is a missed down
    # "partition r2" / "group zone=r1-z2" / "ingest_outage" when a blanket alert hides it at first
    covered_by: str = ""


@dataclass(frozen=True)
class Expectation:
    """Alerts a fault should cause: ``kind`` between ``min_count`` and ``max_count`` times in the window."""

    # region_unreachable, region_unknown, group_unreachable, group_unknown, ingest_outage,
    # host_rebooted, flap; and allowances only (ALLOWANCE_KINDS): restart, partition_host
    kind: str
    fault: int
    start: float
    end: float  # window in which such an alert counts for this fault (includes the slack)
    min_count: int
    max_count: int
    region: str = ""
    host_id: str = ""
    host_down_allowed: bool = False  # long reboot or restart, flap (one per flap window), a host cut alone
    note: str = ""
    group: str = ""  # group_unreachable / group_unknown: the "label=value" its alert names


@dataclass(frozen=True)
class Truth:
    """What really happened in a run, the scorer's reference; JSON via :meth:`to_json`."""

    scenario: str
    origin: str
    seed: int
    run_id: str
    start: float
    end: float
    interval_s: float
    timeout_s: float
    slack_s: float
    flap_window_s: float
    regions: list[str]
    host_count: int
    faults: list[FaultWindow]
    downs: list[Down]
    expectations: list[Expectation]
    stats: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``--truth`` file)."""
        return asdict(self)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Truth:
        """Inverse of :meth:`to_json`."""
        data = dict(body)
        data["faults"] = [FaultWindow(**f) for f in data.get("faults", [])]
        data["downs"] = [Down(**d) for d in data.get("downs", [])]
        data["expectations"] = [Expectation(**e) for e in data.get("expectations", [])]
        return cls(**data)


def load_truth(path: str | Path) -> Truth:
    """Read a truth file written by ``fleetpulse simulate --truth``."""
    return Truth.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


def write_truth(truth: Truth, path: str | Path) -> None:
    """Write a truth file atomically (a scorer may read it while the run goes on)."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(truth.to_json(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(target)


def ground_truth(scenario: Scenario, start: float, run_id: str = "") -> Truth:
    """The run's truth: faults at absolute times, the hosts really down, and the alerts each fault owes.

    * a crash is a real down from its ``at``: ``host_down`` is required when it lasts longer
      than the timeout, even inside a partition or an ingest outage (then after the blanket
      alert ends, or earlier through witnesses; without witnesses only a crash that outlasts
      the blanket by the timeout can be paged, so only such a one is required);
    * a partition of a region owes exactly one ``region_unreachable`` (``region_unknown`` when
      the region is smaller than ``min_region_hosts``) and an ingest outage one ``ingest_outage``,
      when they last longer than the timeout (else at most one); no ``host_down`` for their live
      hosts. A partition of another label group (zone, rack) owes one ``group_unreachable``
      naming it (``labels["group"]``) likewise; below ``min_group_hosts`` it owes nothing (at most
      one ``group_unknown``). Among correlated groups with exactly the cut hosts, the alert owed
      is the down-checker's pick: the smallest ``label=value`` key. A partition of a host subset
      (or of a label the down-checker does not correlate by) owes nothing: one ``host_down``
      per cut host is allowed, since alone they look down;
    * a reboot owes one ``host_rebooted``; a ``host_down`` first is *allowed* (not required)
      when the downtime plus two intervals (beats keep their phase) passes the timeout, since
      the host may really have been silent that long. An agent restart is the same without the
      ``host_rebooted`` (same boot id);
    * a flap allows at most one ``host_down`` per flap window per host, and ``host_flapping``;
    * clock skew and slow delivery owe nothing: any alert they cause is false.

    Timeouts are per host (its interval; with mixed intervals in a region, late x its own plus
    the region's longest, as the down-checker waits); ``timeout_s`` is the longest of them.
    """
    sc = scenario
    run = TruthRun.of(sc, start)
    for i, f in enumerate(sc.faults):
        run.faults.append(_fault_window(run, i, f))
        _TRUTH_OF[f.kind](run, i, f)
    return Truth(
        scenario=sc.name,
        origin=sc.origin,
        seed=sc.seed,
        run_id=run_id,
        start=start,
        end=start + sc.duration_s,
        interval_s=sc.interval_s,
        timeout_s=run.timeout,
        slack_s=run.slack,
        flap_window_s=sc.downcheck.flap_window_s,
        regions=list(sc.regions),
        host_count=len(sc.hosts),
        faults=run.faults,
        downs=run.downs,
        expectations=run.expectations,
    )


@dataclass
class _Blanket:
    """A fault whose alert covers its hosts' silence: an ingest outage, a partition of a group."""

    fault: Fault
    covered_by: str  # Down.covered_by
    hosts: frozenset[str]


@dataclass
class TruthRun:
    """What the per-fault truth helpers share, and what they add to."""

    sc: Scenario
    start: float
    hosts: dict[str, SimHost]
    page_after: dict[str, float]  # host -> how long after its last beat it may be paged
    timeout: float
    slack: float
    blankets: list[_Blanket]
    alone: list[tuple[Fault, frozenset[str]]]  # partitions that cut hosts without their group
    groups: dict[str, set[str]]  # "label=value" -> its hosts, for the labels the down-checker correlates by
    faults: list[FaultWindow] = field(default_factory=list)
    downs: list[Down] = field(default_factory=list)
    expectations: list[Expectation] = field(default_factory=list)

    @classmethod
    def of(cls, sc: Scenario, start: float) -> TruthRun:
        page_after = _page_after(sc)
        timeout = max(page_after.values(), default=sc.timeout_s)
        groups: dict[str, set[str]] = {}
        for host in sc.hosts:
            for key in group_keys(sc, host):
                groups.setdefault(key, set()).add(host.host_id)
        run = cls(sc, start, {h.host_id: h for h in sc.hosts}, page_after, timeout, 0.0, [], [], groups)
        run.slack = timeout + 2 * sc.longest_interval_s
        for f in sc.faults:
            if f.kind == "ingest_outage":
                run.blankets.append(_Blanket(f, "ingest_outage", frozenset(run.hosts)))
            elif f.kind == "partition":
                cut = frozenset(cut_hosts(sc, f))
                if not judged_group(run, f):
                    run.alone.append((f, cut))
                elif f.group.startswith("region=") or not f.group:
                    run.blankets.append(_Blanket(f, f"partition {f.region}", cut))
                else:
                    run.blankets.append(_Blanket(f, f"group {f.group}", cut))
        return run

    def end(self, f: Fault) -> float:
        return f.end_s(self.sc.duration_s)

    def blanket_at(self, t: float, host_id: str) -> _Blanket | None:
        """The first blanket over ``host_id`` in force at ``t``."""
        return next((b for b in self.blankets if b.fault.at_s <= t < self.end(b.fault) and host_id in b.hosts), None)

    def cut_alone_at(self, t: float, host_id: str) -> bool:
        """``host_id``'s path was cut without its group at ``t`` (it already looks down)."""
        return any(f.at_s <= t < self.end(f) and host_id in cut for f, cut in self.alone)

    def owed(self, f: Fault, hosts: frozenset[str] | tuple[str, ...]) -> int:
        """1 when a blanket over ``hosts`` lasts long enough that its alert is owed, else 0."""
        timeout = max((self.page_after[h] for h in hosts), default=self.timeout)
        interval = max((self.hosts[h].interval_s for h in hosts), default=self.sc.interval_s)
        return 1 if (f.for_s or 0.0) > timeout + interval else 0

    def expect(self, kind: str, i: int, f: Fault, min_count: int, max_count: int, **more: Any) -> None:
        """An expectation from the fault's start to its end plus the slack."""
        window = (self.start + f.at_s, self.start + self.end(f) + self.slack)
        self.expectations.append(Expectation(kind, i, *window, min_count, max_count, **more))


def _page_after(sc: Scenario) -> dict[str, float]:
    """Per host: how long after its last beat a silent host may be paged.

    ``missed x interval + grace``; a host whose region has hosts with longer intervals is judged
    only once those could be late too (``late x (interval + the region's longest)``).
    """
    d = sc.downcheck
    longest: dict[str, float] = {}
    for h in sc.hosts:
        longest[h.region] = max(longest.get(h.region, 0.0), h.interval_s)
    out = {}
    for h in sc.hosts:
        i, span = h.interval_s, longest[h.region]
        silent = d.missed * i if span == i else max(d.missed * i, d.late * (i + span))
        out[h.host_id] = silent + d.grace_s
    return out


def group_keys(sc: Scenario, host: SimHost) -> list[str]:
    """The ``label=value`` groups of ``host`` the down-checker correlates by."""
    labels = getattr(sc.downcheck, "correlate_by", ("region", "zone", "rack"))
    return [f"{label}={value}" for label in labels if (value := host.label(label))]


def judged_group(run: TruthRun, f: Fault) -> str:
    """The group (``label=value``) whose alert a partition owes; ``""`` when none is owed.

    A region partition owes its region's. For a label group: among the groups of the labels the
    down-checker correlates by whose members are exactly the cut hosts, the smallest key (the
    down-checker names the group explaining most hosts, the smallest on a tie, then by key); a
    host subset is no group.
    """
    if f.group.startswith("region=") or (not f.group and f.region and not f.hosts):
        return f"region={f.region}"
    if not f.group or not f.hosts:
        return ""
    cut = set(f.hosts)
    return min((key for key in group_keys(run.sc, run.hosts[f.hosts[0]]) if run.groups[key] == cut), default="")


def _fault_window(run: TruthRun, i: int, f: Fault) -> FaultWindow:
    open_ended = (f.kind == "crash" and f.until_s is None) or (f.for_s is None and f.kind in ("clock_skew", "slow"))
    details = {
        k: v
        for k, v in {
            "downtime_s": f.downtime_s,
            "down_s": f.down_s,
            "up_s": f.up_s,
            "offset_s": f.offset_s,
            "delay_s": f.delay_s,
            "jitter_s": f.jitter_s,
            "burst_s": f.burst_s,
            "for_s": f.for_s or 0.0,
        }.items()
        if v
    }
    # A whole region is named by its region (its hosts can be thousands); a zone or rack and a
    # subset list theirs.
    whole_region = f.group.startswith("region=") or (f.kind == "slow" and bool(f.region))
    return FaultWindow(
        i,
        f.kind,
        run.start + f.at_s,
        None if open_ended else run.start + run.end(f),
        f.line,
        [] if whole_region else list(f.hosts),
        f.region,
        f.spool,
        details,
        group=f.group,
    )


def _crash_truth(run: TruthRun, i: int, f: Fault) -> None:
    sc, start = run.sc, run.start
    for h in f.hosts:
        host = run.hosts[h]
        timeout, interval = run.page_after[h], host.interval_s
        blanket = run.blanket_at(f.at_s, h)
        blanket_end = run.end(blanket.fault) if blanket is not None else 0.0
        back = f.until_s if f.until_s is not None else sc.duration_s
        lasts = back - f.at_s
        # Under a blanket the down-checker sees the crash only through witnesses (peers that can
        # still reach the host) or, without them, once the blanket lifts and the host alone stays
        # silent: a crash over before that cannot be paged. A host already cut off alone looked
        # down before it crashed: its one host_down may come before the crash, so none is required.
        visible_from = f.at_s if blanket is None or sc.witnesses else blanket_end
        required = lasts > timeout + interval and back - visible_from > timeout + interval
        run.downs.append(
            Down(
                h,
                host.region,
                start + f.at_s,
                None if f.until_s is None else start + f.until_s,
                i,
                required=required and not run.cut_alone_at(f.at_s, h),
                covered_by="" if blanket is None else blanket.covered_by,
            )
        )
        if f.until_s is not None:
            # The return is seen when the host's beats arrive: after the blanket, if any.
            seen_at = max(f.until_s, blanket_end) if blanket is not None else f.until_s
            run.expectations.append(
                Expectation(
                    "host_rebooted",
                    i,
                    start + f.until_s,
                    start + seen_at + run.slack,
                    0,
                    1,
                    host_id=h,
                    region=host.region,
                    note="back from a crash with a new boot id",
                )
            )


def _may_look_down(run: TruthRun, f: Fault, host: SimHost) -> bool:
    """Beats keep their phase across a reboot or restart, so the gap between the last beat
    before it and the first after is up to downtime + 2 intervals (+ jitter); a page needs the
    gap to pass the silence (missed intervals) plus the grace."""
    return f.downtime_s + 2 * host.interval_s + run.sc.jitter_s > run.page_after[host.host_id]


def _reboot_truth(run: TruthRun, i: int, f: Fault) -> None:
    for h in f.hosts:
        host = run.hosts[h]
        allowed = _may_look_down(run, f, host)
        run.expect(
            "host_rebooted",
            i,
            f,
            1,
            1,
            host_id=h,
            region=host.region,
            host_down_allowed=allowed,
            note="downtime reaches the silence timeout: a host_down first is allowed, not required"
            if allowed
            else "short reboot: host_rebooted, no host_down",
        )


def _restart_truth(run: TruthRun, i: int, f: Fault) -> None:
    for h in f.hosts:
        host = run.hosts[h]
        allowed = _may_look_down(run, f, host)
        run.expect(
            "restart",
            i,
            f,
            0,
            1 if allowed else 0,
            host_id=h,
            region=host.region,
            host_down_allowed=allowed,
            note="agent restart (same boot id): a host_down is allowed, not required; no host_rebooted"
            if allowed
            else "short agent restart: nothing owed, no host_down, no host_rebooted",
        )


def _partition_truth(run: TruthRun, i: int, f: Fault) -> None:
    sc = run.sc
    judged = judged_group(run, f)
    cut = cut_hosts(sc, f)
    if not judged:
        for h in cut:
            run.expect(
                "partition_host",
                i,
                f,
                0,
                1,
                host_id=h,
                region=run.hosts[h].region,
                host_down_allowed=True,
                note="cut off without its group: it looks down, one host_down allowed",
            )
        _shared_cut_truth(run, i, f, cut)
        return
    owed = run.owed(f, cut)
    note = "exactly one" if owed else "shorter than the timeout: at most one"
    label, _, value = judged.partition("=")
    if label == "region":
        kind = "region_unreachable"
        if len(sc.region_hosts().get(value, ())) < sc.downcheck.min_region_hosts:
            kind, note = "region_unknown", note + " (region below min_region_hosts)"
        run.expect(kind, i, f, owed, 1, region=value, note=note + "; no host_down")
        return
    regions = {run.hosts[h].region for h in cut}
    region = next(iter(regions)) if len(regions) == 1 else ""
    if len(cut) < getattr(sc.downcheck, "min_group_hosts", 5):
        note = "group below min_group_hosts: nothing owed, at most one group_unknown; no host_down"
        run.expect("group_unknown", i, f, 0, 1, region=region, group=judged, note=note)
        return
    run.expect("group_unreachable", i, f, owed, 1, region=region, group=judged, note=note + "; no host_down")


def _shared_cut_truth(run: TruthRun, i: int, f: Fault, cut: tuple[str, ...]) -> None:
    """Hosts cut without their group may still be enough of a group, stopped together, for the
    down-checker to call that group cut off: one alert per such group is allowed, none owed."""
    d, together = run.sc.downcheck, set(cut)
    for key in sorted({key for h in cut for key in group_keys(run.sc, run.hosts[h])}):
        members = run.groups[key]
        stopped = len(members & together)
        label, _, value = key.partition("=")
        share = d.region_share if label == "region" else getattr(d, "group_share", 0.5)
        if stopped < 2 or stopped < share * len(members):
            continue
        note = f"{stopped} of the {len(members)} hosts of {key} cut together: it may be called cut off; none owed"
        if label == "region":
            small = len(members) < d.min_region_hosts
            run.expect("region_unknown" if small else "region_unreachable", i, f, 0, 1, region=value, note=note)
            continue
        small = len(members) < getattr(d, "min_group_hosts", 5)
        regions = {run.hosts[h].region for h in members}
        region = next(iter(regions)) if len(regions) == 1 else ""
        run.expect("group_unknown" if small else "group_unreachable", i, f, 0, 1, region=region, group=key, note=note)


def _ingest_truth(run: TruthRun, i: int, f: Fault) -> None:
    owed = run.owed(f, tuple(run.hosts))
    note = "exactly one" if owed else "shorter than the timeout: at most one"
    run.expect("ingest_outage", i, f, owed, 1, region=f.region, note=note + "; no host_down")


def _flap_truth(run: TruthRun, i: int, f: Fault) -> None:
    window = run.sc.downcheck.flap_window_s
    for h in f.hosts:
        run.expect(
            "flap",
            i,
            f,
            0,
            1,
            host_id=h,
            region=run.hosts[h].region,
            host_down_allowed=True,
            note=f"at most one host_down per {window:g}s flap window; host_flapping ok",
        )


def _no_truth(run: TruthRun, i: int, f: Fault) -> None:
    """Clock skew and slow delivery owe nothing: any alert they cause is false."""


_TRUTH_OF: dict[str, Callable[[TruthRun, int, Fault], None]] = {
    "crash": _crash_truth,
    "reboot": _reboot_truth,
    "restart": _restart_truth,
    "partition": _partition_truth,
    "ingest_outage": _ingest_truth,
    "flap": _flap_truth,
    "clock_skew": _no_truth,
    "slow": _no_truth,
}


