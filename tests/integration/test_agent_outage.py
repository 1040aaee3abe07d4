"""The agent keeps everything it collects while the broker is down and delivers it, in order, after."""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
import uuid
from pathlib import Path

import pytest

from collector.contract import Topics
from collector.kafka_io import ensure_all_topics
from fleetpulse.kafka_local import LocalKafka, default_home
from fleetpulse.ports import free_port_pair
from tests.integration.conftest import PARTITIONS
from tests.integration.helpers import WAIT_S, Proc, read_host

pytestmark = pytest.mark.integration

OUTAGE_S = 32.0


def test_a_broker_outage_loses_nothing_and_keeps_order(tmp_path: Path) -> None:
    kafka = LocalKafka(tmp_path / "kafka-home", port=free_port_pair(), jar_cache=default_home() / "kafka")
    kafka.start(timeout_s=180)
    topics = Topics(f"outage_{uuid.uuid4().hex[:8]}")
    host = f"spooling-{uuid.uuid4().hex[:6]}"
    agent = None
    try:
        asyncio.run(ensure_all_topics(kafka.bootstrap, topics, PARTITIONS))
        agent = Proc(
            "agent",
            [
                "agent",
                "--bootstrap",
                kafka.bootstrap,
                "--topic-prefix",
                topics.prefix,
                "--interval",
                "1",
                "--host-id",
                host,
                "--state-dir",
                str(tmp_path / "state"),
            ],
            tmp_path,
        ).start()
        deadline = time.monotonic() + WAIT_S
        while len(read_host(kafka.bootstrap, topics, host)[0]) < 3:
            assert agent.alive() and time.monotonic() < deadline, agent.log()
            time.sleep(0.5)

        assert kafka.stop()
        down_at = time.time()
        time.sleep(OUTAGE_S)  # the outage itself: real time is what is being tested
        assert agent.alive(), agent.log()
        up_at = time.time()
        kafka.start(timeout_s=180)

        deadline = time.monotonic() + WAIT_S
        while True:
            beats, batches = read_host(kafka.bootstrap, topics, host)
            if beats and beats[-1].sent_at > up_at + 3:
                break
            assert agent.alive() and time.monotonic() < deadline, agent.log()[-3000:]
            time.sleep(1.0)
    finally:
        if agent is not None:
            agent.kill(signal.SIGTERM)
        kafka.stop()

    seqs = [b.seq for b in beats]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"gaps, repeats or disorder: {seqs}"
    assert len({b.boot_id for b in beats}) == 1
    during = [b for b in beats if down_at < b.sent_at < up_at]
    assert len(during) >= OUTAGE_S - 3, f"only {len(during)} heartbeats sent during the outage arrived"
    batch_ts = [b.ts for b in batches]
    assert batch_ts == sorted(batch_ts), "metric batches out of order"
    assert len([t for t in batch_ts if down_at < t < up_at]) >= OUTAGE_S - 3
    # Original timestamps: one per interval through the outage, not bunched at delivery time.
    gaps = [b - a for a, b in itertools.pairwise(batch_ts)]
    assert max(gaps) < 2.5, f"a hole in the metric timeline: {max(gaps):.1f}s"
    assert "event=broker_unreachable" in agent.log() and "event=broker_reachable" in agent.log()
