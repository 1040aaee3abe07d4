"""Agent overhead, side by side: our agent vs prometheus-node-exporter on the same host.

Both run at the same time for the same duration. node_exporter is scraped once per interval
(the scraper's own cost is not counted, as a Prometheus server's would not be). The host is
given ~300 extra idle processes and two log files receiving ``--log-rate`` lines/s each,
which our agent follows with keyword rules and which node_exporter ignores (it has no such
feature: the comparison favours it). Our agent also sends everything to a real local Kafka
through its disk spool. Steady state is measured: CPU counted from the end of a warm-up
(two intervals) to the end; peak RSS is the kernel's high-water mark (VmHWM).

    apt-get install prometheus-node-exporter   # once
    .venv/bin/python bench/agent_overhead.py --duration 120 --interval 10 --runs 3

Prints, per run and as medians: CPU seconds per collection cycle, average CPU % of one core,
peak RSS, and the ratios ours/peer.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fleetpulse.kafka_local import LocalKafka, default_home  # noqa: E402
from fleetpulse.ports import free_port, free_port_pair  # noqa: E402

NODE_EXPORTER = "prometheus-node-exporter"
LOG_WRITER = """
import sys, time
paths, rate = sys.argv[1:-1], float(sys.argv[-1])
files = [open(p, "a", buffering=1) for p in paths]
n = 0
start = time.monotonic()
while True:
    for f in files:
        kind = "ERROR connection timeout" if n % 50 == 0 else "INFO request served in 12ms"
        f.write(f"2026-11-25T10:00:00Z app[{n}]: {kind} path=/api/v1/items/{n}\\n")
    n += 1
    time.sleep(max(0.0, start + n / rate - time.monotonic()))
"""


@dataclass
class Figures:
    cpu_s_per_cycle: float
    cpu_pct: float
    peak_rss_mb: float


def cpu_s(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def agent_config(work: Path, bootstrap: str, interval_s: float, logs: list[Path]) -> Path:
    path = work / "agent.toml"
    path.write_text(f"""
