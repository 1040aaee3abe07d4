"""Policy evaluation throughput: pure evaluator, and end to end through one worker process.

Pure (``--mode pure``): metric samples/s through :class:`policies.engine.Evaluator` with
1,000 rules over 10,000 hosts, several rounds (10 s of event time apart, so windows fill and
alerts fire and resolve). Side by side in one run: the compiled series (thresholds sorted,
an in-bounds sample costs one bisect) against the same evaluator made to step every
applicable rule for every sample (the obvious first design). Both are run with host state
kept as objects and, as the worker does, decoded from and encoded to bytes per event.

End to end (``--mode e2e``): the same batches pre-produced to a real broker, one
``fleetpulse worker`` process with the same 1,000 rules; samples/s is read from the worker's
committed offsets while it drains the topic.

    .venv/bin/python bench/policy_eval.py --mode pure --repeats 5
    .venv/bin/python bench/policy_eval.py --mode e2e --hosts 2000 --rounds 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from collector.connection import KafkaConnection, connection_from_env
from collector.contract import MetricBatch, Topics, encode
from fleetpulse.cli import worker_args
from fleetpulse.ports import free_port_pair
from policies.engine import Evaluator, HostState, Series, StateCache
from policies.model import MetricRule, Notify, PolicySet, Selector, Threshold

SCALAR = [
    "cpu_pct",
    "cpu_user_pct",
    "cpu_system_pct",
    "cpu_iowait_pct",
    "cpu_steal_pct",
    "load_1m",
    "load_5m",
    "load_15m",
    "mem_used_pct",
    "swap_used_pct",
    "procs_total",
    "uptime_s",
]
PER_INSTANCE = {
    "disk_used_pct": ["/", "/var", "/data"],
    "disk_inodes_used_pct": ["/", "/var", "/data"],
    "disk_read_bytes_per_s": ["sda", "sdb"],
    "disk_write_bytes_per_s": ["sda", "sdb"],
    "net_rx_bytes_per_s": ["eth0", "eth1"],
    "net_tx_bytes_per_s": ["eth0", "eth1"],
    "cpu_core_pct": [str(i) for i in range(8)],
}
REGIONS = ["eu-west", "eu-central", "us-east", "us-west", "ap-south"]


def make_rules(count: int, rng: random.Random) -> list[MetricRule]:
    """``count`` rules over the metric names: levels on the max side, some min sides,
    some windowed averages and some scoped to a region; a few percent of samples breach."""
    names = SCALAR + list(PER_INSTANCE)
    rules = []
    for i in range(count):
        metric = names[i % len(names)]
        warn = 97.0 + rng.random() * 2
        bounds = [Threshold("max", warn, "warning", warn - 2), Threshold("max", warn + 0.9, "critical", warn)]
        if i % 10 == 0:
            bounds.append(Threshold("min", 1.0 + rng.random(), "warning", 3.0))
        window, agg = (60.0, "avg") if i % 7 == 0 else (0.0, "last")
        scope = Selector(regions=(REGIONS[i % len(REGIONS)],)) if i % 20 == 0 else Selector()
        rules.append(
            MetricRule(
                f"r{i}",
                metric,
                tuple(bounds),
                agg=agg,
                window_s=window,
                for_s=30.0 if i % 3 else 0.0,
                selector=scope,
                notify=Notify(flap_changes=0),
            )
        )
    return rules


def make_rounds(hosts: int, rounds: int, rng: random.Random, t0: float) -> Iterator[MetricBatch]:
    """One batch per host per round (10 s apart), 34 samples each, nearly all in bounds."""
    for r in range(rounds):
        for h in range(hosts):
            metrics: dict[str, float] = {}
            for name in SCALAR:
                # one sample in a thousand spikes past the rules' thresholds
                metrics[name] = 5 + rng.random() * 90 if rng.random() > 0.001 else 99.5
            for name, instances in PER_INSTANCE.items():
                for inst in instances:
                    metrics[f"{name}:{inst}"] = 5 + rng.random() * 90
            yield MetricBatch(f"host-{h}", REGIONS[h % len(REGIONS)], t0 + 10 * r, 10.0, metrics)


class EveryRuleSeries(Series):
    """The baseline: every rule of the series is stepped for every sample."""

    def candidates(self, value: float) -> Iterator[MetricRule]:
        seen = set()
        for rule in (*self.by_max, *self.by_min):
            if rule.name not in seen:
                seen.add(rule.name)
                yield rule


def run_pure(evaluator: Evaluator, batches: list[MetricBatch], as_bytes: bool) -> tuple[float, int, int]:
    """Evaluate every batch; returns (seconds, samples, alerts)."""
    objects: dict[str, HostState] = {}
    stored: dict[bytes, bytes] = {}
    cache = StateCache()
    samples = alerts = 0
    start = time.perf_counter()
    for batch in batches:
        if as_bytes:  # as the worker does: stored as bytes (the table), decoded only when not cached
            key = batch.host_id.encode()
            state = cache.load(key, stored.get(key))
        else:
            state = objects.setdefault(batch.host_id, HostState())
        result = evaluator.evaluate(batch, state)
        if as_bytes and result.changed:
            stored[key] = cache.store(key, state)
        alerts += len(result.alerts)
        samples += len(batch.metrics)
    return time.perf_counter() - start, samples, alerts


def pure(args: argparse.Namespace) -> None:
    import policies.engine as engine

    rng = random.Random(42)
    policy = PolicySet(metric_rules=tuple(make_rules(args.rules, rng)))
    batches = list(make_rounds(args.hosts, args.rounds, rng, 1_790_000_000.0))
    base_batches = [b for b in batches if int(b.host_id.split("-")[1]) < args.baseline_hosts]
    per_batch = len(batches[0].metrics)
    print(f"{len(policy)} rules, {args.hosts} hosts x {args.rounds} rounds x {per_batch} samples")
    results: dict[str, float] = {}
    for label, series_cls, subset in (
        ("compiled series", Series, batches),
        ("every rule", EveryRuleSeries, base_batches),
    ):
        for as_bytes in (False, True):
            engine.Series = series_cls  # type: ignore[misc]  # the plan compiler builds this class
            rates, fired = [], 0
            for _ in range(args.repeats):
                seconds, samples, fired = run_pure(Evaluator(policy), subset, as_bytes)
                rates.append(samples / seconds)
            engine.Series = Series  # type: ignore[misc]
            name = f"{label}{' + state bytes' if as_bytes else ''}"
            results[name] = statistics.median(rates)
            hosts = len({b.host_id for b in subset})
            print(
                f"{name:32} {hosts:6d} hosts: median {results[name]:>10,.0f} samples/s over {args.repeats} runs "
                f"(min {min(rates):,.0f}, max {max(rates):,.0f}); {fired} alerts per run"
            )
    print(f"ratio compiled / every rule (objects): {results['compiled series'] / results['every rule']:.1f}x")
    print(
        "ratio compiled / every rule (state bytes): "
        f"{results['compiled series + state bytes'] / results['every rule + state bytes']:.1f}x"
    )


# --- end to end ----------------------------------------------------------------------------


def _policy_yaml(rules: list[MetricRule]) -> str:
    lines = ["rules:"]
    for rule in rules:
        maxes = {t.severity: t.value for t in rule.thresholds if t.side == "max"}
        lines.append(f"  - name: {rule.name}")
        lines.append(f"    metric: {rule.metric}")
        lines.append("    max: {" + ", ".join(f"{k}: {v!r}" for k, v in maxes.items()) + "}")
        mins = [t for t in rule.thresholds if t.side == "min"]
        if mins:
            lines.append(f"    min: {mins[0].value!r}")
        lines.append("    hysteresis: 0.5")
        if rule.window_s:
            lines.append(f"    agg: {rule.agg}")
            lines.append(f"    window: {rule.window_s:g}s")
        lines.append(f"    for: {rule.for_s:g}s")
        lines.append("    flap: {changes: 0}")
        if rule.selector.regions:
            lines.append(f"    scope: {{region: {rule.selector.regions[0]}}}")
    return "\n".join(lines) + "\n"


async def _produce_all(bootstrap: KafkaConnection, topic: str, batches: list[MetricBatch]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(**bootstrap.client_options(), linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    try:
        futures = [await producer.send(topic, encode(b), key=b.host_id.encode()) for b in batches]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _committed(bootstrap: KafkaConnection, group: str, topic: str, partitions: int) -> int:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(**bootstrap.client_options())
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)
    except KafkaError:  # the group's coordinator is not there before the worker joins
        return 0
    finally:
        await admin.close()


def e2e(args: argparse.Namespace) -> None:
    from collector.kafka_io import ensure_all_topics
    from fleetpulse.kafka_local import LocalKafka, default_home

    rng = random.Random(42)
    rules = make_rules(args.rules, rng)
    batches = list(make_rounds(args.hosts, args.rounds, rng, time.time() - 86400))
    samples_per_batch = len(batches[0].metrics)
    with tempfile.TemporaryDirectory(prefix="fp-bench-") as tmp:
        home = Path(tmp)
        kafka = None
        given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not given:
            kafka = LocalKafka(home, port=free_port_pair(), jar_cache=default_home() / "kafka")
            kafka.start()
            given = kafka.bootstrap
        # TLS/SASL from FLEETPULSE_KAFKA_*, like every command; the worker child reads the same.
        bootstrap = connection_from_env(os.environ, bootstrap=given).checked()
        try:
            policy_path = home / "policy.yaml"
            policy_path.write_text(_policy_yaml(rules))
            rates = []
            for run in range(args.repeats):
                topics = Topics(f"bench{run}_{os.getpid()}")
                asyncio.run(ensure_all_topics(bootstrap, topics, args.partitions))
                asyncio.run(_produce_all(bootstrap, topics.metrics, batches))
                rates.append(_drain(bootstrap, topics, policy_path, home, run, len(batches), args.partitions))
                print(f"run {run + 1}: {rates[-1] * samples_per_batch:,.0f} samples/s ({rates[-1]:,.0f} batches/s)")
        finally:
            if kafka is not None:
                kafka.stop()
    median = statistics.median(rates)
    print(
        f"end to end, one worker, {len(rules)} rules, {args.hosts} hosts x {args.rounds} rounds x "
        f"{samples_per_batch} samples: median {median * samples_per_batch:,.0f} samples/s "
        f"({median:,.0f} batches/s) over {args.repeats} runs"
    )


def _drain(
    bootstrap: KafkaConnection, topics: Topics, policy: Path, home: Path, run: int, total: int, partitions: int
) -> float:
    group = f"bench-worker-{run}-{os.getpid()}"
    log_path = home / f"worker-{run}.log"
    cmd = [
        sys.executable,
        "-m",
        "fleetpulse.cli",
        *worker_args(bootstrap.bootstrap_servers, topics.prefix, group, policy, home, partitions, log_level="warning"),
    ]
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        first: tuple[float, int] | None = None
        last = (time.monotonic(), 0)
        deadline = time.monotonic() + 900
        while last[1] < total:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited: {log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker did not drain the topic: {last[1]}/{total}")
            time.sleep(0.5)
            done = asyncio.run(_committed(bootstrap, group, topics.metrics, partitions))
            last = (time.monotonic(), done)
            if first is None and done > 0:
                first = last
        assert first is not None
        if last[1] == first[1]:
            raise RuntimeError("drained between two polls; use more hosts or rounds")
        return (last[1] - first[1]) / (last[0] - first[0])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["pure", "e2e"], default="pure")
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10, help="batches per host, 10 s of event time apart")
    parser.add_argument("--rules", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--partitions", type=int, default=8, help="e2e: partitions of the metrics topic")
    parser.add_argument(
        "--baseline-hosts", type=int, default=500, help="hosts for the every-rule baseline (slow; rates are per sample)"
    )
    args = parser.parse_args()
    pure(args) if args.mode == "pure" else e2e(args)


if __name__ == "__main__":
    main()
