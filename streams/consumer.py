"""Faust's Kafka consumer with one repair: records fetched while the flow is stopped are not lost.

While a worker recovers its tables after a rebalance, Faust stops the stream flow. Records the
fetcher returns meanwhile are dropped, and the consumer "seeks back to committed offsets" so they
are read again. aiokafka's ``seek_to_committed`` only seeks a partition whose committed offset is
above 0, though: a partition nothing was committed for yet (a worker killed before its first
commit, every ~3 s) stays past the dropped records, and they are never processed. Seen as a lost
resolution: a worker killed just after an alert fired, its successor read none of the samples.

The repair seeks such partitions to their beginning, which is what the offset-reset policy
``earliest`` would have read. Changelog partitions are left alone: recovery positions them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import faust
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as FaustConsumer
from faust.types import TP

log = logging.getLogger(__name__)


def never_committed(committed: Mapping[TP, int | None], changelogs: set[str]) -> list[TP]:
    """The stream partitions aiokafka's ``seek_to_committed`` left where the fetcher had them."""
    return [tp for tp, offset in committed.items() if not offset and tp.topic not in changelogs]


class _ConsumerThread(AIOKafkaConsumerThread):
    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed: Mapping[TP, int] = await super().seek_to_committed()
        if self.app.conf.consumer_auto_offset_reset == "earliest":
            fresh = never_committed(committed, set(self.app.tables.changelog_topics))
            if fresh:
                log.info(
                    "event=reread_uncommitted partitions=%s", ",".join(f"{tp.topic}:{tp.partition}" for tp in fresh)
                )
                await self.seek_to_beginning(*fresh)
        return committed


class _Consumer(FaustConsumer):
    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class App(faust.App):
    """``faust.App`` whose consumer re-reads never-committed partitions after a stopped flow."""

    def _new_transport(self) -> Any:
        transport = super()._new_transport()
        # Faust builds the consumer through its transport's class; replacing it here keeps Faust's wiring.
        transport.Consumer = _Consumer  # type: ignore[misc]
        return transport
