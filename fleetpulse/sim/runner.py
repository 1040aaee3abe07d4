"""The real-time runner: :func:`run_simulation` plays a scenario's timeline into Kafka and
writes the run's ground truth (absolute wall-clock times) for :mod:`fleetpulse.sim.score`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from collector.contract import Topics, encode
from fleetpulse.sim.scenario import Scenario, describe
from fleetpulse.sim.timeline import Timeline
from fleetpulse.sim.truth import Truth, ground_truth, write_truth

log = logging.getLogger(__name__)


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
