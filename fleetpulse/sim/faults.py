"""The fault kinds a scenario may name: one class per kind, and the resolved :class:`Fault` record.

A scenario's ``faults`` are mappings like ``{at: 30, reboot: {region: r2, count: 1},
downtime: 2}``: the kind's key (``reboot``) says what it hits, its options (``downtime``) how.
Each kind is a :class:`FaultKind` holding the three things the simulator needs to know of it:

* :meth:`FaultKind.parse`: read and validate its mapping (a :class:`FaultSpec`) into a
  :class:`Fault`, raising :class:`~collector.problems.Problem` with the line at fault;
* :meth:`FaultKind.apply`: its effect on the timeline (each hit host's
  :class:`~fleetpulse.sim.timeline.HostPlan`: when the agent is down, when its path is cut,
  its clock skewed or its delivery slow);
* :meth:`FaultKind.owe`: the alerts it owes, or allows, in the ground truth (added to a
  :class:`~fleetpulse.sim.truth.TruthRun`), and :meth:`FaultKind.blanket` when its alert
  covers its hosts' silence (an ingest outage, a partition of a group).

How a fault kind plugs in: write a subclass with its ``key`` (the scenario key) and
``options`` (the keys it accepts besides ``at`` and its own), override what differs from the
defaults (parse, apply, owe; end, dump and the judge's hints when they differ), and add an
instance to :data:`KINDS`. The registry's order is the order error messages list the kinds in.
:class:`Fault` is one record for every kind (fields a kind does not use keep their defaults),
so scenarios compare equal whatever wrote them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from collector.problems import Problem
from fleetpulse.sim.parsing import INF, parse_flag, parse_seconds, select_hosts
from policies.yaml_lines import LineMapping

if TYPE_CHECKING:
    from fleetpulse.sim.scenario import Scenario, SimHost
    from fleetpulse.sim.timeline import Timeline
    from fleetpulse.sim.truth import TruthRun

KindName = Literal["crash", "reboot", "partition", "ingest_outage", "flap", "clock_skew", "slow", "restart"]


@dataclass(frozen=True)
class Fault:
    """One timed fault, hosts already resolved; times are seconds from the scenario's start."""

    kind: KindName
    at_s: float
    line: int = field(default=0, compare=False)  # where it was written, not what it is
    hosts: tuple[str, ...] = ()  # partition: the cut hosts, whatever selected them
    region: str = ""
    for_s: float | None = None  # None: until the end of the run (skew, slow)
    until_s: float | None = None  # crash: back (new boot id) at this time; None = stays down
    downtime_s: float = 0.0  # reboot, restart
    spool: bool = True  # partition, ingest outage, flap: held beats delivered at heal
    down_s: float = 0.0  # flap: link down this long ...
    up_s: float = 0.0  # ... then up this long, repeated for for_s
    offset_s: float = 0.0  # clock skew added to sent_at / ts / at
    delay_s: float = 0.0  # slow: every record this much later
    jitter_s: float = 0.0  # slow: plus uniform [0, jitter)
    burst_s: float = 0.0  # slow: held and released every burst_s (bursty delivery)
    group: str = ""  # partition: "region=r2", "zone=r1-z2", "rack=r1-z2-r1"; "" = a host subset

    @property
    def type(self) -> FaultKind:
        """The kind's behaviour (parsing, timeline effect, owed alerts)."""
        return KINDS[self.kind]

    def end_s(self, duration_s: float) -> float:
        """When the fault is over (a crash without ``until`` lasts to the end of the run)."""
        return self.type.end_s(self, duration_s)


def cut_hosts(scenario: Scenario, fault: Fault) -> tuple[str, ...]:
    """The hosts whose path a partition or ingest outage cuts (every host for an outage)."""
    return fault.type.cut_hosts(scenario, fault)


# -- parsing ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FaultSpec:
    """One fault's mapping as written, read against its scenario (``base``: kind, at, line)."""

    raw: LineMapping
    kind: KindName
    sc: Scenario
    index: int
    used: set[str]  # hosts picked by earlier faults; a {region, count} selection avoids them
    base: Fault

    @property
    def value(self) -> Any:
        """What the kind's key says (the hosts, region or group it hits)."""
        return self.raw[self.kind]

    @property
    def line(self) -> int:
        return self.raw.line_of(self.kind)

    def num(self, key: str, default: float | None = None, positive: bool = False) -> float:
        """Option ``key`` in seconds; required when there is no ``default``."""
        if key not in self.raw:
            if default is None:
                raise Problem(self.raw.line, f"{self.kind}: '{key}' is required")
            return default
        return parse_seconds(self.raw[key], self.raw.line_of(key), key, positive=positive)

    def flag(self, key: str, default: bool) -> bool:
        return parse_flag(self.raw.get(key, default), self.raw.line_of(key), key)

    def hosts(self) -> tuple[str, ...]:
        """The hosts named or selected by the kind's key (see :func:`~fleetpulse.sim.parsing.select_hosts`)."""
        return select_hosts(self.value, self.line, self.kind, self.index, self.sc, self.used)


