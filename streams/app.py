"""The Faust worker: metric batches in, threshold alerts out.

The alert topic *is* the changelog of the table that holds firing alerts. Publishing an
alert and recording that it fired are therefore one write, and Faust flushes changelog
writes before it commits source offsets. After a crash at any point the restarted worker
either finds the alert in the restored table (it was published: nothing is re-sent) or
replays the sample that caused it (it was not: it is published now). Never lost, never
twice. Pending (not yet sustained) breaches live in an ordinary table.

The cost: restoring the table reads the alert topic's retained history for the assigned
partitions at start. Alerts are transitions, not samples, so that history stays small.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust

from collector.contract import Alert, DecodeError, MetricBatch, Topics, decode_as, encode
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
    # How long the group waits for a silent member before giving its partitions away: after
    # a crash, the restarted worker resumes only once the dead member's session expired.
    session_timeout_s: float = 30.0


@dataclass
class WorkerStats:
    """Counters logged periodically and at shutdown (malformed records are counted here)."""

    batches: int = 0
    malformed: int = 0
    alerts: int = 0

    def line(self) -> str:
        return f"batches={self.batches} malformed={self.malformed} alerts_sent={self.alerts}"


def _firing_status_of(alert: Alert) -> AlertStatus | None:
    if alert.state != "firing":
        return None
    return AlertStatus("firing", alert.started_at, alert.value, alert.threshold)


# Keyed by the record's bytes, so it can never go stale (not even across rebalances).
@functools.lru_cache(maxsize=65_536)
def _firing_status(raw: bytes) -> AlertStatus | None:
    try:
        return _firing_status_of(decode_as(raw, Alert))
    except DecodeError:
        # Someone else wrote to the alert topic; it is not our state.
        log.warning("event=foreign_alert_record reason=unreadable")
        return None


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
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
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
    # fingerprint -> the latest Alert (encoded) of that fingerprint; its changelog is the
    # alert topic itself (see the module doc). Resolved alerts stay as values: deleting them
    # would put tombstones on the alert topic.
    fired = app.Table(
        "fired",
        default=None,
        partitions=settings.partitions,
        key_type=bytes,
        value_type=bytes,
        changelog_topic=alerts_topic,
    )
    # Faust picks json for bytes types; the alert topic carries the contract's bytes as-is.
    table_impl: Any = fired
    table_impl.key_serializer = table_impl.value_serializer = "raw"
    # fingerprint -> AlertStatus.to_dict() of breaches still inside their `for` duration.
    pending = app.Table("pending", default=None, partitions=settings.partitions)

    def status_of(fp: str) -> AlertStatus | None:
        raw = fired.get(fp.encode())
        firing = None if raw is None else _firing_status(raw)
        if firing is not None:
            return firing
        raw_pending = pending.get(fp)
        return None if raw_pending is None else AlertStatus.from_dict(raw_pending)

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
            for out in evaluate_batch(index, batch, status_of):
                key = out.fingerprint.encode()
                if out.alert is not None:
                    fired[key] = encode(out.alert)  # the publication itself
                    stats.alerts += 1
                    log.info(
                        "event=alert state=%s rule=%s host=%s metric=%s value=%g",
                        out.alert.state,
                        out.alert.rule,
                        out.alert.host_id,
                        out.alert.metric,
                        out.alert.value,
                    )
                if out.status is not None and out.status.phase == "pending":
                    pending[out.fingerprint] = out.status.to_dict()
                elif out.fingerprint in pending:
                    del pending[out.fingerprint]

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

    from collector.kafka_io import ensure_all_topics

    (settings.datadir / settings.app_id).mkdir(parents=True, exist_ok=True)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(ensure_all_topics(settings.bootstrap, settings.topics, settings.partitions))
    app, stats = create_app(settings)
    worker = Worker(app, loglevel=loglevel, loop=loop, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    finally:
        log.info("event=worker_stopped %s", stats.line())
