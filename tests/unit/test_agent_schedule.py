"""Heartbeats keep their schedule whatever the log tailer does, measured through the real agent.

The agent runs for real (``run_agent``, real clock, real files) against a broker address where
nothing listens, so every event stays in its spool; the spool is then read back: heartbeat
times are the agent's own schedule.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collector.agent import run_agent
from collector.config import AgentConfig, KafkaSettings
from collector.contract import Heartbeat, LogCounts, decode
from collector.log_tail import LogRule, LogSource, LogTailer
from collector.spool import DiskSpool

INTERVAL_S = 0.25
RUN_S = 3.0
NOWHERE = "127.0.0.1:1"  # nothing listens: the sender keeps retrying, the spool keeps everything


def loop_tree(root: Path) -> Path:
    """Logs with symlink loops under them: ``a/loop -> ..``, ``a/b/up -> ../..``, ``self -> .``."""
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "loop").symlink_to("..")
    (root / "a" / "b" / "up").symlink_to("../..")
    (root / "self").symlink_to(".")
    (root / "a" / "b" / "app.log").write_text("ERROR one\nok\nERROR two\n")
    return root


def config(pattern: str) -> AgentConfig:
    return AgentConfig(
        host_id="schedule-test",
        interval_s=INTERVAL_S,
        logs=[LogSource([pattern], [LogRule("errors", "ERROR")], follow_symlinks=True)],
        kafka=KafkaSettings(bootstrap_servers=NOWHERE, request_timeout_s=1.0),
    )


def run_for(cfg: AgentConfig, state: Path, seconds: float) -> list[object]:
    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(seconds, stop.set)
        await run_agent(cfg, state, stop)

    asyncio.run(main())
    spool = DiskSpool(state / "spool")
    events = [decode(r.value) for r in spool.peek(100_000)]
    spool.close()
    return events


def assert_on_schedule(events: list[object], seconds: float) -> None:
    beats = [e for e in events if isinstance(e, Heartbeat)]
    assert len(beats) >= seconds / INTERVAL_S - 3, f"only {len(beats)} heartbeats in {seconds}s"
    gaps = [b.sent_at - a.sent_at for a, b in itertools.pairwise(beats)]
    assert max(gaps) < 2 * INTERVAL_S, f"a heartbeat came {max(gaps):.2f}s after the one before"


def test_a_symlink_loop_under_a_globstar_does_not_delay_a_heartbeat(tmp_path: Path) -> None:
    logs = loop_tree(tmp_path / "logs")
    events = run_for(config(f"{logs}/**/*.log"), tmp_path / "state", RUN_S)
    assert_on_schedule(events, RUN_S)
    counted = sum(e.counts["errors"] for e in events if isinstance(e, LogCounts))
    assert counted == 2  # the file is found once, whatever the loops above it


def test_a_log_poll_that_stalls_for_intervals_does_not_delay_a_heartbeat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = loop_tree(tmp_path / "logs")
    real_poll = LogTailer.poll

    def slow_poll(self: LogTailer, now: float) -> object:
        time.sleep(4 * INTERVAL_S)  # a hung NFS mount, a huge tree: the tailer's thread waits
        return real_poll(self, now)

    monkeypatch.setattr(LogTailer, "poll", slow_poll)
    events = run_for(config(f"{logs}/a/b/*.log"), tmp_path / "state", RUN_S)
    assert_on_schedule(events, RUN_S)
    assert sum(e.counts["errors"] for e in events if isinstance(e, LogCounts)) == 2  # reported by a later cycle


def test_sigint_stops_an_agent_following_a_symlink_loop_promptly(tmp_path: Path) -> None:
    logs = loop_tree(tmp_path / "logs")
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        f'[agent]\nstate_dir = "{tmp_path / "state"}"\n[kafka]\nbootstrap_servers = "{NOWHERE}"\n'
        f'[[logs]]\npaths = ["{logs}/**/*.log"]\n[[logs.rules]]\nname = "errors"\npattern = "ERROR"\n'
    )
    agent = subprocess.Popen(
        [sys.executable, "-m", "fleetpulse.cli", "agent", "--config", str(cfg), "--interval", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(3)
    agent.send_signal(signal.SIGINT)
    asked = time.monotonic()
    out, _ = agent.communicate(timeout=30)
    assert time.monotonic() - asked < 5.0, out
    assert agent.returncode == 0, out
    stopped = next(line for line in out.splitlines() if "event=agent_stopped" in line)
    assert int(stopped.split("cycles=")[1].split()[0]) >= 3, stopped