def read_fault(raw: Any, index: int, sc: Scenario, used: set[str], faults_line: int) -> Fault:
    """The ``index``-th entry of a scenario's ``faults``, validated and its hosts resolved."""
    if not isinstance(raw, LineMapping):
        raise Problem(faults_line, f"fault #{index + 1} must be a mapping like {{at: 10, crash: [host]}}")
    kinds = [k for k in raw if k in KINDS]
    if len(kinds) != 1:
        raise Problem(raw.line, f"a fault names exactly one kind of: {', '.join(KINDS)}")
    kind = KINDS[kinds[0]]
    allowed = {"at", kind.key} | kind.options
    for key in raw:
        if key not in allowed:
            allowed_keys = ", ".join(sorted(allowed))
            raise Problem(raw.line_of(key), f"unknown key {key!r} for {kind.key} (allowed: {allowed_keys})")
    if "at" not in raw:
        raise Problem(raw.line, f"{kind.key}: 'at' (seconds from the start) is required")
    at = parse_seconds(raw["at"], raw.line_of("at"), "at")
    if at >= sc.duration_s:
        raise Problem(raw.line_of("at"), f"{kind.key} at {at:g}s is not within the run's duration {sc.duration_s:g}s")
    return kind.parse(FaultSpec(raw, kind.key, sc, index, used, Fault(kind=kind.key, at_s=at, line=raw.line)))


def dump_fault(f: Fault) -> dict[str, Any]:
    """A fault as a scenario mapping that :func:`read_fault` reads back as an equal fault."""
    kind = f.type
    out: dict[str, Any] = {"at": f.at_s, f.kind: kind.dump_target(f), **kind.dump_options(f)}
    if f.for_s is not None:
        out["for"] = f.for_s
    if kind.spools:
        out["spool"] = f.spool
    return out


# -- the kinds ----------------------------------------------------------------------------------


class FaultKind:
    """What one kind of fault is: how it is written, what it does, what it owes.

    The defaults fit a fault over ``hosts`` lasting ``for`` seconds (to the end without it)
    that owes nothing; a kind overrides what differs.
    """

    key: ClassVar[KindName]
    options: ClassVar[frozenset[str]] = frozenset()  # keys besides "at" and the kind's own
    spools: ClassVar[bool] = False  # it holds beats back: "spool" is one of its options
    in_suite: ClassVar[bool] = True  # the shipped suite plays one of it
    silences: ClassVar[bool] = False  # it can silence hosts (a cause the judge weighs for blanket alerts)

    def parse(self, f: FaultSpec) -> Fault:
        """Read the kind's mapping; raise :class:`Problem` for what is wrong."""
        return replace(f.base, hosts=f.hosts())

    def end_s(self, f: Fault, duration_s: float) -> float:
        return f.at_s + f.for_s if f.for_s is not None else duration_s

    def open_ended(self, f: Fault) -> bool:
        """The fault lasts to the run's end (the truth gives it no end)."""
        return False

    def names_region(self, f: Fault) -> bool:
        """The truth names the fault by its region, not its hosts (a region can be thousands)."""
        return f.group.startswith("region=")

    def cut_hosts(self, sc: Scenario, f: Fault) -> tuple[str, ...]:
        return f.hosts

    def splits(self, f: Fault) -> bool:
        """Its hosts were chosen by no label: it may hit several groups, one silence each (the judge)."""
        return False

    def apply(self, f: Fault, timeline: Timeline) -> None:
        """Shape the timeline's host plans."""

    def blanket(self, run: TruthRun, f: Fault) -> None:
        """Register, before any fault owes, how the fault's own alert covers its hosts' silence."""

    def owe(self, run: TruthRun, i: int, f: Fault) -> None:
        """Add the alerts fault #``i`` owes or allows (and the hosts it really stops) to ``run``."""

    def dump_target(self, f: Fault) -> Any:
        """What the kind's key says when written back: its hosts, region or group."""
        return list(f.hosts)

    def dump_options(self, f: Fault) -> dict[str, Any]:
        """The kind's own options when written back (``for`` and ``spool`` are written for all)."""
        return {}


