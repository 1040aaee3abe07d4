"""The walking skeleton through the real broker: agent -> Kafka -> worker -> alert topic."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from collector.contract import Alert, MetricBatch, Topics, encode
from sinks.writer import Sink
from tests.integration.helpers import Proc, collect_alerts, produce, run_sink_until, worker, write_policy
from tests.integration.whole_pipeline import PipelineBroker, assert_everything_arrived, run_whole_pipeline

pytestmark = pytest.mark.integration


def test_agent_to_worker_to_alert_topic_and_to_clickhouse(
    kafka_bootstrap: str, topics: Topics, home: Path, unique: str, clickhouse: Any
) -> None:
    policy = write_policy(home / "p.yaml", "rules:\n  - name: memory_in_use\n    when: mem_used_pct > 0\n")
    host = f"agent-{uuid.uuid4().hex[:6]}"
    w = worker(kafka_bootstrap, topics, unique, policy, home)
    agent = Proc(
        "agent",
        [
            "agent",
            "--bootstrap",
            kafka_bootstrap,
            "--topic-prefix",
            topics.prefix,
            "--interval",
            "1",
            "--host-id",
            host,
            "--region",
            "it",
            "--label",
            "team=ops",
            "--home",  # its own state dir: never the checkout's .fleetpulse
            str(home),
        ],
        home,
    ).start()
    try:
        alerts = collect_alerts(kafka_bootstrap, topics, lambda a: any(x.host_id == host for x in a), watch=[w, agent])
    finally:
        agent.kill(signal.SIGTERM)
        assert w.kill(signal.SIGTERM) == 0, w.log()[-3000:]
    (alert,) = [a for a in alerts if a.host_id == host]
    assert (alert.state, alert.rule, alert.metric, alert.region) == ("firing", "memory_in_use", "mem_used_pct", "it")
    assert alert.labels == {"team": "ops"}
    assert 0 < alert.value <= 100
    assert "event=worker_stopped" in w.log()

    # The same topics through the sink into ClickHouse: the agent's samples and the alert.
    sink = Sink(clickhouse, kafka_bootstrap, topics, database=unique, group_id=f"{unique}-sink")
    run_sink_until(sink, lambda: sink.stats.records >= 2)
    counts = clickhouse.query(
        f"SELECT countIf(name = 'cpu_pct'), countIf(name = 'mem_used_pct'), uniq(host_id), any(region) "
        f"FROM {unique}.metrics WHERE host_id = %(h)s",
        parameters={"h": host},
    ).result_rows[0]
    assert counts[0] >= 1 and counts[0] == counts[1] and counts[2:] == (1, "it")
    stored = clickhouse.query(f"SELECT rule, state, host_id FROM {unique}.alerts").result_rows
    assert stored == [("memory_in_use", "firing", host)]


def test_the_whole_pipeline_with_signed_control_records(
    kafka_bootstrap: str, topics: Topics, unique: str, tmp_path: Path
) -> None:
    """The same run as on the secured broker (test_kafka_secure.py), here without TLS or SASL."""
    broker = PipelineBroker(
        bootstrap=kafka_bootstrap,
        topics=topics,
        app_id=unique,
        sink_group=f"{unique}-sink",
        flags=lambda principal: [],
        agent_kafka_toml=lambda: f'[kafka]\nbootstrap_servers = "{kafka_bootstrap}"\n',
    )
    assert_everything_arrived(run_whole_pipeline(broker, tmp_path))


def test_worker_killed_while_an_alert_fires_neither_loses_nor_repeats_it(
    kafka_bootstrap: str, topics: Topics, home: Path, unique: str
) -> None:
    policy = write_policy(home / "p.yaml", "rules:\n  - name: cpu_hot\n    when: cpu_pct > 90 for 20s\n")
    host = "kill-test"
    t0 = time.time() - 600

    def samples(*points: tuple[float, float]) -> list[tuple[bytes, bytes]]:
        return [(host.encode(), encode(MetricBatch(host, "it", t0 + at, 10.0, {"cpu_pct": cpu}))) for at, cpu in points]

    first = worker(kafka_bootstrap, topics, unique, policy, home, name="worker-1")
    asyncio.run(produce(kafka_bootstrap, topics.metrics, samples((0, 95), (10, 96), (20, 97))))
    firing = collect_alerts(kafka_bootstrap, topics, lambda a: len(a) >= 1, watch=[first])
    assert [(a.state, a.started_at, a.at) for a in firing] == [("firing", t0, t0 + 20)]

    first.kill(signal.SIGKILL)  # at once, while the alert is firing
    asyncio.run(produce(kafka_bootstrap, topics.metrics, samples((30, 98), (40, 99))))
    second = worker(kafka_bootstrap, topics, unique, policy, home, name="worker-2")
    try:
        asyncio.run(produce(kafka_bootstrap, topics.metrics, samples((50, 10))))
        # Same key, same partition: a repeated firing would come before the resolution.
        alerts = collect_alerts(
            kafka_bootstrap, topics, lambda a: any(x.state == "resolved" for x in a), watch=[second]
        )
    finally:
        second.kill(signal.SIGTERM)
    assert [(a.state, a.started_at, a.at) for a in alerts] == [
        ("firing", t0, t0 + 20),
        ("resolved", t0, t0 + 50),
    ], f"worker-2 log:\n{second.log()[-3000:]}"


def test_malformed_records_are_counted_and_skipped_by_the_worker(
    kafka_bootstrap: str, topics: Topics, home: Path, unique: str
) -> None:
    policy = write_policy(home / "p.yaml", "rules:\n  - name: cpu_hot\n    when: cpu_pct > 90\n")
    host = b"bad-input"
    good = encode(MetricBatch("bad-input", "it", time.time(), 10.0, {"cpu_pct": 99.0}))
    w = worker(kafka_bootstrap, topics, unique, policy, home)
    try:
        asyncio.run(
            produce(
                kafka_bootstrap,
                topics.metrics,
                [
                    (host, b"\xff\xfe not json"),
                    (host, b'{"v": 1, "type": "metric_batch", "host_id": 7}'),
                    (host, good),
                ],
            )
        )
        alerts: list[Alert] = collect_alerts(kafka_bootstrap, topics, lambda a: len(a) >= 1, watch=[w])
        assert [(a.host_id, a.state) for a in alerts] == [("bad-input", "firing")]
        assert w.alive()
    finally:
        w.kill(signal.SIGTERM)
    log = w.log()
    assert "event=malformed_record" in log and "malformed_total=2" in log
    assert "not JSON" in log and "'metrics' must be an object" in log
