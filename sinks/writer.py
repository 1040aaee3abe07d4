"""Kafka -> ClickHouse: fetch, decode into columns, insert in batches, then commit.

Exactly-once effect
    Offsets are committed only after the inserts of a batch succeeded. Each insert carries a
    deduplication token ``<topic>-<partition>-<first>-<last>-<table>``, so inserting the very
    same offset range again writes nothing (the tables keep a window of recent tokens, and
    the rollup views skip a deduplicated block too). "The very same range" is the catch: a
    sink restarted after a crash between insert and commit fetches from the committed offset
    and would cut its batches differently (more records have arrived meanwhile), so the
    tokens would differ. Before inserting, the sink therefore writes the range it is about to
    insert per partition to ``sink_offsets``; when it (or another member of the group) is
    assigned that partition and the committed offset equals the start of that range, the
    first batch of the partition is cut at exactly that range again. Same records, same
    token, nothing written twice. (The ClickHouse Kafka Connect sink does the same with its
    KeeperMap state.) Limits: a token is recognised only while it is among the table's last
    ``dedup_window`` inserts (only the latest batch is ever retried, so this holds); a topic
    deleted and re-created under the same name restarts its offsets and would collide with
    old tokens; on a rebalance the revoking sink waits up to ``rebalance_wait_s`` for its batch
    in flight before letting the partitions go.

Batching
    Records are decoded as they arrive into per-partition column buffers ("segments"). A
    batch is flushed when the buffered rows or bytes reach their bounds or the oldest segment
    is ``batch_wait_s`` old; one insert per partition and table, columnar. While a batch is
    being inserted (in a thread: chDB and the HTTP client release the GIL while ClickHouse
    works) the next one is fetched and decoded.

Back-pressure
    When ClickHouse fails or is slow, the batch in flight is retried with exponential backoff
    and the buffer keeps filling up to ``max_buffered_rows`` / ``max_buffered_bytes``; then
    every assigned partition is *paused* and ``getmany`` keeps being called. Calling it is what
    tells aiokafka the consumer is alive: a consumer that stops polling for
    ``max_poll_interval_ms`` (300 s by default) leaves its group, its partitions move and it
    re-reads on return. Paused, it stays in the group, fetches nothing (memory stays at the
    bound plus one fetch) and resumes from where it was once the insert went through.

Dead letters
    A record that does not decode is produced unchanged (key and value) to
    ``<prefix>.deadletter`` (which takes records of up to ``DEADLETTER_MAX_BYTES``, more than a
    data topic does) with headers saying why (at most ``MAX_REASON_CHARS``) and where it came from
    (``fleetpulse.reason``, ``fleetpulse.topic``, ``fleetpulse.partition``,
    ``fleetpulse.offset``, ``fleetpulse.group``), counted, logged and recorded in the
    ``dead_letters`` table; the sink goes on. Dead letters are produced before the commit, so
    a crash in between can produce one twice: readers dedupe by the origin headers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import ConsumerRecord

from collector.aio import sleep_unless
from collector.connection import Bootstrap, as_connection, start_client
from collector.contract import DEADLETTER_MAX_BYTES, DEFAULT_SINK_GROUP, DecodeError, Topics, capped_reason, decode
from sinks.rows import TableRows
from sinks.schema import SchemaSettings, apply_migrations, check_database_name

log = logging.getLogger(__name__)

MiB = 1024 * 1024
DEADLETTER_HEADERS = ("fleetpulse.reason", "fleetpulse.topic", "fleetpulse.partition", "fleetpulse.offset")
CRASH_EXIT_CODE = 75
# Every data insert: the rollup views of a block run concurrently instead of one after the
# other (measured on chDB: ~1.0 -> ~1.4 M rows/s with both metric rollups attached).
INSERT_SETTINGS = {"parallel_view_processing": 1}


def sink_source_topics(topics: Topics) -> list[str]:
    """Every data topic the sink stores (the dead-letter topic is written, not read)."""
    t = topics
    return [t.metrics, t.heartbeats, t.alerts, t.processes, t.logs, t.scale]


@dataclass(frozen=True)
class SinkSettings:
    """Tuning of one sink process; the defaults suit a 15,000-host fleet on one node."""

    batch_rows: int = 200_000
    batch_bytes: int = 32 * MiB
    batch_wait_s: float = 1.0
    # Rows and record bytes held in memory (buffer + batch in flight) before fetching pauses.
    max_buffered_rows: int = 1_000_000
    max_buffered_bytes: int = 128 * MiB
    fetch_max_records: int = 5_000
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    session_timeout_ms: int = 10_000
    max_poll_interval_ms: int = 300_000
    # How long a rebalance waits for the batch in flight before giving its partitions up.
    rebalance_wait_s: float = 30.0
    schema: SchemaSettings = field(default_factory=SchemaSettings)
    # Fault injection for tests: exit the process after this many batches were inserted and
    # before their offsets are committed (0 = never).
    crash_after_batches: int = 0

    def __post_init__(self) -> None:
        for key in ("batch_rows", "batch_bytes", "max_buffered_rows", "max_buffered_bytes", "fetch_max_records"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.max_buffered_rows < self.batch_rows:
            raise ValueError(f"max_buffered_rows ({self.max_buffered_rows}) must be >= batch_rows ({self.batch_rows})")
        if not self.batch_wait_s > 0:
            raise ValueError(f"batch_wait_s must be > 0, got {self.batch_wait_s}")


@dataclass
class SinkStats:
    """Counters for logs, tests and the benchmark."""

    records: int = 0  # records whose batch was inserted and committed
    rows: int = 0  # rows inserted (all tables)
    malformed: int = 0  # records sent to the dead-letter topic
    batches: int = 0
    insert_failures: int = 0
    commit_failures: int = 0
    deadletter_failures: int = 0
    pauses: int = 0  # times fetching was paused by back-pressure
    paused: bool = False
    held_rows: int = 0  # decoded rows in memory now (buffer + batch in flight)
    held_bytes: int = 0
    peak_held_rows: int = 0
    peak_held_bytes: int = 0
    assignments: int = 0  # partition assignments seen (1 = never rebalanced after start)
    recovered_ranges: int = 0  # partitions whose first batch was re-cut to an uncommitted range

    def line(self) -> str:
        """The counters as key=value pairs for a log line."""
        return (
            f"records={self.records} rows={self.rows} batches={self.batches} malformed={self.malformed} "
            f"insert_failures={self.insert_failures} commit_failures={self.commit_failures} pauses={self.pauses} "
            f"peak_held_rows={self.peak_held_rows} recovered_ranges={self.recovered_ranges}"
        )


@dataclass(frozen=True)
class Insert:
    """One columnar insert and the token that makes its retry a no-op."""

    table: str
    columns: tuple[str, ...]
    data: list[list[Any]]
    rows: int
    token: str


@dataclass
class DeadLetter:
    """An undecodable record on its way to the dead-letter topic."""

    key: bytes | None
    value: bytes | None
    topic: str
    partition: int
    offset: int
    reason: str


@dataclass
class Segment:
    """Consecutive records of one partition, decoded into rows; inserted as one range."""

    tp: TopicPartition
    first: int
    last: int = -1
    rows: TableRows = field(default_factory=TableRows)
    nrows: int = 0
    nbytes: int = 0
    records: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    created: float = field(default_factory=time.monotonic)
    sealed: bool = False  # ends at a recovered range: flushed as is, never extended

    def token(self) -> str:
        """The offset range as an insert deduplication token prefix."""
        return f"{self.tp.topic}-{self.tp.partition}-{self.first}-{self.last}"

    def inserts(self) -> list[Insert]:
        """One insert per table touched by this range."""
        return [
            Insert(table, cols.names, cols.data, cols.rows, f"{self.token()}-{table}")
            for table, cols in sorted(self.rows.tables.items())
            if cols.rows
        ]


class Buffer:
    """Per-partition segments waiting to be inserted, with recovered range boundaries."""

    def __init__(self) -> None:
        self.segments: dict[TopicPartition, list[Segment]] = {}
        # tp -> last offset of a range that was being inserted when its sink stopped
        self.boundaries: dict[TopicPartition, int] = {}
        self.rows = 0
        self.bytes = 0

    def add(self, tp: TopicPartition, records: Iterable[ConsumerRecord]) -> None:
        """Decode records into the partition's open segment; bad ones become dead letters."""
        segs = self.segments.setdefault(tp, [])
        for record in records:
            boundary = self.boundaries.get(tp)
            seg = segs[-1] if segs and not segs[-1].sealed else None
            if boundary is not None and record.offset > boundary:
                # The recovered range ended before this record (e.g. it was compacted away):
                # close what we have; its token cannot match, which is logged.
                log.warning(
                    "event=recovered_range_gap topic=%s partition=%d boundary=%d", tp.topic, tp.partition, boundary
                )
                if seg is not None:
                    seg.sealed = True
                    seg = None
                del self.boundaries[tp]
            if seg is None:
                seg = Segment(tp, record.offset)
                segs.append(seg)
            size = len(record.value or b"")
            try:
                added = seg.rows.add(decode(record.value))
            except (DecodeError, TypeError) as exc:  # TypeError: a valid event with no table (none today)
                reason = capped_reason(str(exc))  # the record goes on in full; its reason, cut short
                seg.dead.append(DeadLetter(record.key, record.value, tp.topic, tp.partition, record.offset, reason))
                seg.rows.add_dead_letter(time.time(), tp.topic, tp.partition, record.offset, reason, size)
                added = 1
            seg.last = record.offset
            seg.records += 1
            seg.nrows += added
            seg.nbytes += size
            self.rows += added
            self.bytes += size
            if boundary is not None and record.offset == boundary:
                seg.sealed = True
                del self.boundaries[tp]

    def ready(self, batch_rows: int, batch_bytes: int, wait_s: float, now: float) -> bool:
        """A batch is due: enough rows or bytes, an old enough segment, or a sealed one."""
        if self.rows >= batch_rows or self.bytes >= batch_bytes:
            return any(self._flushable(tp) for tp in self.segments)
        for tp in self.segments:
            seg = self._flushable(tp)
            if seg is not None and (seg.sealed or now - seg.created >= wait_s):
                return True
        return False

    def _flushable(self, tp: TopicPartition) -> Segment | None:
        segs = self.segments.get(tp)
        if not segs:
            return None
        first = segs[0]
        if not first.sealed and tp in self.boundaries:
            return None  # still filling up to the recovered range's end
        return first

    def take(self) -> list[Segment]:
        """The first flushable segment of every partition, removed from the buffer."""
        out = []
        for tp in list(self.segments):
            seg = self._flushable(tp)
            if seg is None:
                continue
            self.segments[tp].pop(0)
            if not self.segments[tp]:
                del self.segments[tp]
            self.rows -= seg.nrows
            self.bytes -= seg.nbytes
            out.append(seg)
        return out

    def drop(self, partitions: Iterable[TopicPartition]) -> None:
        """Forget revoked partitions (their new owner re-reads from the last commit)."""
        for tp in partitions:
            for seg in self.segments.pop(tp, []):
                self.rows -= seg.nrows
                self.bytes -= seg.nbytes
            self.boundaries.pop(tp, None)


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.sink._on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.sink._on_assigned(set(assigned))


