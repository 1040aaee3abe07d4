"""The group-rule stage: samples of a group of hosts, keyed by rule, against its min/max.

State lives in the ``groups`` table (group rule -> :class:`~policies.group.GroupState`). Scale
signals go to the scale topic. A group rule a later policy set removed is retired by the
worker holding its state: tables are written only from their stream (the changelog needs the
event's partition), so every stats interval a ``retire`` record goes on the group topic,
keyed like the rule's samples, and the agent closes the rule's open alert and forgets it.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from collector.contract import encode
from policies.engine import GroupSample
from policies.group import GroupState, evaluate_group, retire_group
from policies.model import GroupRule
from streams.context import WorkerContext

log = logging.getLogger(__name__)


class GroupRuleStage:
    """The ``evaluate_groups`` agent, and the retirement of removed group rules."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self.group_topic = ctx.topic(ctx.settings.topics.group_samples)
        self.scale_topic = ctx.topic(ctx.settings.topics.scale)
        self.groups = ctx.table("groups")

    async def evaluate_groups(self, stream: Any) -> None:
        async for payload in stream:
            await self.on_record(payload)

    async def on_record(self, payload: bytes) -> None:
        try:
            body = orjson.loads(payload)
            if "retire" in body:
                self.retire(body["retire"], body["metric"])
                return
            sample = GroupSample(**body)
        except (orjson.JSONDecodeError, TypeError, KeyError):
            self.ctx.stats.malformed += 1
            return
        rule = self.rule(sample.rule)
        if rule is not None:  # else the rule was removed since
            await self.evaluate(rule, sample)

    def rule(self, name: str) -> GroupRule | None:
        return next((r for r in self.ctx.holder.evaluator.policy.group_rules if r.name == name), None)

    async def evaluate(self, rule: GroupRule, sample: GroupSample) -> None:
        key = rule.name.encode()
        state = GroupState.from_bytes(self.groups.get(key))
        alerts, signals = evaluate_group(rule, state, sample, self.ctx.holder.suppressor, self.ctx.announced)
        self.groups[key] = state.to_bytes()
        for alert in alerts:
            self.ctx.publish(alert)
        for signal in signals:
            await self.scale_topic.send(key=key, value=encode(signal))
            self.ctx.stats.scale_signals += 1
            log.info("event=scale rule=%s action=%s value=%g", signal.rule, signal.action, signal.value)

    def retire(self, name: str, metric: str) -> None:
        """A removed group rule's state: close its open alert, then forget the state."""
        key = name.encode()
        raw = self.groups.get(key)
        if raw is None or self.rule(name) is not None:
            return  # already retired, or the rule is back
        for alert in retire_group(name, metric, GroupState.from_bytes(raw), self.ctx.announced):
            self.ctx.publish(alert)
        del self.groups[key]

    async def send_retirements(self) -> None:
        """A ``retire`` record for each removed group rule whose state this worker holds."""
        for name, metric in list(self.ctx.holder.retired_groups.items()):
            if self.groups.get(name.encode()) is not None:
                await self.group_topic.send(key=name.encode(), value=orjson.dumps({"retire": name, "metric": metric}))


def install(ctx: WorkerContext) -> None:
    """Add the group-rule stage's agent and table to the worker's app, its retirements to the report."""
    stage = GroupRuleStage(ctx)
    # named as before the stages had modules of their own (Faust keys app.agents and logs by it)
    ctx.app.agent(stage.group_topic, name="streams.app.evaluate_groups")(stage.evaluate_groups)
    ctx.report_steps.append(stage.send_retirements)
