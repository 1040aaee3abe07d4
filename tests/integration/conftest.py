"""Real parts for integration tests: one Kafka broker and one ClickHouse engine per session.

Broker, in order of preference: ``KAFKA_BOOTSTRAP_SERVERS``; a Docker broker through
testcontainers when a Docker engine answers a ping; else the local broker from Maven jars on
free ports, with its data in a temporary directory, stopped at the end of the session.
ClickHouse: ``CLICKHOUSE_URL`` if set, else the embedded chDB engine (one path per process).
Every test gets its own topic prefix, consumer groups and ClickHouse database.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.kafka_io import ensure_all_topics, wait_for_broker
from fleetpulse.kafka_local import LocalKafka, default_home
from fleetpulse.ports import free_port_pair

PARTITIONS = 2


def _docker_engine_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap servers of a real broker for the whole test session."""
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        asyncio.run(wait_for_broker(given, 60))
        yield given
        return
    if _docker_engine_answers():
        yield from _docker_kafka()
        return
    kafka = LocalKafka(
        tmp_path_factory.mktemp("kafka-home"),
        port=free_port_pair(),
        jar_cache=default_home() / "kafka",
    )
    kafka.start(timeout_s=180)
    try:
        yield kafka.bootstrap
    finally:
        kafka.stop()


def _docker_kafka() -> Iterator[str]:
    from testcontainers.core.container import DockerContainer  # type: ignore[import-untyped]

    port = free_port_pair()
    container = (
        DockerContainer("apache/kafka:4.1.1")
        .with_bind_ports(9092, port)
        .with_env("KAFKA_NODE_ID", "1")
        .with_env("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env("KAFKA_LISTENERS", "PLAINTEXT://:9092,CONTROLLER://:9093")
        .with_env("KAFKA_ADVERTISED_LISTENERS", f"PLAINTEXT://127.0.0.1:{port}")
        .with_env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT")
        .with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
        .with_env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
    )
    with container:
        bootstrap = f"127.0.0.1:{port}"
        asyncio.run(wait_for_broker(bootstrap, 120))
        yield bootstrap


@pytest.fixture(scope="session")
def clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One clickhouse-connect client for the session (chDB allows one path per process)."""
    from sinks.clickhouse import connect, resolve_target

    # $CLICKHOUSE_URL with $CLICKHOUSE_PASSWORD(_FILE), as the sink reads them; else a fresh chDB
    target = os.environ.get("CLICKHOUSE_URL") or f"chdb://{tmp_path_factory.mktemp('chdb')}"
    return connect(resolve_target(target, Path(".")))


@pytest.fixture
def unique() -> str:
    """A fresh name for topics, groups and databases of one test."""
    return f"it_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def topics(kafka_bootstrap: str, unique: str) -> Any:
    """This test's topics, created with the test partition count."""
    from collector.contract import Topics

    t = Topics(unique)
    asyncio.run(ensure_all_topics(kafka_bootstrap, t, PARTITIONS))
    return t


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A data directory for the worker processes of one test."""
    path = tmp_path / "home"
    path.mkdir()
    return path
