"""Sink throughput: metric rows/s from Kafka into ClickHouse, against the raw insert rate.

Side by side in one run, on the same simulated fleet (hosts sending the agent's 28-metric
batch every 10 s, values moving the way the agent's do):

- **end to end**: records pre-loaded on a topic; one in-process ``Sink`` (fresh consumer group
  and database each run) fetches, decodes, inserts in columnar batches (rollup views on) and
  commits. Timed from its first fetched record to its last commit.
- **raw insert**: the same records decoded by the sink's own code into the same column blocks,
  then only ``client.insert(..., column_oriented=True)`` is timed; with the rollup views
  (what the sink pays) and into ``metrics`` alone (what the views cost).
- **storage**: a longer series (default 200 hosts x 2,000 cycles, 5.5 h at 10 s) inserted,
  merged (``OPTIMIZE ... FINAL``), and measured in ``system.parts``: bytes per sample.

    .venv/bin/fleetpulse kafka start --home /tmp/fp-bench --port 39092
    .venv/bin/python bench/sink_throughput.py --bootstrap 127.0.0.1:39092 --runs 3
    .venv/bin/fleetpulse kafka stop --home /tmp/fp-bench --port 39092
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import statistics
import tempfile
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from collector.connection import KafkaConnection, connection_from_env
from collector.contract import MetricBatch, Topics, encode
from collector.kafka_io import ensure_all_topics
from sinks.clickhouse import connect
from sinks.schema import apply_migrations
from sinks.writer import INSERT_SETTINGS, Buffer, Insert, Sink, SinkSettings, SinkStats

INTERVAL_S = 10.0
T0 = float(int(time.time()) - 6 * 3600)  # recent: older rows would fall under the raw TTL


class Host:
    """One simulated host whose metrics evolve like the agent's readings."""

    def __init__(self, n: int, rng: random.Random) -> None:
        self.id = f"host-{n:05d}"
        self.region = f"region-{n % 6}"
        self.rng = rng
        self.busy = rng.uniform(2, 60)
        self.mem_total = float(rng.choice([8, 16, 32, 64]) * 2**30)
        self.mem_avail = self.mem_total * rng.uniform(0.2, 0.8)
        self.disk_total = float(rng.choice([100, 250, 500]) * 2**30)
        self.disk_used = self.disk_total * rng.uniform(0.1, 0.8)
        self.boot = T0 - rng.uniform(3600, 90 * 86400)
        self.load = [self.busy / 25] * 3
        self.procs = {"sleeping": rng.randint(80, 300), "running": rng.randint(1, 4), "idle": rng.randint(20, 60)}

    def batch(self, ts: float) -> MetricBatch:
        r = self.rng
        self.busy = min(100.0, max(0.5, self.busy + r.gauss(0, 3)))
        user, system = round(self.busy * 0.7, 1), round(self.busy * 0.25, 1)
        iowait = round(max(0.0, r.gauss(0.5, 0.5)), 1)
        idle = round(max(0.0, 100 - user - system - iowait), 1)
        # Kernel load averages are fixed-point (1/2048 steps), decayed every 5 s.
        for i, k in enumerate((0.92, 0.98, 0.993)):
            self.load[i] = round((self.load[i] * k + (self.busy / 25) * (1 - k)) * 2048) / 2048
        self.mem_avail = min(self.mem_total, max(0.0, self.mem_avail + r.randint(-256, 256) * 4096))
        if r.random() < 0.3:
            self.disk_used += r.randint(0, 512) * 4096
        for state in self.procs:
            if r.random() < 0.2:
                self.procs[state] = max(0, self.procs[state] + r.choice((-1, 1)))
        metrics = {
            "cpu_user_pct": user,
            "cpu_system_pct": system,
            "cpu_idle_pct": idle,
            "cpu_iowait_pct": iowait,
            "cpu_steal_pct": 0.0,
            "cpu_nice_pct": 0.0,
            "cpu_irq_pct": 0.0,
            "cpu_softirq_pct": round(max(0.0, r.gauss(0.2, 0.1)), 1),
            "cpu_pct": round(100 - idle, 1),
            "load_1m": self.load[0],
            "load_5m": self.load[1],
            "load_15m": self.load[2],
            "uptime_s": ts - self.boot,
            "mem_total_bytes": self.mem_total,
            "mem_available_bytes": self.mem_avail,
            "mem_used_pct": round(100 * (1 - self.mem_avail / self.mem_total), 1),
            "swap_total_bytes": 0.0,
            "swap_used_bytes": 0.0,
            "swap_used_pct": 0.0,
            "disk_used_bytes:/": self.disk_used,
            "disk_free_bytes:/": self.disk_total - self.disk_used,
            "disk_used_pct:/": round(100 * self.disk_used / self.disk_total, 1),
            "disk_inodes_used_pct:/": 100 * (self.disk_used / self.disk_total) * 0.17,
            "procs:sleeping": float(self.procs["sleeping"]),
            "procs:idle": float(self.procs["idle"]),
            "procs:running": float(self.procs["running"]),
            "procs_total": float(sum(self.procs.values())),
        }
        return MetricBatch(self.id, self.region, ts, INTERVAL_S, metrics)