def _stop(timeline: Timeline, f: Fault, end: float, *, host_down: bool) -> None:
    """The hosts' agents stop from ``at`` to ``end``; ``host_down``: the host too, back with a new boot."""
    for h in f.hosts:
        plan = timeline.plans[h]
        plan.downs.append((f.at_s, end))
        if host_down:
            plan.host_downs.append((f.at_s, end))
            plan.boots.append(end)


class Crash(FaultKind):
    """Hosts die at ``at``; with ``until`` they come back then with a new boot id."""

    key = "crash"
    options = frozenset({"until"})
    silences = True

    def parse(self, f: FaultSpec) -> Fault:
        fault = replace(f.base, hosts=f.hosts())
        until = f.num("until", INF)
        if until <= fault.at_s:
            raise Problem(f.raw.line_of("until"), f"crash: 'until' ({until:g}) must be after 'at' ({fault.at_s:g})")
        return replace(fault, until_s=None if until == INF else until)

    def end_s(self, f: Fault, duration_s: float) -> float:
        return f.until_s if f.until_s is not None else duration_s

    def dump_options(self, f: Fault) -> dict[str, Any]:
        return {} if f.until_s is None else {"until": f.until_s}

    def open_ended(self, f: Fault) -> bool:
        return f.until_s is None

    def splits(self, f: Fault) -> bool:
        return True

    def apply(self, f: Fault, timeline: Timeline) -> None:
        _stop(timeline, f, INF if f.until_s is None else f.end_s(timeline.scenario.duration_s), host_down=True)

    def owe(self, run: TruthRun, i: int, f: Fault) -> None:
        """A real down per host (``host_down`` required when it lasts past the timeout, and is
        visible), and a ``host_rebooted`` when it comes back."""
        for h in f.hosts:
            self._owe_host(run, i, f, run.hosts[h])

    def _owe_host(self, run: TruthRun, i: int, f: Fault, host: SimHost) -> None:
        h, sc = host.host_id, run.sc
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
        run.down(
            h,
            host.region,
            f.at_s,
            f.until_s,
            i,
            required=required and not run.cut_alone_at(f.at_s, h),
            covered_by="" if blanket is None else blanket.covered_by,
        )
        if f.until_s is not None:
            # The return is seen when the host's beats arrive: after the blanket, if any.
            seen_at = max(f.until_s, blanket_end) if blanket is not None else f.until_s
            run.expect_between(
                "host_rebooted",
                i,
                f.until_s,
                seen_at,
                0,
                1,
                host_id=h,
                region=host.region,
                note="back from a crash with a new boot id",
            )


class _Downtime(FaultKind):
    """A stop of ``downtime`` seconds: a reboot or an agent restart."""

    options = frozenset({"downtime"})
    silences = True

    def parse(self, f: FaultSpec) -> Fault:
        return replace(f.base, hosts=f.hosts(), downtime_s=f.num("downtime", positive=True))

    def end_s(self, f: Fault, duration_s: float) -> float:
        return f.at_s + f.downtime_s

    def splits(self, f: Fault) -> bool:
        return True

    def dump_options(self, f: Fault) -> dict[str, Any]:
        return {"downtime": f.downtime_s}

    def may_look_down(self, run: TruthRun, f: Fault, host: SimHost) -> bool:
        """Beats keep their phase across a reboot or restart, so the gap between the last beat
        before it and the first after is up to downtime + 2 intervals (+ jitter); a page needs the
        gap to pass the silence (missed intervals) plus the grace."""
        return f.downtime_s + 2 * host.interval_s + run.sc.jitter_s > run.page_after[host.host_id]


class Reboot(_Downtime):
    """Hosts go down for ``downtime`` and come back with a new boot id."""

    key = "reboot"

    def apply(self, f: Fault, timeline: Timeline) -> None:
        _stop(timeline, f, f.end_s(timeline.scenario.duration_s), host_down=True)

    def owe(self, run: TruthRun, i: int, f: Fault) -> None:
        """One ``host_rebooted`` per host; a ``host_down`` first is allowed when the downtime
        reaches the silence timeout."""
        for h in f.hosts:
            host = run.hosts[h]
            allowed = self.may_look_down(run, f, host)
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


