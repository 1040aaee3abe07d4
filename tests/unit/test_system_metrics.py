"""Host sampling: the metric names the policies and the sink rely on."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import psutil

from collector.system_metrics import SystemSampler, real_mounts, tcp_state_counts


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


def test_tcp_states_are_counted_from_proc_net_tables(tmp_path: Path) -> None:
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    (tmp_path / "tcp").write_text(
        header
        + "   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1\n"
        + "   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2\n"
        + "   2: 0100007F:1F90 0100007F:C351 01 00000000:00000000 00:00000000 00000000     0        0 3\n"
    )
    (tmp_path / "tcp6").write_text(
        header + "   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 06 0 0 0 0 0 0\n"
    )
    assert tcp_state_counts(tmp_path) == {"listen": 1, "established": 2, "time_wait": 1}
    assert tcp_state_counts(tmp_path / "missing") == {}


def test_optional_per_core_cpu_inodes_uptime_and_tcp_states() -> None:
    sampler = SystemSampler(per_core_cpu=True, tcp_states=True)
    time.sleep(0.1)
    with socket.create_server(("127.0.0.1", 0)):  # at least one TCP socket in LISTEN
        m = sampler.sample()
    cores = [k for k in m if k.startswith("cpu_pct:")]
    assert len(cores) == psutil.cpu_count()
    assert m["uptime_s"] > 0
    assert any(k.startswith("disk_inodes_used_pct:") for k in m)
    assert m["tcp_conns:listen"] >= 1
    time.sleep(0.05)
    rates = sampler.sample()
    assert any(k.startswith("disk_read_ops_per_s:") or k.startswith("net_rx_packets_per_s:") for k in rates)
