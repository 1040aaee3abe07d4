"""The down-checker through a real broker and worker, with a small hand-driven fleet.

The scenario suite (``test_downcheck_scenarios``) drives the simulator; these tests pin the
worker's own duties: a crash pages once, the host's return resolves it, and a worker restart
neither forgets an open alert nor pages again for what it already announced.
"""

from __future__ import annotations

import asyncio
import threading
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


def test_a_restarted_worker_keeps_the_open_page_and_closes_it_without_paging_again(
    kafka_bootstrap: str, topics: Topics, unique: str, home: Path
) -> None:
    policy = write_policy(home / "policy.yaml", POLICY)
    app_id = f"dc-{unique}"
    first = worker(kafka_bootstrap, topics, app_id, policy, home)
    second = None
    try:
        wait_for_log(first, "event=worker_started")
        # r2-h3 stops at 6 s; the worker is killed once its page is out and a new one takes over
        # the same group and tables; r2-h3 returns with a new boot id at 44 s.
        fleet = threading.Thread(
            target=asyncio.run,
            args=(
                beat(
                    kafka_bootstrap,
                    topics,
                    56,
                    lambda h, t: not (h == "r2-h3" and 6 <= t < 44),
                    lambda h: "boot-2" if h == "r2-h3" and time.time() - started > 44 else "boot-1",
                ),
            ),
            daemon=True,
        )
        started = time.time()
        fleet.start()
        paged = collect_alerts(kafka_bootstrap, topics, lambda a: len(a) >= 1, timeout_s=40, watch=[first])
        assert _kinds(paged) == [("host_down", "firing", "r2-h3")]
        first.kill()
        second = worker(kafka_bootstrap, topics, app_id, policy, home, name="worker-2")
        wait_for_log(second, "event=downcheck_restored")
        fleet.join(90)
        alerts = collect_alerts(
            kafka_bootstrap,
            topics,
            lambda a: any(x.rule == "host_rebooted" and x.state == "resolved" for x in a),
            timeout_s=30,
            watch=[second],
        )
        kinds = _kinds(alerts)
        # One page for the crash, closed by the return; no second page from the new worker and
        # no page for any host the new worker only knew from its tables.
        assert kinds.count(("host_down", "firing", "r2-h3")) == 1, kinds
        assert ("host_down", "resolved", "r2-h3") in kinds, kinds
        assert ("host_rebooted", "firing", "r2-h3") in kinds, kinds
        assert {k[2] for k in kinds} == {"r2-h3"}, kinds
        down = [a for a in alerts if a.rule == "host_down"]
        assert down[0].started_at == down[1].started_at
        assert "open=1" in second.log()
    finally:
        first.kill()
        if second is not None:
            second.kill()
