"""Fleet simulator: virtual hosts, timed faults and the ground truth to score the down-checker by.

Three layers, so the interesting part is testable without Kafka:

* the *scenario* (:func:`load_scenario`): a YAML file of fleet size, interval and timed faults,
  validated with ``file:line: message`` errors;
* the *timeline* (:class:`Timeline`): pure and deterministic. For every host and interval it
  decides what the host emits (heartbeat, metric batch, witness reports) and when, if ever, that
  reaches Kafka (on time, delayed, held in a spool until a path heals, or lost);
* the *runner* (:func:`run_simulation`): plays the timeline in real time into Kafka and writes
  the run's ground truth (:func:`ground_truth`, absolute wall-clock times) for ``fleetpulse.score``.

Scenario format (times are seconds or durations like ``90s``, ``2m``; ``at`` is from the start)::

    name: suite
    seed: 7
    hosts: 60               # N virtual hosts, spread round-robin over the regions
    regions: 3              # a count (r1..rN) or a list of names
    zones: 2                # optional: zones per region (r1-z1, r1-z2), hosts round-robin over them;
                            #   a list gives their relative sizes: [3, 2] puts 3 of each 5 hosts in z1
    racks: 2                # optional (needs zones): racks per zone (r1-z1-r1, ...), round-robin
    interval: 1             # heartbeat interval (the nominal one)
    intervals: [1, 1, 5]    # optional: host with fleet index i beats every intervals[i % len]
    jitter: 0.2             # optional: each beat up to this much after its schedule
    duration: 120
    metrics: true           # a MetricBatch per host per interval (cpu_pct, mem_used_pct, load1)
    witnesses: 2            # each host probes K peers in other regions every interval
    downcheck: {missed: 3, grace: 1, flap_window: 300}   # what the worker runs (for the truth)
    faults:
      - {at: 10, crash: {count: 1}}                        # hosts: ids, an id, or {region, count}
      - {at: 20, crash: [r1-h003], until: 40}              # back with a new boot id
      - {at: 30, reboot: {region: r2, count: 1}, downtime: 2}
      - {at: 35, restart: [r1-h004], downtime: 8}          # the agent only: same boot id, seq goes on
      - {at: 40, partition: r2, for: 15, spool: true}      # spool: false = beats lost
      - {at: 45, partition: {zone: r1-z2}, for: 15}        # or {rack: r1-z2-r1}, {region: r3}
      - {at: 50, partition: {region: r3, count: 2}, for: 5}  # or [ids]: a subset, not a group
      - {at: 60, ingest_outage: true, for: 10, spool: true}
      - {at: 80, flap: {count: 1}, for: 30, down: 5, up: 5}
      - {at: 90, clock_skew: {count: 3}, offset: 120}      # optional for
      - {at: 95, slow: {region: r3}, delay: 0.5, jitter: 0.5, burst: 0, for: 15}

A ``{region, count}`` selection picks (seeded) hosts not used by an earlier fault, so faults
don't pile onto one host by accident (a partition of a label group uses no host up).

Hosts carry their ``zone``/``rack`` as heartbeat labels (with ``simulated: "true"``). Jitter is
bounded by ``(late - 1) x`` the smallest interval: a healthy host's beats then stay at most
``late x interval`` apart. :func:`dump_scenario` writes a scenario back as a file, every
selection made explicit.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from collector.contract import Heartbeat, MetricBatch, PeerProbe, Topics, encode
from collector.problems import Problem, ProblemsError
from policies.downcheck import DownCheckSettings
from policies.model import parse_duration
from policies.yaml_lines import LineMapping, load_lines

log = logging.getLogger(__name__)

SCENARIO_DIR = Path(__file__).with_name("scenarios")
AGENT_VERSION = "fleetpulse-sim/1"
# The fault kinds the shipped suite plays one of each (its timing has no room left for more) ...
FAULT_KINDS = ("crash", "reboot", "partition", "ingest_outage", "flap", "clock_skew", "slow")
# ... and every kind a scenario may name.
ALL_FAULT_KINDS = (*FAULT_KINDS, "restart")
FaultKind = Literal["crash", "reboot", "partition", "ingest_outage", "flap", "clock_skew", "slow", "restart"]
TopicKind = Literal["heartbeats", "metrics"]
INF = math.inf

_TOP_KEYS = {
    "name",
    "seed",
    "hosts",
    "regions",
    "zones",
    "racks",
    "interval",
    "intervals",
    "jitter",
    "duration",
    "metrics",
    "witnesses",
    "downcheck",
    "faults",
}
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
_DOWNCHECK_KEYS = {
    "missed": "missed",
    "late": "late",
    "grace": "grace_s",
    "flap_window": "flap_window_s",
    "region_share": "region_share",
    "min_region_hosts": "min_region_hosts",
    "ingest_share": "ingest_share",
    "group_share": "group_share",
    "min_group_hosts": "min_group_hosts",
    "correlate_by": "correlate_by",
}
# Expectation kinds that only allow a host_down (no alert of their own is owed).
ALLOWANCE_KINDS = ("restart", "partition_host")


class ScenarioError(ProblemsError):
    """Problems in a scenario file; ``problems`` holds ``file:line: message`` lines."""


# -- model ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimHost:
    """One virtual host; ``index`` is its position in the fleet (creation order).

    ``label_pairs`` are its topology labels (``zone``, ``rack``) as a tuple, so hosts stay
    hashable; read them as a mapping through :attr:`labels`.
    """

    host_id: str
    region: str
    index: int
    interval_s: float = 5.0
    label_pairs: tuple[tuple[str, str], ...] = ()

    @property
    def labels(self) -> Mapping[str, str]:
        """The host's topology labels (``zone``/``rack`` when the scenario has them)."""
        return MappingProxyType(dict(self.label_pairs))

    def label(self, name: str) -> str:
        """The value of label ``name`` (``region`` is the host's region), ``""`` when it has none."""
        return self.region if name == "region" else dict(self.label_pairs).get(name, "")


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


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: the fleet, its timing and the faults to inject."""

    name: str
    origin: str
    hosts: tuple[SimHost, ...]
    regions: tuple[str, ...]
    interval_s: float = 5.0
    duration_s: float = 120.0
    metrics: bool = True
    witnesses: int = 0
    seed: int = 0
    faults: tuple[Fault, ...] = ()
    downcheck: DownCheckSettings = field(default_factory=DownCheckSettings)
    zones: int = 0  # per region; 0 = no zone labels
    zone_weights: tuple[int, ...] = ()  # relative zone sizes; () = equal
    racks: int = 0  # per zone; 0 = no rack labels
    intervals: tuple[float, ...] = ()  # per host, by fleet index modulo; () = every host beats at interval_s
    jitter_s: float = 0.0  # each emission up to this much after its schedule

    @property
    def timeout_s(self) -> float:
        """How long after its last beat a silent host may be paged (missed intervals + grace)."""
        return self.downcheck.missed * self.interval_s + self.downcheck.grace_s

    @property
    def longest_interval_s(self) -> float:
        """The longest heartbeat interval of any host (the nominal one for an empty fleet)."""
        return max((h.interval_s for h in self.hosts), default=self.interval_s)

    def region_hosts(self) -> dict[str, list[SimHost]]:
        """Hosts per region, in fleet order."""
        out: dict[str, list[SimHost]] = {r: [] for r in self.regions}
        for host in self.hosts:
            out[host.region].append(host)
        return out

    def group_hosts(self, group: str) -> list[SimHost]:
        """The hosts of a ``label=value`` group (``region=r2``, ``zone=r1-z2``), in fleet order."""
        label, _, value = group.partition("=")
        return [h for h in self.hosts if h.label(label) == value]


def make_fleet(
    count: int,
    regions: tuple[str, ...],
    *,
    zones: int | tuple[int, ...] = 0,
    racks: int = 0,
    interval_s: float = 5.0,
    intervals: tuple[float, ...] = (),
) -> tuple[SimHost, ...]:
    """``count`` hosts round-robin over ``regions``, named ``<region>-h<NNN>`` within each region.

    A region's hosts go round-robin over its ``zones`` (``<region>-z<k>``) and a zone's over its
    ``racks`` (``<zone>-r<k>``); the host with fleet index i beats every ``intervals[i % len]``
    (``interval_s`` without ``intervals``). ``zones`` as a tuple gives the zones' relative sizes:
    ``(3, 2)`` deals each run of 5 hosts 3 to ``z1`` and 2 to ``z2``.
    """
    weights = zones if isinstance(zones, tuple) else (1,) * zones
    per_region = -(-count // max(1, len(regions)))
    width = max(3, len(str(per_region)))
    hosts = []
    for i in range(count):
        region, j = regions[i % len(regions)], i // len(regions)  # j: the host's place in its region
        hosts.append(
            SimHost(
                f"{region}-h{j + 1:0{width}d}",
                region,
                i,
                intervals[i % len(intervals)] if intervals else interval_s,
                _topology(region, j, weights, racks),
            )
        )
    return tuple(hosts)


def _topology(region: str, j: int, weights: tuple[int, ...], racks: int) -> tuple[tuple[str, str], ...]:
    """The zone/rack labels of the ``j``-th host of ``region`` (0-based), zones sized by ``weights``."""
    if not weights:
        return ()
    deal = [z for z, w in enumerate(weights) for _ in range(w)]  # one round of hosts over the zones
    z = deal[j % len(deal)]
    zone = f"{region}-z{z + 1}"
    if not racks:
        return (("zone", zone),)
    in_zone = j // len(deal) * weights[z] + deal[: j % len(deal)].count(z)  # the host's place in its zone
    return (("zone", zone), ("rack", f"{zone}-r{in_zone % racks + 1}"))


# -- YAML with line numbers -----------------------------------------------------------------


def _yaml_load(text: str, origin: str) -> Any:
    try:
        return load_lines(text)
    except Problem as problem:
        raise ScenarioError([problem.at(origin)]) from None


def _seconds(value: Any, line: int, key: str, *, positive: bool = False) -> float:
    try:
        seconds = parse_duration(value)
    except (ValueError, TypeError):
        raise Problem(line, f"'{key}' must be seconds or a duration like 30s, 2m; got {value!r}") from None
    if positive and seconds <= 0:
        raise Problem(line, f"'{key}' must be > 0, got {value!r}")
    return seconds


def _count(value: Any, line: int, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise Problem(line, f"'{key}' must be an integer >= {minimum}, got {value!r}")
    return value


# -- loading --------------------------------------------------------------------------------


def resolve_scenario_path(name: str | Path) -> Path:
    """A file path, or the name of a shipped scenario (``suite``, ``scale``)."""
    path = Path(name)
    if path.exists():
        return path
    shipped = SCENARIO_DIR / f"{path.stem}.yaml"
    if path.parent == Path(".") and shipped.exists():
        return shipped
    known = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml")))
    raise ScenarioError([f"{name}: no such file (shipped scenarios: {known})"])


def load_scenario(
    path: str | Path,
    *,
    hosts: int | None = None,
    regions: int | None = None,
    interval_s: float | None = None,
    duration_s: float | None = None,
) -> Scenario:
    """Load a scenario file (or a shipped scenario's name), with command-line overrides applied."""
    file = resolve_scenario_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([f"{file}: cannot read: {exc}"]) from None
    return load_scenario_text(
        text, str(file), hosts=hosts, regions=regions, interval_s=interval_s, duration_s=duration_s
    )


def load_scenario_text(
    text: str,
    origin: str = "<scenario>",
    *,
    hosts: int | None = None,
    regions: int | None = None,
    interval_s: float | None = None,
    duration_s: float | None = None,
) -> Scenario:
    """Parse and validate a scenario; raises :class:`ScenarioError` listing every problem found."""
    doc = _yaml_load(text, origin)
    if not isinstance(doc, LineMapping):
        raise ScenarioError([f"{origin}:1: a scenario is a mapping with keys {', '.join(sorted(_TOP_KEYS))}"])
    problems: list[str] = []

    def problem(line: int, message: str) -> None:
        problems.append(f"{origin}:{line}: {message}")

    for key in doc:
        if key not in _TOP_KEYS:
            problem(doc.line_of(key), f"unknown key {key!r} (expected one of {', '.join(sorted(_TOP_KEYS))})")
    base = Scenario(name=str(doc.get("name") or Path(origin).stem), origin=origin, hosts=(), regions=())
    try:
        region_spec = doc.get("regions", 1) if regions is None else regions
        if isinstance(region_spec, list):
            names = tuple(str(r) for r in region_spec)
            if not names or len(set(names)) != len(names) or not all(names):
                raise Problem(doc.line_of("regions"), "'regions' must be distinct non-empty names")
        else:
            names = tuple(f"r{i + 1}" for i in range(_count(region_spec, doc.line_of("regions"), "regions", 1)))
        host_count = _count(doc.get("hosts", 10) if hosts is None else hosts, doc.line_of("hosts"), "hosts", 1)
        interval = interval_s if interval_s is not None else doc.get("interval", 5)
        duration = duration_s if duration_s is not None else doc.get("duration", 120)
        seed = doc.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise Problem(doc.line_of("seed"), f"'seed' must be an integer, got {seed!r}")
        metrics = doc.get("metrics", True)
        if not isinstance(metrics, bool):
            raise Problem(doc.line_of("metrics"), f"'metrics' must be true or false, got {metrics!r}")
        witnesses = _count(doc.get("witnesses", 0), doc.line_of("witnesses"), "witnesses", 0)
        if witnesses and len(names) < 2:
            raise Problem(doc.line_of("witnesses"), "witnesses probe peers in other regions: give 2+ regions")
        base = replace(
            base,
            regions=names,
            interval_s=_seconds(interval, doc.line_of("interval"), "interval", positive=True),
            duration_s=_seconds(duration, doc.line_of("duration"), "duration", positive=True),
            metrics=metrics,
            witnesses=witnesses,
            seed=seed,
            downcheck=_downcheck(doc.get("downcheck"), doc.line_of("downcheck")),
        )
        base = _fleet(doc, base, host_count)
    except Problem as exc:
        problem(exc.line, exc.message)
        raise ScenarioError(problems) from None
    raw_faults = doc.get("faults") or []
    if not isinstance(raw_faults, list):
        problem(doc.line_of("faults"), "'faults' must be a list of {at: S, <kind>: ...} mappings")
        raw_faults = []
    faults: list[Fault] = []
    used: set[str] = set()
    for index, raw in enumerate(raw_faults):
        try:
            fault = _fault(raw, index, base, used, doc.line_of("faults"))
        except Problem as exc:
            problem(exc.line, exc.message)
            continue
        if not fault.group:  # a partition of a whole group picks no host: the group is the point
            used.update(fault.hosts)
        faults.append(fault)
    if problems:
        raise ScenarioError(problems)
    return replace(base, faults=tuple(faults))


def _fleet(doc: LineMapping, sc: Scenario, host_count: int) -> Scenario:
    """The fleet's topology, intervals and jitter (the regions, interval and downcheck are set)."""
    weights = _zone_weights(doc.get("zones", 0), doc.line_of("zones"))
    zones = len(weights)
    racks = _count(doc.get("racks", 0), doc.line_of("racks"), "racks", 0)
    if racks and not zones:
        raise Problem(doc.line_of("racks"), "'racks' are per zone: give 'zones' (zones per region) too")
    intervals: tuple[float, ...] = ()
    if "intervals" in doc:
        raw = doc["intervals"]
        line = doc.line_of("intervals")
        if not isinstance(raw, list) or not raw:
            raise Problem(line, f"'intervals' must be a non-empty list of seconds, like [1, 5], got {raw!r}")
        intervals = tuple(_seconds(v, line, "intervals", positive=True) for v in raw)
    hosts = make_fleet(
        host_count, sc.regions, zones=weights, racks=racks, interval_s=sc.interval_s, intervals=intervals
    )
    jitter = _seconds(doc.get("jitter", 0), doc.line_of("jitter"), "jitter")
    smallest = min(h.interval_s for h in hosts)
    bound = (sc.downcheck.late - 1) * smallest
    if jitter > bound:
        raise Problem(
            doc.line_of("jitter"),
            f"'jitter' {jitter:g}s must be at most (late - 1) x the smallest interval = {bound:g}s"
            f" (late {sc.downcheck.late:g}, interval {smallest:g}s): beyond it a healthy host's beats come"
            " more than late x interval apart and it looks late",
        )
    uneven = weights if len(set(weights)) > 1 else ()
    return replace(
        sc, hosts=hosts, zones=zones, zone_weights=uneven, racks=racks, intervals=intervals, jitter_s=jitter
    )


def _zone_weights(value: Any, line: int) -> tuple[int, ...]:
    """``zones: N`` (N equal zones) or ``zones: [3, 2]`` (zones of relative sizes) as weights."""
    if isinstance(value, list):
        if not value or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in value):
            raise Problem(
                line, f"'zones' as a list gives each zone's relative size (integers >= 1, like [3, 2]), got {value!r}"
            )
        return tuple(value)
    return (1,) * _count(value, line, "zones", 0)


