"""The fault kinds a scenario may name, and the resolved :class:`Fault` record.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from collector.problems import Problem
from fleetpulse.sim.parsing import INF, parse_seconds, select_hosts
from policies.yaml_lines import LineMapping

if TYPE_CHECKING:
    from fleetpulse.sim.scenario import Scenario

# The fault kinds the shipped suite plays one of each (its timing has no room left for more) ...
FAULT_KINDS = ("crash", "reboot", "partition", "ingest_outage", "flap", "clock_skew", "slow")
# ... and every kind a scenario may name.
ALL_FAULT_KINDS = (*FAULT_KINDS, "restart")
FaultKind = Literal["crash", "reboot", "partition", "ingest_outage", "flap", "clock_skew", "slow", "restart"]

_FAULT_KEYS: dict[str, set[str]] = {
    "crash": {"until"},
    "reboot": {"downtime"},
    "restart": {"downtime"},
    "partition": {"for", "spool"},
    "ingest_outage": {"for", "spool"},
    "flap": {"for", "down", "up", "spool"},
    "clock_skew": {"offset", "for"},
    "slow": {"delay", "jitter", "burst", "for"},
}


@dataclass(frozen=True)
class Fault:
    """One timed fault, hosts already resolved; times are seconds from the scenario's start."""

    kind: FaultKind
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

    def end_s(self, duration_s: float) -> float:
        """When the fault is over (a crash without ``until`` lasts to the end of the run)."""
        if self.kind == "crash":
            return self.until_s if self.until_s is not None else duration_s
        if self.kind in ("reboot", "restart"):
            return self.at_s + self.downtime_s
        return self.at_s + self.for_s if self.for_s is not None else duration_s



def read_fault(raw: Any, index: int, sc: Scenario, used: set[str], faults_line: int) -> Fault:
    if not isinstance(raw, LineMapping):
        raise Problem(faults_line, f"fault #{index + 1} must be a mapping like {{at: 10, crash: [host]}}")
    kinds = [k for k in raw if k in ALL_FAULT_KINDS]
    if len(kinds) != 1:
        raise Problem(raw.line, f"a fault names exactly one kind of: {', '.join(ALL_FAULT_KINDS)}")
    kind: FaultKind = kinds[0]  # type: ignore[assignment]  # checked against ALL_FAULT_KINDS above
    allowed = {"at", kind} | _FAULT_KEYS[kind]
    for key in raw:
        if key not in allowed:
            raise Problem(raw.line_of(key), f"unknown key {key!r} for {kind} (allowed: {', '.join(sorted(allowed))})")
    if "at" not in raw:
        raise Problem(raw.line, f"{kind}: 'at' (seconds from the start) is required")
    at = parse_seconds(raw["at"], raw.line_of("at"), "at")
    if at >= sc.duration_s:
        raise Problem(raw.line_of("at"), f"{kind} at {at:g}s is not within the run's duration {sc.duration_s:g}s")
    spec = FaultSpec(raw, kind, sc, index, used, Fault(kind=kind, at_s=at, line=raw.line))
    return _FAULT_READERS[kind](spec)


@dataclass(frozen=True, eq=False)
class FaultSpec:
    """One fault's mapping as written, read against its scenario (``base``: kind, at, line)."""

    raw: LineMapping
    kind: FaultKind
    sc: Scenario
    index: int
    used: set[str]
    base: Fault

    @property
    def value(self) -> Any:
        """What the kind's key says (the hosts, region or group it hits)."""
        return self.raw[self.kind]

    @property
    def line(self) -> int:
        return self.raw.line_of(self.kind)

    def num(self, key: str, default: float | None = None, positive: bool = False) -> float:
        if key not in self.raw:
            if default is None:
                raise Problem(self.raw.line, f"{self.kind}: '{key}' is required")
            return default
        return parse_seconds(self.raw[key], self.raw.line_of(key), key, positive=positive)

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise Problem(self.raw.line_of(key), f"'{key}' must be true or false, got {value!r}")
        return value

    def hosts(self) -> tuple[str, ...]:
        """The hosts named or selected by the kind's key (see :func:`select_hosts`)."""
        return select_hosts(self.value, self.line, self.kind, self.index, self.sc, self.used)


def _crash(f: FaultSpec) -> Fault:
    fault = replace(f.base, hosts=f.hosts())
    until = f.num("until", INF)
    if until <= fault.at_s:
        raise Problem(f.raw.line_of("until"), f"crash: 'until' ({until:g}) must be after 'at' ({fault.at_s:g})")
    return replace(fault, until_s=None if until == INF else until)


def _downtime(f: FaultSpec) -> Fault:
    """A reboot (back with a new boot id) or an agent restart (same boot, sequence goes on)."""
    return replace(f.base, hosts=f.hosts(), downtime_s=f.num("downtime", positive=True))


def _partition(f: FaultSpec) -> Fault:
    spec = f.value
    if isinstance(spec, LineMapping) and len(spec) == 1 and "count" not in spec:
        ((label, value),) = spec.items()
        fault = _group_cut(f, str(label), value, spec.line_of(str(label)))
    elif isinstance(spec, list | LineMapping):
        if isinstance(spec, LineMapping) and set(spec) - {"region", "count"}:
            raise Problem(
                f.line, "partition: give a region, a label group like {zone: r1-z2}, host ids or {region: R, count: N}"
            )
        fault = replace(f.base, hosts=f.hosts())
    else:
        fault = _group_cut(f, "region", spec, f.line)
    return replace(fault, for_s=f.num("for", positive=True), spool=f.flag("spool", True))


