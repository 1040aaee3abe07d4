"""Down-checker at fleet scale: the ``scale`` scenario (15,000 hosts, 5 s, 5 regions) through real workers.

Each run plays the scenario in real time into a real broker, once against one ``fleetpulse
worker`` and once against two in the same consumer group (side by side, same scenario, same
seed), and prints for each:

- **lag**: the worker group's committed offsets on the heartbeat topic against the topic's
  end, sampled every 2 s, as records and as seconds of fleet traffic (records / beats per
  second; Faust commits every ~2.8 s, so a keeping-up group shows a few seconds here), and
  the workers' own ``heartbeat_lag_s`` (how far behind the broker the slowest partition
  is read, from their 10 s stats lines);
- **detection**: the run's alerts scored against its ground truth (``fleetpulse.sim.score``):
  host_down precision and recall, latency p50/p99 against ``timeout + 2 s``, the verdict;
- **cost**: each worker's CPU (user + system) over the run, as a share of one core;
- **scaling**: the busiest worker's CPU with one worker over that with two (the headroom a
  second worker buys), and total CPU with two over one (what splitting the fleet costs).

The simulator's own delay (``max_lag_ms``, how far its producer fell behind the timeline) is
printed too: the producer, the broker and the workers share the machine's cores.

    .venv/bin/fleetpulse kafka start --home /tmp/fp-bench --port 39092
    .venv/bin/python bench/downcheck_scale.py --bootstrap 127.0.0.1:39092 --runs 3
    .venv/bin/fleetpulse kafka stop --home /tmp/fp-bench --port 39092
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from collector.connection import KafkaConnection, connection_from_env
from collector.contract import Topics
from collector.kafka_io import ensure_all_topics
from fleetpulse.alerts import read_alerts
from fleetpulse.cli import worker_args
from fleetpulse.sim.runner import run_simulation
from fleetpulse.sim.scenario import Scenario, load_scenario
from fleetpulse.sim.score import Report, score

SAMPLE_S = 2.0
LAG_LINE = re.compile(r"heartbeat_lag_s=([0-9.]+)")


@dataclass
class Run:
    """One play of the scenario against ``workers`` workers."""

    workers: int
    lag_records: list[int] = field(default_factory=list)
    cpu_share: list[float] = field(default_factory=list)  # per worker, of one core
    worker_lag_s: list[float] = field(default_factory=list)  # the workers' own heartbeat_lag_s lines
    report: Report | None = None
    producer_lag_ms: int = 0

    def lag_s(self, beats_per_s: float) -> tuple[float, float]:
        """Median and max lag in seconds of fleet traffic."""
        lags = self.lag_records or [0]
        return statistics.median(lags) / beats_per_s, max(lags) / beats_per_s


def _policy(sc: Scenario) -> str:
    d = sc.downcheck
    return (
        "downcheck:\n"
        f"  - {{name: bench, missed: {d.missed:g}, late: {d.late:g}, grace: {d.grace_s:g}s,"
        f" flap_window: {d.flap_window_s:g}s, region_share: {d.region_share:g},"
        f" min_region_hosts: {d.min_region_hosts}, ingest_share: {d.ingest_share:g}}}\n"
    )


def _start_worker(bootstrap: str, topics: Topics, group: str, policy: Path, home: Path, partitions: int) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    log = home / "worker.log"
    # The default session timeout (30 s): a CPU-starved worker must not be voted out.
    cmd = [
        sys.executable,
        "-m",
        "fleetpulse.cli",
        *worker_args(bootstrap, topics.prefix, group, policy, home, partitions),
    ]
    with open(log, "wb") as out:
        subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return log


def _wait_for(log: Path, needle: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while needle not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{log}: no {needle!r} after {timeout_s:g}s:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def _settle(logs: list[Path], quiet_s: float = 10.0, timeout_s: float = 180.0) -> None:
    """Wait until every worker has its partitions and no assignment changed for ``quiet_s``."""
    needle = "_on_partitions_assigned"
    deadline = time.monotonic() + timeout_s
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        counts = [log.read_text(errors="replace").count(needle) for log in logs]
        if sum(counts) != last:
            last, since = sum(counts), time.monotonic()
        elif all(counts) and time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.5)
    raise RuntimeError(f"the worker group did not settle in {timeout_s:g}s")


async def _lag(bootstrap: KafkaConnection, group: str, topic: str) -> int | None:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(**bootstrap.client_options())
    consumer = AIOKafkaConsumer(**bootstrap.client_options(), group_id=None, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        committed = {tp: m.offset for tp, m in (await admin.list_consumer_group_offsets(group)).items()}
        parts = [tp for tp in committed if tp.topic == topic]
        if not parts:
            return None
        ends = await consumer.end_offsets(parts)
        return sum(max(0, ends[tp] - max(0, committed[tp])) for tp in parts)
    except KafkaError:
        return None
    finally:
        await consumer.stop()
        await admin.close()


async def _sample_lag(bootstrap: KafkaConnection, group: str, topic: str, into: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        lag = await _lag(bootstrap, group, topic)
        if lag is not None:
            into.append(lag)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_S)


def play(sc: Scenario, bootstrap: KafkaConnection, workers: int, partitions: int, tmp: Path) -> Run:
    """One run of ``sc`` against ``workers`` fresh workers on fresh topics."""
    tag = uuid.uuid4().hex[:8]
    topics = Topics(f"bench_dc_{tag}")
    group = f"bench-dc-{tag}"
    asyncio.run(ensure_all_topics(bootstrap, topics, partitions))
    policy = tmp / f"policy-{tag}.yaml"
    policy.write_text(_policy(sc))
    logs = [
        _start_worker(bootstrap.bootstrap_servers, topics, group, policy, tmp / f"{tag}-w{i}", partitions)
        for i in range(workers)
    ]
    run = Run(workers)
    procs: list[psutil.Process] = []
    try:
        for log in logs:
            _wait_for(log, "event=worker_started", 120)
        procs = [
            p
            for p in psutil.process_iter(["cmdline"])
            if p.info["cmdline"] and group in p.info["cmdline"] and "worker" in p.info["cmdline"]
        ]
        assert len(procs) == workers, f"found {len(procs)} worker processes"
        _settle(logs)
        before = [sum(p.cpu_times()[:2]) for p in procs]
        marks = [log.stat().st_size for log in logs]
        started = time.monotonic()

        async def simulate() -> None:
            stop = asyncio.Event()
            sampler = asyncio.create_task(_sample_lag(bootstrap, group, topics.heartbeats, run.lag_records, stop))
            truth = await run_simulation(sc, bootstrap, topics, truth_path=tmp / f"truth-{tag}.json",
                                         create_topics=False, progress=lambda line: None)  # fmt: skip
            stop.set()
            await sampler
            run.producer_lag_ms = int(truth.stats.get("max_lag_ms", 0))
            # Alerts of the run's last seconds are decided up to one timeout after its end.
            alerts = await read_alerts(bootstrap, topics, truth.start, time.time() + sc.timeout_s + 2)
            run.report = score(truth, alerts)

        asyncio.run(simulate())
        elapsed = time.monotonic() - started
        run.cpu_share = [(sum(p.cpu_times()[:2]) - b) / elapsed for p, b in zip(procs, before, strict=True)]
        for log, mark in zip(logs, marks, strict=True):
            with open(log, "rb") as f:
                f.seek(mark)
                run.worker_lag_s += [float(x) for x in LAG_LINE.findall(f.read().decode(errors="replace"))]
    finally:
        for p in procs:
            p.terminate()
        _, alive = psutil.wait_procs(procs, timeout=30)
        for p in alive:  # one stuck in its shutdown lived on and took CPU from the runs after it
            p.kill()
        psutil.wait_procs(alive, timeout=10)
    return run


def _line(run: Run, beats_per_s: float) -> str:
    r = run.report
    assert r is not None
    lag50, lagmax = run.lag_s(beats_per_s)
    p50 = "-" if r.latency_p50_s is None else f"{r.latency_p50_s:.2f}"
    p99 = "-" if r.latency_p99_s is None else f"{r.latency_p99_s:.2f}"
    cpu = " + ".join(f"{c * 100:.0f}%" for c in run.cpu_share)
    own = run.worker_lag_s or [0.0]
    return (
        f"workers={run.workers} committed lag median {lag50:.1f}s max {lagmax:.1f}s"
        f" ({max(run.lag_records or [0]):,} records), read lag median {statistics.median(own):.1f}s"
        f" max {max(own):.1f}s"
        f" | precision {r.host_down_precision:.2f} recall {r.host_down_recall:.2f} latency p50 {p50}s p99 {p99}s"
        f" (limit {r.latency_limit_s:g}s) {r.verdict}"
        f" | cpu {cpu} | producer behind by up to {run.producer_lag_ms} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
                        help="a running broker (default: start a local one for the benchmark)")  # fmt: skip
    parser.add_argument("--scenario", default="scale", help="scenario file or shipped name (default scale)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", default="1,2", help="worker counts to compare, in order (default 1,2)")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--hosts", type=int, help="override the scenario's host count")
    args = parser.parse_args()
    sc = load_scenario(args.scenario, hosts=args.hosts)
    counts = [int(c) for c in args.workers.split(",")]
    beats_per_s = len(sc.hosts) / sc.interval_s
    print(
        f"scenario {sc.name}: {len(sc.hosts):,} hosts, {len(sc.regions)} regions, interval {sc.interval_s:g}s"
        f" ({beats_per_s:,.0f} heartbeats/s), {sc.duration_s:g}s, timeout {sc.timeout_s:g}s,"
        f" {len(sc.faults)} faults; {args.partitions} partitions",
        flush=True,
    )
    kafka = None
    with tempfile.TemporaryDirectory(prefix="fp-bench-dc-") as tmp_name:
        tmp = Path(tmp_name)
        bootstrap = args.bootstrap
        if not bootstrap:
            from fleetpulse.kafka_local import LocalKafka, default_home
            from fleetpulse.ports import free_port_pair

            kafka = LocalKafka(tmp / "kafka", port=free_port_pair(), jar_cache=default_home() / "kafka")
            kafka.start()
            bootstrap = kafka.bootstrap
        # TLS/SASL from FLEETPULSE_KAFKA_*, like every command; the worker children read the same.
        connection = connection_from_env(os.environ, bootstrap=bootstrap).checked()
        results: dict[int, list[Run]] = {c: [] for c in counts}
        try:
            for i in range(args.runs):
                for c in counts:
                    run = play(sc, connection, c, args.partitions, tmp)
                    results[c].append(run)
                    print(f"run {i + 1}: {_line(run, beats_per_s)}", flush=True)
                    for failure in run.report.failures if run.report else ():
                        print(f"    {failure}", flush=True)
        finally:
            if kafka is not None:
                kafka.stop()
    print()
    for c in counts:
        runs = results[c]
        reports = [r.report for r in runs if r.report is not None]
        p99s = [r.latency_p99_s for r in reports if r.latency_p99_s is not None]
        max_lag = statistics.median(r.lag_s(beats_per_s)[1] for r in runs)
        max_read = statistics.median(max(r.worker_lag_s or [0.0]) for r in runs)
        p99 = statistics.median(p99s) if p99s else float("nan")
        print(
            f"median of {len(runs)} runs, {c} worker(s): max committed lag {max_lag:.1f}s,"
            f" max read lag {max_read:.1f}s,"
            f" p99 detection {p99:.2f}s (limit {sc.timeout_s + 2:g}s),"
            f" precision {statistics.median(r.host_down_precision for r in reports):.2f},"
            f" recall {statistics.median(r.host_down_recall for r in reports):.2f},"
            f" verdicts {', '.join(r.verdict for r in reports)},"
            f" busiest worker cpu {statistics.median(max(r.cpu_share) for r in runs) * 100:.0f}%,"
            f" total cpu {statistics.median(sum(r.cpu_share) for r in runs) * 100:.0f}%"
        )
    if len(counts) >= 2:
        one, two = results[counts[0]], results[counts[1]]
        busiest = statistics.median(max(r.cpu_share) for r in one) / statistics.median(max(r.cpu_share) for r in two)
        total = statistics.median(sum(r.cpu_share) for r in two) / statistics.median(sum(r.cpu_share) for r in one)
        print(
            f"scaling {counts[0]} -> {counts[1]} workers: busiest worker's cpu ratio {busiest:.2f}x"
            f" (headroom gained), total cpu ratio {total:.2f}x (cost of splitting)"
        )


if __name__ == "__main__":
    main()
