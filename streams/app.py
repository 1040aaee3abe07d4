"""The Faust worker: agent events in, alerts (and scale signals) out, policies applied live.

State lives in three tables:

* ``hosts`` (host id -> :class:`~policies.engine.HostState`): windows, pending breaches,
  flap history and schedule observations of every host of the assigned partitions;
* ``groups`` (group rule -> :class:`~policies.group.GroupState`);
* ``fired`` (fingerprint -> latest alert), whose changelog *is* the alert topic.

What subscribers were told is read from ``fired``, never from ``hosts``: publishing an alert
and recording that it was announced are one write, and Faust flushes changelog writes before
it commits source offsets. After a crash the restarted worker replays the events after the
last commit; an alert already published is found in ``fired`` and not sent again, one that
was not is sent now. Never lost, never twice (a replayed alert also carries the same id).

The policy set, silences and the fleet's firing alerts (inhibition sources) come from a
:class:`~streams.control_feed.ControlFeed` every worker reads in full. A policy set that does
not load is refused with its ``file:line`` problems and the last good set stays.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
import orjson
from aiokafka.structs import ConsumerRecord

from collector.contract import (
    Alert,
    DecodeError,
    LogCounts,
    MetricBatch,
    ProcessEvent,
    ProcessSummary,
    Topics,
    decode,
    decode_as,
    encode,
)
from policies.control import POLICY_KEY, ControlError, PublishedPolicy, decode_silence
from policies.engine import Evaluator, GroupSample, StateCache
from policies.group import GroupState, evaluate_group, retire_group
from policies.lifecycle import Announced
from policies.loader import PolicyError, load_policy_texts
from policies.model import PolicySet
from policies.suppress import Suppressor, alert_labels
from streams import downcheck as streams_downcheck
from streams.consumer import App as FleetApp
from streams.consumer import raw_table_serializers
from streams.control_feed import ControlFeed

log = logging.getLogger(__name__)


@dataclass
class WorkerSettings:
    """One worker process: its broker, consumer group (``app_id``), topics and initial policy.

    ``policy`` is used until (and unless) the policy topic holds an applied set.
    """

    bootstrap: str
    topics: Topics
    policy: PolicySet
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

    events: int = 0
    heartbeats: int = 0
    downcheck_signals: int = 0
    watched: int = 0
    heartbeat_lag_s: float = 0.0  # how far behind the broker the slowest heartbeat partition is read
    malformed: int = 0
    alerts: int = 0
    scale_signals: int = 0
    policy_version: str = ""
    policies_refused: int = 0

    def line(self) -> str:
        return (
            f"events={self.events} heartbeats={self.heartbeats} watched={self.watched}"
            f" heartbeat_lag_s={self.heartbeat_lag_s:.1f}"
            f" downcheck_signals={self.downcheck_signals} malformed={self.malformed} alerts_sent={self.alerts}"
            f" scale_signals={self.scale_signals} policy={self.policy_version or '-'}"
        )


# Keyed by the record's bytes, so it can never go stale (not even across rebalances).
@functools.lru_cache(maxsize=65_536)
def _announced(raw: bytes) -> Announced | None:
    try:
        alert: Alert = decode_as(raw, Alert)
    except DecodeError:
        log.warning("event=foreign_alert_record reason=unreadable")
        return None
    return Announced("" if alert.state == "resolved" else alert.severity, alert.started_at, alert.at)


def broker_urls(bootstrap: str) -> list[str]:
    """``host:port,host:port`` -> Faust's ``kafka://`` URLs."""
    return [f"kafka://{server.strip()}" for server in bootstrap.split(",") if server.strip()]