def _downcheck(raw: Any, line: int) -> DownCheckSettings:
    if raw is None:
        return DownCheckSettings()
    if not isinstance(raw, LineMapping):
        raise Problem(line, f"'downcheck' must be a mapping of {', '.join(_DOWNCHECK_KEYS)}")
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        attr = _DOWNCHECK_KEYS.get(key)
        if attr is None:
            raise Problem(raw.line_of(key), f"unknown downcheck key {key!r} (expected {', '.join(_DOWNCHECK_KEYS)})")
        if attr in ("min_region_hosts", "min_group_hosts"):
            changes[attr] = _count(value, raw.line_of(key), key, 2)
        elif attr == "correlate_by":
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise Problem(
                    raw.line_of(key), f"'{key}' must be a list of label names like [region, zone], got {value!r}"
                )
            changes[attr] = tuple(value)
        elif attr.endswith("_s"):
            changes[attr] = _seconds(value, raw.line_of(key), key)
        else:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise Problem(raw.line_of(key), f"'{key}' must be a number, got {value!r}")
            changes[attr] = float(value)
    settings = replace(DownCheckSettings(), **changes)
    if settings.problems():
        raise Problem(line, "; ".join(settings.problems()))
    return settings


def _fault(raw: Any, index: int, sc: Scenario, used: set[str], faults_line: int) -> Fault:
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
    at = _seconds(raw["at"], raw.line_of("at"), "at")
    if at >= sc.duration_s:
        raise Problem(raw.line_of("at"), f"{kind} at {at:g}s is not within the run's duration {sc.duration_s:g}s")
    spec = _FaultSpec(raw, kind, sc, index, used, Fault(kind=kind, at_s=at, line=raw.line))
    return _FAULT_READERS[kind](spec)


