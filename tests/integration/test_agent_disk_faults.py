"""A full or read-only state disk never stops the agent: heartbeats keep arriving, losses are counted.

The agent runs as a process against the real broker with its state directory on a real 1 MiB
tmpfs (root; skipped with the reason otherwise). Heartbeats are read back from the topic.
"""

from __future__ import annotations

import itertools
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from collector.contract import Heartbeat, MetricBatch, Topics
from tests.integration.helpers import WAIT_S, Proc, read_host, wait_for_log
from tests.mounts import fill, remount, tmpfs

pytestmark = pytest.mark.integration

INTERVAL_S = 0.5


def start_agent(bootstrap: str, topics: Topics, host: str, state: Path, log_dir: Path) -> Proc:
    args = ["agent", "--bootstrap", bootstrap, "--topic-prefix", topics.prefix, "--interval", str(INTERVAL_S)]
    return Proc("agent", [*args, "--host-id", host, "--state-dir", str(state)], log_dir).start()


def wait_for_beats(
    agent: Proc, bootstrap: str, topics: Topics, host: str, done: Callable[[list[Heartbeat]], bool]
) -> tuple[list[Heartbeat], list[MetricBatch]]:
    deadline = time.monotonic() + WAIT_S
    while True:
        beats, batches = read_host(bootstrap, topics, host)
        if done(beats):
            return beats, batches
        assert agent.alive() and time.monotonic() < deadline, agent.log()[-3000:]
        time.sleep(0.5)


def disk_errors(beat: Heartbeat) -> int:
    return beat.dropped.get("disk_error", 0)


def test_an_agent_on_a_full_1mb_disk_keeps_heartbeating_counts_drops_and_recovers(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    host = f"full-disk-{uuid.uuid4().hex[:6]}"
    with tmpfs(tmp_path / "state", size="1m") as state:
        agent = start_agent(kafka_bootstrap, topics, host, state, tmp_path)
        try:
            wait_for_beats(agent, kafka_bootstrap, topics, host, lambda beats: len(beats) >= 3)
            filler = fill(state)
            filled_at = time.time()
            wait_for_log(agent, "event=spool_unavailable")
            beats, _ = wait_for_beats(
                agent,
                kafka_bootstrap,
                topics,
                host,
                lambda beats: len([b for b in beats if b.sent_at > filled_at and disk_errors(b)]) >= 6,
            )
            full = [b for b in beats if b.sent_at > filled_at and disk_errors(b)]
            counts = [disk_errors(b) for b in full]
            assert counts == sorted(counts) and counts[-1] > counts[0], counts  # every cycle's records counted
            assert all(b.events_dropped >= disk_errors(b) for b in full)
            gaps = [b.sent_at - a.sent_at for a, b in itertools.pairwise(full)]
            assert max(gaps) < 2 * INTERVAL_S, f"heartbeats {max(gaps):.2f}s apart on a full disk"

            filler.unlink()
            wait_for_log(agent, "event=spool_recovered")
            recovered_at = time.time()
            beats, batches = wait_for_beats(
                agent,
                kafka_bootstrap,
                topics,
                host,
                lambda beats: len([b for b in beats if b.sent_at > recovered_at]) >= 3,
            )
            after = [b for b in beats if b.sent_at > recovered_at]
            assert len({disk_errors(b) for b in after}) == 1, "records still dropped after space came back"
            assert any(b.ts > recovered_at for b in batches), "metric batches do not go through the spool again"
        finally:
            code = agent.kill(signal.SIGTERM)
        log = agent.log()
        assert code == 0, log[-3000:]
        assert log.count("event=spool_unavailable") == 1 and log.count("event=spool_recovered") == 1
        assert "reason=ENOSPC" in log and "Traceback" not in log


def test_an_agent_on_a_read_only_state_dir_keeps_heartbeating(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    host = f"ro-disk-{uuid.uuid4().hex[:6]}"
    with tmpfs(tmp_path / "state", size="1m") as state:
        remount(state, read_only=True)
        agent = start_agent(kafka_bootstrap, topics, host, state, tmp_path)
        try:
            beats, _ = wait_for_beats(
                agent, kafka_bootstrap, topics, host, lambda beats: len(beats) >= 4 and disk_errors(beats[-1]) > 0
            )
        finally:
            code = agent.kill(signal.SIGTERM)
        log = agent.log()
        assert code == 0, log[-3000:]
        assert [b.seq for b in beats] == list(range(1, len(beats) + 1))  # numbered in memory, no gaps
        assert "reason=EROFS" in log and log.count("event=spool_unavailable") == 1 and "Traceback" not in log
