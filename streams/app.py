"""The Faust worker: metric batches in, threshold alerts out, alert state in a Faust table.

Delivery order is what keeps a restart honest: an alert is sent and *acknowledged* before
the table records the transition, and Faust flushes the table changelog before it commits
source offsets. So a crash at any point either replays the sample (the table has not moved:
the transition is re-sent with the same ``event_id``) or finds the state already moved
(nothing is re-sent). A firing alert is never lost; a duplicate needs a crash inside the
few milliseconds between the acknowledgement and the changelog write, and carries the
same ``event_id`` so stores dedupe it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust

from collector.contract import DecodeError, MetricBatch, Topics, decode_as, encode
from policies.engine import evaluate_batch
from policies.model import ThresholdRule
from policies.threshold import AlertStatus, RuleIndex

log = logging.getLogger(__name__)


@dataclass
class WorkerSettings:
    """One worker process: its broker, consumer group (``app_id``), topics and rules."""

    bootstrap: str
    topics: Topics
    rules: list[ThresholdRule]
    app_id: str = "fleetpulse-worker"
    partitions: int = 8
    datadir: Path = field(default_factory=lambda: Path(".fleetpulse/worker"))
    stats_interval_s: float = 10.0


@dataclass
class WorkerStats:
    """Counters logged periodically and at shutdown (malformed records are counted here)."""

    batches: int = 0
    malformed: int = 0
    alerts: int = 0

    def line(self) -> str:
        return f"batches={self.batches} malformed={self.malformed} alerts_sent={self.alerts}"


def broker_urls(bootstrap: str) -> list[str]:
    """``host:port,host:port`` -> Faust's ``kafka://`` URLs."""
    return [f"kafka://{server.strip()}" for server in bootstrap.split(",") if server.strip()]


def create_app(settings: WorkerSettings) -> tuple[faust.App, WorkerStats]:
    """Build the Faust app with its agent, table and stats timer."""
    app = faust.App(
        settings.app_id,
        broker=broker_urls(settings.bootstrap),
        store="memory://",
        datadir=str(settings.datadir / settings.app_id),
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        autodiscover=False,
    )
    stats = WorkerStats()
    index = RuleIndex(settings.rules)
    metrics_topic = app.topic(
        settings.topics.metrics,
        key_type=bytes,
        value_type=bytes,
        value_serializer="raw",
        key_serializer="raw",
    )
    alerts_topic = app.topic(
        settings.topics.alerts, key_type=bytes, value_type=bytes, value_serializer="raw", key_serializer="raw"
    )
    # fingerprint -> AlertStatus.to_dict(); absent means inactive.
    alert_state = app.Table("alert_state", default=None, partitions=settings.partitions)

    def status_of(fp: str) -> AlertStatus | None:
        raw = alert_state.get(fp)
        return None if raw is None else AlertStatus.from_dict(raw)

    @app.agent(metrics_topic)
    async def evaluate(stream: Any) -> None:
        async for payload in stream:
            try:
                batch: MetricBatch = decode_as(payload, MetricBatch)
            except DecodeError as exc:
                stats.malformed += 1
                log.warning(
                    "event=malformed_record topic=%s reason=%r malformed_total=%d",
                    settings.topics.metrics,
                    str(exc),
                    stats.malformed,
                )
                continue
            stats.batches += 1
            for outcome in evaluate_batch(index, batch, status_of):
                if outcome.alert is not None:
                    delivered = await alerts_topic.send(
                        key=outcome.fingerprint.encode(), value=encode(outcome.alert)
                    )
                    await delivered  # acknowledged before the state moves (see module doc)
                    stats.alerts += 1
                    log.info(
                        "event=alert state=%s rule=%s host=%s metric=%s value=%g",
                        outcome.alert.state,
                        outcome.alert.rule,
                        outcome.alert.host_id,
                        outcome.alert.metric,
                        outcome.alert.value,
                    )
                if outcome.status is None:
                    alert_state.pop(outcome.fingerprint, None)
                else:
                    alert_state[outcome.fingerprint] = outcome.status.to_dict()

    @app.timer(settings.stats_interval_s)
    async def report() -> None:
        log.info("event=worker_stats %s", stats.line())

    @app.task
    async def announce() -> None:
        log.info(
            "event=worker_started app_id=%s rules=%d topic=%s",
            settings.app_id,
            len(index),
            settings.topics.metrics,
        )

    return app, stats


def run_worker(settings: WorkerSettings, loglevel: str = "info") -> None:
    """Create the topics, then run the Faust worker until SIGTERM/SIGINT."""
    from faust.worker import Worker

    from collector.kafka_io import ensure_topics

    (settings.datadir / settings.app_id).mkdir(parents=True, exist_ok=True)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(ensure_topics(settings.bootstrap, settings.topics.all(), settings.partitions))
    app, stats = create_app(settings)
    worker = Worker(app, loglevel=loglevel, loop=loop, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    finally:
        log.info("event=worker_stopped %s", stats.line())