@dataclass(frozen=True, eq=False)
class _FaultSpec:
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
        return _seconds(self.raw[key], self.raw.line_of(key), key, positive=positive)

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise Problem(self.raw.line_of(key), f"'{key}' must be true or false, got {value!r}")
        return value

    def hosts(self) -> tuple[str, ...]:
        """The hosts named or selected by the kind's key (see :func:`_select`)."""
        return _select(self.value, self.line, self.kind, self.index, self.sc, self.used)


def _crash(f: _FaultSpec) -> Fault:
    fault = replace(f.base, hosts=f.hosts())
    until = f.num("until", INF)
    if until <= fault.at_s:
        raise Problem(f.raw.line_of("until"), f"crash: 'until' ({until:g}) must be after 'at' ({fault.at_s:g})")
    return replace(fault, until_s=None if until == INF else until)


def _downtime(f: _FaultSpec) -> Fault:
    """A reboot (back with a new boot id) or an agent restart (same boot, sequence goes on)."""
    return replace(f.base, hosts=f.hosts(), downtime_s=f.num("downtime", positive=True))


def _partition(f: _FaultSpec) -> Fault:
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


def _group_cut(f: _FaultSpec, label: str, value: Any, line: int) -> Fault:
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


def _ingest_outage(f: _FaultSpec) -> Fault:
    if f.value is not True:
        raise Problem(f.line, "write 'ingest_outage: true' (it cuts every producer)")
    return replace(f.base, for_s=f.num("for", positive=True), spool=f.flag("spool", True))


