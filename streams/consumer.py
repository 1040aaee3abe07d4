"""Every place the worker reaches into Faust or aiokafka beyond their documented use (but the
control feed's metadata refresh: see :mod:`streams.control_feed`).

Each reach names the library version it was read from (faust-streaming 0.15.3, aiokafka
0.14.0); check them again when either is upgraded. A reach that can fail has a fallback,
logged once per process when it is first taken (:class:`Fallbacks`).

**The consumer repair: records fetched while the flow is stopped are not lost.** While a
worker recovers its tables after a rebalance, Faust stops the stream flow. Records the
fetcher returns meanwhile are dropped, and the consumer "seeks back to committed offsets" so
they are read again. aiokafka's ``seek_to_committed`` only seeks a partition whose committed
offset is above 0, though: a partition nothing was committed for yet (a worker killed before
its first commit, every ~3 s) stays past the dropped records, and they are never processed.
Seen as a lost resolution: a worker killed just after an alert fired, its successor read none
of the samples. The repair seeks such partitions to their beginning, which is what the
offset-reset policy ``earliest`` would have read. Changelog partitions are left alone:
recovery positions them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import faust
from aiokafka.structs import TopicPartition
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as FaustConsumer
from faust.types import TP

log = logging.getLogger(__name__)

# heartbeat partition -> (wall time of the consumer's latest fetch response for it, the
# partition's highwater in that response), or None while unknown
Fetched = Callable[[int], tuple[float, int] | None]


class Fallbacks:
    """Which fallbacks this process has taken: each is logged the first time only (a timer
    asks many times a second, and the answer does not change)."""

    def __init__(self) -> None:
        self.taken: set[str] = set()

    def take(self, event: str, reason: str, fallback: str) -> None:
        if event not in self.taken:
            self.taken.add(event)
            log.warning("event=%s reason=%r fallback=%s", event, reason, fallback)


FALLBACKS = Fallbacks()  # the process's


def never_committed(committed: Mapping[TP, int | None], changelogs: set[str]) -> list[TP]:
    """The stream partitions aiokafka's ``seek_to_committed`` left where the fetcher had them."""
    return [tp for tp, offset in committed.items() if not offset and tp.topic not in changelogs]


class _ConsumerThread(AIOKafkaConsumerThread):
    # read from faust-streaming 0.15.3: the consumer thread's seek_to_committed returns what
    # aiokafka 0.14.0's seek_to_committed found (None or 0 where nothing was committed).
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
    # read from faust-streaming 0.15.3: the driver's Consumer builds its thread here.
    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class App(faust.App):
    """``faust.App`` whose consumer re-reads never-committed partitions after a stopped flow."""

    def _new_transport(self) -> Any:
        transport = super()._new_transport()
        # read from faust-streaming 0.15.3: Faust builds the consumer through its transport's
        # class attribute Consumer; replacing it here keeps Faust's wiring.
        transport.Consumer = _Consumer  # type: ignore[misc]
        return transport


def raw_table_serializers(table: Any) -> Any:
    """``table`` holding our own bytes as-is (keys and values).

    read from faust-streaming 0.15.3: a table's serializers are attributes derived from its
    key/value types at construction and read when its store and changelog are first used, so
    setting them afterwards takes effect (that release already derives "raw" for bytes; older
    ones picked json, and there is no constructor argument for it).
    """
    table.key_serializer = table.value_serializer = "raw"
    return table


def assigned_partitions(app: faust.App, topic: str) -> frozenset[int]:
    """The partitions of ``topic`` this worker is assigned as active (not standby).

    read from faust-streaming 0.15.3: ``App.assignor`` and its ``assigned_actives()`` are on
    Faust's typed interfaces (``PartitionAssignorT``), not in its user guide.
    """
    return frozenset(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic)


def fetch_reports(app: faust.App, topic: str, fallbacks: Fallbacks = FALLBACKS) -> Fetched:
    """Ask the worker's Kafka consumer what its latest fetch said of a ``topic`` partition.

    Faust does not pass these on, so this reaches into its consumer thread for the aiokafka
    consumer (read from our loop: two plain attributes, read in the order that errs on the
    side of "not caught up"). Anything unexpected answers None, the wall-clock fallback
    (:meth:`streams.downcheck.HostWatches.clock`), logged once as
    ``event=fetch_reports_unavailable``.

    read from faust-streaming 0.15.3 (``app.consumer._thread._ensure_consumer()``, the
    aiokafka consumer of the consumer thread) and aiokafka 0.14.0 (``last_poll_timestamp``,
    ``highwater``: public, per assigned partition).
    """

    def fetched(partition: int) -> tuple[float, int] | None:
        try:
            consumer = app.consumer._thread._ensure_consumer()  # type: ignore[attr-defined]
            tp = TopicPartition(topic, partition)
            # The timestamp is written after the highwater: reading it first can only pair it
            # with a later (higher) highwater, never claim a fetch saw less than it did.
            at_ms = consumer.last_poll_timestamp(tp)
            highwater = consumer.highwater(tp)
        except Exception as exc:  # not started, rebalancing, or another Faust: no report
            fallbacks.take("fetch_reports_unavailable", f"{type(exc).__name__}: {exc}", "wall_clock")
            return None
        if at_ms is None or highwater is None:
            return None
        return at_ms / 1000.0, int(highwater)

    return fetched
