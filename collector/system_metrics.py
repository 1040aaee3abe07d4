"""Host metrics from psutil as flat ``name[:instance] -> value`` samples with units in names."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

# Pseudo and container file systems whose usage says nothing about the host's disks.
_SKIP_FSTYPES = frozenset(
    {
        "proc",
        "sysfs",
        "devtmpfs",
        "devpts",
        "tmpfs",
        "cgroup",
        "cgroup2",
        "overlay",
        "squashfs",
        "autofs",
        "mqueue",
        "debugfs",
        "tracefs",
        "securityfs",
        "pstore",
        "bpf",
        "configfs",
        "fusectl",
        "hugetlbfs",
        "nsfs",
        "ramfs",
        "binfmt_misc",
        "rpc_pipefs",
    }
)


def real_mounts() -> list[str]:
    """Mount points backed by real storage (pseudo and in-memory file systems skipped)."""
    seen: set[str] = set()
    mounts: list[str] = []
    for part in psutil.disk_partitions(all=False):
        if part.fstype in _SKIP_FSTYPES or part.mountpoint in seen:
            continue
        seen.add(part.mountpoint)
        mounts.append(part.mountpoint)
    return mounts


_TCP_STATES = {
    "01": "established",
    "02": "syn_sent",
    "03": "syn_recv",
    "04": "fin_wait1",
    "05": "fin_wait2",
    "06": "time_wait",
    "07": "close",
    "08": "close_wait",
    "09": "last_ack",
    "0A": "listen",
    "0B": "closing",
}
# Block devices whose I/O is not the host's disks (loop mounts of snaps, RAM disks).
_SKIP_DISK_PREFIXES = ("loop", "ram", "zram")


def tcp_state_counts(proc_net: Path = Path("/proc/net")) -> dict[str, int]:
    """TCP sockets by state from /proc/net/tcp{,6}: one file read, unlike a full connection scan."""
    counts: dict[str, int] = {}
    for name in ("tcp", "tcp6"):
        try:
            with open(proc_net / name, encoding="ascii", errors="replace") as table:
                next(table, None)  # header
                states = [fields[3] for fields in (line.split(None, 4) for line in table) if len(fields) > 3]
        except OSError:
            continue  # no IPv6, or not Linux
        for code in states:
            state = _TCP_STATES.get(code, "unknown")
            counts[state] = counts.get(state, 0) + 1
    return counts


class SystemSampler:
    """Samples the host; rates are computed between two consecutive calls.

    The first call primes the counters, so rates appear from the second sample on
    (a rate over an unknown span would be a made-up number).
    """

    def __init__(self, mounts: list[str] | None = None, per_core_cpu: bool = False, tcp_states: bool = False) -> None:
        self._mounts = mounts
        self._per_core = per_core_cpu
        self._tcp_states = tcp_states
        self._last_at: float | None = None
        self._last_disk: dict[str, tuple[int, ...]] = {}
        self._last_net: dict[str, tuple[int, ...]] = {}
        self._boot_time = psutil.boot_time()
        psutil.cpu_times_percent(interval=None)  # prime: the next call measures since now
        if per_core_cpu:
            psutil.cpu_percent(interval=None, percpu=True)

    def sample(self) -> dict[str, float]:
        """One set of metrics; never blocks on a sleep."""
        m: dict[str, float] = {}
        cpu = psutil.cpu_times_percent(interval=None)
        for state in ("user", "system", "idle", "iowait", "steal", "nice", "irq", "softirq"):
            if hasattr(cpu, state):
                m[f"cpu_{state}_pct"] = float(getattr(cpu, state))
        # Busy = not idle; iowait is idle time spent waiting, so it does not count as busy.
        m["cpu_pct"] = max(0.0, 100.0 - float(cpu.idle) - float(getattr(cpu, "iowait", 0.0)))
        if self._per_core:
            for core, busy in enumerate(psutil.cpu_percent(interval=None, percpu=True)):
                m[f"cpu_pct:{core}"] = float(busy)
        load1, load5, load15 = os.getloadavg()
        m["load_1m"], m["load_5m"], m["load_15m"] = load1, load5, load15
        m["uptime_s"] = max(0.0, time.time() - self._boot_time)

        vm = psutil.virtual_memory()
        m["mem_total_bytes"] = float(vm.total)
        m["mem_available_bytes"] = float(vm.available)
        m["mem_used_pct"] = float(vm.percent)
        sw = psutil.swap_memory()
        m["swap_total_bytes"] = float(sw.total)
        m["swap_used_bytes"] = float(sw.used)
        m["swap_used_pct"] = float(sw.percent)

        for mount in self._mounts if self._mounts is not None else real_mounts():
            try:
                du = psutil.disk_usage(mount)
                st = os.statvfs(mount)
            except OSError:
                continue  # unmounted or unreadable since listing: skip this cycle
            m[f"disk_used_bytes:{mount}"] = float(du.used)
            m[f"disk_free_bytes:{mount}"] = float(du.free)
            m[f"disk_used_pct:{mount}"] = float(du.percent)
            if st.f_files:  # some file systems (btrfs, vfat) report no inode table
                m[f"disk_inodes_used_pct:{mount}"] = 100.0 * (st.f_files - st.f_ffree) / st.f_files

        if self._tcp_states:
            for state, count in tcp_state_counts().items():
                m[f"tcp_conns:{state}"] = float(count)

        now = time.monotonic()
        span = None if self._last_at is None else now - self._last_at
        self._last_at = now
        disks = psutil.disk_io_counters(perdisk=True) or {}
        disk_now: dict[str, tuple[int, ...]] = {
            name: (c.read_bytes, c.write_bytes, c.read_count, c.write_count)
            for name, c in disks.items()
            if not name.startswith(_SKIP_DISK_PREFIXES)
        }
        nics = psutil.net_io_counters(pernic=True) or {}
        net_now: dict[str, tuple[int, ...]] = {
            name: (c.bytes_recv, c.bytes_sent, c.packets_recv, c.packets_sent, c.errin, c.errout, c.dropin, c.dropout)
            for name, c in nics.items()
            if name != "lo"
        }
        if span and span > 0:
            _rates(m, _DISK_RATES, disk_now, self._last_disk, span)
            _rates(m, _NET_RATES, net_now, self._last_net, span)
        self._last_disk, self._last_net = disk_now, net_now
        return m


_DISK_RATES = ("disk_read_bytes_per_s", "disk_write_bytes_per_s", "disk_read_ops_per_s", "disk_write_ops_per_s")
_NET_RATES = (
    "net_rx_bytes_per_s",
    "net_tx_bytes_per_s",
    "net_rx_packets_per_s",
    "net_tx_packets_per_s",
    "net_rx_errors_per_s",
    "net_tx_errors_per_s",
    "net_rx_drops_per_s",
    "net_tx_drops_per_s",
)


def _rates(
    out: dict[str, float],
    names: tuple[str, ...],
    now: dict[str, tuple[int, ...]],
    before: dict[str, tuple[int, ...]],
    span_s: float,
) -> None:
    for device, counters in now.items():
        prev = before.get(device)
        if prev is None:
            continue
        for name, value, old in zip(names, counters, prev, strict=True):
            # Counters can wrap or reset (driver reload); a negative delta is not a rate.
            out[f"{name}:{device}"] = max(0, value - old) / span_s