def _flap(f: _FaultSpec) -> Fault:
    return replace(
        f.base,
        hosts=f.hosts(),
        for_s=f.num("for", positive=True),
        down_s=f.num("down", positive=True),
        up_s=f.num("up", positive=True),
        spool=f.flag("spool", True),
    )


def _clock_skew(f: _FaultSpec) -> Fault:
    fault = replace(f.base, hosts=f.hosts())
    if "offset" not in f.raw:
        raise Problem(f.raw.line, "clock_skew: 'offset' (seconds, may be negative) is required")
    offset = f.raw["offset"]
    if isinstance(offset, bool) or not isinstance(offset, int | float) or not math.isfinite(offset):
        offset = _seconds(offset, f.raw.line_of("offset"), "offset")
    return replace(fault, offset_s=float(offset), for_s=f.num("for", INF, positive=True) if "for" in f.raw else None)


def _slow(f: _FaultSpec) -> Fault:
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


_FAULT_READERS: dict[str, Callable[[_FaultSpec], Fault]] = {
    "crash": _crash,
    "reboot": _downtime,
    "restart": _downtime,
    "partition": _partition,
    "ingest_outage": _ingest_outage,
    "flap": _flap,
    "clock_skew": _clock_skew,
    "slow": _slow,
}


def _select(spec: Any, line: int, kind: str, index: int, sc: Scenario, used: set[str]) -> tuple[str, ...]:
    known = {h.host_id for h in sc.hosts}
    if isinstance(spec, str):
        spec = [spec]
    if isinstance(spec, list):
        ids = tuple(str(s) for s in spec)
        unknown = [h for h in ids if h not in known]
        if unknown:
            raise Problem(line, f"{kind}: unknown host(s) {', '.join(unknown)} (ids look like {sc.hosts[0].host_id})")
        if not ids:
            raise Problem(line, f"{kind}: no hosts given")
        return ids
    if not isinstance(spec, LineMapping) or set(spec) - {"region", "count"}:
        raise Problem(line, f"{kind}: hosts are a list of ids, an id, or {{region: R, count: N}}")
    region = spec.get("region")
    if region is not None and str(region) not in sc.regions:
        raise Problem(spec.line_of("region"), f"{kind}: unknown region {region!r} (regions: {', '.join(sc.regions)})")
    count = _count(spec.get("count", 1), spec.line_of("count"), "count", 1)
    pool = [h.host_id for h in sc.hosts if (region is None or h.region == str(region)) and h.host_id not in used]
    if len(pool) < count:
        where = f"region {region}" if region is not None else "the fleet"
        raise Problem(line, f"{kind}: wants {count} host(s) but {where} has {len(pool)} not used by earlier faults")
    return tuple(sorted(random.Random(f"{sc.seed}:{index}").sample(pool, count)))


