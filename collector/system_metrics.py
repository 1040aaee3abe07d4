"""Host metrics from psutil as flat ``name[:instance] -> value`` samples with units in names."""

from __future__ import annotations

import os
import time

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


class SystemSampler:
    """Samples the host; byte rates are computed between two consecutive calls.

    The first call primes the counters, so rates appear from the second sample on
    (a rate over an unknown span would be a made-up number).
    """

    def __init__(self, mounts: list[str] | None = None) -> None:
        self._mounts = mounts
        self._last_at: float | None = None
        self._last_disk: dict[str, tuple[int, int]] = {}
        self._last_net: dict[str, tuple[int, int]] = {}
        psutil.cpu_times_percent(interval=None)  # prime: the next call measures since now

    def sample(self) -> dict[str, float]:
        """One set of metrics; never blocks on a sleep."""
        m: dict[str, float] = {}
        cpu = psutil.cpu_times_percent(interval=None)
        for state in ("user", "system", "idle", "iowait", "steal", "nice", "irq", "softirq"):
            if hasattr(cpu, state):
                m[f"cpu_{state}_pct"] = float(getattr(cpu, state))
        m["cpu_pct"] = max(0.0, 100.0 - float(cpu.idle) - float(getattr(cpu, "iowait", 0.0)))
        load1, load5, load15 = os.getloadavg()
        m["load_1m"], m["load_5m"], m["load_15m"] = load1, load5, load15

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
            except OSError:
                continue  # unmounted or unreadable since listing: skip this cycle
            m[f"disk_used_bytes:{mount}"] = float(du.used)
            m[f"disk_free_bytes:{mount}"] = float(du.free)
            m[f"disk_used_pct:{mount}"] = float(du.percent)

        now = time.monotonic()
        span = None if self._last_at is None else now - self._last_at
        self._last_at = now

        disks = psutil.disk_io_counters(perdisk=True) or {}
        disk_now = {name: (c.read_bytes, c.write_bytes) for name, c in disks.items()}
        nics = psutil.net_io_counters(pernic=True) or {}
        net_now = {name: (c.bytes_recv, c.bytes_sent) for name, c in nics.items() if name != "lo"}
        if span and span > 0:
            _rates(m, "disk_read_bytes_per_s", "disk_write_bytes_per_s", disk_now, self._last_disk, span)
            _rates(m, "net_rx_bytes_per_s", "net_tx_bytes_per_s", net_now, self._last_net, span)
        self._last_disk, self._last_net = disk_now, net_now
        return m


def _rates(
    out: dict[str, float],
    first_name: str,
    second_name: str,
    now: dict[str, tuple[int, int]],
    before: dict[str, tuple[int, int]],
    span_s: float,
) -> None:
    for device, (first, second) in now.items():
        prev = before.get(device)
        if prev is None:
            continue
        # Counters can wrap or reset (driver reload); a negative delta is not a rate.
        out[f"{first_name}:{device}"] = max(0, first - prev[0]) / span_s
        out[f"{second_name}:{device}"] = max(0, second - prev[1]) / span_s