[agent]
host_id = "bench-host"
region = "bench"
interval_s = {interval_s}
state_dir = "{work / "state"}"
[kafka]
bootstrap_servers = "{bootstrap}"
topic_prefix = "bench"
[processes]
top_n = 5
[[processes.groups]]
name = "sleepers"
process_name = "sleep"
[[processes.groups]]
name = "python"
cmdline_regex = "python"
[[logs]]
paths = [{", ".join(f'"{p}"' for p in logs)}]
[[logs.rules]]
name = "errors"
pattern = "ERROR"
severity = "warning"
[[logs.rules]]
name = "timeouts"
pattern = "time(d)? ?out"
regex = true
ignore_case = true
""")
    return path


def one_run(args: argparse.Namespace, bootstrap: str, exporter: str) -> tuple[Figures, Figures]:
    with tempfile.TemporaryDirectory(prefix="fp-bench-") as tmp:
        work = Path(tmp)
        logs = [work / "app1.log", work / "app2.log"]
        for p in logs:
            p.touch()
        children: list[subprocess.Popen[bytes]] = []
        try:
            children += [subprocess.Popen(["sleep", "3600"]) for _ in range(args.idle_procs)]
            children.append(subprocess.Popen([sys.executable, "-c", LOG_WRITER, *map(str, logs), str(args.log_rate)]))
            config = agent_config(work, bootstrap, args.interval, logs)
            agent = subprocess.Popen(
                [str(REPO / ".venv/bin/fleetpulse"), "--log-level", "warning", "agent", "--config", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=open(work / "agent.log", "wb"),  # noqa: SIM115
            )
            port = free_port()
            peer = subprocess.Popen(
                [exporter, f"--web.listen-address=127.0.0.1:{port}"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            children += [agent, peer]
            url = f"http://127.0.0.1:{port}/metrics"

            def scrape() -> None:
                try:
                    with urllib.request.urlopen(url, timeout=5) as resp:
                        resp.read()
                except OSError as exc:
                    print(f"  scrape failed: {exc}", file=sys.stderr)

            warmup_s = 2 * args.interval
            end_warmup = time.monotonic() + warmup_s
            next_scrape = time.monotonic() + 1.0
            while time.monotonic() < end_warmup:
                if time.monotonic() >= next_scrape:
                    scrape()
                    next_scrape += args.interval
                time.sleep(0.05)
            ours0, peer0 = cpu_s(agent.pid), cpu_s(peer.pid)
            start = time.monotonic()
            end = start + args.duration
            while time.monotonic() < end:
                if time.monotonic() >= next_scrape:
                    scrape()
                    next_scrape += args.interval
                time.sleep(0.05)
            elapsed = time.monotonic() - start
            ours1, peer1 = cpu_s(agent.pid), cpu_s(peer.pid)
            cycles = elapsed / args.interval
            if agent.poll() is not None:
                raise SystemExit(f"our agent exited: {(work / 'agent.log').read_text()[-2000:]}")
            result = (
                Figures((ours1 - ours0) / cycles, 100 * (ours1 - ours0) / elapsed, peak_rss_mb(agent.pid)),
                Figures((peer1 - peer0) / cycles, 100 * (peer1 - peer0) / elapsed, peak_rss_mb(peer.pid)),
            )
            return result
        finally:
            for c in children:
                c.kill()
            for c in children:
                c.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=120.0, help="measured seconds per run (after warm-up)")
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle-procs", type=int, default=300)
    parser.add_argument("--log-rate", type=float, default=100.0, help="lines per second into each of two files")
    args = parser.parse_args()
    exporter = shutil.which(NODE_EXPORTER)
    if exporter is None:
        raise SystemExit(f"{NODE_EXPORTER} is not installed: apt-get install {NODE_EXPORTER}")
    done = subprocess.run([exporter, "--version"], capture_output=True, text=True, check=False)
    version = (done.stdout + done.stderr).strip().splitlines()[0]
    print(f"peer: {version}")
    print(
        f"{args.runs} runs x {args.duration:g}s at interval {args.interval:g}s, {args.idle_procs} idle processes, "
        f"2 log files x {args.log_rate:g} lines/s"
    )
    kafka = LocalKafka(
        Path(tempfile.mkdtemp(prefix="fp-bench-kafka-")), port=free_port_pair(), jar_cache=default_home() / "kafka"
    )
    kafka.start()
    ours_runs: list[Figures] = []
    peer_runs: list[Figures] = []
    try:
        for i in range(args.runs):
            ours, peer = one_run(args, kafka.bootstrap, exporter)
            ours_runs.append(ours)
            peer_runs.append(peer)
            print(
                f"run {i + 1}: ours {ours.cpu_s_per_cycle * 1000:.1f} ms/cycle {ours.cpu_pct:.3f}% "
                f"{ours.peak_rss_mb:.1f} MB | node_exporter {peer.cpu_s_per_cycle * 1000:.1f} ms/cycle "
                f"{peer.cpu_pct:.3f}% {peer.peak_rss_mb:.1f} MB"
            )
    finally:
        kafka.stop()

    def med(runs: list[Figures], attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in runs)

    print(f"\n{'median':14} {'CPU ms/cycle':>13} {'CPU % of a core':>16} {'peak RSS MB':>12}")
    for name, runs in (("ours", ours_runs), ("node_exporter", peer_runs)):
        print(
            f"{name:14} {med(runs, 'cpu_s_per_cycle') * 1000:13.2f} {med(runs, 'cpu_pct'):16.3f} "
            f"{med(runs, 'peak_rss_mb'):12.1f}"
        )
    print(
        f"{'ratio ours/peer':14} {med(ours_runs, 'cpu_s_per_cycle') / med(peer_runs, 'cpu_s_per_cycle'):13.2f} "
        f"{med(ours_runs, 'cpu_pct') / med(peer_runs, 'cpu_pct'):16.2f} "
        f"{med(ours_runs, 'peak_rss_mb') / med(peer_runs, 'peak_rss_mb'):12.2f}"
    )


if __name__ == "__main__":
    main()
