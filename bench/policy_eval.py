"""Pure policy evaluation throughput: metric samples/s through ``evaluate_batch``.

Side by side in one run: the rule index (rules looked up by metric name, what the worker
uses) against a linear scan of every rule for every sample (the obvious first design), on
the same synthetic fleet. Prints the median of several repeats and the ratio.

    .venv/bin/python bench/policy_eval.py --hosts 10000 --rules 1000 --repeats 5
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from collector.contract import MetricBatch
from policies.engine import evaluate_batch
from policies.model import ThresholdRule
from policies.threshold import AlertStatus, RuleIndex

METRICS = [
    "cpu_pct",
    "cpu_user_pct",
    "cpu_system_pct",
    "cpu_iowait_pct",
    "cpu_steal_pct",
    "load_1m",
    "load_5m",
    "load_15m",
    "mem_used_pct",
    "mem_available_bytes",
    "swap_used_pct",
]
INSTANCE_METRICS = ["disk_used_pct", "disk_free_bytes", "net_rx_bytes_per_s", "net_tx_bytes_per_s"]


def make_rules(count: int, rng: random.Random) -> list[ThresholdRule]:
    """``count`` rules spread over the metric names, about 5 % of samples breaching."""
    names = METRICS + INSTANCE_METRICS
    return [
        ThresholdRule(f"r{i}", names[i % len(names)], max=95.0 + rng.random() * 4, for_s=30.0) for i in range(count)
    ]


def make_batches(hosts: int, rng: random.Random) -> list[MetricBatch]:
    """One batch per host, ~19 samples each, values mostly in bounds."""
    batches = []
    for h in range(hosts):
        metrics = {name: rng.random() * 100 for name in METRICS}
        for name in INSTANCE_METRICS:
            metrics[f"{name}:/"] = rng.random() * 100
            metrics[f"{name}:/var"] = rng.random() * 100
        batches.append(MetricBatch(f"host-{h}", f"r{h % 5}", 1_790_000_000.0, 10.0, metrics))
    return batches


class LinearIndex(RuleIndex):
    """The baseline: every rule is checked against every sample's metric name."""

    def matching(self, metric_key: str) -> list[ThresholdRule]:
        base = metric_key.partition(":")[0]
        return [r for r in self.rules if r.metric in (metric_key, base)]


def run(index: RuleIndex, batches: list[MetricBatch]) -> tuple[float, int]:
    """Evaluate every batch once against an empty state table; returns (seconds, samples)."""
    table: dict[str, AlertStatus] = {}
    status_of: Callable[[str], AlertStatus | None] = table.get
    samples = 0
    start = time.perf_counter()
    for batch in batches:
        for out in evaluate_batch(index, batch, status_of):
            if out.status is None:
                table.pop(out.fingerprint, None)
            else:
                table[out.fingerprint] = out.status
        samples += len(batch.metrics)
    return time.perf_counter() - start, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--rules", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--baseline-hosts",
        type=int,
        default=500,
        help="hosts for the linear-scan baseline (it is slow; rates are per sample)",
    )
    args = parser.parse_args()
    rng = random.Random(42)
    rules = make_rules(args.rules, rng)
    batches = make_batches(args.hosts, rng)
    results: dict[str, float] = {}
    for name, index, subset in (
        ("rule index", RuleIndex(rules), batches),
        ("linear scan", LinearIndex(rules), batches[: args.baseline_hosts]),
    ):
        rates = []
        for _ in range(args.repeats):
            seconds, samples = run(index, subset)
            rates.append(samples / seconds)
        results[name] = statistics.median(rates)
        print(
            f"{name:12} {len(subset):6d} hosts x {len(subset[0].metrics)} samples, {len(rules)} rules: "
            f"median {results[name]:,.0f} samples/s over {args.repeats} runs "
            f"(min {min(rates):,.0f}, max {max(rates):,.0f})"
        )
    print(f"ratio rule index / linear scan: {results['rule index'] / results['linear scan']:.1f}x")


if __name__ == "__main__":
    main()
