"""Follow the control topics (policy set, silences) and the alert topic in every worker.

Every worker needs all of it, not a share: the consumer is not in a group, it is assigned
every partition and reads from the beginning (compacted topics hold exactly the current
state). Records are handed to callbacks in order; :meth:`ControlFeed.catch_up` returns once
everything that existed at start has been read, so a worker starts on the applied policy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from collector.connection import Bootstrap, as_connection, start_client
from collector.kafka_io import quiet_client_logs

log = logging.getLogger(__name__)

Handler = Callable[[ConsumerRecord], None]


class ControlFeed:
    """Reads ``handlers``' topics from the beginning and keeps following them."""

    def __init__(self, bootstrap: Bootstrap, handlers: dict[str, Handler]) -> None:
        self.bootstrap = bootstrap
        self.handlers = handlers
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            **as_connection(self.bootstrap).client_options(), enable_auto_commit=False, group_id=None
        )
        await start_client(consumer, self.bootstrap)
        partitions: list[TopicPartition] = []
        for topic in self.handlers:
            found = await _partitions(consumer, topic)
            partitions.extend(TopicPartition(topic, p) for p in found)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        self._consumer = consumer
        self._partitions = partitions

    async def catch_up(self, timeout_s: float = 60.0) -> None:
        """Read until every partition is at the end it had when this was called."""
        assert self._consumer is not None
        ends = await self._consumer.end_offsets(self._partitions)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while [tp for tp, end in ends.items() if await self._position(tp) < end]:
            if loop.time() > deadline:
                raise TimeoutError("control topics not read to their end in time")
            await self._poll(500)

    async def follow(self) -> None:
        """Keep reading until cancelled, then close the consumer."""
        try:
            await self._follow()
        finally:
            await self.stop()

    async def stop(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    async def _position(self, tp: TopicPartition) -> int:
        assert self._consumer is not None
        return int(await self._consumer.position(tp))

    async def _follow(self) -> None:
        while True:
            try:
                await self._poll(1000)
            except asyncio.CancelledError:
                raise
            except Exception:  # the feed must outlive broker hiccups; aiokafka reconnects
                log.exception("event=control_feed_error")
                await asyncio.sleep(1.0)

    async def _poll(self, timeout_ms: int) -> None:
        assert self._consumer is not None
        fetched = await self._consumer.getmany(timeout_ms=timeout_ms)
        for tp, records in fetched.items():
            handler = self.handlers[tp.topic]
            for record in records:
                try:
                    handler(record)
                except Exception:  # one bad record must not stop the feed
                    log.exception("event=control_record_failed topic=%s offset=%d", tp.topic, record.offset)


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[int]:
    """A topic's partitions (metadata may need a moment after the topic was created)."""
    # aiokafka logs an ERROR per refresh while a just-created topic is not in metadata yet
    with quiet_client_logs():
        for _ in range(100):
            found = consumer.partitions_for_topic(topic)
            if found:
                return sorted(found)
            # read from aiokafka 0.14.0: no public call refreshes the metadata partitions_for_topic
            # reads. The one reach outside streams.consumer: the CLI's policy and silence commands
            # read the control topics with this feed, and streams.consumer imports Faust.
            await consumer._client.force_metadata_update()
            await asyncio.sleep(0.1)
    raise RuntimeError(f"topic {topic!r} has no partitions (does it exist?)")