def fleet_records(hosts: int, cycles: int, seed: int = 7, jitter_ms: float = 4.0) -> list[tuple[bytes, bytes]]:
    """Encoded batches, cycle by cycle, timed like the agent's.

    The agent samples on a fixed monotonic grid from its own start (``collector/agent.py``):
    each host has its own phase, and a sample's ``ts`` is late by the event loop's wake-up
    delay, a few milliseconds (``jitter_ms``, exponentially distributed).
    """
    rng = random.Random(seed)
    fleet = [Host(n, rng) for n in range(hosts)]
    phases = [rng.uniform(0, INTERVAL_S) for _ in fleet]
    out = []
    for c in range(cycles):
        for h, phase in zip(fleet, phases, strict=True):
            late = rng.expovariate(1000 / jitter_ms) if jitter_ms > 0 else 0.0
            ts = round(T0 + phase + c * INTERVAL_S + late, 6)
            out.append((h.id.encode(), encode(h.batch(ts))))
    return out


def column_blocks(records: list[tuple[bytes, bytes]], batch_rows: int) -> tuple[list[Insert], float]:
    """The sink's own decoding into insert blocks of about ``batch_rows``; and its duration."""
    tp = TopicPartition("bench.metrics", 0)
    blocks: list[Insert] = []
    buffer = Buffer()
    started = time.perf_counter()
    for offset, (key, value) in enumerate(records):
        rec = ConsumerRecord(tp.topic, 0, offset, 0, 0, key, value, None, len(key), len(value), [])
        buffer.add(tp, [rec])
        if buffer.rows >= batch_rows:
            blocks += [i for seg in buffer.take() for i in seg.inserts()]
    blocks += [i for seg in buffer.take() for i in seg.inserts()]
    return blocks, time.perf_counter() - started


def raw_insert(client: Any, database: str, blocks: list[Insert]) -> float:
    """Seconds to insert the blocks (deduplication tokens on, like the sink)."""
    started = time.perf_counter()
    for ins in blocks:
        client.insert(
            ins.table,
            ins.data,
            column_names=list(ins.columns),
            database=database,
            column_oriented=True,
            settings={**INSERT_SETTINGS, "insert_deduplication_token": f"{ins.token}-{uuid.uuid4().hex}"},
        )
    return time.perf_counter() - started


