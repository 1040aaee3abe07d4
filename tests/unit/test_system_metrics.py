"""Host sampling: the metric names the policies and the sink rely on."""

from __future__ import annotations

import time

from collector.system_metrics import SystemSampler, real_mounts


def test_a_sample_has_cpu_load_memory_swap_and_disk_usage() -> None:
    sampler = SystemSampler()
    time.sleep(0.1)  # cpu percentages need a span since the priming call
    m = sampler.sample()
    for name in (
        "cpu_pct",
        "cpu_user_pct",
        "cpu_system_pct",
        "cpu_idle_pct",
        "load_1m",
        "mem_used_pct",
        "mem_total_bytes",
        "swap_used_bytes",
    ):
        assert name in m, name
    assert 0.0 <= m["cpu_pct"] <= 100.0
    assert m["mem_total_bytes"] > 0
    mounts = real_mounts()
    assert mounts, "this machine has at least one real file system"
    assert f"disk_used_pct:{mounts[0]}" in m


def test_byte_rates_appear_from_the_second_sample_on() -> None:
    sampler = SystemSampler()
    first = sampler.sample()
    assert not any("_bytes_per_s" in k for k in first)
    time.sleep(0.05)
    second = sampler.sample()
    rates = {k: v for k, v in second.items() if "_bytes_per_s:" in k}
    assert rates, "disk or network counters exist on this machine"
    assert all(v >= 0 for v in rates.values())