class Restart(_Downtime):
    """The agent only stops for ``downtime``: same boot id, its sequence goes on."""

    key = "restart"
    in_suite = False

    def apply(self, f: Fault, timeline: Timeline) -> None:
        _stop(timeline, f, f.end_s(timeline.scenario.duration_s), host_down=False)

    def owe(self, run: TruthRun, i: int, f: Fault) -> None:
        """Nothing owed; a ``host_down`` is allowed when the downtime reaches the silence timeout."""
        for h in f.hosts:
            host = run.hosts[h]
            allowed = self.may_look_down(run, f, host)
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


def _cut(f: Fault, timeline: Timeline) -> None:
    """The fault's cut hosts lose their path from ``at`` to its end (held beats spooled or lost)."""
    end = f.end_s(timeline.scenario.duration_s)
    cut = set(cut_hosts(timeline.scenario, f))
    for plan in timeline.plans.values():
        if plan.host.host_id in cut:
            plan.cuts.append((f.at_s, end, f.spool))


class Partition(FaultKind):
    """The path of a region, a label group (``{zone: r1-z2}``) or some hosts is cut for ``for``."""

    key = "partition"
    options = frozenset({"for", "spool"})
    spools = True
    silences = True

    def parse(self, f: FaultSpec) -> Fault:
        spec = f.value
        if isinstance(spec, LineMapping) and len(spec) == 1 and "count" not in spec:
            ((label, value),) = spec.items()
            fault = self._group_cut(f, str(label), value, spec.line_of(str(label)))
        elif isinstance(spec, list | LineMapping):
            if isinstance(spec, LineMapping) and set(spec) - {"region", "count"}:
                raise Problem(
                    f.line,
                    "partition: give a region, a label group like {zone: r1-z2}, host ids or {region: R, count: N}",
                )
            fault = replace(f.base, hosts=f.hosts())
        else:
            fault = self._group_cut(f, "region", spec, f.line)
        return replace(fault, for_s=f.num("for", positive=True), spool=f.flag("spool", True))

    def _group_cut(self, f: FaultSpec, label: str, value: Any, line: int) -> Fault:
        """A partition of every host whose ``label`` is ``value`` (``region`` is the host's region)."""
        sc, value = f.sc, str(value)
        if label == "region":
            if value not in sc.regions:
                raise Problem(line, f"partition: unknown region {value!r} (regions: {', '.join(sc.regions)})")
            return replace(f.base, hosts=sc.group_host_ids(f"region={value}"), region=value, group=f"region={value}")
        known = sorted({h.label(label) for h in sc.hosts} - {""})
        if not known:
            names = ", ".join(["region", *sorted({k for h in sc.hosts for k, _ in h.label_pairs})])
            raise Problem(
                line,
                f"partition: no host has a label {label!r} (labels: {names}; zones and racks come from the"
                " top-level 'zones' and 'racks')",
            )
        if value not in known:
            shown = ", ".join(known[:8]) + (f", ... ({len(known)} in all)" if len(known) > 8 else "")
            raise Problem(line, f"partition: unknown {label} {value!r} ({label} values: {shown})")
        return replace(f.base, hosts=sc.group_host_ids(f"{label}={value}"), group=f"{label}={value}")

    def cut_hosts(self, sc: Scenario, f: Fault) -> tuple[str, ...]:
        if not f.hosts and f.region:  # a Fault made by hand
            return sc.group_host_ids(f"region={f.region}")
        return f.hosts

    def splits(self, f: Fault) -> bool:
        return not f.group

    def apply(self, f: Fault, timeline: Timeline) -> None:
        _cut(f, timeline)

    def dump_target(self, f: Fault) -> Any:
        if not f.group:
            return list(f.hosts)
        label, _, value = f.group.partition("=")
        return value if label == "region" else {label: value}

    def judged_group(self, run: TruthRun, f: Fault) -> str:
        """The group (``label=value``) whose alert the partition owes; ``""`` when none is owed.

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
        keys = run.sc.group_keys(run.hosts[f.hosts[0]])
        return min((key for key in keys if run.groups[key] == cut), default="")

    def blanket(self, run: TruthRun, f: Fault) -> None:
        cut = frozenset(cut_hosts(run.sc, f))
        if not self.judged_group(run, f):
            run.alone.append((f, cut))
        elif f.group.startswith("region=") or not f.group:
            run.add_blanket(f, f"partition {f.region}", cut)
        else:
            run.add_blanket(f, f"group {f.group}", cut)

    def owe(self, run: TruthRun, i: int, f: Fault) -> None:
        """One alert for the group it cuts when it outlasts the timeout (none below the group
        minimum); hosts cut without their group may each look down once."""
        sc = run.sc
        judged = self.judged_group(run, f)
        cut = cut_hosts(sc, f)
        if not judged:
            self._owe_alone(run, i, f, cut)
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
        region = run.sole_region(cut)
        if len(cut) < getattr(sc.downcheck, "min_group_hosts", 5):
            note = "group below min_group_hosts: nothing owed, at most one group_unknown; no host_down"
            run.expect("group_unknown", i, f, 0, 1, region=region, group=judged, note=note)
            return
        run.expect("group_unreachable", i, f, owed, 1, region=region, group=judged, note=note + "; no host_down")

    def _owe_alone(self, run: TruthRun, i: int, f: Fault, cut: tuple[str, ...]) -> None:
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
        self._owe_shared_cut(run, i, f, cut)

    def _owe_shared_cut(self, run: TruthRun, i: int, f: Fault, cut: tuple[str, ...]) -> None:
        """Hosts cut without their group may still be enough of a group, stopped together, for the
        down-checker to call that group cut off: one alert per such group is allowed, none owed."""
        d, together = run.sc.downcheck, set(cut)
        for key in sorted({key for h in cut for key in run.sc.group_keys(run.hosts[h])}):
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
            kind = "group_unknown" if small else "group_unreachable"
            run.expect(kind, i, f, 0, 1, region=run.sole_region(members), group=key, note=note)


class IngestOutage(FaultKind):
    """Every producer's path to Kafka is cut for ``for`` (``ingest_outage: true``)."""

    key = "ingest_outage"
    options = frozenset({"for", "spool"})
    spools = True
    silences = True

    def parse(self, f: FaultSpec) -> Fault:
        if f.value is not True:
            raise Problem(f.line, "write 'ingest_outage: true' (it cuts every producer)")
        return replace(f.base, for_s=f.num("for", positive=True), spool=f.flag("spool", True))

    def cut_hosts(self, sc: Scenario, f: Fault) -> tuple[str, ...]:
        return tuple(h.host_id for h in sc.hosts)

    def apply(self, f: Fault, timeline: Timeline) -> None:
        _cut(f, timeline)

    def dump_target(self, f: Fault) -> Any:
        return True

    def blanket(self, run: TruthRun, f: Fault) -> None:
        run.add_blanket(f, "ingest_outage", frozenset(run.hosts))

    def owe(self, run: TruthRun, i: int, f: Fault) -> None:
        """One ``ingest_outage`` when it outlasts the timeout (else at most one); no ``host_down``."""
        owed = run.owed(f, tuple(run.hosts))
        note = "exactly one" if owed else "shorter than the timeout: at most one"
        run.expect("ingest_outage", i, f, owed, 1, region=f.region, note=note + "; no host_down")