# -- writing --------------------------------------------------------------------------------


def dump_scenario(scenario: Scenario) -> str:
    """A scenario file (YAML) that :func:`load_scenario_text` reads back as an equal scenario.

    Every selection is written out: faults that picked ``{region, count}`` hosts name them, so
    the file replays the same faults whatever picked them (a failing generated scenario, a
    scenario with command-line overrides applied). Partitions of a region or label group keep
    their group form. The downcheck settings are written in full.
    """
    import yaml

    sc = scenario
    doc: dict[str, Any] = {
        "name": sc.name,
        "seed": sc.seed,
        "hosts": len(sc.hosts),
        "regions": list(sc.regions),
        "interval": sc.interval_s,
        "duration": sc.duration_s,
        "metrics": sc.metrics,
        "witnesses": sc.witnesses,
    }
    if sc.zones:
        doc["zones"] = list(sc.zone_weights) if sc.zone_weights else sc.zones
    if sc.racks:
        doc["racks"] = sc.racks
    if sc.intervals:
        doc["intervals"] = list(sc.intervals)
    if sc.jitter_s:
        doc["jitter"] = sc.jitter_s
    doc["downcheck"] = {
        key: list(value) if isinstance(value, tuple) else value
        for key, attr in _DOWNCHECK_KEYS.items()
        if (value := getattr(sc.downcheck, attr, None)) is not None
    }
    doc["faults"] = [_dump_fault(f) for f in sc.faults]
    return yaml.safe_dump(doc, sort_keys=False)


def _dump_fault(f: Fault) -> dict[str, Any]:
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


# -- timeline -------------------------------------------------------------------------------


class Record(NamedTuple):
    """One record to produce: ``deliver_at``/``emitted_at`` are seconds since the run's start."""

    deliver_at: float
    emitted_at: float
    topic: TopicKind
    key: str
    event: Heartbeat | MetricBatch | PeerProbe


@dataclass
class TimelineStats:
    """What the timeline did; every emitted record is either delivered or dropped in the end."""

    emitted: int = 0
    delivered: int = 0
    dropped: int = 0
    spooled: int = 0  # delivered late because its path was cut
    delayed: int = 0  # delivered late by a ``slow`` fault
    heartbeats_emitted: int = 0
    heartbeats_delivered: int = 0
    heartbeats_dropped: int = 0

    @property
    def held(self) -> int:
        """Emitted but not yet delivered or dropped (in a spool or a delay)."""
        return self.emitted - self.delivered - self.dropped


@dataclass
class _Plan:
    host: SimHost
    phase: float
    rng: random.Random
    downs: list[tuple[float, float]] = field(default_factory=list)  # [start, end): the agent not running
    host_downs: list[tuple[float, float]] = field(default_factory=list)  # [start, end): the host itself down
    boots: list[float] = field(default_factory=list)  # when a new boot begins (a crash's return, a reboot's end)
    cuts: list[tuple[float, float, bool]] = field(default_factory=list)  # [start, end), spool
    slows: list[Fault] = field(default_factory=list)
    skews: list[tuple[float, float, float]] = field(default_factory=list)
    targets: tuple[str, ...] = ()
    boot: int = 0
    seq: int = 0
    last_delivery: float = 0.0
    base: tuple[float, float, float] = (0.0, 0.0, 0.0)  # cpu, mem, load levels
    jitter: random.Random | None = None  # its own stream, so the others draw as without jitter
    labels: dict[str, str] = field(default_factory=dict)  # what its heartbeats carry

    def alive(self, t: float) -> bool:
        """The agent runs (and sends) at ``t``."""
        return not any(s <= t < e for s, e in self.downs)

    def reachable(self, t: float) -> bool:
        """The host answers its peers at ``t`` (an agent restart leaves the host up)."""
        return not any(s <= t < e for s, e in self.host_downs)


def cut_hosts(scenario: Scenario, fault: Fault) -> tuple[str, ...]:
    """The hosts whose path a partition or ingest outage cuts (every host for an outage)."""
    if fault.kind == "ingest_outage":
        return tuple(h.host_id for h in scenario.hosts)
    if fault.kind == "partition" and not fault.hosts and fault.region:  # a Fault made by hand
        return tuple(h.host_id for h in scenario.hosts if h.region == fault.region)
    return fault.hosts


