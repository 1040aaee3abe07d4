"""Read the alert topic: show alerts as they come (``fleetpulse alerts tail``), or a time span of them."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from aiokafka import AIOKafkaConsumer

from collector.connection import Bootstrap, as_connection, start_client
from collector.contract import Alert, DecodeError, Topics, decode_as

log = logging.getLogger(__name__)


def format_alert(alert: Alert) -> str:
    """One line per transition, newest state first, for people reading a terminal."""
    at = datetime.fromtimestamp(alert.at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    scope = f"host={alert.host_id} region={alert.region}" if alert.host_id else f"kind={alert.kind}"
    return (
        f"{at} {alert.notice.upper():11} {alert.severity:8} {alert.rule} {scope} "
        f"{alert.metric}={alert.value:g} threshold={alert.threshold:g} - {alert.summary}"
    )


async def tail_alerts(
    bootstrap: Bootstrap,
    topics: Topics,
    stop: asyncio.Event,
    on_alert: Callable[[Alert], None],
    from_beginning: bool = False,
) -> None:
    """Call ``on_alert`` for every alert until ``stop`` is set (no consumer group, no commits)."""
    consumer = AIOKafkaConsumer(
        topics.alerts,
        **as_connection(bootstrap).client_options(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
    )
    await start_client(consumer, bootstrap)
    try:
        while not stop.is_set():
            fetched = await consumer.getmany(timeout_ms=500)
            for record in (r for records in fetched.values() for r in records):
                alert = _decoded(record)
                if alert is not None:
                    on_alert(alert)
    finally:
        await consumer.stop()


def _decoded(record: Any) -> Alert | None:
    """The alert in a consumer record; a malformed one is logged and skipped (None)."""
    try:
        alert: Alert = decode_as(record.value, Alert)
    except DecodeError as exc:
        log.warning("event=malformed_alert offset=%d reason=%r", record.offset, str(exc))
        return None
    return alert


async def read_alerts(
    bootstrap: Bootstrap,
    topics: Topics,
    since: float,
    until: float,
    *,
    stop: asyncio.Event | None = None,
    margin_s: float = 60.0,
    drain_timeout_s: float = 30.0,
) -> list[Alert]:
    """The alerts written from ``since`` on, read until the clock passes ``until`` (epoch seconds).

    Each partition is read from its first record stamped ``margin_s`` before ``since``: record
    times are the worker's clock, the margin absorbs its skew from ours, and callers filter on
    the alerts' own times anyway. Reading ends once ``until`` has passed and every partition
    has been read up to where it ended then (at most ``drain_timeout_s`` later); ``stop`` ends
    it early with what was read. No consumer group, no commits. A missing topic reads as empty.
    """
    # Subscribed without a group, the consumer is given every partition once start() has the
    # topic's metadata; they are then moved to the run's start by time.
    consumer = AIOKafkaConsumer(
        topics.alerts,
        **as_connection(bootstrap).client_options(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await start_client(consumer, bootstrap)
    out: list[Alert] = []
    try:
        parts = sorted(consumer.assignment(), key=lambda tp: tp.partition)
        if not parts:
            return out
        from_ms = max(0, int((since - margin_s) * 1000))
        found = await consumer.offsets_for_times({tp: from_ms for tp in parts})
        for tp in parts:
            if found.get(tp) is None:  # nothing that recent yet: read what comes from now on
                await consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, found[tp].offset)
        ends: dict[Any, int] | None = None  # TopicPartition -> end offset when ``until`` passed
        give_up = until + drain_timeout_s
        while stop is None or not stop.is_set():
            now = time.time()
            if ends is None and now >= until:
                ends = await consumer.end_offsets(parts)
                give_up = now + drain_timeout_s
            if ends is not None:
                positions = [await consumer.position(tp) for tp in parts]
                if all(at >= ends[tp] for at, tp in zip(positions, parts, strict=True)):
                    break
                if now >= give_up:
                    log.warning("event=alert_read_incomplete topic=%s read=%d", topics.alerts, len(out))
                    break
            wait_s = 0.2 if ends is not None else min(0.5, max(0.01, until - now))
            fetched = await consumer.getmany(timeout_ms=int(wait_s * 1000))
            for records in fetched.values():
                out.extend(a for a in map(_decoded, records) if a is not None)
    finally:
        await consumer.stop()
    return out


def printer(out: TextIO = sys.stdout, as_json: bool = False) -> Callable[[Alert], None]:
    """An ``on_alert`` that prints each alert as a line (or as its JSON wire form)."""
    from collector.contract import encode

    def show(alert: Alert) -> None:
        out.write((encode(alert).decode() if as_json else format_alert(alert)) + "\n")
        out.flush()

    return show