class PolicyHolder:
    """The evaluator and the live policy; applies published sets, keeps the last good one."""

    def __init__(self, policy: PolicySet, stats: WorkerStats) -> None:
        self.evaluator = Evaluator(policy)
        self.stats = stats
        stats.policy_version = policy.version
        # group rule -> the metric it read, for group rules a later set removed: their open
        # alerts are closed by the worker holding the group's state (see create_app)
        self.retired_groups: dict[str, str] = {}

    @property
    def suppressor(self) -> Suppressor:
        return self.evaluator.suppressor

    def on_policy(self, record: ConsumerRecord) -> None:
        if record.key != POLICY_KEY or record.value is None:
            return
        try:
            published = PublishedPolicy.decode(record.value)
            policy = load_policy_texts(published.files)
        except (ControlError, PolicyError) as exc:
            self.stats.policies_refused += 1
            problems = exc.problems if isinstance(exc, PolicyError) else [str(exc)]
            log.error(
                "event=policy_refused offset=%d keeping=%s problems=%d\n  %s",
                record.offset,
                self.evaluator.policy.version,
                len(problems),
                "\n  ".join(problems),
            )
            return
        if policy.version == self.evaluator.policy.version:
            return
        kept = {r.name for r in policy.group_rules}
        self.retired_groups.update({r.name: r.metric for r in self.evaluator.policy.group_rules if r.name not in kept})
        for name in kept:
            self.retired_groups.pop(name, None)
        self.evaluator.policy = policy
        self.stats.policy_version = policy.version
        log.info(
            "event=policy_applied version=%s rules=%d applied_by=%s",
            policy.version,
            len(policy),
            published.applied_by or "-",
        )

    def on_silence(self, record: ConsumerRecord) -> None:
        sid = (record.key or b"").decode(errors="replace")
        if record.value is None:
            self.suppressor.put_silence(None, sid)
            return
        try:
            self.suppressor.put_silence(decode_silence(record.value), sid)
        except ControlError as exc:
            log.warning("event=silence_unreadable id=%s reason=%r", sid, str(exc))

    def on_alert(self, record: ConsumerRecord) -> None:
        """Every firing alert of the fleet is a possible inhibition source."""
        try:
            alert: Alert = decode_as(record.value, Alert)
        except DecodeError:
            return
        labels = alert_labels(
            alert.labels,
            (),
            rule=alert.rule,
            kind=alert.kind,
            severity=alert.severity,
            host_id=alert.host_id,
            region=alert.region,
            metric=alert.metric,
        )
        self.suppressor.note_firing(alert.fingerprint, labels if alert.state == "firing" else None)


