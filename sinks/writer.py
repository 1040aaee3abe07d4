"""Kafka -> ClickHouse: fetch, decode, insert per partition, then commit.

Offsets are committed only after the inserts of everything fetched succeeded. A failed
insert is retried with backoff and nothing new is fetched meanwhile, so memory stays at one
fetch. Each insert carries a deduplication token from its topic, partition and offset range,
so re-inserting the very same range after a crash between insert and commit writes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError
from aiokafka.structs import ConsumerRecord

from collector.aio import sleep_unless
from collector.contract import Alert, DecodeError, MetricBatch, Topics, decode
from sinks.clickhouse import ALERTS_COLUMNS, METRICS_COLUMNS, alert_row, apply_schema, metric_rows

log = logging.getLogger(__name__)


@dataclass
class SinkStats:
    """Counters for logs and tests."""

    records: int = 0
    malformed: int = 0
    rows: int = 0
    insert_failures: int = 0
    commit_failures: int = 0

    def line(self) -> str:
        return (
            f"records={self.records} rows={self.rows} malformed={self.malformed} insert_failures={self.insert_failures}"
        )


@dataclass(frozen=True)
class Insert:
    """One columnar insert and the token that makes its retry a no-op."""

    table: str
    columns: list[str]
    rows: list[list[Any]]
    token: str


class Sink:
    """One sink process's consumer and ClickHouse writer."""

    def __init__(
        self,
        client: Any,
        bootstrap: str,
        topics: Topics,
        database: str,
        group_id: str = "fleetpulse-sink",
        max_records: int = 10_000,
    ) -> None:
        self.client = client
        self.bootstrap = bootstrap
        self.topics = topics
        self.database = database
        self.group_id = group_id
        self.max_records = max_records
        self.stats = SinkStats()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; the schema is applied first."""
        apply_schema(self.client, self.database)
        consumer = AIOKafkaConsumer(
            self.topics.metrics,
            self.topics.alerts,
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        log.info("event=sink_started group=%s database=%s", self.group_id, self.database)
        try:
            while not stop.is_set():
                fetched = await consumer.getmany(timeout_ms=500, max_records=self.max_records)
                if not fetched:
                    continue
                inserts = self.prepare(fetched)
                if not await self._insert_with_retry(inserts, stop):
                    break  # stopped while ClickHouse was failing: do not commit
                self.stats.records += sum(len(r) for r in fetched.values())
                try:
                    await consumer.commit({tp: records[-1].offset + 1 for tp, records in fetched.items()})
                except CommitFailedError as exc:
                    # A rebalance took the partitions away: the new owner re-reads from the last
                    # commit. Inserts of the very same offset range are deduplicated by token.
                    self.stats.commit_failures += 1
                    log.warning("event=commit_failed error=%r", exc)
        finally:
            await consumer.stop()
            log.info("event=sink_stopped %s", self.stats.line())

    async def _insert_with_retry(self, inserts: list[Insert], stop: asyncio.Event) -> bool:
        """Insert until it succeeds (True) or ``stop`` is set first (False)."""
        delay = 0.5
        while True:
            try:
                await asyncio.to_thread(self.insert, inserts)
                return True
            except Exception as exc:
                self.stats.insert_failures += 1
                log.warning("event=insert_failed retry_in_s=%.1f error=%r", delay, exc)
                if await sleep_unless(stop, delay):
                    return False
                delay = min(delay * 2, 30.0)

    def prepare(self, fetched: dict[TopicPartition, list[ConsumerRecord]]) -> list[Insert]:
        """Decode one fetch into inserts, one per topic-partition and table; counts bad records."""
        inserts: list[Insert] = []
        for tp, records in fetched.items():
            metrics: list[list[Any]] = []
            alerts: list[list[Any]] = []
            for record in records:
                try:
                    event = decode(record.value)
                except DecodeError as exc:
                    self.stats.malformed += 1
                    log.warning(
                        "event=malformed_record topic=%s partition=%d offset=%d reason=%r malformed_total=%d",
                        tp.topic,
                        tp.partition,
                        record.offset,
                        str(exc),
                        self.stats.malformed,
                    )
                    continue
                if isinstance(event, MetricBatch):
                    metrics.extend(metric_rows(event))
                elif isinstance(event, Alert):
                    alerts.append(alert_row(event))
            token = f"{tp.topic}-{tp.partition}-{records[0].offset}-{records[-1].offset}"
            if metrics:
                inserts.append(Insert("metrics", METRICS_COLUMNS, metrics, f"{token}-metrics"))
            if alerts:
                inserts.append(Insert("alerts", ALERTS_COLUMNS, alerts, f"{token}-alerts"))
        return inserts

    def insert(self, inserts: list[Insert]) -> None:
        """Run the inserts; a retry of the same list is deduplicated by the tokens."""
        for ins in inserts:
            self.client.insert(
                ins.table,
                ins.rows,
                column_names=ins.columns,
                database=self.database,
                settings={"insert_deduplication_token": ins.token},
            )
        self.stats.rows += sum(len(ins.rows) for ins in inserts)