async def produce(bootstrap: KafkaConnection, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(**bootstrap.client_options(), acks=1, linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def end_to_end(
    client: Any, bootstrap: KafkaConnection, topics: Topics, records: int, settings: SinkSettings
) -> tuple[float, SinkStats]:
    """Seconds from the sink's first fetched record to its commit of the last one."""
    run = f"bench_{uuid.uuid4().hex[:8]}"
    sink = Sink(client, bootstrap, topics, database=run, group_id=run, settings=settings)
    stop = asyncio.Event()
    task = asyncio.create_task(sink.run(stop))
    started = None
    while sink.stats.records < records:
        if task.done():
            task.result()
            raise RuntimeError(f"sink stopped: {sink.stats.line()}")
        if started is None and (sink.stats.held_rows or sink.stats.records):
            started = time.perf_counter()
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - (started or time.perf_counter())
    stop.set()
    await task
    return elapsed, sink.stats


def settle(client: Any, timeout_s: float = 60.0) -> None:
    """Wait for background merges of earlier phases to finish, so phases don't share cores."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and client.query("SELECT count() FROM system.merges").result_rows[0][0]:
        time.sleep(0.2)


def storage(client: Any, hosts: int, cycles: int, jitter_ms: float) -> tuple[int, int, int]:
    """Rows, compressed column bytes and bytes on disk of ``metrics`` after a full merge."""
    database = f"bench_storage_{uuid.uuid4().hex[:8]}"
    apply_migrations(client, database)
    blocks, _ = column_blocks(fleet_records(hosts, cycles, seed=11, jitter_ms=jitter_ms), 500_000)
    raw_insert(client, database, blocks)
    client.command(f"OPTIMIZE TABLE {database}.metrics FINAL")
    row = client.query(
        "SELECT sum(rows), sum(data_compressed_bytes), sum(bytes_on_disk) FROM system.parts "
        "WHERE database = %(db)s AND table = 'metrics' AND active",
        parameters={"db": database},
    ).result_rows[0]
    return int(row[0]), int(row[1]), int(row[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--clickhouse-url", help="default: embedded chDB in a temporary directory")
    parser.add_argument("--hosts", type=int, default=2000)
    parser.add_argument("--cycles", type=int, default=40)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--batch-rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--storage-hosts", type=int, default=200)
    parser.add_argument("--storage-cycles", type=int, default=2000)
    parser.add_argument("--jitter-ms", type=float, default=4.0, help="mean lateness of a sample's ts (default 4)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    client = connect(args.clickhouse_url or f"chdb://{tempfile.mkdtemp(prefix='fp-bench-ch-')}")
    records = fleet_records(args.hosts, args.cycles)
    rows = sum(1 for _ in records) * 27
    topics = Topics(f"bench{uuid.uuid4().hex[:6]}")
    # TLS/SASL from FLEETPULSE_KAFKA_*, like every command.
    kafka = connection_from_env(os.environ, bootstrap=args.bootstrap).checked()
    asyncio.run(ensure_all_topics(kafka, topics, args.partitions))
    t = time.perf_counter()
    asyncio.run(produce(kafka, topics.metrics, records))
    print(
        f"fleet: {args.hosts} hosts x {args.cycles} cycles = {len(records):,} batches, {rows:,} metric rows; "
        f"{sum(len(v) for _, v in records) / len(records):.0f} B/record; produced in {time.perf_counter() - t:.1f}s "
        f"to {args.partitions} partitions"
    )
    settings = SinkSettings(batch_rows=args.batch_rows, max_buffered_rows=max(1_000_000, 5 * args.batch_rows))
    e2e, raw, bare, decode = [], [], [], []
    for run in range(1, args.runs + 1):
        blocks, decode_s = column_blocks(records, args.batch_rows)
        decode.append(rows / decode_s)
        with_views = f"bench_raw_{uuid.uuid4().hex[:8]}"
        apply_migrations(client, with_views)
        settle(client)
        raw.append(rows / raw_insert(client, with_views, blocks))
        without = f"bench_bare_{uuid.uuid4().hex[:8]}"
        apply_migrations(client, without)
        for view in ("metrics_1m_mv", "metrics_region_1m_mv"):
            client.command(f"DROP VIEW {without}.{view}")
        settle(client)
        bare.append(rows / raw_insert(client, without, blocks))
        del blocks
        settle(client)
        elapsed, stats = asyncio.run(end_to_end(client, kafka, topics, len(records), settings))
        assert stats.rows == rows, (stats.rows, rows)
        e2e.append(rows / elapsed)
        print(
            f"run {run}: end to end {e2e[-1]:>11,.0f} rows/s ({stats.batches} batches, peak {stats.peak_held_rows:,} "
            f"rows held) | raw insert {raw[-1]:>11,.0f} rows/s | without rollup views {bare[-1]:>11,.0f} rows/s | "
            f"decode {decode[-1]:>11,.0f} rows/s"
        )
    med = {k: statistics.median(v) for k, v in (("e2e", e2e), ("raw", raw), ("bare", bare), ("decode", decode))}
    print(f"\nmedian of {args.runs} runs            rows/s")
    print(f"end to end (Kafka -> sink -> chDB)  {med['e2e']:>11,.0f}")
    print(f"raw columnar insert (with rollups)  {med['raw']:>11,.0f}")
    print(f"raw insert, metrics table only      {med['bare']:>11,.0f}")
    print(f"decode records -> columns           {med['decode']:>11,.0f}")
    print(f"ratio end to end / raw insert       {med['e2e'] / med['raw']:.2f}")
    print(f"rollup views cost                   {100 * (1 - med['raw'] / med['bare']):.0f}% of the raw insert rate")

    n, compressed, on_disk = storage(client, args.storage_hosts, args.storage_cycles, args.jitter_ms)
    print(
        f"\nstorage: {args.storage_hosts} hosts x {args.storage_cycles} cycles (ts jitter {args.jitter_ms:g} ms) = "
        f"{n:,} samples after OPTIMIZE FINAL: "
        f"{compressed / n:.2f} B/sample compressed column data, {on_disk / n:.2f} B/sample on disk (with marks, index)"
    )


if __name__ == "__main__":
    main()
