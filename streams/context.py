"""What every stage of the worker is handed: :class:`WorkerContext`.

A stage (``streams.evaluation``, ``streams.group_rules``, ``streams.downcheck``) is a module
with ``install(ctx)``, which adds its agents, tables and timers to ``ctx.app``. What stages
share is here, defined once: how topics and tables carry our bytes, the ``fired`` table and
how an alert is published through it, the live policy, the stats.

What subscribers were told is read from ``fired``, never from a stage's own state:
publishing an alert and recording that it was announced are one write, and Faust flushes
changelog writes before it commits source offsets. After a crash the restarted worker
replays the events after the last commit; an alert already published is found in ``fired``
and not sent again, one that was not is sent now. Never lost, never twice (a replayed alert
also carries the same id).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from faust.types import TopicT

from collector.contract import Alert, DecodeError, decode_as, encode
from policies.lifecycle import Announced
from streams.consumer import raw_table_serializers
from streams.policy_holder import PolicyHolder
from streams.settings import WorkerSettings, WorkerStats

log = logging.getLogger(__name__)

# Topics carry our own encoded bytes; Faust neither decodes nor encodes them.
RAW: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "value_serializer": "raw", "key_serializer": "raw"}

ReportStep = Callable[[], Awaitable[None]]


# Keyed by the record's bytes, so it can never go stale (not even across rebalances).
@functools.lru_cache(maxsize=65_536)
def announced_in(raw: bytes) -> Announced | None:
    """What a ``fired`` record says was announced (None: not an alert we can read)."""
    try:
        alert: Alert = decode_as(raw, Alert)
    except DecodeError:
        log.warning("event=foreign_alert_record reason=unreadable")
        return None
    return Announced("" if alert.state == "resolved" else alert.severity, alert.started_at, alert.at)


class WorkerContext:
    """One worker's Faust app and what its stages share.

    * ``fired`` (fingerprint -> latest alert), whose changelog *is* the alert topic;
    * ``holder``: the live policy, built with ``fired`` as its truth about announced alerts;
    * ``report_steps``: what a stage does every stats interval, before the stats line.
    """

    def __init__(self, settings: WorkerSettings, app: faust.App) -> None:
        self.settings = settings
        self.app = app
        self.stats = WorkerStats()
        self.report_steps: list[ReportStep] = []
        self._topics: dict[tuple[str, ...], TopicT] = {}
        self.fired = self.table("fired", changelog_topic=self.topic(settings.topics.alerts))
        self.holder = PolicyHolder(settings.policy, self.stats, announced=self.announced, verifier=settings.verifier)

    def topic(self, *names: str) -> TopicT:
        """The app's topic over ``names`` carrying raw bytes (one object per set of names)."""
        if names not in self._topics:
            self._topics[names] = self.app.topic(*names, **RAW)
        return self._topics[names]

    def table(self, name: str, **extra: Any) -> Any:
        """A table of bytes keys and values (``None`` when missing); ``name`` names its changelog."""
        table = self.app.Table(
            name, default=None, partitions=self.settings.partitions, key_type=bytes, value_type=bytes, **extra
        )
        return raw_table_serializers(table)

    def announced(self, fingerprint: str) -> Announced | None:
        record = self.fired.get(fingerprint.encode())
        return None if record is None else announced_in(record)

    def publish(self, alert: Alert) -> None:
        self.fired[alert.fingerprint.encode()] = encode(alert)  # the publication itself
        self.stats.alerts += 1
        log.info(
            "event=alert %s rule=%s severity=%s host=%s metric=%s value=%g",
            alert.notice,
            alert.rule,
            alert.severity,
            alert.host_id or "-",
            alert.metric,
            alert.value,
        )
