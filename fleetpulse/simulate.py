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
    interval: 1             # heartbeat interval
    duration: 120
    metrics: true           # a MetricBatch per host per interval (cpu_pct, mem_used_pct, load1)
    witnesses: 2            # each host probes K peers in other regions every interval
    downcheck: {missed: 3, grace: 1, flap_window: 300}   # what the worker runs (for the truth)
    faults:
      - {at: 10, crash: {count: 1}}                        # hosts: ids, an id, or {region, count}
      - {at: 20, crash: [r1-h003], until: 40}              # back with a new boot id
      - {at: 30, reboot: {region: r2, count: 1}, downtime: 2}
      - {at: 40, partition: r2, for: 15, spool: true}      # spool: false = beats lost
      - {at: 60, ingest_outage: true, for: 10, spool: true}
      - {at: 80, flap: {count: 1}, for: 30, down: 5, up: 5}
      - {at: 90, clock_skew: {count: 3}, offset: 120}      # optional for
      - {at: 95, slow: {region: r3}, delay: 0.5, jitter: 0.5, burst: 0, for: 15}

A ``{region, count}`` selection picks (seeded) hosts not used by an earlier fault, so faults
don't pile onto one host by accident.
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
from typing import Any, Literal, NamedTuple

from collector.contract import Heartbeat, MetricBatch, PeerProbe, Topics, encode
from policies.downcheck import DownCheckSettings
from policies.loader import LineLoader, LineMapping
from policies.model import parse_duration

log = logging.getLogger(__name__)

SCENARIO_DIR = Path(__file__).with_name("scenarios")
AGENT_VERSION = "fleetpulse-sim/1"
FAULT_KINDS = ("crash", "reboot", "partition", "ingest_outage", "flap", "clock_skew", "slow")
FaultKind = Literal["crash", "reboot", "partition", "ingest_outage", "flap", "clock_skew", "slow"]
TopicKind = Literal["heartbeats", "metrics"]
INF = math.inf

_TOP_KEYS = {"name", "seed", "hosts", "regions", "interval", "duration", "metrics", "witnesses", "downcheck", "faults"}
_FAULT_KEYS: dict[str, set[str]] = {
    "crash": {"until"},
    "reboot": {"downtime"},
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
}


class ScenarioError(ValueError):
    """Problems in a scenario file; ``problems`` holds ``file:line: message`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# -- model ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimHost:
    """One virtual host; ``index`` is its position in the fleet (creation order)."""

    host_id: str
    region: str
    index: int


@dataclass(frozen=True)
class Fault:
    """One timed fault, hosts already resolved; times are seconds from the scenario's start."""

    kind: FaultKind
    at_s: float
    line: int = 0
    hosts: tuple[str, ...] = ()
    region: str = ""
    for_s: float | None = None  # None: until the end of the run (skew, slow)
    until_s: float | None = None  # crash: back (new boot id) at this time; None = stays down
    downtime_s: float = 0.0  # reboot
    spool: bool = True  # partition, ingest outage, flap: held beats delivered at heal
    down_s: float = 0.0  # flap: link down this long ...
    up_s: float = 0.0  # ... then up this long, repeated for for_s
    offset_s: float = 0.0  # clock skew added to sent_at / ts / at
    delay_s: float = 0.0  # slow: every record this much later
    jitter_s: float = 0.0  # slow: plus uniform [0, jitter)
    burst_s: float = 0.0  # slow: held and released every burst_s (bursty delivery)

    def end_s(self, duration_s: float) -> float:
        """When the fault is over (a crash without ``until`` lasts to the end of the run)."""
        if self.kind == "crash":
            return self.until_s if self.until_s is not None else duration_s
        if self.kind == "reboot":
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

    @property
    def timeout_s(self) -> float:
        """How long after its last beat a silent host may be paged (missed intervals + grace)."""
        return self.downcheck.missed * self.interval_s + self.downcheck.grace_s

    def region_hosts(self) -> dict[str, list[SimHost]]:
        """Hosts per region, in fleet order."""
        out: dict[str, list[SimHost]] = {r: [] for r in self.regions}
        for host in self.hosts:
            out[host.region].append(host)
        return out