def witness_targets(scenario: Scenario) -> dict[str, tuple[str, ...]]:
    """Whom each host probes: ``witnesses`` peers in other regions, spread so each is watched ~K times."""
    if not scenario.witnesses:
        return {}
    by_region = scenario.region_hosts()
    regions = [r for r in scenario.regions if by_region[r]]
    out: dict[str, tuple[str, ...]] = {}
    for ri, region in enumerate(regions):
        others = [regions[(ri + 1 + d) % len(regions)] for d in range(len(regions) - 1)]
        for j, host in enumerate(by_region[region]):
            targets: list[str] = []
            for m in range(scenario.witnesses if others else 0):
                members = by_region[others[m % len(others)]]
                target = members[(j + m // len(others)) % len(members)].host_id
                if target not in targets:
                    targets.append(target)
            out[host.host_id] = tuple(targets)
    return out


class Timeline:
    """The pure, deterministic play of a scenario: :meth:`records` yields what to produce, in order.

    Event times are ``start + t`` (plus any clock skew); delivery times stay relative to the
    start so the same timeline can be played in real time or inspected instantly in tests.
    """

    def __init__(self, scenario: Scenario, start: float = 0.0, run_id: str = "") -> None:
        self.scenario = scenario
        self.start = start
        self.run_id = run_id
        self.stats = TimelineStats()
        rng = random.Random(scenario.seed)
        targets = witness_targets(scenario)
        self.plans: dict[str, _Plan] = {}
        for host in scenario.hosts:
            plan = _Plan(
                host,
                rng.random() * host.interval_s,
                random.Random(f"{scenario.seed}:{host.host_id}"),
                targets=targets.get(host.host_id, ()),
                base=(rng.uniform(5, 60), rng.uniform(20, 80), rng.uniform(0.1, 4)),
                jitter=random.Random(f"{scenario.seed}:{host.host_id}:jitter") if scenario.jitter_s else None,
                labels={"simulated": "true", **host.labels},
            )
            self.plans[host.host_id] = plan
        for fault in scenario.faults:
            self._apply(fault)

    def _apply(self, fault: Fault) -> None:
        end = fault.end_s(self.scenario.duration_s)
        if fault.kind in ("crash", "reboot"):
            end = INF if fault.kind == "crash" and fault.until_s is None else end
            for h in fault.hosts:
                plan = self.plans[h]
                plan.downs.append((fault.at_s, end))
                plan.host_downs.append((fault.at_s, end))
                plan.boots.append(end)
        elif fault.kind == "restart":
            for h in fault.hosts:
                self.plans[h].downs.append((fault.at_s, end))
        elif fault.kind in ("partition", "ingest_outage"):
            cut = set(cut_hosts(self.scenario, fault))
            for plan in self.plans.values():
                if plan.host.host_id in cut:
                    plan.cuts.append((fault.at_s, end, fault.spool))
        elif fault.kind == "flap":
            t = fault.at_s
            while t < end:
                for h in fault.hosts:
                    self.plans[h].cuts.append((t, min(t + fault.down_s, end), fault.spool))
                t += fault.down_s + fault.up_s
        elif fault.kind == "clock_skew":
            for h in fault.hosts:
                self.plans[h].skews.append((fault.at_s, INF if fault.for_s is None else end, fault.offset_s))
        else:
            for h in fault.hosts:
                self.plans[h].slows.append(fault)

    def boot_id(self, host_id: str, boot: int) -> str:
        """The boot id of a host's ``boot``-th life (0 = first); the run id keeps reruns apart."""
        return f"{self.run_id or 'sim'}-{self.scenario.seed}-{host_id}-b{boot}"

    def delivery(self, plan: _Plan, t: float, records: int = 1) -> float | None:
        """When ``records`` emitted together at ``t`` reach Kafka, or None when they are lost."""
        cut_now = [c for c in plan.cuts if c[0] <= t < c[1]]
        if any(not spool for _, _, spool in cut_now):
            return None
        at = t
        if cut_now:
            # The spool drains when the path is back and the agent runs to send it; a host
            # that never comes back takes its spool with it.
            moved = True
            while moved and at < INF:
                moved = False
                for s, e, _ in plan.cuts:
                    if s <= at < e:
                        at, moved = e, True
                for s, e in plan.downs:
                    if s <= at < e:
                        at, moved = e, True
            if at == INF:
                return None
            self.stats.spooled += records
        else:
            for slow in plan.slows:
                end = slow.end_s(self.scenario.duration_s)
                if slow.at_s <= t < end:
                    if slow.burst_s:
                        at = slow.at_s + math.ceil((t - slow.at_s) / slow.burst_s) * slow.burst_s
                    at += slow.delay_s + slow.jitter_s * plan.rng.random()
                    self.stats.delayed += records
                    break
        # One host's records reach its partition in the order it sent them (one producer, one key).
        at = max(at, plan.last_delivery)
        plan.last_delivery = at
        return at

    def emit(self, plan: _Plan, t: float) -> list[Record]:
        """What ``plan``'s host sends at ``t`` (empty while it is down); updates stats and state."""
        if not plan.alive(t):
            return []
        boot = sum(1 for e in plan.boots if e <= t)
        if boot != plan.boot:
            plan.boot, plan.seq = boot, 0
        plan.seq += 1
        host, sc, interval = plan.host, self.scenario, plan.host.interval_s
        skew = sum(off for s, e, off in plan.skews if s <= t < e)
        clock = self.start + t + skew
        events: list[tuple[TopicKind, Heartbeat | MetricBatch | PeerProbe]] = [
            (
                "heartbeats",
                Heartbeat(
                    host_id=host.host_id,
                    region=host.region,
                    boot_id=self.boot_id(host.host_id, boot),
                    seq=plan.seq,
                    sent_at=clock,
                    interval_s=interval,
                    agent_version=AGENT_VERSION,
                    labels=dict(plan.labels),
                    agent_cpu_s=plan.seq * interval * 0.0013,
                    agent_rss_bytes=28_000_000,
                    events_sent=plan.seq * (2 + len(plan.targets)),
                ),
            )
        ]
        if sc.metrics:
            cpu, mem, load = plan.base
            wave = math.sin((t + plan.phase * 7) / 60.0)
            noise = plan.rng.random()
            metrics = {
                "cpu_pct": round(min(100.0, max(0.0, cpu + 10 * wave + 8 * noise)), 2),
                "mem_used_pct": round(min(100.0, max(0.0, mem + 2 * wave + noise)), 2),
                "load1": round(max(0.0, load * (1 + 0.3 * wave + 0.2 * noise)), 2),
            }
            events.append(("metrics", MetricBatch(host.host_id, host.region, clock, interval, metrics)))
        for target in plan.targets:
            ok = self.plans[target].reachable(t)
            events.append(
                (
                    "heartbeats",
                    PeerProbe(
                        host_id=host.host_id,
                        region=host.region,
                        target=target,
                        address=f"{target}:22",
                        ok=ok,
                        at=clock,
                        latency_ms=round(1 + 30 * plan.rng.random(), 2) if ok else 0.0,
                        error="" if ok else "timed out",
                    ),
                )
            )
        self.stats.emitted += len(events)
        self.stats.heartbeats_emitted += 1
        at = self.delivery(plan, t, len(events))
        if at is None:
            self.stats.dropped += len(events)
            self.stats.heartbeats_dropped += 1
            return []
        return [Record(at, t, topic, host.host_id, event) for topic, event in events]

    def emission_at(self, plan: _Plan, tick: int, previous: float = 0.0) -> float:
        """When ``plan``'s host emits its ``tick``-th time: its schedule (``tick`` of its own
        intervals after its phase) plus its jitter, never before its previous emission."""
        t = tick * plan.host.interval_s + plan.phase
        if plan.jitter is not None:
            t = max(t + plan.jitter.random() * self.scenario.jitter_s, previous)
        return t

    def records(self) -> Iterator[Record]:
        """Every record in delivery order (ties: emission order), ending with spools drained.

        Hosts emit on their own schedules (intervals may differ), merged by a heap of each
        host's next emission; ties go by fleet index.
        """
        sc = self.scenario
        by_index = {plan.host.index: plan for plan in self.plans.values()}
        due = [(t, i, 0) for i, plan in by_index.items() if (t := self.emission_at(plan, 0)) < sc.duration_s]
        heapq.heapify(due)
        held: list[tuple[float, int, Record]] = []
        counter = 0
        while due:
            t, index, tick = heapq.heappop(due)
            plan = by_index[index]
            after = self.emission_at(plan, tick + 1, t)
            if after < sc.duration_s:
                heapq.heappush(due, (after, index, tick + 1))
            while held and held[0][0] <= t:
                yield self._delivered(heapq.heappop(held)[2])
            for record in self.emit(plan, t):
                if record.deliver_at <= t:
                    yield self._delivered(record)
                else:
                    counter += 1
                    heapq.heappush(held, (record.deliver_at, counter, record))
        while held:
            yield self._delivered(heapq.heappop(held)[2])

    def _delivered(self, record: Record) -> Record:
        self.stats.delivered += 1
        if isinstance(record.event, Heartbeat):
            self.stats.heartbeats_delivered += 1
        return record


# -- ground truth ---------------------------------------------------------------------------


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
    run = _TruthRun.of(sc, start)
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
class _TruthRun:
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
    def of(cls, sc: Scenario, start: float) -> _TruthRun:
        page_after = _page_after(sc)
        timeout = max(page_after.values(), default=sc.timeout_s)
        groups: dict[str, set[str]] = {}
        for host in sc.hosts:
            for key in _group_keys(sc, host):
                groups.setdefault(key, set()).add(host.host_id)
        run = cls(sc, start, {h.host_id: h for h in sc.hosts}, page_after, timeout, 0.0, [], [], groups)
        run.slack = timeout + 2 * sc.longest_interval_s
        for f in sc.faults:
            if f.kind == "ingest_outage":
                run.blankets.append(_Blanket(f, "ingest_outage", frozenset(run.hosts)))
            elif f.kind == "partition":
                cut = frozenset(cut_hosts(sc, f))
                if not _judged_group(run, f):
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


def _group_keys(sc: Scenario, host: SimHost) -> list[str]:
    """The ``label=value`` groups of ``host`` the down-checker correlates by."""
    labels = getattr(sc.downcheck, "correlate_by", ("region", "zone", "rack"))
    return [f"{label}={value}" for label in labels if (value := host.label(label))]


def _judged_group(run: _TruthRun, f: Fault) -> str:
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
    return min((key for key in _group_keys(run.sc, run.hosts[f.hosts[0]]) if run.groups[key] == cut), default="")


def _fault_window(run: _TruthRun, i: int, f: Fault) -> FaultWindow:
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


def _crash_truth(run: _TruthRun, i: int, f: Fault) -> None:
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


def _may_look_down(run: _TruthRun, f: Fault, host: SimHost) -> bool:
    """Beats keep their phase across a reboot or restart, so the gap between the last beat
    before it and the first after is up to downtime + 2 intervals (+ jitter); a page needs the
    gap to pass the silence (missed intervals) plus the grace."""
    return f.downtime_s + 2 * host.interval_s + run.sc.jitter_s > run.page_after[host.host_id]


def _reboot_truth(run: _TruthRun, i: int, f: Fault) -> None:
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


def _restart_truth(run: _TruthRun, i: int, f: Fault) -> None:
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


def _partition_truth(run: _TruthRun, i: int, f: Fault) -> None:
    sc = run.sc
    judged = _judged_group(run, f)
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


def _shared_cut_truth(run: _TruthRun, i: int, f: Fault, cut: tuple[str, ...]) -> None:
    """Hosts cut without their group may still be enough of a group, stopped together, for the
    down-checker to call that group cut off: one alert per such group is allowed, none owed."""
    d, together = run.sc.downcheck, set(cut)
    for key in sorted({key for h in cut for key in _group_keys(run.sc, run.hosts[h])}):
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


def _ingest_truth(run: _TruthRun, i: int, f: Fault) -> None:
    owed = run.owed(f, tuple(run.hosts))
    note = "exactly one" if owed else "shorter than the timeout: at most one"
    run.expect("ingest_outage", i, f, owed, 1, region=f.region, note=note + "; no host_down")


def _flap_truth(run: _TruthRun, i: int, f: Fault) -> None:
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


def _no_truth(run: _TruthRun, i: int, f: Fault) -> None:
    """Clock skew and slow delivery owe nothing: any alert they cause is false."""


_TRUTH_OF: dict[str, Callable[[_TruthRun, int, Fault], None]] = {
    "crash": _crash_truth,
    "reboot": _reboot_truth,
    "restart": _restart_truth,
    "partition": _partition_truth,
    "ingest_outage": _ingest_truth,
    "flap": _flap_truth,
    "clock_skew": _no_truth,
    "slow": _no_truth,
}


def describe(scenario: Scenario) -> list[str]:
    """One line for the fleet and one per fault, for people starting a run."""
    sc = scenario
    topology = "".join(
        [
            f", {sc.zones} zones per region" if sc.zones else "",
            f", {sc.racks} racks per zone" if sc.racks else "",
        ]
    )
    interval = (
        f"intervals {'/'.join(f'{i:g}' for i in sc.intervals)}s" if sc.intervals else f"interval {sc.interval_s:g}s"
    )
    lines = [
        f"scenario {sc.name}: {len(sc.hosts)} hosts in {len(sc.regions)} regions ({', '.join(sc.regions)}){topology},"
        f" {interval}{f' (jitter {sc.jitter_s:g}s)' if sc.jitter_s else ''}, duration {sc.duration_s:g}s,"
        f" metrics={'on' if sc.metrics else 'off'}, witnesses={sc.witnesses}, timeout {sc.timeout_s:g}s"
    ]
    for i, f in enumerate(sc.faults):
        who = f.region or f.group or (", ".join(f.hosts[:4]) + (f" (+{len(f.hosts) - 4})" if len(f.hosts) > 4 else ""))
        lines.append(f"  #{i} t={f.at_s:g}s..{f.end_s(sc.duration_s):g}s {f.kind} {who or 'all producers'}")
    return lines


# -- runner ---------------------------------------------------------------------------------


async def run_simulation(
    scenario: Scenario,
    bootstrap: str,
    topics: Topics,
    *,
    truth_path: str | Path | None = None,
    stop: asyncio.Event | None = None,
    progress: Callable[[str], None] | None = None,
    lead_s: float = 1.0,
    create_topics: bool = True,
    progress_every_s: float = 10.0,
) -> Truth:
    """Play ``scenario`` into Kafka in real time; returns (and writes) the run's ground truth.

    Records are sent without awaiting each delivery (aiokafka batches them per partition); the
    delivery futures are gathered whenever the timeline is ahead of the clock, so errors surface
    and memory stays bounded. The truth file is written at the start (absolute fault times are
    known then) and again at the end with the delivery counters.
    """
    from aiokafka import AIOKafkaProducer

    from collector.kafka_io import ensure_all_topics, partitions_from_env

    say = progress or (lambda line: log.info("event=simulate %s", line))
    if create_topics:
        await ensure_all_topics(bootstrap, topics, partitions_from_env())
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=5, acks=1, max_batch_size=256 * 1024, request_timeout_ms=30000
    )
    await producer.start()
    try:
        start = time.time() + lead_s
        run_id = f"{int(start * 1000):x}"
        truth = ground_truth(scenario, start, run_id)
        if truth_path:
            write_truth(truth, truth_path)
        for line in describe(scenario):
            say(line)
        timeline = Timeline(scenario, start, run_id)
        names = {"heartbeats": topics.heartbeats, "metrics": topics.metrics}
        fault_starts = sorted((f.at_s, i, f) for i, f in enumerate(scenario.faults))
        pending: list[asyncio.Future[Any]] = []
        next_report = progress_every_s
        max_lag = 0.0
        for record in timeline.records():
            due = start + record.deliver_at
            now = time.time()
            if due > now + 0.002:
                if pending:
                    await asyncio.gather(*pending)
                    pending.clear()
                while fault_starts and fault_starts[0][0] <= record.deliver_at:
                    _, i, f = fault_starts.pop(0)
                    say(f"t={f.at_s:g}s fault #{i} {f.kind} {f.region or f.group or ' '.join(f.hosts[:4])}")
                if record.deliver_at >= next_report:
                    s = timeline.stats
                    say(
                        f"t={record.deliver_at:.0f}s/{scenario.duration_s:g}s delivered={s.delivered} held={s.held}"
                        f" dropped={s.dropped} max_lag_ms={max_lag * 1000:.0f}"
                    )
                    next_report += progress_every_s
                if stop is not None and stop.is_set():
                    break
                delay = due - time.time()
                if delay > 0:
                    if stop is None:
                        await asyncio.sleep(delay)
                    else:
                        try:
                            await asyncio.wait_for(stop.wait(), delay)
                            break
                        except TimeoutError:
                            pass
            else:
                max_lag = max(max_lag, now - due)
            pending.append(await producer.send(names[record.topic], encode(record.event), key=record.key.encode()))
            if len(pending) >= 20000:
                await asyncio.gather(*pending)
                pending.clear()
        if pending:
            await asyncio.gather(*pending)
        await producer.flush()
    finally:
        await producer.stop()
    s = timeline.stats
    truth = replace(truth, stats={**asdict(s), "max_lag_ms": int(max_lag * 1000)})
    if truth_path:
        write_truth(truth, truth_path)
    say(
        f"done: emitted={s.emitted} delivered={s.delivered} dropped={s.dropped} spooled={s.spooled}"
        f" delayed={s.delayed} heartbeats={s.heartbeats_delivered}/{s.heartbeats_emitted}"
        f" max_lag_ms={max_lag * 1000:.0f}"
    )
    return truth
