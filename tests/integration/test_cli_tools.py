"""`fleetpulse alerts tail` and `fleetpulse query` as a person runs them."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from collector.contract import Alert, Topics, encode
from tests.cli import fleetpulse
from tests.integration.helpers import WAIT_S, Proc, produce

pytestmark = pytest.mark.integration


def test_alerts_tail_prints_each_alert_as_a_line(kafka_bootstrap: str, topics: Topics, home: Path) -> None:
    alert = Alert(
        "fp9",
        "disk_full",
        "firing",
        "critical",
        "db-7",
        "eu",
        "disk_used_pct:/",
        97.5,
        90.0,
        1_790_000_000.0,
        1_790_000_060.0,
        "disk / at 98%",
        "e1",
    )
    asyncio.run(produce(kafka_bootstrap, topics.alerts, [(b"fp9", encode(alert)), (b"fp9", b"not an alert")]))
    tail = Proc(
        "tail",
        ["alerts", "tail", "--from-beginning", "--bootstrap", kafka_bootstrap, "--topic-prefix", topics.prefix],
        home,
    ).start()
    try:
        deadline = time.monotonic() + WAIT_S
        while "FIRING" not in tail.log() or "malformed_alert" not in tail.log():
            assert tail.alive() and time.monotonic() < deadline, tail.log()
            time.sleep(0.2)
    finally:
        assert tail.kill(signal.SIGINT) == 0, tail.log()
    line = next(x for x in tail.log().splitlines() if "FIRING" in x)
    assert line == (
        "2026-09-21T14:14:20Z FIRING      critical disk_full host=db-7 region=eu disk_used_pct:/=97.5 "
        "threshold=90 - disk / at 98%"
    )


def test_query_runs_sql_on_the_embedded_engine(tmp_path: Path) -> None:
    target = f"chdb://{tmp_path / 'ch'}"
    done = fleetpulse(
        "query",
        "--clickhouse-url",
        target,
        "--database",
        "default",
        "--format",
        "csv",
        "SELECT 40 + 2 AS answer",
        timeout_s=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["answer", "42"]
    bad = fleetpulse(
        "query", "--clickhouse-url", target, "--database", "default", "SELECT * FROM no_such_table", timeout_s=120
    )
    assert bad.returncode == 1 and "no_such_table" in bad.stderr and "Traceback" not in bad.stderr
