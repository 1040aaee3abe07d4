"""Subscribe to the alert topic and show alerts as they come (``fleetpulse alerts tail``)."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from aiokafka import AIOKafkaConsumer

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
    bootstrap: str,
    topics: Topics,
    stop: asyncio.Event,
    on_alert: Callable[[Alert], None],
    from_beginning: bool = False,
) -> None:
    """Call ``on_alert`` for every alert until ``stop`` is set (no consumer group, no commits)."""
    consumer = AIOKafkaConsumer(
        topics.alerts,
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
    )
    await consumer.start()
    try:
        while not stop.is_set():
            fetched = await consumer.getmany(timeout_ms=500)
            for records in fetched.values():
                for record in records:
                    try:
                        on_alert(decode_as(record.value, Alert))
                    except DecodeError as exc:
                        log.warning("event=malformed_alert offset=%d reason=%r", record.offset, str(exc))
    finally:
        await consumer.stop()


def printer(out: TextIO = sys.stdout, as_json: bool = False) -> Callable[[Alert], None]:
    """An ``on_alert`` that prints each alert as a line (or as its JSON wire form)."""
    from collector.contract import encode

    def show(alert: Alert) -> None:
        out.write((encode(alert).decode() if as_json else format_alert(alert)) + "\n")
        out.flush()

    return show
