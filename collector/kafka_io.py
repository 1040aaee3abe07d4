"""Kafka plumbing shared by every process: where the broker is, topic creation, readiness."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from collector.connection import DEFAULT_BOOTSTRAP, Bootstrap, as_connection, start_client
from collector.contract import Topics

log = logging.getLogger(__name__)


DEFAULT_PARTITIONS = 8


def bootstrap_servers(explicit: str | None = None) -> str:
    """The broker to use: an explicit value, else ``KAFKA_BOOTSTRAP_SERVERS``, else local."""
    return explicit or os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or DEFAULT_BOOTSTRAP


def partitions_from_env() -> int:
    """Partition count for the pipeline's topics (``FLEETPULSE_PARTITIONS``, default 8).

    Faust requires a table's changelog to have as many partitions as its source topic, so
    every topic is created with the same count before any worker starts.
    """
    raw = os.environ.get("FLEETPULSE_PARTITIONS", str(DEFAULT_PARTITIONS))
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"FLEETPULSE_PARTITIONS must be an integer, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"FLEETPULSE_PARTITIONS must be >= 1, got {value}")
    return value


@contextlib.contextmanager
def quiet_client_logs() -> Iterator[None]:
    """Probing a broker that is still starting makes aiokafka log an ERROR per attempt."""
    logger = logging.getLogger("aiokafka")
    before = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(before)


async def broker_ready(bootstrap: Bootstrap, timeout_s: float = 5.0) -> bool:
    """True when a client metadata round-trip succeeds (an open port is not enough)."""
    with quiet_client_logs():
        return await _metadata_round_trip(bootstrap, timeout_s)


async def _metadata_round_trip(bootstrap: Bootstrap, timeout_s: float) -> bool:
    admin = AIOKafkaAdminClient(**as_connection(bootstrap).client_options(), request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        await asyncio.wait_for(admin.list_topics(), timeout_s)
        return True
    except (TimeoutError, KafkaError, OSError):
        return False
    finally:
        # Closing a half-started client may fail too; there is nothing left to do then.
        with contextlib.suppress(Exception):
            await admin.close()


async def wait_for_broker(bootstrap: Bootstrap, timeout_s: float) -> None:
    """Poll until the broker answers metadata requests; raise ``TimeoutError`` otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        wait_s = min(5.0, max(0.5, deadline - time.monotonic()))
        if await broker_ready(bootstrap, timeout_s=wait_s):
            return
        await asyncio.sleep(0.5)
    where = as_connection(bootstrap).describe()
    raise TimeoutError(f"Kafka at {where} did not answer a metadata request in {timeout_s:.0f}s")


async def ensure_topics(
    bootstrap: Bootstrap, names: list[str], partitions: int, configs: Callable[[str], dict[str, str]]
) -> None:
    """Create topics that don't exist yet (idempotent; existing topics are left alone).

    ``configs`` gives each topic's configs (:meth:`~collector.contract.Topics.configs`, the one
    definition); an existing topic keeps the configs it has. A topic the broker refuses to create
    (e.g. ``TopicAuthorizationFailedError``: under ACLs only an admin creates topics) raises.
    """
    admin = AIOKafkaAdminClient(**as_connection(bootstrap).client_options())
    await start_client(admin, bootstrap)
    try:
        # Under ACLs, topics this principal may not Describe are not listed: it tries to create them.
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if not missing:
            return
        response = await admin.create_topics(
            [
                NewTopic(name=n, num_partitions=partitions, replication_factor=1, topic_configs=configs(n))
                for n in missing
            ]
        )
        for name, code, *message in response.topic_errors:
            # Already there: another process won the race.
            if code and code != TopicAlreadyExistsError.errno:
                raise for_code(code)(f"creating topic {name}: {message[0] if message else ''}")
        log.info("event=topics_created topics=%s partitions=%d", ",".join(missing), partitions)
    finally:
        await admin.close()


async def ensure_all_topics(bootstrap: Bootstrap, topics: Topics, partitions: int) -> None:
    """The data topics with ``partitions`` partitions and the compacted control topics with one.

    The alert topic is among the data topics (Faust needs the ``fired`` table's changelog to
    have the table's partition count) yet compacted: :meth:`Topics.configs` says how each is kept.
    """
    await ensure_topics(bootstrap, topics.all(), partitions, topics.configs)
    await ensure_topics(bootstrap, topics.compacted(), 1, topics.configs)


__all__ = [
    "DEFAULT_BOOTSTRAP",
    "bootstrap_servers",
    "broker_ready",
    "ensure_all_topics",
    "ensure_topics",
    "partitions_from_env",
    "quiet_client_logs",
    "wait_for_broker",
]
