"""The sink under faults: killed between insert and commit, and ClickHouse unavailable."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from collector.contract import Topics
from sinks.writer import CRASH_EXIT_CODE, Sink, SinkSettings
from tests.cli import fleetpulse
from tests.integration.helpers import WAIT_S, Proc, produce
from tests.integration.test_sink import T0, batches, committed, end_offsets

pytestmark = pytest.mark.integration


def _query(target: str, database: str, sql: str) -> list[dict[str, Any]]:
    """SQL through ``fleetpulse query`` in a child process (chDB: one data path per process)."""
    done = fleetpulse(
        "query", "--clickhouse-url", target, "--database", database, "--format", "json", sql, timeout_s=120
    )
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def test_sink_killed_between_insert_and_commit_stores_every_event_exactly_once(
    kafka_bootstrap: str, topics: Topics, home: Path, unique: str, tmp_path: Path
) -> None:
    # A server when CLICKHOUSE_URL is set; else an embedded engine of this test's own (the
    # sink processes and the queries below each open it in turn).
    target = os.environ.get("CLICKHOUSE_URL") or f"chdb://{tmp_path / 'ch'}"
    args = [
        "sink", "--bootstrap", kafka_bootstrap, "--topic-prefix", topics.prefix, "--clickhouse-url", target,
        "--database", unique, "--group-id", unique, "--batch-wait", "0.5", "--session-timeout", "6",
    ]  # fmt: skip
    asyncio.run(produce(kafka_bootstrap, topics.metrics, batches(hosts=10, cycles=20)))

    crashed = Proc("sink-crashing", [*args, "--crash-after-batches", "1"], home).start()
    assert crashed.proc is not None
    assert crashed.proc.wait(WAIT_S) == CRASH_EXIT_CODE, crashed.log()[-3000:]
    assert "event=sink_crash_injected" in crashed.log()
    # The first batch is in ClickHouse, yet nothing was committed.
    stored = _query(target, unique, "SELECT count() AS n FROM metrics")[0]["n"]
    assert 0 < stored <= 600
    assert set(committed(kafka_bootstrap, unique, topics.metrics).values()) == {None}

    # More records arrive before the restart: a fresh cut of the uncommitted offsets would
    # differ from the crashed batch and its deduplication token would not match.
    asyncio.run(produce(kafka_bootstrap, topics.metrics, batches(hosts=10, cycles=20, t0=T0 + 200)))
    restarted = Proc("sink-restarted", args, home).start()
    try:
        deadline = time.monotonic() + WAIT_S
        while True:
            done = {p: off or 0 for p, off in committed(kafka_bootstrap, unique, topics.metrics).items()}
            if done == end_offsets(kafka_bootstrap, topics.metrics, list(done)):
                break
            assert restarted.alive() and time.monotonic() < deadline, restarted.log()[-3000:]
            time.sleep(0.5)
    finally:
        assert restarted.kill(signal.SIGTERM) == 0, restarted.log()[-3000:]
    assert "event=recovering_range" in restarted.log()

    # 400 batches x 3 samples, each exactly once: in the raw table and in the rollups.
    (row,) = _query(
        target,
        unique,
        "SELECT count() AS n, uniqExact(host_id, name, instance, ts) AS distinct_samples, "
        "(SELECT sum(count) FROM metrics_1m) AS rolled_up FROM metrics",
    )
    assert row == {"n": 1200, "distinct_samples": 1200, "rolled_up": 1200}


def test_clickhouse_unavailable_pauses_fetching_bounds_memory_and_loses_nothing(
    kafka_bootstrap: str, topics: Topics, clickhouse: Any, unique: str
) -> None:
    settings = SinkSettings(
        batch_rows=300,
        batch_wait_s=0.2,
        max_buffered_rows=900,
        fetch_max_records=100,
        retry_initial_s=0.2,
        retry_max_s=1.0,
        session_timeout_ms=6000,
        # Short, so the outage below outlasts it: a consumer that stopped polling meanwhile
        # would leave the group and be re-assigned (assignments > 1).
        max_poll_interval_ms=8000,
    )
    bound = settings.max_buffered_rows + settings.fetch_max_records * 3  # + one fetch of 3-sample batches
    sink = Sink(clickhouse, kafka_bootstrap, topics, database=unique, group_id=unique, settings=settings)
    held: list[int] = []

    async def until(condition: Any, what: str, task: asyncio.Task[None]) -> None:
        deadline = time.monotonic() + WAIT_S
        while not condition():
            if task.done():
                task.result()
                raise AssertionError(f"sink stopped early: {sink.stats.line()}")
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {sink.stats.line()}"
            held.append(sink.stats.held_rows)
            await asyncio.sleep(0.1)

    async def main() -> tuple[int, int]:
        stop = asyncio.Event()
        task = asyncio.create_task(sink.run(stop))
        await produce(kafka_bootstrap, topics.metrics, batches(hosts=5, cycles=4))
        await until(lambda: sink.stats.records >= 20, "the first records", task)

        # The real engine refuses the inserts: the table is gone until it is attached again.
        await asyncio.to_thread(clickhouse.command, f"DETACH TABLE {unique}.metrics")
        outage = time.monotonic()
        await produce(kafka_bootstrap, topics.metrics, batches(hosts=50, cycles=40, t0=T0 + 100))
        await until(lambda: sink.stats.paused and sink.stats.insert_failures >= 3, "pause", task)
        assert sink._consumer is not None and sink._consumer.paused()
        records_before = sink.stats.records
        await until(lambda: time.monotonic() - outage > 12, "the outage to last", task)
        records_during = sink.stats.records - records_before
        await asyncio.to_thread(clickhouse.command, f"ATTACH TABLE {unique}.metrics")
        await until(lambda: sink.stats.records >= 20 + 2000, "catching up", task)
        stop.set()
        await task
        return records_during, sink.stats.insert_failures

    records_during, failures = asyncio.run(main())
    assert records_during == 0 and failures >= 5
    assert max(held) <= bound and sink.stats.peak_held_rows <= bound, (max(held), sink.stats.line())
    assert sink.stats.pauses >= 1 and not sink.stats.paused
    assert sink.stats.assignments == 1, "the sink left its consumer group during the outage"
    q = clickhouse.query
    assert q(f"SELECT count(), uniqExact(host_id, name, ts) FROM {unique}.metrics").result_rows == [(6060, 6060)]
    assert q(f"SELECT sum(count) FROM {unique}.metrics_1m").result_rows == [(6060,)]
