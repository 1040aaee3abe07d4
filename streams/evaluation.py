"""The evaluation stage: every host's metrics, process and log events through the live policy.

Per-host state lives in the ``hosts`` table (host id -> :class:`~policies.engine.HostState`):
windows, pending breaches, flap history and schedule observations of every host of the
assigned partitions. Alerts are published through ``fired``; a group rule's samples go on to
the group-sample topic, keyed by the rule (:mod:`streams.group_rules`).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from collector.contract import (
    DecodeError,
    LogCounts,
    MetricBatch,
    ProcessEvent,
    ProcessSummary,
    Topics,
    decode,
)
from policies.engine import StateCache
from streams.context import WorkerContext

log = logging.getLogger(__name__)

Evaluated = MetricBatch | ProcessSummary | LogCounts | ProcessEvent


def event_topics(topics: Topics) -> tuple[str, ...]:
    """The topics whose events the policy evaluates."""
    return topics.metrics, topics.processes, topics.logs


class EvaluationStage:
    """The ``evaluate`` agent and the state it keeps."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self.events_topic = ctx.topic(*event_topics(ctx.settings.topics))
        self.group_topic = ctx.topic(ctx.settings.topics.group_samples)
        self.hosts = ctx.table("hosts")
        self.host_states = StateCache()

    async def evaluate(self, stream: Any) -> None:
        async for payload in stream:
            event = self.decoded(payload)
            if event is not None:
                await self.on_event(event)

    def decoded(self, payload: bytes) -> Evaluated | None:
        """The event if the policy evaluates its type; a malformed record is counted."""
        stats = self.ctx.stats
        try:
            event = decode(payload)
        except DecodeError as exc:
            stats.malformed += 1
            log.warning("event=malformed_record reason=%r malformed_total=%d", str(exc), stats.malformed)
            return None
        if not isinstance(event, Evaluated):
            return None  # log excerpts and the like are for people and the sink
        return event

    async def on_event(self, event: Evaluated) -> None:
        self.ctx.stats.events += 1
        key = event.host_id.encode()
        state = self.host_states.load(key, self.hosts.get(key))
        result = self.ctx.holder.evaluator.evaluate(event, state)
        for alert in result.alerts:
            self.ctx.publish(alert)
        if result.changed:
            self.hosts[key] = self.host_states.store(key, state)
        for sample in result.group_samples:
            await self.group_topic.send(key=sample.rule.encode(), value=orjson.dumps(sample.__dict__))


def install(ctx: WorkerContext) -> None:
    """Add the evaluation stage's agent and table to the worker's app."""
    stage = EvaluationStage(ctx)
    # named as before the stages had modules of their own (Faust keys app.agents and logs by it)
    ctx.app.agent(stage.events_topic, name="streams.app.evaluate")(stage.evaluate)
