"""Scenarios: the fleet, its timing and its faults, loaded from YAML with ``file:line`` errors.

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
selection made explicit. What each fault kind's mapping accepts, and what it does, is its class
in :mod:`fleetpulse.sim.faults`; this module reads the rest and hands each fault entry there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from collector.problems import Problem, ProblemsError
from fleetpulse.sim.faults import Fault, dump_fault, read_fault
from fleetpulse.sim.parsing import parse_count, parse_flag, parse_seconds
from policies.downcheck import DownCheckSettings
from policies.yaml_lines import LineMapping, load_lines

SCENARIO_DIR = Path(__file__).parent.parent / "scenarios"

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

    def group_host_ids(self, group: str) -> tuple[str, ...]:
        """The ids of :meth:`group_hosts`."""
        return tuple(h.host_id for h in self.group_hosts(group))

    def group_keys(self, host: SimHost) -> list[str]:
        """The ``label=value`` groups of ``host`` the down-checker correlates by."""
        labels = getattr(self.downcheck, "correlate_by", ("region", "zone", "rack"))
        return [f"{label}={value}" for label in labels if (value := host.label(label))]


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
        base = _settings(doc, base, hosts, regions, interval_s, duration_s)
    except Problem as exc:
        problem(exc.line, exc.message)
        raise ScenarioError(problems) from None
    faults = _faults(doc, base, problem)
    if problems:
        raise ScenarioError(problems)
    return replace(base, faults=tuple(faults))


def _settings(
    doc: LineMapping,
    base: Scenario,
    hosts: int | None,
    regions: int | None,
    interval_s: float | None,
    duration_s: float | None,
) -> Scenario:
    """Everything but the faults, with the command-line overrides; the first problem raises."""
    region_spec = doc.get("regions", 1) if regions is None else regions
    if isinstance(region_spec, list):
        names = tuple(str(r) for r in region_spec)
        if not names or len(set(names)) != len(names) or not all(names):
            raise Problem(doc.line_of("regions"), "'regions' must be distinct non-empty names")
    else:
        names = tuple(f"r{i + 1}" for i in range(parse_count(region_spec, doc.line_of("regions"), "regions", 1)))
    host_count = parse_count(doc.get("hosts", 10) if hosts is None else hosts, doc.line_of("hosts"), "hosts", 1)
    interval = interval_s if interval_s is not None else doc.get("interval", 5)
    duration = duration_s if duration_s is not None else doc.get("duration", 120)
    seed = doc.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise Problem(doc.line_of("seed"), f"'seed' must be an integer, got {seed!r}")
    metrics = parse_flag(doc.get("metrics", True), doc.line_of("metrics"), "metrics")
    witnesses = parse_count(doc.get("witnesses", 0), doc.line_of("witnesses"), "witnesses", 0)
    if witnesses and len(names) < 2:
        raise Problem(doc.line_of("witnesses"), "witnesses probe peers in other regions: give 2+ regions")
    base = replace(
        base,
        regions=names,
        interval_s=parse_seconds(interval, doc.line_of("interval"), "interval", positive=True),
        duration_s=parse_seconds(duration, doc.line_of("duration"), "duration", positive=True),
        metrics=metrics,
        witnesses=witnesses,
        seed=seed,
        downcheck=_downcheck(doc.get("downcheck"), doc.line_of("downcheck")),
    )
    return _fleet(doc, base, host_count)


def _faults(doc: LineMapping, sc: Scenario, problem: Callable[[int, str], None]) -> list[Fault]:
    """The faults that read well, in order; ``problem`` gets each one that does not."""
    raw_faults = doc.get("faults") or []
    if not isinstance(raw_faults, list):
        problem(doc.line_of("faults"), "'faults' must be a list of {at: S, <kind>: ...} mappings")
        raw_faults = []
    faults: list[Fault] = []
    used: set[str] = set()
    for index, raw in enumerate(raw_faults):
        try:
            fault = read_fault(raw, index, sc, used, doc.line_of("faults"))
        except Problem as exc:
            problem(exc.line, exc.message)
            continue
        if not fault.group:  # a partition of a whole group picks no host: the group is the point
            used.update(fault.hosts)
        faults.append(fault)
    return faults


def _fleet(doc: LineMapping, sc: Scenario, host_count: int) -> Scenario:
    """The fleet's topology, intervals and jitter (the regions, interval and downcheck are set)."""
    weights = _zone_weights(doc.get("zones", 0), doc.line_of("zones"))
    zones = len(weights)
    racks = parse_count(doc.get("racks", 0), doc.line_of("racks"), "racks", 0)
    if racks and not zones:
        raise Problem(doc.line_of("racks"), "'racks' are per zone: give 'zones' (zones per region) too")
    intervals: tuple[float, ...] = ()
    if "intervals" in doc:
        raw = doc["intervals"]
        line = doc.line_of("intervals")
        if not isinstance(raw, list) or not raw:
            raise Problem(line, f"'intervals' must be a non-empty list of seconds, like [1, 5], got {raw!r}")
        intervals = tuple(parse_seconds(v, line, "intervals", positive=True) for v in raw)
    hosts = make_fleet(
        host_count, sc.regions, zones=weights, racks=racks, interval_s=sc.interval_s, intervals=intervals
    )
    jitter = parse_seconds(doc.get("jitter", 0), doc.line_of("jitter"), "jitter")
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
    return (1,) * parse_count(value, line, "zones", 0)


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
            changes[attr] = parse_count(value, raw.line_of(key), key, 2)
        elif attr == "correlate_by":
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise Problem(
                    raw.line_of(key), f"'{key}' must be a list of label names like [region, zone], got {value!r}"
                )
            changes[attr] = tuple(value)
        elif attr.endswith("_s"):
            changes[attr] = parse_seconds(value, raw.line_of(key), key)
        else:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise Problem(raw.line_of(key), f"'{key}' must be a number, got {value!r}")
            changes[attr] = float(value)
    settings = replace(DownCheckSettings(), **changes)
    if settings.problems():
        raise Problem(line, "; ".join(settings.problems()))
    return settings


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
    doc["faults"] = [dump_fault(f) for f in sc.faults]
    return yaml.safe_dump(doc, sort_keys=False)



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


