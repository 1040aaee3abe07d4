"""A run's ground truth: the faults at absolute times, the hosts really down, and the alerts
each fault owes (:func:`ground_truth`), written as JSON for :mod:`fleetpulse.sim.score`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fleetpulse.sim.faults import Fault
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
    Each rule is its fault kind's ``owe`` (:mod:`fleetpulse.sim.faults`).
    """
    sc = scenario
    run = TruthRun.of(sc, start)
    for i, f in enumerate(sc.faults):
        run.faults.append(_fault_window(run, i, f))
        f.type.owe(run, i, f)
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
class Blanket:
    """A fault whose alert covers its hosts' silence: an ingest outage, a partition of a group."""

    fault: Fault
    covered_by: str  # Down.covered_by
    hosts: frozenset[str]


@dataclass
class TruthRun:
    """What the fault kinds' ``owe`` share, and what they add to (times are from the start)."""

    sc: Scenario
    start: float
    hosts: dict[str, SimHost]
    page_after: dict[str, float]  # host -> how long after its last beat it may be paged
    timeout: float
    slack: float
    blankets: list[Blanket]
    alone: list[tuple[Fault, frozenset[str]]]  # partitions that cut hosts without their group
    groups: dict[str, set[str]]  # "label=value" -> its hosts, for the labels the down-checker correlates by
    faults: list[FaultWindow] = field(default_factory=list)
    downs: list[Down] = field(default_factory=list)
    expectations: list[Expectation] = field(default_factory=list)

    @classmethod
    def of(cls, sc: Scenario, start: float) -> TruthRun:
        """The shared state of ``sc``'s truth, every fault's blanket registered."""
        page_after = _page_after(sc)
        timeout = max(page_after.values(), default=sc.timeout_s)
        groups: dict[str, set[str]] = {}
        for host in sc.hosts:
            for key in sc.group_keys(host):
                groups.setdefault(key, set()).add(host.host_id)
        run = cls(sc, start, {h.host_id: h for h in sc.hosts}, page_after, timeout, 0.0, [], [], groups)
        run.slack = timeout + 2 * sc.longest_interval_s
        for f in sc.faults:
            f.type.blanket(run, f)
        return run

    def end(self, f: Fault) -> float:
        return f.end_s(self.sc.duration_s)

    def add_blanket(self, f: Fault, covered_by: str, hosts: frozenset[str]) -> None:
        """``f``'s alert covers the silence of ``hosts`` while it lasts."""
        self.blankets.append(Blanket(f, covered_by, hosts))

    def blanket_at(self, t: float, host_id: str) -> Blanket | None:
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

    def sole_region(self, hosts: Iterable[str]) -> str:
        """The region of ``hosts`` when they share one, else ``""``."""
        regions = {self.hosts[h].region for h in hosts}
        return next(iter(regions)) if len(regions) == 1 else ""

    def down(
        self, host_id: str, region: str, since_s: float, until_s: float | None, i: int, *, required: bool,
        covered_by: str,
    ) -> None:  # fmt: skip
        """A host really down from ``since_s`` (back at ``until_s``; None = still down at the end)."""
        until = None if until_s is None else self.start + until_s
        down = Down(host_id, region, self.start + since_s, until, i, required=required, covered_by=covered_by)
        self.downs.append(down)

    def expect(self, kind: str, i: int, f: Fault, min_count: int, max_count: int, **more: Any) -> None:
        """An expectation from the fault's start to its end plus the slack."""
        self.expect_between(kind, i, f.at_s, self.end(f), min_count, max_count, **more)

    def expect_between(
        self, kind: str, i: int, from_s: float, to_s: float, min_count: int, max_count: int, **more: Any
    ) -> None:
        """An expectation from ``from_s`` to ``to_s`` plus the slack."""
        window = (self.start + from_s, self.start + to_s + self.slack)
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


def _fault_window(run: TruthRun, i: int, f: Fault) -> FaultWindow:
    kind = f.type
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
    return FaultWindow(
        i,
        f.kind,
        run.start + f.at_s,
        None if kind.open_ended(f) else run.start + run.end(f),
        f.line,
        [] if kind.names_region(f) else list(f.hosts),
        f.region,
        f.spool,
        details,
        group=f.group,
    )