class Flap(FaultKind):
    """The hosts' links go down ``down`` seconds, up ``up`` seconds, repeated for ``for``."""

    key = "flap"
    options = frozenset({"for", "down", "up", "spool"})
    spools = True
    silences = True

    def parse(self, f: FaultSpec) -> Fault:
        return replace(
            f.base,
            hosts=f.hosts(),
            for_s=f.num("for", positive=True),
            down_s=f.num("down", positive=True),
            up_s=f.num("up", positive=True),
            spool=f.flag("spool", True),
        )

    def splits(self, f: Fault) -> bool:
        return True

    def apply(self, f: Fault, timeline: Timeline) -> None:
        end = f.end_s(timeline.scenario.duration_s)
        t = f.at_s
        while t < end:
            for h in f.hosts:
                timeline.plans[h].cuts.append((t, min(t + f.down_s, end), f.spool))
            t += f.down_s + f.up_s

    def dump_options(self, f: Fault) -> dict[str, Any]:
        return {"down": f.down_s, "up": f.up_s}

    def owe(self, run: TruthRun, i: int, f: Fault) -> None:
        """At most one ``host_down`` per flap window per host (``host_flapping`` is fine)."""
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


class ClockSkew(FaultKind):
    """The hosts' clocks run ``offset`` seconds off (``sent_at``, ``ts``, ``at``); owes nothing."""

    key = "clock_skew"
    options = frozenset({"offset", "for"})

    def parse(self, f: FaultSpec) -> Fault:
        fault = replace(f.base, hosts=f.hosts())
        if "offset" not in f.raw:
            raise Problem(f.raw.line, "clock_skew: 'offset' (seconds, may be negative) is required")
        offset = f.raw["offset"]
        if isinstance(offset, bool) or not isinstance(offset, int | float) or not math.isfinite(offset):
            offset = parse_seconds(offset, f.raw.line_of("offset"), "offset")
        for_s = f.num("for", INF, positive=True) if "for" in f.raw else None
        return replace(fault, offset_s=float(offset), for_s=for_s)

    def open_ended(self, f: Fault) -> bool:
        return f.for_s is None

    def apply(self, f: Fault, timeline: Timeline) -> None:
        end = INF if f.for_s is None else f.end_s(timeline.scenario.duration_s)
        for h in f.hosts:
            timeline.plans[h].skews.append((f.at_s, end, f.offset_s))

    def dump_options(self, f: Fault) -> dict[str, Any]:
        return {"offset": f.offset_s}


