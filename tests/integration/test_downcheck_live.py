"""The down-checker through a real broker and worker, with a small hand-driven fleet.

The scenario suite (``test_downcheck_scenarios``) drives the simulator; these tests pin the
worker's own duties: a crash pages once, the host's return resolves it, and a worker restart
neither forgets an open alert nor pages again for what it already announced.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from aiokafka import AIOKafkaProducer

from collector.contract import Alert, Heartbeat, Topics, encode
from tests.integration.helpers import collect_alerts, wait_for_log, worker, write_policy

INTERVAL = 1.0
REGIONS = ("r1", "r2", "r3")
HOSTS = [f"{r}-h{i}" for r in REGIONS for i in range(6)]
POLICY = """
downcheck:
  - name: fast
    missed: 3
    late: 1.5
    grace: 1s
    flap_window: 5m
"""


async def beat(
    bootstrap: str, topics: Topics, seconds: float, alive: Callable[[str, float], bool], boot: Callable[[str], str]
) -> None:
    """Every host beats once per interval while ``alive(host, elapsed)``; seqs continue per boot."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    seq: dict[tuple[str, str], int] = {}
    start = time.time()
    try:
        while (elapsed := time.time() - start) < seconds:
            for host in HOSTS:
                if not alive(host, elapsed):
                    continue
                b = boot(host)
                n = seq[(host, b)] = seq.get((host, b), 0) + 1
                hb = Heartbeat(host, host.split("-")[0], b, n, time.time(), INTERVAL, "test")
                await producer.send(topics.heartbeats, encode(hb), key=host.encode())
            await producer.flush()
            await asyncio.sleep(INTERVAL - (time.time() - start) % INTERVAL)
    finally:
        await producer.stop()


def _kinds(alerts: list[Alert]) -> list[tuple[str, str, str]]:
    return [(a.rule, a.state, a.host_id or a.region) for a in alerts]


def test_isolated_crash_pages_once_and_its_return_resolves(
    kafka_bootstrap: str, topics: Topics, unique: str, home: Path
) -> None:
    policy = write_policy(home / "policy.yaml", POLICY)
    w = worker(kafka_bootstrap, topics, f"dc-{unique}", policy, home)
    try:
        wait_for_log(w, "event=worker_started")
        # r2-h3 stops beating at 8 s and resumes (same boot, next sequence number) at 16 s.
        asyncio.run(
            beat(kafka_bootstrap, topics, 22, lambda h, t: not (h == "r2-h3" and 8 <= t < 16), lambda h: "boot-1")
        )
        alerts = collect_alerts(
            kafka_bootstrap, topics, lambda a: any(x.state == "resolved" for x in a), timeout_s=30, watch=[w]
        )
        assert _kinds(alerts) == [("host_down", "firing", "r2-h3"), ("host_down", "resolved", "r2-h3")]
        fired, resolved = alerts
        assert fired.severity == "critical" and fired.kind == "downcheck"
        assert "healthy region" in fired.summary
        assert "stalled" in resolved.summary  # the test fleet makes no beats while down
        assert resolved.started_at == fired.started_at
    finally:
        w.kill()