def _group_cut(f: FaultSpec, label: str, value: Any, line: int) -> Fault:
    """A partition of every host whose ``label`` is ``value`` (``region`` is the host's region)."""
    sc, value = f.sc, str(value)
    if label == "region":
        if value not in sc.regions:
            raise Problem(line, f"partition: unknown region {value!r} (regions: {', '.join(sc.regions)})")
        hosts = tuple(h.host_id for h in sc.hosts if h.region == value)
        return replace(f.base, hosts=hosts, region=value, group=f"region={value}")
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
    hosts = tuple(h.host_id for h in sc.hosts if h.label(label) == value)
    return replace(f.base, hosts=hosts, group=f"{label}={value}")


def _ingest_outage(f: FaultSpec) -> Fault:
    if f.value is not True:
        raise Problem(f.line, "write 'ingest_outage: true' (it cuts every producer)")
    return replace(f.base, for_s=f.num("for", positive=True), spool=f.flag("spool", True))


def _flap(f: FaultSpec) -> Fault:
    return replace(
        f.base,
        hosts=f.hosts(),
        for_s=f.num("for", positive=True),
        down_s=f.num("down", positive=True),
        up_s=f.num("up", positive=True),
        spool=f.flag("spool", True),
    )


def _clock_skew(f: FaultSpec) -> Fault:
    fault = replace(f.base, hosts=f.hosts())
    if "offset" not in f.raw:
        raise Problem(f.raw.line, "clock_skew: 'offset' (seconds, may be negative) is required")
    offset = f.raw["offset"]
    if isinstance(offset, bool) or not isinstance(offset, int | float) or not math.isfinite(offset):
        offset = parse_seconds(offset, f.raw.line_of("offset"), "offset")
    return replace(fault, offset_s=float(offset), for_s=f.num("for", INF, positive=True) if "for" in f.raw else None)


def _slow(f: FaultSpec) -> Fault:
    spec, sc = f.value, f.sc
    if not isinstance(spec, list | str) and not (isinstance(spec, LineMapping) and "count" in spec):
        if isinstance(spec, LineMapping) and set(spec) == {"region"}:
            spec = spec["region"]
        if str(spec) not in sc.regions:
            raise Problem(f.line, f"slow: give hosts or a region, unknown region {spec!r}")
        hosts = tuple(h.host_id for h in sc.hosts if h.region == str(spec))
        fault = replace(f.base, region=str(spec), hosts=hosts)
    else:
        fault = replace(f.base, hosts=f.hosts())
    slow = replace(
        fault,
        delay_s=f.num("delay", 0.0),
        jitter_s=f.num("jitter", 0.0),
        burst_s=f.num("burst", 0.0),
        for_s=f.num("for", positive=True) if "for" in f.raw else None,
    )
    worst = slow.delay_s + slow.jitter_s + slow.burst_s
    # A beat just before the slowdown arrives on time and the next one ``interval + worst`` later
    # (plus the fleet's jitter): that gap must stay below ``missed`` intervals, or slow delivery is
    # a real silence.
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
    return slow


_FAULT_READERS: dict[str, Callable[[FaultSpec], Fault]] = {
    "crash": _crash,
    "reboot": _downtime,
    "restart": _downtime,
    "partition": _partition,
    "ingest_outage": _ingest_outage,
    "flap": _flap,
    "clock_skew": _clock_skew,
    "slow": _slow,
}



def dump_fault(f: Fault) -> dict[str, Any]:
    out: dict[str, Any] = {"at": f.at_s, f.kind: _dump_target(f)}
    if f.kind == "crash" and f.until_s is not None:
        out["until"] = f.until_s
    elif f.kind in ("reboot", "restart"):
        out["downtime"] = f.downtime_s
    elif f.kind == "clock_skew":
        out["offset"] = f.offset_s
    elif f.kind == "flap":
        out.update({"down": f.down_s, "up": f.up_s})
    elif f.kind == "slow":
        out.update({k: v for k, v in {"delay": f.delay_s, "jitter": f.jitter_s, "burst": f.burst_s}.items() if v})
    if f.for_s is not None:
        out["for"] = f.for_s
    if f.kind in ("partition", "ingest_outage", "flap"):
        out["spool"] = f.spool
    return out


def _dump_target(f: Fault) -> Any:
    """What a fault's kind key says: its hosts, region or group."""
    if f.kind == "ingest_outage":
        return True
    if f.kind == "partition" and f.group:
        label, _, value = f.group.partition("=")
        return value if label == "region" else {label: value}
    if f.kind == "slow" and f.region:
        return {"region": f.region}
    return list(f.hosts)



def cut_hosts(scenario: Scenario, fault: Fault) -> tuple[str, ...]:
    """The hosts whose path a partition or ingest outage cuts (every host for an outage)."""
    if fault.kind == "ingest_outage":
        return tuple(h.host_id for h in scenario.hosts)
    if fault.kind == "partition" and not fault.hosts and fault.region:  # a Fault made by hand
        return tuple(h.host_id for h in scenario.hosts if h.region == fault.region)
    return fault.hosts


