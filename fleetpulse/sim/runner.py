"""The real-time runner: :func:`run_simulation` plays a scenario's timeline into Kafka and
writes the run's ground truth (absolute wall-clock times) for :mod:`fleetpulse.sim.score`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collector.connection import Bootstrap, as_connection, start_client
from collector.contract import Topics, encode
from fleetpulse.sim.faults import Fault
from fleetpulse.sim.scenario import Scenario, describe
from fleetpulse.sim.timeline import Timeline
from fleetpulse.sim.truth import Truth, ground_truth, write_truth

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

log = logging.getLogger(__name__)


async def run_simulation(
    scenario: Scenario,
    bootstrap: Bootstrap,
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
        **as_connection(bootstrap).client_options(),
        linger_ms=5,
        acks=1,
        max_batch_size=256 * 1024,
        request_timeout_ms=30000,
    )
    await start_client(producer, bootstrap)
    try:
        start = time.time() + lead_s
        run_id = f"{int(start * 1000):x}"
        truth = ground_truth(scenario, start, run_id)
        if truth_path:
            write_truth(truth, truth_path)
        for line in describe(scenario):
            say(line)
        names = {"heartbeats": topics.heartbeats, "metrics": topics.metrics}
        play = _Play(scenario, Timeline(scenario, start, run_id), start, say, progress_every_s, names)
        await play.run(producer, stop)
        await producer.flush()
    finally:
        await producer.stop()
    s, max_lag = play.timeline.stats, play.max_lag
    truth = replace(truth, stats={**asdict(s), "max_lag_ms": int(max_lag * 1000)})
    if truth_path:
        write_truth(truth, truth_path)
    say(
        f"done: emitted={s.emitted} delivered={s.delivered} dropped={s.dropped} spooled={s.spooled}"
        f" delayed={s.delayed} heartbeats={s.heartbeats_delivered}/{s.heartbeats_emitted}"
        f" max_lag_ms={max_lag * 1000:.0f}"
    )
    return truth


# Delivery futures gathered at the latest once this many are pending (bounds memory).
_MAX_PENDING = 20000


@dataclass
class _Play:
    """One real-time play of a timeline: paces records to the clock, narrates, keeps the lag."""

    scenario: Scenario
    timeline: Timeline
    start: float  # wall-clock time of t = 0
    say: Callable[[str], None]
    progress_every_s: float
    names: dict[str, str]  # timeline topic -> Kafka topic
    max_lag: float = 0.0  # how far behind its due time a record was sent, at worst
    pending: list[asyncio.Future[Any]] = field(default_factory=list)
    fault_starts: list[tuple[float, int, Fault]] = field(default_factory=list)
    next_report: float = 0.0

    def __post_init__(self) -> None:
        self.fault_starts = sorted((f.at_s, i, f) for i, f in enumerate(self.scenario.faults))
        self.next_report = self.progress_every_s

    async def run(self, producer: AIOKafkaProducer, stop: asyncio.Event | None) -> None:
        """Send every record at its delivery time, until the end or ``stop``."""
        for record in self.timeline.records():
            due = self.start + record.deliver_at
            now = time.time()
            if due > now + 0.002:
                if await self._wait(record.deliver_at, due, stop):
                    break
            else:
                self.max_lag = max(self.max_lag, now - due)
            sent = await producer.send(self.names[record.topic], encode(record.event), key=record.key.encode())
            self.pending.append(sent)
            if len(self.pending) >= _MAX_PENDING:
                await self._settle()
        await self._settle()

    async def _settle(self) -> None:
        """Await the pending deliveries (their errors surface here)."""
        if self.pending:
            await asyncio.gather(*self.pending)
            self.pending.clear()

    async def _wait(self, t: float, due: float, stop: asyncio.Event | None) -> bool:
        """Ahead of the clock: settle, narrate up to ``t``, sleep until ``due``; True when stopped."""
        await self._settle()
        self._narrate(t)
        if stop is not None and stop.is_set():
            return True
        delay = due - time.time()
        if delay <= 0:
            return False
        if stop is None:
            await asyncio.sleep(delay)
            return False
        try:
            await asyncio.wait_for(stop.wait(), delay)
            return True
        except TimeoutError:
            return False

    def _narrate(self, t: float) -> None:
        """Say which faults began by ``t`` and, every ``progress_every_s``, the delivery counters."""
        while self.fault_starts and self.fault_starts[0][0] <= t:
            _, i, f = self.fault_starts.pop(0)
            self.say(f"t={f.at_s:g}s fault #{i} {f.kind} {f.region or f.group or ' '.join(f.hosts[:4])}")
        if t >= self.next_report:
            s = self.timeline.stats
            self.say(
                f"t={t:.0f}s/{self.scenario.duration_s:g}s delivered={s.delivered} held={s.held}"
                f" dropped={s.dropped} max_lag_ms={self.max_lag * 1000:.0f}"
            )
            self.next_report += self.progress_every_s
