"""The pure, deterministic play of a scenario: :class:`Timeline`.

For every host and interval it decides what the host emits (heartbeat, metric batch, witness
reports) and when, if ever, that reaches Kafka (on time, delayed, held in a spool until a path
heals, or lost). Event times are absolute (``start + t``, plus any clock skew); delivery times
stay relative to the start, so the same timeline is played in real time by the runner or
inspected instantly by tests and the judge. Faults shape each host's :class:`HostPlan`.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from collector.contract import Heartbeat, MetricBatch, PeerProbe
from fleetpulse.sim.faults import INF, Fault
from fleetpulse.sim.scenario import Scenario, SimHost

AGENT_VERSION = "fleetpulse-sim/1"
TopicKind = Literal["heartbeats", "metrics"]


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
class HostPlan:
    """One host's part of the timeline: its phase and random streams, and the windows faults put on it."""

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
        self.plans: dict[str, HostPlan] = {}
        for host in scenario.hosts:
            plan = HostPlan(
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
        """A fault shapes the plans of the hosts it hits (see its kind's ``apply``)."""
        fault.type.apply(fault, self)

    def boot_id(self, host_id: str, boot: int) -> str:
        """The boot id of a host's ``boot``-th life (0 = first); the run id keeps reruns apart."""
        return f"{self.run_id or 'sim'}-{self.scenario.seed}-{host_id}-b{boot}"

    def delivery(self, plan: HostPlan, t: float, records: int = 1) -> float | None:
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

    def emit(self, plan: HostPlan, t: float) -> list[Record]:
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

    def emission_at(self, plan: HostPlan, tick: int, previous: float = 0.0) -> float:
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