def make_fleet(count: int, regions: tuple[str, ...]) -> tuple[SimHost, ...]:
    """``count`` hosts round-robin over ``regions``, named ``<region>-h<NNN>`` within each region."""
    per_region = -(-count // max(1, len(regions)))
    width = max(3, len(str(per_region)))
    return tuple(
        SimHost(f"{regions[i % len(regions)]}-h{i // len(regions) + 1:0{width}d}", regions[i % len(regions)], i)
        for i in range(count)
    )


# -- YAML with line numbers -----------------------------------------------------------------


class _Problem(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


def _yaml_load(text: str, origin: str) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=LineLoader)  # safe: LineLoader is a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{origin}:{mark.line + 1}" if mark is not None else origin
        raise ScenarioError([f"{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}"]) from None


def _seconds(value: Any, line: int, key: str, *, positive: bool = False) -> float:
    try:
        seconds = parse_duration(value)
    except (ValueError, TypeError):
        raise _Problem(line, f"'{key}' must be seconds or a duration like 30s, 2m; got {value!r}") from None
    if positive and seconds <= 0:
        raise _Problem(line, f"'{key}' must be > 0, got {value!r}")
    return seconds


def _count(value: Any, line: int, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _Problem(line, f"'{key}' must be an integer >= {minimum}, got {value!r}")
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
                raise _Problem(doc.line_of("regions"), "'regions' must be distinct non-empty names")
        else:
            names = tuple(f"r{i + 1}" for i in range(_count(region_spec, doc.line_of("regions"), "regions", 1)))
        host_count = _count(doc.get("hosts", 10) if hosts is None else hosts, doc.line_of("hosts"), "hosts", 1)
        interval = interval_s if interval_s is not None else doc.get("interval", 5)
        duration = duration_s if duration_s is not None else doc.get("duration", 120)
        seed = doc.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise _Problem(doc.line_of("seed"), f"'seed' must be an integer, got {seed!r}")
        metrics = doc.get("metrics", True)
        if not isinstance(metrics, bool):
            raise _Problem(doc.line_of("metrics"), f"'metrics' must be true or false, got {metrics!r}")
        witnesses = _count(doc.get("witnesses", 0), doc.line_of("witnesses"), "witnesses", 0)
        if witnesses and len(names) < 2:
            raise _Problem(doc.line_of("witnesses"), "witnesses probe peers in other regions: give 2+ regions")
        base = replace(
            base,
            hosts=make_fleet(host_count, names),
            regions=names,
            interval_s=_seconds(interval, doc.line_of("interval"), "interval", positive=True),
            duration_s=_seconds(duration, doc.line_of("duration"), "duration", positive=True),
            metrics=metrics,
            witnesses=witnesses,
            seed=seed,
            downcheck=_downcheck(doc.get("downcheck"), doc.line_of("downcheck")),
        )
    except _Problem as exc:
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
        except _Problem as exc:
            problem(exc.line, exc.message)
            continue
        used.update(fault.hosts)
        faults.append(fault)
    if problems:
        raise ScenarioError(problems)
    return replace(base, faults=tuple(faults))


def _downcheck(raw: Any, line: int) -> DownCheckSettings:
    if raw is None:
        return DownCheckSettings()
    if not isinstance(raw, LineMapping):
        raise _Problem(line, f"'downcheck' must be a mapping of {', '.join(_DOWNCHECK_KEYS)}")
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        attr = _DOWNCHECK_KEYS.get(key)
        if attr is None:
            raise _Problem(raw.line_of(key), f"unknown downcheck key {key!r} (expected {', '.join(_DOWNCHECK_KEYS)})")
        if attr == "min_region_hosts":
            changes[attr] = _count(value, raw.line_of(key), key, 2)
        elif attr.endswith("_s"):
            changes[attr] = _seconds(value, raw.line_of(key), key)
        else:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise _Problem(raw.line_of(key), f"'{key}' must be a number, got {value!r}")
            changes[attr] = float(value)
    settings = replace(DownCheckSettings(), **changes)
    if settings.problems():
        raise _Problem(line, "; ".join(settings.problems()))
    return settings


def _fault(raw: Any, index: int, sc: Scenario, used: set[str], faults_line: int) -> Fault:
    if not isinstance(raw, LineMapping):
        raise _Problem(faults_line, f"fault #{index + 1} must be a mapping like {{at: 10, crash: [host]}}")
    kinds = [k for k in raw if k in FAULT_KINDS]
    if len(kinds) != 1:
        raise _Problem(raw.line, f"a fault names exactly one kind of: {', '.join(FAULT_KINDS)}")
    kind: FaultKind = kinds[0]  # type: ignore[assignment]  # checked against FAULT_KINDS above
    allowed = {"at", kind} | _FAULT_KEYS[kind]
    for key in raw:
        if key not in allowed:
            raise _Problem(raw.line_of(key), f"unknown key {key!r} for {kind} (allowed: {', '.join(sorted(allowed))})")
    if "at" not in raw:
        raise _Problem(raw.line, f"{kind}: 'at' (seconds from the start) is required")
    at = _seconds(raw["at"], raw.line_of("at"), "at")
    if at >= sc.duration_s:
        raise _Problem(raw.line_of("at"), f"{kind} at {at:g}s is not within the run's duration {sc.duration_s:g}s")
    line = raw.line_of(kind)
    fault = Fault(kind=kind, at_s=at, line=raw.line)
    spec = raw[kind]

    def num(key: str, default: float | None = None, positive: bool = False) -> float:
        if key not in raw:
            if default is None:
                raise _Problem(raw.line, f"{kind}: '{key}' is required")
            return default
        return _seconds(raw[key], raw.line_of(key), key, positive=positive)

    def flag(key: str, default: bool) -> bool:
        value = raw.get(key, default)
        if not isinstance(value, bool):
            raise _Problem(raw.line_of(key), f"'{key}' must be true or false, got {value!r}")
        return value

    if kind in ("partition", "ingest_outage"):
        region = ""
        if kind == "partition":
            region = str(spec)
            if region not in sc.regions:
                raise _Problem(line, f"partition: unknown region {region!r} (regions: {', '.join(sc.regions)})")
        elif spec is not True:
            raise _Problem(line, "write 'ingest_outage: true' (it cuts every producer)")
        return replace(fault, region=region, for_s=num("for", positive=True), spool=flag("spool", True))
    if kind == "slow" and not isinstance(spec, list | str) and not (isinstance(spec, LineMapping) and "count" in spec):
        if isinstance(spec, LineMapping) and set(spec) == {"region"}:
            spec = spec["region"]
        if str(spec) not in sc.regions:
            raise _Problem(line, f"slow: give hosts or a region, unknown region {spec!r}")
        hosts = tuple(h.host_id for h in sc.hosts if h.region == str(spec))
        fault = replace(fault, region=str(spec), hosts=hosts)
    else:
        fault = replace(fault, hosts=_select(spec, line, kind, index, sc, used))
    if kind == "crash":
        until = num("until", INF)
        if until <= at:
            raise _Problem(raw.line_of("until"), f"crash: 'until' ({until:g}) must be after 'at' ({at:g})")
        return replace(fault, until_s=None if until == INF else until)
    if kind == "reboot":
        return replace(fault, downtime_s=num("downtime", positive=True))
    if kind == "flap":
        return replace(
            fault,
            for_s=num("for", positive=True),
            down_s=num("down", positive=True),
            up_s=num("up", positive=True),
            spool=flag("spool", True),
        )
    if kind == "clock_skew":
        if "offset" not in raw:
            raise _Problem(raw.line, "clock_skew: 'offset' (seconds, may be negative) is required")
        offset = raw["offset"]
        if isinstance(offset, bool) or not isinstance(offset, int | float) or not math.isfinite(offset):
            offset = _seconds(offset, raw.line_of("offset"), "offset")
        return replace(fault, offset_s=float(offset), for_s=num("for", INF, positive=True) if "for" in raw else None)
    slow = replace(
        fault,
        delay_s=num("delay", 0.0),
        jitter_s=num("jitter", 0.0),
        burst_s=num("burst", 0.0),
        for_s=num("for", positive=True) if "for" in raw else None,
    )
    worst = slow.delay_s + slow.jitter_s + slow.burst_s
    # A beat just before the slowdown arrives on time and the next one ``interval + worst`` later:
    # that gap must stay below ``missed`` intervals, or slow delivery is a real silence.
    bound = (sc.downcheck.missed - 1) * sc.interval_s
    if worst <= 0:
        raise _Problem(raw.line, "slow: give 'delay', 'jitter' and/or 'burst' (seconds)")
    if worst >= bound:
        raise _Problem(
            raw.line,
            f"slow: delay + jitter + burst = {worst:g}s must stay below (missed - 1) x interval = {bound:g}s,"
            " else the hosts really go silent",
        )
    return slow


def _select(spec: Any, line: int, kind: str, index: int, sc: Scenario, used: set[str]) -> tuple[str, ...]:
    known = {h.host_id for h in sc.hosts}
    if isinstance(spec, str):
        spec = [spec]
    if isinstance(spec, list):
        ids = tuple(str(s) for s in spec)
        unknown = [h for h in ids if h not in known]
        if unknown:
            raise _Problem(line, f"{kind}: unknown host(s) {', '.join(unknown)} (ids look like {sc.hosts[0].host_id})")
        if not ids:
            raise _Problem(line, f"{kind}: no hosts given")
        return ids
    if not isinstance(spec, LineMapping) or set(spec) - {"region", "count"}:
        raise _Problem(line, f"{kind}: hosts are a list of ids, an id, or {{region: R, count: N}}")
    region = spec.get("region")
    if region is not None and str(region) not in sc.regions:
        raise _Problem(spec.line_of("region"), f"{kind}: unknown region {region!r} (regions: {', '.join(sc.regions)})")
    count = _count(spec.get("count", 1), spec.line_of("count"), "count", 1)
    pool = [h.host_id for h in sc.hosts if (region is None or h.region == str(region)) and h.host_id not in used]
    if len(pool) < count:
        where = f"region {region}" if region is not None else "the fleet"
        raise _Problem(line, f"{kind}: wants {count} host(s) but {where} has {len(pool)} not used by earlier faults")
    return tuple(sorted(random.Random(f"{sc.seed}:{index}").sample(pool, count)))


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
    downs: list[tuple[float, float]] = field(default_factory=list)  # [start, end): not running
    cuts: list[tuple[float, float, bool]] = field(default_factory=list)  # [start, end), spool
    slows: list[Fault] = field(default_factory=list)
    skews: list[tuple[float, float, float]] = field(default_factory=list)
    targets: tuple[str, ...] = ()
    boot: int = 0
    seq: int = 0
    last_delivery: float = 0.0
    base: tuple[float, float, float] = (0.0, 0.0, 0.0)  # cpu, mem, load levels

    def alive(self, t: float) -> bool:
        return not any(s <= t < e for s, e in self.downs)


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
                rng.random() * scenario.interval_s,
                random.Random(f"{scenario.seed}:{host.host_id}"),
                targets=targets.get(host.host_id, ()),
                base=(rng.uniform(5, 60), rng.uniform(20, 80), rng.uniform(0.1, 4)),
            )
            self.plans[host.host_id] = plan
        for fault in scenario.faults:
            self._apply(fault)

    def _apply(self, fault: Fault) -> None:
        end = fault.end_s(self.scenario.duration_s)
        if fault.kind == "crash":
            end = fault.until_s if fault.until_s is not None else INF
            for h in fault.hosts:
                self.plans[h].downs.append((fault.at_s, end))
        elif fault.kind == "reboot":
            for h in fault.hosts:
                self.plans[h].downs.append((fault.at_s, end))
        elif fault.kind in ("partition", "ingest_outage"):
            for plan in self.plans.values():
                if fault.kind == "ingest_outage" or plan.host.region == fault.region:
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
        boot = sum(1 for _, e in plan.downs if e <= t)
        if boot != plan.boot:
            plan.boot, plan.seq = boot, 0
        plan.seq += 1
        host, sc = plan.host, self.scenario
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
                    interval_s=sc.interval_s,
                    agent_version=AGENT_VERSION,
                    labels={"simulated": "true"},
                    agent_cpu_s=plan.seq * sc.interval_s * 0.0013,
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
            events.append(("metrics", MetricBatch(host.host_id, host.region, clock, sc.interval_s, metrics)))
        for target in plan.targets:
            ok = self.plans[target].alive(t)
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

    def records(self) -> Iterator[Record]:
        """Every record in delivery order (ties: emission order), ending with spools drained."""
        sc = self.scenario
        order = sorted(self.plans.values(), key=lambda p: (p.phase, p.host.index))
        held: list[tuple[float, int, Record]] = []
        counter = 0
        tick = 0
        while tick * sc.interval_s < sc.duration_s:
            base = tick * sc.interval_s
            for plan in order:
                t = base + plan.phase
                if t >= sc.duration_s:
                    continue
                while held and held[0][0] <= t:
                    yield self._delivered(heapq.heappop(held)[2])
                for record in self.emit(plan, t):
                    if record.deliver_at <= t:
                        yield self._delivered(record)
                    else:
                        counter += 1
                        heapq.heappush(held, (record.deliver_at, counter, record))
            tick += 1
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


@dataclass(frozen=True)
class Down:
    """A host that really stopped: ``host_down`` is owed once it was silent for the timeout."""

    host_id: str
    region: str
    since: float
    until: float | None  # back (new boot id) at; None = still down at the end
    fault: int
    required: bool  # long enough that not paging it is a missed down
    covered_by: str = ""  # "partition r2" / "ingest_outage" when a blanket alert hides it at first


@dataclass(frozen=True)
class Expectation:
    """Alerts a fault should cause: ``kind`` between ``min_count`` and ``max_count`` times in the window."""

    kind: str  # region_unreachable, region_unknown, ingest_outage, host_rebooted, flap
    fault: int
    start: float
    end: float  # window in which such an alert counts for this fault (includes the slack)
    min_count: int
    max_count: int
    region: str = ""
    host_id: str = ""
    host_down_allowed: bool = False  # reboot longer than the timeout, or flap (one per flap window)
    note: str = ""


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
    * a partition owes exactly one ``region_unreachable`` (``region_unknown`` when the region is
      smaller than ``min_region_hosts``) and an ingest outage one ``ingest_outage``, when they
      last longer than the timeout (else at most one); no ``host_down`` for their live hosts;
    * a reboot owes one ``host_rebooted``; a ``host_down`` first is *allowed* (not required)
      when the downtime plus two intervals (beats keep their phase) passes the timeout, since
      the host may really have been silent that long;
    * a flap allows at most one ``host_down`` per flap window per host, and ``host_flapping``;
    * clock skew and slow delivery owe nothing: any alert they cause is false.
    """
    sc = scenario
    timeout = sc.timeout_s
    slack = timeout + 2 * sc.interval_s
    end = start + sc.duration_s
    region_hosts = {r: len(h) for r, h in sc.region_hosts().items()}
    host_region = {h.host_id: h.region for h in sc.hosts}
    faults: list[FaultWindow] = []
    downs: list[Down] = []
    expectations: list[Expectation] = []
    blankets = [f for f in sc.faults if f.kind in ("partition", "ingest_outage")]
    for i, f in enumerate(sc.faults):
        f_end = f.end_s(sc.duration_s)
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
        faults.append(
            FaultWindow(
                i,
                f.kind,
                start + f.at_s,
                None if open_ended else start + f_end,
                f.line,
                list(f.hosts if f.kind != "slow" or not f.region else ()),
                f.region,
                f.spool,
                details,
            )
        )
        if f.kind == "crash":
            for h in f.hosts:
                blanket = next(
                    (
                        b
                        for b in blankets
                        if b.at_s <= f.at_s < b.end_s(sc.duration_s)
                        and (b.kind == "ingest_outage" or b.region == host_region[h])
                    ),
                    None,
                )
                covered = (
                    ""
                    if blanket is None
                    else "ingest_outage"
                    if blanket.kind == "ingest_outage"
                    else f"partition {blanket.region}"
                )
                back = f.until_s if f.until_s is not None else sc.duration_s
                lasts = back - f.at_s
                # Under a blanket the down-checker sees the crash only through witnesses (peers
                # that can still reach the host) or, without them, once the blanket lifts and the
                # host alone stays silent: a crash over before that cannot be paged.
                visible_from = f.at_s if blanket is None or sc.witnesses else blanket.end_s(sc.duration_s)
                downs.append(
                    Down(
                        h,
                        host_region[h],
                        start + f.at_s,
                        None if f.until_s is None else start + f.until_s,
                        i,
                        required=lasts > timeout + sc.interval_s and back - visible_from > timeout + sc.interval_s,
                        covered_by=covered,
                    )
                )
                if f.until_s is not None:
                    # The return is seen when the host's beats arrive: after the blanket, if any.
                    seen_at = max(f.until_s, blanket.end_s(sc.duration_s)) if blanket is not None else f.until_s
                    expectations.append(
                        Expectation(
                            "host_rebooted",
                            i,
                            start + f.until_s,
                            start + seen_at + slack,
                            0,
                            1,
                            host_id=h,
                            region=host_region[h],
                            note="back from a crash with a new boot id",
                        )
                    )
        elif f.kind == "reboot":
            # Beats keep their phase across the reboot, so the gap between the last beat before it
            # and the first after is up to downtime + 2 intervals; a page needs the gap to pass
            # the silence (missed intervals) plus the grace.
            allowed = f.downtime_s + 2 * sc.interval_s > timeout
            for h in f.hosts:
                expectations.append(
                    Expectation(
                        "host_rebooted",
                        i,
                        start + f.at_s,
                        start + f_end + slack,
                        1,
                        1,
                        host_id=h,
                        region=host_region[h],
                        host_down_allowed=allowed,
                        note="downtime reaches the silence timeout: a host_down first is allowed, not required"
                        if allowed
                        else "short reboot: host_rebooted, no host_down",
                    )
                )
        elif f.kind in ("partition", "ingest_outage"):
            owed = 1 if (f.for_s or 0.0) > timeout + sc.interval_s else 0
            kind = "region_unreachable" if f.kind == "partition" else "ingest_outage"
            note = "exactly one" if owed else "shorter than the timeout: at most one"
            if f.kind == "partition" and region_hosts.get(f.region, 0) < sc.downcheck.min_region_hosts:
                kind, note = "region_unknown", note + " (region below min_region_hosts)"
            expectations.append(
                Expectation(
                    kind,
                    i,
                    start + f.at_s,
                    start + f_end + slack,
                    owed,
                    1,
                    region=f.region,
                    note=note + "; no host_down",
                )
            )
        elif f.kind == "flap":
            for h in f.hosts:
                expectations.append(
                    Expectation(
                        "flap",
                        i,
                        start + f.at_s,
                        start + f_end + slack,
                        0,
                        1,
                        host_id=h,
                        region=host_region[h],
                        host_down_allowed=True,
                        note=f"at most one host_down per {sc.downcheck.flap_window_s:g}s flap window; host_flapping ok",
                    )
                )
    return Truth(
        scenario=sc.name,
        origin=sc.origin,
        seed=sc.seed,
        run_id=run_id,
        start=start,
        end=end,
        interval_s=sc.interval_s,
        timeout_s=timeout,
        slack_s=slack,
        flap_window_s=sc.downcheck.flap_window_s,
        regions=list(sc.regions),
        host_count=len(sc.hosts),
        faults=faults,
        downs=downs,
        expectations=expectations,
    )


def describe(scenario: Scenario) -> list[str]:
    """One line for the fleet and one per fault, for people starting a run."""
    sc = scenario
    lines = [
        f"scenario {sc.name}: {len(sc.hosts)} hosts in {len(sc.regions)} regions ({', '.join(sc.regions)}),"
        f" interval {sc.interval_s:g}s, duration {sc.duration_s:g}s, metrics={'on' if sc.metrics else 'off'},"
        f" witnesses={sc.witnesses}, timeout {sc.timeout_s:g}s"
    ]
    for i, f in enumerate(sc.faults):
        who = f.region or (", ".join(f.hosts[:4]) + (f" (+{len(f.hosts) - 4})" if len(f.hosts) > 4 else ""))
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
                    say(f"t={f.at_s:g}s fault #{i} {f.kind} {f.region or ' '.join(f.hosts[:4])}")
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