class Slow(FaultKind):
    """Delivery from some hosts or a region is ``delay`` (+ ``jitter``) late, or held and
    released every ``burst`` seconds; it stays below a real silence, so it owes nothing."""

    key = "slow"
    options = frozenset({"delay", "jitter", "burst", "for"})

    def parse(self, f: FaultSpec) -> Fault:
        spec, sc = f.value, f.sc
        if not isinstance(spec, list | str) and not (isinstance(spec, LineMapping) and "count" in spec):
            if isinstance(spec, LineMapping) and set(spec) == {"region"}:
                spec = spec["region"]
            if str(spec) not in sc.regions:
                raise Problem(f.line, f"slow: give hosts or a region, unknown region {spec!r}")
            fault = replace(f.base, region=str(spec), hosts=sc.group_host_ids(f"region={spec}"))
        else:
            fault = replace(f.base, hosts=f.hosts())
        slow = replace(
            fault,
            delay_s=f.num("delay", 0.0),
            jitter_s=f.num("jitter", 0.0),
            burst_s=f.num("burst", 0.0),
            for_s=f.num("for", positive=True) if "for" in f.raw else None,
        )
        self._check_below_silence(f, slow)
        return slow

    def _check_below_silence(self, f: FaultSpec, slow: Fault) -> None:
        # A beat just before the slowdown arrives on time and the next one ``interval + worst``
        # later (plus the fleet's jitter): that gap must stay below ``missed`` intervals, or slow
        # delivery is a real silence.
        sc = f.sc
        worst = slow.delay_s + slow.jitter_s + slow.burst_s
        chosen = set(slow.hosts)
        interval = min((h.interval_s for h in sc.hosts if h.host_id in chosen), default=sc.interval_s)
        bound = (sc.downcheck.missed - 1) * interval - sc.jitter_s
        if worst <= 0:
            raise Problem(f.raw.line, "slow: give 'delay', 'jitter' and/or 'burst' (seconds)")
        if worst >= bound:
            raise Problem(
                f.raw.line,
                f"slow: delay + jitter + burst = {worst:g}s must stay below (missed - 1) x interval"
                f"{' - jitter' if sc.jitter_s else ''} = {bound:g}s, else the hosts really go silent",
            )

    def open_ended(self, f: Fault) -> bool:
        return f.for_s is None

    def names_region(self, f: Fault) -> bool:
        return super().names_region(f) or bool(f.region)

    def apply(self, f: Fault, timeline: Timeline) -> None:
        for h in f.hosts:
            timeline.plans[h].slows.append(f)

    def dump_target(self, f: Fault) -> Any:
        return {"region": f.region} if f.region else list(f.hosts)

    def dump_options(self, f: Fault) -> dict[str, Any]:
        return {k: v for k, v in {"delay": f.delay_s, "jitter": f.jitter_s, "burst": f.burst_s}.items() if v}


# The registry: scenario key -> its kind, in the order errors list them.
KINDS: dict[str, FaultKind] = {
    kind.key: kind
    for kind in (Crash(), Reboot(), Partition(), IngestOutage(), Flap(), ClockSkew(), Slow(), Restart())
}
# The fault kinds the shipped suite plays one of each (its timing has no room left for more) ...
FAULT_KINDS = tuple(key for key, kind in KINDS.items() if kind.in_suite)
# ... and every kind a scenario may name.
ALL_FAULT_KINDS = tuple(KINDS)
