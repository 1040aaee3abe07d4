"""Topics as the broker holds them: partitions and cleanup policy from the contract's one definition."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from collector.contract import Topics
from collector.kafka_io import ensure_all_topics
from tests.integration.conftest import PARTITIONS

pytestmark = pytest.mark.integration


async def _described(bootstrap: str, names: list[str]) -> dict[str, tuple[int, dict[str, str]]]:
    """topic -> (partition count, the configs the broker reports for it)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + 30
        while True:  # a topic created a moment ago may not list its partitions yet
            meta = await admin.describe_topics(names)
            partitions = {t["topic"]: len(t["partitions"]) for t in meta}
            if all(partitions.get(n) for n in names) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        responses: Any = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
        configs: dict[str, dict[str, str]] = {}
        for response in responses:
            for resource in response.resources:
                _error, _message, _type, name, entries = resource[:5]
                configs[name] = {entry[0]: entry[1] for entry in entries}
        return {n: (partitions[n], configs[n]) for n in names}
    finally:
        await admin.close()


def test_topics_are_created_with_their_partitions_and_cleanup_policy(kafka_bootstrap: str, topics: Topics) -> None:
    names = [topics.metrics, topics.alerts, topics.policies, topics.silences]
    got = asyncio.run(_described(kafka_bootstrap, names))
    # the alert topic is the fired table's changelog: the table's partitions, compacted, a week of history
    assert got[topics.alerts][0] == PARTITIONS
    assert got[topics.alerts][1]["cleanup.policy"] == "compact"
    assert got[topics.alerts][1]["min.compaction.lag.ms"] == "604800000"
    assert got[topics.metrics][0] == PARTITIONS and got[topics.metrics][1]["cleanup.policy"] == "delete"
    for control in (topics.policies, topics.silences):
        assert got[control][0] == 1 and got[control][1]["cleanup.policy"] == "compact"


def test_existing_topics_keep_what_they_have(kafka_bootstrap: str, topics: Topics) -> None:
    asyncio.run(ensure_all_topics(kafka_bootstrap, topics, PARTITIONS * 2))  # a second run, other count
    got = asyncio.run(_described(kafka_bootstrap, [topics.metrics]))
    assert got[topics.metrics][0] == PARTITIONS
