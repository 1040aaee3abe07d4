"""The agent loop: sample the host every ``interval_s`` and send a metric batch and a heartbeat."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from collector import __version__
from collector.contract import Heartbeat, MetricBatch, Topics, encode
from collector.system_metrics import SystemSampler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentSettings:
    """What one agent needs to run; built by the CLI from flags and environment."""

    bootstrap: str
    topics: Topics
    host_id: str = field(default_factory=socket.gethostname)
    region: str = "local"
    labels: dict[str, str] = field(default_factory=dict)
    interval_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.interval_s > 0:
            raise ValueError(f"interval_s must be > 0, got {self.interval_s}")
        if not self.host_id:
            raise ValueError("host_id must not be empty")


def boot_id() -> str:
    """The kernel's boot id (changes on every reboot); a random id where there is none."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return f"nobootid-{uuid.uuid4()}"


class Agent:
    """Builds events from samples; I/O (Kafka or stdout) is left to the caller."""

    def __init__(self, settings: AgentSettings, sampler: SystemSampler | None = None) -> None:
        self.settings = settings
        self.sampler = sampler or SystemSampler()
        self.boot_id = boot_id()
        self.seq = 0

    def metric_batch(self, now: float | None = None) -> MetricBatch:
        """Sample the host now."""
        s = self.settings
        return MetricBatch(
            host_id=s.host_id,
            region=s.region,
            ts=time.time() if now is None else now,
            interval_s=s.interval_s,
            metrics=self.sampler.sample(),
            labels=dict(s.labels),
        )

    def heartbeat(self, now: float | None = None) -> Heartbeat:
        """The next heartbeat; sequence numbers are continuous within this process's boot id."""
        s = self.settings
        self.seq += 1
        return Heartbeat(
            host_id=s.host_id,
            region=s.region,
            boot_id=self.boot_id,
            seq=self.seq,
            sent_at=time.time() if now is None else now,
            interval_s=s.interval_s,
            agent_version=__version__,
            labels=dict(s.labels),
        )


async def run_agent(settings: AgentSettings, stop: asyncio.Event, cycles: int | None = None) -> int:
    """Send a batch and a heartbeat per interval until ``stop`` is set; returns cycles sent."""
    agent = Agent(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, linger_ms=50, acks=1)
    await _start_with_retry(producer, settings.bootstrap, stop)
    key = settings.host_id.encode()
    sent = 0
    next_at = time.monotonic() + min(1.0, settings.interval_s)  # first batch needs a CPU span
    try:
        while not stop.is_set() and (cycles is None or sent < cycles):
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, next_at - time.monotonic()))
                break
            except TimeoutError:
                pass
            next_at += settings.interval_s
            batch, beat = agent.metric_batch(), agent.heartbeat()
            # send() only enqueues; delivery happens in the background so sampling keeps time.
            await producer.send(settings.topics.metrics, encode(batch), key=key)
            await producer.send(settings.topics.heartbeats, encode(beat), key=key)
            sent += 1
            log.debug("event=batch_sent seq=%d metrics=%d", beat.seq, len(batch.metrics))
    finally:
        await producer.stop()  # flushes what is queued
    return sent


async def _start_with_retry(producer: AIOKafkaProducer, bootstrap: str, stop: asyncio.Event) -> None:
    """Connect, retrying with backoff: an agent started before its broker keeps trying."""

    delay = 1.0
    while True:
        try:
            await producer.start()
            log.info("event=agent_connected bootstrap=%s", bootstrap)
            return
        except KafkaConnectionError as exc:
            if stop.is_set():
                raise
            log.warning("event=broker_unreachable bootstrap=%s retry_in_s=%.0f error=%s", bootstrap, delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