def create_app(settings: WorkerSettings, holder: PolicyHolder | None = None) -> tuple[faust.App, WorkerStats]:
    """Build the Faust app with its agents, tables and stats timer."""
    app = FleetApp(
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
    stats = holder.stats if holder is not None else WorkerStats()
    holder = holder or PolicyHolder(settings.policy, stats)
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "value_serializer": "raw", "key_serializer": "raw"}
    topics = settings.topics
    events_topic = app.topic(topics.metrics, topics.processes, topics.logs, **raw)
    alerts_topic = app.topic(topics.alerts, **raw)
    group_topic = app.topic(topics.group_samples, **raw)
    scale_topic = app.topic(topics.scale, **raw)

    def raw_table(name: str, **extra: Any) -> Any:
        table: Any = app.Table(
            name, default=None, partitions=settings.partitions, key_type=bytes, value_type=bytes, **extra
        )
        return raw_table_serializers(table)

    fired = raw_table("fired", changelog_topic=alerts_topic)
    hosts = raw_table("hosts")
    groups = raw_table("groups")

    def announced(fp: str) -> Announced | None:
        record = fired.get(fp.encode())
        return None if record is None else _announced(record)

    evaluator = holder.evaluator
    evaluator.announced = announced
    host_states = StateCache()

    def publish(alert: Alert) -> None:
        fired[alert.fingerprint.encode()] = encode(alert)  # the publication itself
        stats.alerts += 1
        log.info(
            "event=alert %s rule=%s severity=%s host=%s metric=%s value=%g",
            alert.notice,
            alert.rule,
            alert.severity,
            alert.host_id or "-",
            alert.metric,
            alert.value,
        )

    def muted(alert: Alert) -> str | None:
        """Why a silence, maintenance window or inhibition holds this alert back (or None)."""
        labels = alert_labels(
            {},
            (),
            rule=alert.rule,
            kind=alert.kind,
            severity=alert.severity,
            host_id=alert.host_id,
            region=alert.region,
            metric=alert.metric,
        )
        return holder.suppressor.reason(labels, alert.at, alert.fingerprint)

    streams_downcheck.install(
        app,
        topics,
        raw,
        raw_table,
        fired,
        lambda host_id, region, labels: evaluator.policy.downcheck_for(host_id, region, labels),
        publish,
        muted,
        stats,
    )

    @app.agent(events_topic)
    async def evaluate(stream: Any) -> None:
        async for payload in stream:
            try:
                event = decode(payload)
            except DecodeError as exc:
                stats.malformed += 1
                log.warning("event=malformed_record reason=%r malformed_total=%d", str(exc), stats.malformed)
                continue
            if not isinstance(event, MetricBatch | ProcessSummary | LogCounts | ProcessEvent):
                continue  # log excerpts and the like are for people and the sink
            stats.events += 1
            key = event.host_id.encode()
            state = host_states.load(key, hosts.get(key))
            result = evaluator.evaluate(event, state)
            for alert in result.alerts:
                publish(alert)
            if result.changed:
                hosts[key] = host_states.store(key, state)
            for sample in result.group_samples:
                await group_topic.send(key=sample.rule.encode(), value=orjson.dumps(sample.__dict__))

    @app.agent(group_topic)
    async def evaluate_groups(stream: Any) -> None:
        async for payload in stream:
            try:
                body = orjson.loads(payload)
                if "retire" in body:
                    retire(body["retire"], body["metric"])
                    continue
                sample = GroupSample(**body)
            except (orjson.JSONDecodeError, TypeError, KeyError):
                stats.malformed += 1
                continue
            rule = next((r for r in evaluator.policy.group_rules if r.name == sample.rule), None)
            if rule is None:
                continue  # the rule was removed since
            key = rule.name.encode()
            state = GroupState.from_bytes(groups.get(key))
            alerts, signals = evaluate_group(rule, state, sample, evaluator.suppressor, announced)
            groups[key] = state.to_bytes()
            for alert in alerts:
                publish(alert)
            for signal in signals:
                await scale_topic.send(key=key, value=encode(signal))
                stats.scale_signals += 1
                log.info("event=scale rule=%s action=%s value=%g", signal.rule, signal.action, signal.value)

    def retire(name: str, metric: str) -> None:
        """A removed group rule's state: close its open alert, then forget the state."""
        key = name.encode()
        raw = groups.get(key)
        if raw is None or any(r.name == name for r in evaluator.policy.group_rules):
            return  # already retired, or the rule is back
        for alert in retire_group(name, metric, GroupState.from_bytes(raw), announced):
            publish(alert)
        del groups[key]

    @app.timer(settings.stats_interval_s)
    async def report() -> None:
        holder.suppressor.prune(time.time())  # ended silences are no longer matched against
        # Tables are written only from their stream (the changelog needs the event's
        # partition): a removed group rule whose state this worker holds is retired by a
        # record on the group topic, keyed like the rule's samples.
        for name, metric in list(holder.retired_groups.items()):
            if groups.get(name.encode()) is not None:
                await group_topic.send(key=name.encode(), value=orjson.dumps({"retire": name, "metric": metric}))
        log.info("event=worker_stats %s", stats.line())

    @app.task
    async def announce() -> None:
        policy = evaluator.policy
        log.info(
            "event=worker_started app_id=%s policy=%s rules=%d topics=%s",
            settings.app_id,
            policy.version,
            len(policy),
            ",".join(events_topic.topics),
        )

    return app, stats


def run_worker(settings: WorkerSettings, loglevel: str = "info") -> None:
    """Create the topics, read the control topics, then run the Faust worker until SIGTERM/SIGINT."""
    from faust.worker import Worker

    from collector.kafka_io import ensure_all_topics, ensure_topics

    (settings.datadir / settings.app_id).mkdir(parents=True, exist_ok=True)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(ensure_all_topics(settings.bootstrap, settings.topics, settings.partitions))
    stats = WorkerStats()
    holder = PolicyHolder(settings.policy, stats)
    topics = settings.topics
    feed = ControlFeed(
        settings.bootstrap,
        {topics.policies: holder.on_policy, topics.silences: holder.on_silence, topics.alerts: holder.on_alert},
    )
    loop.run_until_complete(feed.start())
    loop.run_until_complete(feed.catch_up())
    app, stats = create_app(settings, holder)
    # The tables' changelogs too: left to Faust, a changelog created while the worker starts
    # can be in the consumer's metadata with 0 partitions, and the first write to that table
    # then fails with PartitionsMismatch (the agent crashes until the worker restarts).
    data_topics = set(topics.all())
    changelogs = [t.changelog_topic.get_topic_name() for t in app.tables.values()]
    loop.run_until_complete(
        ensure_topics(
            settings.bootstrap,
            [name for name in changelogs if name not in data_topics],
            settings.partitions,
            lambda name: {"cleanup.policy": "compact"},
        )
    )

    @app.task
    async def follow_control_topics() -> None:
        await feed.follow()  # cancelled (and closed) when the worker stops

    worker = Worker(app, loglevel=loglevel, loop=loop, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    finally:
        log.info("event=worker_stopped %s", stats.line())
