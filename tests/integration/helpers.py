"""Driving real processes and topics from tests: bounded waits, never bare sleeps."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from collector.contract import Alert, Heartbeat, MetricBatch, Topics, decode, decode_as
from fleetpulse.alerts import read_alerts
from fleetpulse.cli import worker_args
from fleetpulse.sim.runner import run_simulation
from fleetpulse.sim.scenario import Scenario
from fleetpulse.sim.score import Report, score
from fleetpulse.sim.truth import Truth, load_truth
from sinks.writer import Sink
from tests.integration.conftest import PARTITIONS

WAIT_S = 120.0


class Proc:
    """A ``fleetpulse`` subcommand run as a child process, its output in a log file."""

    def __init__(self, name: str, args: list[str], log_dir: Path) -> None:
        self.name = name
        self.args = args
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "fleetpulse.cli", *self.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    def kill(self, sig: signal.Signals = signal.SIGKILL, wait_s: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def read_host(bootstrap: str, topics: Topics, host: str) -> tuple[list[Heartbeat], list[MetricBatch]]:
    """Every heartbeat and metric batch of ``host`` on the topics so far, in partition order."""

    async def run() -> tuple[list[Heartbeat], list[MetricBatch]]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
        )
        await consumer.start()
        beats: list[Heartbeat] = []
        batches: list[MetricBatch] = []
        try:
            tps = [TopicPartition(t, p) for t in (topics.heartbeats, topics.metrics) for p in range(PARTITIONS)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)

            async def behind() -> bool:
                return any([await consumer.position(tp) < end for tp, end in ends.items()])

            while await behind():
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for r in records:
                        event = decode(r.value)
                        if isinstance(event, Heartbeat) and event.host_id == host:
                            beats.append(event)
                        elif isinstance(event, MetricBatch) and event.host_id == host:
                            batches.append(event)
        finally:
            await consumer.stop()
        return beats, batches

    return asyncio.run(run())


def worker(
    bootstrap: str,
    topics: Topics,
    app_id: str,
    policy: Path | None,
    home: Path,
    name: str = "worker",
    trusted_keys: tuple[Path, ...] = (),
) -> Proc:
    # The broker's minimum session timeout: a restarted worker resumes sooner.
    args = worker_args(
        bootstrap, topics.prefix, app_id, policy, home, partitions=2, session_timeout_s=6, trusted_keys=trusted_keys
    )
    return Proc(name, args, home).start()


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def collect_alerts(
    bootstrap: str,
    topics: Topics,
    until: Callable[[list[Alert]], bool],
    timeout_s: float = WAIT_S,
    watch: list[Proc] | None = None,
) -> list[Alert]:
    """Read the alert topic from the beginning until ``until(alerts)`` holds.

    Fails fast, with the process's log, if a watched process exits meanwhile; a timeout
    carries the watched processes' logs too.
    """

    async def run() -> list[Alert]:
        consumer = AIOKafkaConsumer(
            topics.alerts,
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await consumer.start()
        alerts: list[Alert] = []
        deadline = time.monotonic() + timeout_s
        try:
            while not until(alerts):
                if time.monotonic() > deadline:
                    logs = "".join(f"\n--- {p.name} log:\n{p.log()[-6000:]}" for p in watch or [])
                    raise AssertionError(f"timed out after {timeout_s:.0f}s; alerts so far: {alerts}{logs}")
                for p in watch or []:
                    if not p.alive():
                        raise AssertionError(f"{p.name} exited early; its log:\n{p.log()[-4000:]}")
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    alerts.extend(decode_as(r.value, Alert) for r in records)
            return alerts
        finally:
            await consumer.stop()

    return asyncio.run(run())


def run_sink_until(sink: Sink, done: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    """Run a sink in this process until ``done()`` holds, then stop it cleanly."""

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(sink.run(stop))
        deadline = time.monotonic() + timeout_s
        while not done():
            if task.done():
                task.result()  # raises what killed it
                raise AssertionError(f"sink stopped early at {sink.stats.line()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"sink stuck at {sink.stats.line()}")
            await asyncio.sleep(0.1)
        stop.set()
        await task

    asyncio.run(main())


def write_policy(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def wait_for_log(proc: Proc, needle: str, timeout_s: float = WAIT_S) -> str:
    """Wait until ``needle`` appears in a process's log; fails with the log if it exits first."""
    deadline = time.monotonic() + timeout_s
    while needle not in (text := proc.log()):
        if not proc.alive():
            raise AssertionError(f"{proc.name} exited; waiting for {needle!r}; its log:\n{text[-4000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{needle!r} not in {proc.name}'s log after {timeout_s:.0f}s:\n{text[-4000:]}")
        time.sleep(0.2)
    return text


@dataclass(frozen=True)
class ScenarioRun:
    """A scenario played through a real broker and worker: its truth, the alerts, their score."""

    truth: Truth
    alerts: list[Alert]
    report: Report

    def pages(self, kind: str) -> list[tuple[str, str]]:
        """``(subject, verdict)`` of the ``kind`` alerts raised during the run: the group, host,
        region or ``fleet`` they name."""
        return [
            (p.group or p.host_id or p.region or "fleet", p.verdict)
            for p in self.report.pages
            if p.kind == kind and p.verdict != "after_end"
        ]

    def story(self, alerts: bool = True) -> str:
        """The score and (``alerts``) every alert, times since the start: a failure's context."""
        lines = self.report.lines()
        if alerts:
            start = self.truth.start
            lines += [f"{a.at - start:7.1f}s {a.state:8} {a.fingerprint} {a.summary}" for a in self.alerts]
        else:
            lines.append(f"{len(self.alerts)} alerts read")
        return "\n".join(lines)


def play_scenario(bootstrap: str, topics: Topics, app_id: str, scenario: Scenario, home: Path) -> ScenarioRun:
    """Start a worker on the scenario's own down-check settings, play the scenario's fleet
    through the broker, read every alert raised meanwhile and score them against the truth."""
    d = scenario.downcheck
    policy = write_policy(
        home / "policy.yaml",
        "downcheck:\n"
        f"  - {{name: {scenario.name or 'scenario'}, missed: {d.missed:g}, late: {d.late:g}, grace: {d.grace_s:g}s,"
        f" flap_window: {d.flap_window_s:g}s}}\n",
    )
    w = worker(bootstrap, topics, app_id, policy, home)
    try:
        wait_for_log(w, "event=worker_started")
        truth_path = home / "truth.json"
        asyncio.run(run_simulation(scenario, bootstrap, topics, truth_path=truth_path, create_topics=False))
        assert w.alive(), w.log()[-4000:]
        truth = load_truth(truth_path)
        alerts = asyncio.run(read_alerts(bootstrap, topics, truth.start, max(time.time(), truth.end) + 2))
        return ScenarioRun(truth, alerts, score(truth, alerts))
    finally:
        w.kill()