class Sink:
    """One sink process's consumer and ClickHouse writer."""

    def __init__(
        self,
        client: Any,
        bootstrap: Bootstrap,
        topics: Topics,
        database: str,
        group_id: str = DEFAULT_SINK_GROUP,
        settings: SinkSettings | None = None,
        migrated: bool = False,  # the schema is already up to date (``sinks.clickhouse.open_store``)
    ) -> None:
        self.client = client
        self.bootstrap = bootstrap
        self.topics = topics
        self.database = check_database_name(database)
        self.group_id = group_id
        self.settings = settings or SinkSettings()
        self.stats = SinkStats()
        self.buffer = Buffer()
        self._consumer: AIOKafkaConsumer | None = None
        self._inflight: asyncio.Task[bool] | None = None
        self._inflight_rows = 0
        self._inflight_bytes = 0
        self._assigned: set[TopicPartition] = set()
        # Partitions held paused while their recovered ranges are looked up (see _on_assigned).
        self._recovering: set[TopicPartition] = set()
        self._stop = asyncio.Event()
        self._migrated = migrated

    def source_topics(self) -> list[str]:
        return sink_source_topics(self.topics)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; migrations are applied first (retried while ClickHouse is away)."""
        self._stop = stop
        if not self._migrated and not await self._retry(self._migrate, stop, "migration"):
            return
        s = self.settings
        kafka = as_connection(self.bootstrap)
        consumer = AIOKafkaConsumer(
            **kafka.client_options(),
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=s.session_timeout_ms,
            max_poll_interval_ms=s.max_poll_interval_ms,
            fetch_max_bytes=16 * MiB,
        )
        consumer.subscribe(self.source_topics(), listener=_Rebalance(self))
        producer = AIOKafkaProducer(
            **kafka.client_options(), acks="all", linger_ms=5, max_request_size=DEADLETTER_MAX_BYTES
        )
        self._consumer = consumer
        await start_client(consumer, kafka)
        await start_client(producer, kafka)
        log.info("event=sink_started group=%s database=%s", self.group_id, self.database)
        try:
            await self._loop(consumer, producer, stop)
        finally:
            if self._inflight is not None and not self._inflight.done():
                self._inflight.cancel()
            await consumer.stop()
            await producer.stop()
            self._consumer = None
            log.info("event=sink_stopped %s", self.stats.line())

    async def _loop(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, stop: asyncio.Event) -> None:
        s = self.settings
        while not stop.is_set():
            fetched = await consumer.getmany(timeout_ms=100, max_records=s.fetch_max_records)
            for tp, records in fetched.items():
                if tp in self._assigned:
                    self.buffer.add(tp, records)
            self._account()
            if self._inflight is not None and self._inflight.done():
                self._inflight.result()  # a bug in the flush path surfaces here
                self._inflight = None
                self._inflight_rows = self._inflight_bytes = 0
            due = self.buffer.ready(s.batch_rows, s.batch_bytes, s.batch_wait_s, time.monotonic())
            if self._inflight is None and due:
                segments = self.buffer.take()
                if segments:
                    self._inflight_rows = sum(x.nrows for x in segments)
                    self._inflight_bytes = sum(x.nbytes for x in segments)
                    self._inflight = asyncio.create_task(self._flush(consumer, producer, segments, stop))
            self._backpressure(consumer)
        # Stopping: let the batch in flight finish (it gives up retrying now that stop is
        # set), then try once to store what is buffered. Anything not committed is re-read.
        if self._inflight is not None:
            ok = await self._inflight
            self._inflight = None
            if not ok:
                return
        while segments := self.buffer.take():
            if not await self._flush(consumer, producer, segments, stop):
                return

    def _account(self) -> None:
        st = self.stats
        st.held_rows = self.buffer.rows + self._inflight_rows
        st.held_bytes = self.buffer.bytes + self._inflight_bytes
        st.peak_held_rows = max(st.peak_held_rows, st.held_rows)
        st.peak_held_bytes = max(st.peak_held_bytes, st.held_bytes)

    def _backpressure(self, consumer: AIOKafkaConsumer) -> None:
        s, st = self.settings, self.stats
        self._account()
        full = st.held_rows >= s.max_buffered_rows or st.held_bytes >= s.max_buffered_bytes
        if full:
            # A partition still filling its recovered range is not flushable until the range is
            # complete: pausing it could leave nothing to flush and nothing to fetch (a stall).
            # Its range is bounded by the batch its crashed sink held.
            to_pause = consumer.assignment() - consumer.paused() - self.buffer.boundaries.keys()
            if to_pause:
                consumer.pause(*to_pause)
            if not st.paused:
                st.paused = True
                st.pauses += 1
                log.warning("event=sink_paused held_rows=%d held_bytes=%d", st.held_rows, st.held_bytes)
        elif st.paused:
            consumer.resume(*(consumer.paused() - self._recovering))
            st.paused = False
            log.info("event=sink_resumed held_rows=%d", st.held_rows)

    async def _flush(
        self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, segments: list[Segment], stop: asyncio.Event
    ) -> bool:
        """Insert the segments, dead-letter their bad records, then commit; False if stopped first."""
        inserts = [ins for seg in segments for ins in seg.inserts()]
        intentions = [
            [self.group_id, seg.tp.topic, seg.tp.partition, seg.first, seg.last, round(time.time() * 1000)]
            for seg in segments
        ]
        if not await self._retry(lambda: self._write(intentions, inserts), stop, "insert"):
            return False
        dead = [d for seg in segments for d in seg.dead]
        if dead and not await self._retry_async(lambda: self._deadletter(producer, dead), stop):
            return False
        self.stats.batches += 1
        self.stats.rows += sum(i.rows for i in inserts)
        self.stats.malformed += len(dead)
        if self.settings.crash_after_batches and self.stats.batches >= self.settings.crash_after_batches:
            log.warning("event=sink_crash_injected after_batches=%d %s", self.stats.batches, self.stats.line())
            logging.shutdown()
            os._exit(CRASH_EXIT_CODE)
        offsets = {seg.tp: seg.last + 1 for seg in segments if seg.tp in self._assigned}
        if offsets:
            try:
                await consumer.commit(offsets)
            except CommitFailedError as exc:
                # The group rebalanced under us: the new owner re-reads from the last commit
                # and re-cuts its first batch to this range (sink_offsets), so the re-insert is
                # deduplicated. Until the rejoin hands partitions out again this sink writes
                # nothing more of them: a further batch would record a newer range the new
                # owner does not start from, and its rows would be written twice. (The rejoin
                # resets fetch positions to the committed offsets, so dropping loses nothing.)
                self.stats.commit_failures += 1
                fenced = set(offsets)
                self._assigned -= fenced
                self.buffer.drop(fenced)
                log.warning("event=commit_failed partitions=%d error=%r", len(fenced), exc)
            except KafkaError as exc:
                self.stats.commit_failures += 1
                log.warning("event=commit_failed error=%r", exc)
        self.stats.records += sum(seg.records for seg in segments)
        return True

    def _migrate(self) -> None:
        apply_migrations(self.client, self.database, self.settings.schema)
        self._migrated = True

    def _write(self, intentions: list[list[Any]], inserts: list[Insert]) -> None:
        """Record the ranges about to be inserted, then insert them (runs in a thread)."""
        self.client.insert(
            "sink_offsets",
            intentions,
            column_names=["group_id", "topic", "partition", "first_offset", "last_offset", "at"],
            database=self.database,
        )
        for ins in inserts:
            self.client.insert(
                ins.table,
                ins.data,
                column_names=list(ins.columns),
                database=self.database,
                column_oriented=True,
                settings={**INSERT_SETTINGS, "insert_deduplication_token": ins.token},
            )

    async def _retry(self, work: Callable[[], object], stop: asyncio.Event, what: str) -> bool:
        """Run ``work`` in a thread until it succeeds (True) or ``stop`` is set first (False)."""
        delay = self.settings.retry_initial_s
        while True:
            try:
                await asyncio.to_thread(work)
                return True
            except Exception as exc:  # any ClickHouse or connection error: back off and retry
                self.stats.insert_failures += 1
                failures = self.stats.insert_failures
                log.warning("event=%s_failed retry_in_s=%.1f failures=%d error=%r", what, delay, failures, exc)
                if stop.is_set() or await sleep_unless(stop, delay):
                    return False
                delay = min(delay * 2, self.settings.retry_max_s)

    async def _retry_async(self, work: Callable[[], Any], stop: asyncio.Event) -> bool:
        delay = self.settings.retry_initial_s
        while True:
            try:
                await work()
                return True
            except KafkaError as exc:
                self.stats.deadletter_failures += 1
                if not exc.retriable:
                    # e.g. a record too large once the headers are added, or no right to write
                    # the topic: retrying cannot help. The dead_letters table still records
                    # each record's origin and reason; the batch goes on to its commit.
                    log.error("event=deadletter_dropped error=%r", exc)
                    return True
                log.warning("event=deadletter_failed retry_in_s=%.1f error=%r", delay, exc)
                if stop.is_set() or await sleep_unless(stop, delay):
                    return False
                delay = min(delay * 2, self.settings.retry_max_s)

    async def _deadletter(self, producer: AIOKafkaProducer, dead: list[DeadLetter]) -> None:
        futures = []
        for d in dead:
            log.warning(
                "event=malformed_record topic=%s partition=%d offset=%d reason=%r",
                d.topic,
                d.partition,
                d.offset,
                d.reason,
            )
            headers = [
                ("fleetpulse.reason", d.reason.encode()),
                ("fleetpulse.topic", d.topic.encode()),
                ("fleetpulse.partition", str(d.partition).encode()),
                ("fleetpulse.offset", str(d.offset).encode()),
                ("fleetpulse.group", self.group_id.encode()),
            ]
            futures.append(await producer.send(self.topics.deadletter, d.value, key=d.key, headers=headers))
        await asyncio.gather(*futures)

    # -- rebalances ------------------------------------------------------------------------

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        task = self._inflight
        if task is not None and not task.done():
            # Let the batch in flight commit while we still own its partitions.
            await asyncio.wait({task}, timeout=self.settings.rebalance_wait_s)
        self._assigned -= revoked
        self.buffer.drop(revoked)
        log.info("event=partitions_revoked count=%d", len(revoked))

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        self.stats.assignments += 1
        self._assigned |= assigned
        consumer = self._consumer
        if not assigned or consumer is None:
            return
        # aiokafka may fetch for these partitions while this callback awaits: a batch cut
        # before its recovered boundary is known would carry another token (written twice),
        # or wait for a boundary set after its records arrived (a stall). Hold them paused.
        consumer.pause(*assigned)
        self._recovering |= assigned
        try:
            await self._recover_ranges(consumer, assigned)
        finally:
            self._recovering -= assigned
            if not self.stats.paused:  # else back-pressure resumes them once it lifts
                consumer.resume(*(assigned & consumer.paused()))
        log.info("event=partitions_assigned count=%d", len(assigned))

    async def _recover_ranges(self, consumer: AIOKafkaConsumer, assigned: set[TopicPartition]) -> None:
        """Set the boundary of every partition whose last recorded range starts where it resumes."""
        starts = await consumer.beginning_offsets(list(assigned))
        resume_at: dict[TopicPartition, int] = {}
        for tp in assigned:
            committed = await consumer.committed(tp)
            resume_at[tp] = starts.get(tp, 0) if committed is None else committed
        found: dict[tuple[str, int], int] = {}

        def lookup() -> None:
            found.update(self._intentions(resume_at))

        # Without the ranges, exactly-once cannot be kept: wait for ClickHouse like an insert does.
        if not await self._retry(lookup, self._stop, "recovery_lookup"):
            return
        for tp, first in resume_at.items():
            last = found.get((tp.topic, tp.partition))
            if last is None:
                continue
            self.buffer.boundaries[tp] = last
            self.stats.recovered_ranges += 1
            log.warning(
                "event=recovering_range topic=%s partition=%d first=%d last=%d", tp.topic, tp.partition, first, last
            )

    def _intentions(self, resume_at: dict[TopicPartition, int]) -> dict[tuple[str, int], int]:
        """(topic, partition) -> last offset of the range recorded as starting at ``resume_at``.

        Matched by first offset, not by recency: a range recorded later by a sink that had
        already lost the partition does not start where the new owner resumes.
        """
        if not resume_at:
            return {}
        rows = self.client.query(
            f"SELECT topic, partition, argMax(last_offset, at) FROM {self.database}.sink_offsets "
            f"WHERE group_id = %(g)s AND (topic, partition, first_offset) IN %(keys)s GROUP BY topic, partition",
            parameters={"g": self.group_id, "keys": [(tp.topic, tp.partition, off) for tp, off in resume_at.items()]},
        ).result_rows
        return {(str(t), int(p)): int(last) for t, p, last in rows}
