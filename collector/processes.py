"""Process-table summaries for the agent: totals, states, top-N and watched process groups.

A :class:`ProcessScanner` walks the process table once per cycle and returns a :class:`ScanResult`;
:func:`to_summary` and :func:`to_events` turn it into the contract's ``ProcessSummary`` and
``ProcessEvent`` records.

Cost model (a scan runs on every host, every cycle):

* ``psutil.Process`` objects are kept across scans, keyed by the process identity psutil defines
  (pid plus start time since boot, so a reused pid is a new process), and ``cpu_percent(interval=None)``
  measures the span since the previous scan without sleeping.
* Name, exe, cmdline, user and cgroup are read once per process, and exe/cmdline/user/cgroup only
  when some selector could use them. (A process under a second old is re-read on later scans: it may
  still be a pre-exec copy of its parent. A process that exec()s later keeps its first facts.)
* Per scan, a known process costs ``/proc/<pid>/stat`` twice (identity probe, then status and CPU
  times under ``oneshot()``) and ``/proc/<pid>/statm`` (RSS).

Semantics worth knowing:

* CPU % is psutil's per-process percentage (100 = one full core, so it can exceed 100 on
  multi-core hosts, like ``top``). A process first seen in this scan reports 0.0: there is no span
  to measure yet. On the very first scan every process is new, so all CPU values are 0.0.
* The first scan is a baseline: it reports no ``start`` events for processes already running, so
  an agent restart does not flood the pipeline with starts. Events come from the second scan on.
* A process that starts *and* exits between two scans is invisible to polling.
* A process that vanishes mid-scan is not counted. A field the agent may not read (AccessDenied)
  or that a zombie no longer has becomes empty/0; such a process is still counted.
"""

from __future__ import annotations

import fnmatch
import heapq
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import psutil

from collector.contract import GroupStats, ProcessEvent, ProcessInfo, ProcessSummary
from collector.patterns import compile_re2

log = logging.getLogger(__name__)

ProcKey = tuple[int, float]
"""A group member's identity in events: ``(pid, create_time)``, so pid reuse is an exit plus a start."""

_CRITERIA = ("process_name", "exe", "cmdline_regex", "user", "pidfile", "systemd_unit")
# A pid file holds a few digits; the cap keeps a misconfigured path (/dev/zero, a log file) cheap.
_PIDFILE_MAX_BYTES = 64
# cgroup files are a few hundred bytes even with every v1 controller listed.
_CGROUP_MAX_BYTES = 64 * 1024
# Between fork() and exec() a child is a copy of its parent (systemd's "(nginx)" setup phase lasts
# milliseconds). Facts read that young may be the parent's, so they are re-read until the process
# was at least this old when read (or the scanner has known it this long, should the wall clock
# jump); after that they are trusted for the process's lifetime.
_SETTLE_S = 1.0
_UNKNOWN_STATUS = "unknown"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

_T = TypeVar("_T")


@dataclass(frozen=True)
class GroupSelector:
    """Which processes form a watched group; every criterion given must match (AND).

    * ``process_name``: exact psutil name (``nginx``).
    * ``exe``: exact executable path or an ``fnmatch`` glob (``/usr/sbin/*``; ``*`` also crosses ``/``).
    * ``cmdline_regex``: RE2 regex *searched* in the arguments joined with spaces (anchor with ``^``/``$``
      if needed). RE2 runs in linear time, which matters because patterns come from users.
    * ``user``: username owning the process.
    * ``pidfile``: the process whose pid is in that file, re-read every scan. Only that pid, not its
      children: following a forking server's workers needs a tree walk per scan; select workers with a
      second group (e.g. ``cmdline_regex``) instead.
    * ``systemd_unit``: a path in ``/proc/<pid>/cgroup`` ends with ``/<unit>`` (``nginx.service``). Processes
      in a unit's sub-cgroup (``Delegate=yes``) do not match.

    A field the agent could not read (empty exe or cmdline, unknown user) never matches, so a catch-all
    pattern such as ``.*`` does not sweep in processes it cannot see. Raises ``ValueError`` when no
    criterion is given, a criterion is empty, or the regex does not compile.
    """

    name: str
    process_name: str | None = None
    exe: str | None = None
    cmdline_regex: str | None = None
    user: str | None = None
    pidfile: str | None = None
    systemd_unit: str | None = None
    _cmdline_re: Any = field(default=None, init=False, repr=False, compare=False)
    _exe_re: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("a process group needs a non-empty name")
        given = {criterion: getattr(self, criterion) for criterion in _CRITERIA}
        given = {criterion: value for criterion, value in given.items() if value is not None}
        if not given:
            raise ValueError(
                f"process group {self.name!r} has no criteria; give at least one of {', '.join(_CRITERIA)}"
            )
        for criterion, value in given.items():
            if not isinstance(value, str) or not value:
                raise ValueError(f"process group {self.name!r}: {criterion} must be a non-empty string")
        if self.cmdline_regex is not None:
            object.__setattr__(self, "_cmdline_re", _compile_re2(self.name, self.cmdline_regex))
        if self.exe is not None:
            try:
                exe_re = re.compile(fnmatch.translate(self.exe))
            except re.error as exc:  # translate() escapes everything; kept so a surprise is still a ValueError
                raise ValueError(f"process group {self.name!r}: bad exe glob {self.exe!r}: {exc}") from None
            object.__setattr__(self, "_exe_re", exe_re)


def _compile_re2(group: str, pattern: str) -> Any:
    try:
        return compile_re2(pattern)
    except ValueError as exc:
        raise ValueError(f"process group {group!r}: bad cmdline_regex {pattern!r}: {exc}") from None


@dataclass(frozen=True)
class ProcessFacts:
    """What the selectors look at for one process; empty means unknown or not read."""

    pid: int
    name: str = ""
    exe: str = ""
    cmdline: tuple[str, ...] = ()
    user: str = ""
    cgroups: tuple[str, ...] = ()


def matches(selector: GroupSelector, facts: ProcessFacts, *, pidfile_pid: int | None = None) -> bool:
    """Whether a process belongs to a group; pure, never raises.

    ``pidfile_pid`` is the pid currently in ``selector.pidfile`` (None: missing or unreadable, which
    matches nothing); the scanner reads each pid file once per scan. Cheap checks run first.
    """
    if selector.pidfile is not None and (pidfile_pid is None or facts.pid != pidfile_pid):
        return False
    # Selectors reject empty criteria, so an unknown ("") name or user can never compare equal here.
    if selector.process_name is not None and facts.name != selector.process_name:
        return False
    if selector.user is not None and facts.user != selector.user:
        return False
    if selector.exe is not None and not _exe_matches(selector, facts.exe):
        return False
    if selector.systemd_unit is not None:
        suffix = "/" + selector.systemd_unit
        if not any(path.endswith(suffix) for path in facts.cgroups):
            return False
    return selector.cmdline_regex is None or _cmdline_matches(selector, facts.cmdline)


def _exe_matches(selector: GroupSelector, exe: str) -> bool:
    if not exe:
        return False
    return exe == selector.exe or (selector._exe_re is not None and selector._exe_re.match(exe) is not None)


def _cmdline_matches(selector: GroupSelector, cmdline: tuple[str, ...]) -> bool:
    text = " ".join(cmdline)
    if not text:
        return False
    return selector._cmdline_re.search(_utf8(text)) is not None


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # psutil decodes /proc with surrogateescape, so a non-UTF-8 argv byte arrives as a lone surrogate.
        # RE2 reads UTF-8 and "." (or ".*") would not step over an invalid byte; as U+FFFD it is one character.
        return _LONE_SURROGATE.sub("\ufffd", text).encode("utf-8")


def read_cgroups(pid: int, proc_root: str | None = None) -> tuple[str, ...]:
    """The cgroup paths of a process from ``<proc_root>/<pid>/cgroup``; ``()`` when unreadable.

    ``proc_root`` defaults to ``psutil.PROCFS_PATH`` so a containerised agent reading the host's
    ``/proc`` elsewhere sees the same processes here as through psutil.
    """
    path = f"{proc_root or psutil.PROCFS_PATH}/{pid}/cgroup"
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            text = fh.read(_CGROUP_MAX_BYTES)
    except OSError as exc:
        log.debug("event=cgroup_unreadable pid=%d error=%s", pid, exc)
        return ()
    paths: list[str] = []
    for line in text.splitlines():
        # "hierarchy-id:controllers:path"; the path itself may contain colons.
        _hierarchy, _, rest = line.partition(":")
        _controllers, sep, cgroup_path = rest.partition(":")
        if sep and cgroup_path:
            paths.append(cgroup_path)
    return tuple(paths)


def read_pidfile(path: str) -> int | None:
    """The pid in a pid file (first whitespace-separated token), or None if missing or not a pid."""
    try:
        # O_NONBLOCK: a FIFO at that path must not block the scan waiting for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        try:
            head = os.read(fd, _PIDFILE_MAX_BYTES)
        finally:
            os.close(fd)
    except OSError as exc:
        log.debug("event=pidfile_unreadable path=%s error=%s", path, exc)
        return None
    tokens = head.split(maxsplit=1)
    # isdigit() on bytes is ASCII-only, and rejects the "+5" and "1_0" that int() would accept.
    if not tokens or not tokens[0].isdigit():
        log.debug("event=pidfile_invalid path=%s", path)
        return None
    pid = int(tokens[0])
    return pid if pid > 0 else None


@dataclass(frozen=True)
class GroupChange:
    """A process joined (``start``) or left (``exit``) a watched group since the previous scan.

    Normally it started or exited; with a ``pidfile`` selector a process also joins or leaves when
    the file starts naming it or stops doing so.
    """

    group: str
    kind: Literal["start", "exit"]
    pid: int
    name: str
    started_at: float


@dataclass(frozen=True)
class ScanResult:
    """One pass over the process table; ``groups`` holds every configured group, even at count 0."""

    ts: float
    total: int
    by_state: dict[str, int]
    top_cpu: list[ProcessInfo]
    top_rss: list[ProcessInfo]
    groups: dict[str, GroupStats]
    group_pids: dict[str, list[int]]
    changes: list[GroupChange]


def diff_members(group: str, before: Mapping[ProcKey, str], after: Mapping[ProcKey, str]) -> list[GroupChange]:
    """Exits then starts between two member sets (``(pid, create_time) -> name``), oldest first.

    Keying on ``(pid, create_time)`` means a reused pid shows as an exit plus a start.
    """
    exits = [
        GroupChange(group, "exit", pid, before[(pid, started_at)], started_at)
        for pid, started_at in sorted(before.keys() - after.keys(), key=_by_start)
    ]
    starts = [
        GroupChange(group, "start", pid, after[(pid, started_at)], started_at)
        for pid, started_at in sorted(after.keys() - before.keys(), key=_by_start)
    ]
    return exits + starts


def _by_start(key: ProcKey) -> tuple[float, int]:
    return key[1], key[0]


def to_summary(
    result: ScanResult,
    host_id: str,
    region: str,
    ts: float,
    interval_s: float,
    labels: Mapping[str, str] | None = None,
) -> ProcessSummary:
    """The contract record for one scan."""
    return ProcessSummary(
        host_id=host_id,
        region=region,
        ts=ts,
        interval_s=interval_s,
        total=result.total,
        by_state=dict(result.by_state),
        top_cpu=list(result.top_cpu),
        top_rss=list(result.top_rss),
        groups=dict(result.groups),
        labels=dict(labels or {}),
    )


def to_events(
    result: ScanResult, host_id: str, region: str, labels: Mapping[str, str] | None = None
) -> list[ProcessEvent]:
    """The contract records for a scan's group changes, stamped with the scan's time."""
    return [
        ProcessEvent(
            host_id=host_id,
            region=region,
            ts=result.ts,
            group=change.group,
            kind=change.kind,
            pid=change.pid,
            name=change.name,
            started_at=change.started_at,
            labels=dict(labels or {}),
        )
        for change in result.changes
    ]


@dataclass
class _Tracked:
    """A process known to the scanner, kept while it lives."""

    proc: psutil.Process  # reused so cpu_percent() measures since the previous scan
    key: ProcKey  # create_time read once: a wall-clock step later must not turn members into new ones
    facts: ProcessFacts
    static_groups: frozenset[str]  # groups without a pidfile criterion: decided once from facts
    settled: bool  # facts were read once the process was past its fork-to-exec window
    first_seen_mono: float
    user: str | None  # None until needed (selectors or a top-N entry)
    cpu_s: float | None = None  # CPU seconds at the previous scan: CPU % is measured between scans
    cpu_at: float = 0.0  # monotonic time of that reading


@dataclass
class _Row:
    key: ProcKey
    tracked: _Tracked
    cpu_pct: float
    rss_bytes: int


class ProcessScanner:
    """Summarises the process table on each :meth:`scan`; keeps state between scans (not thread-safe)."""

    def __init__(self, groups: Iterable[GroupSelector], top_n: int = 5) -> None:
        self._groups = list(groups)
        names = [group.name for group in self._groups]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate process group names: {', '.join(duplicates)}")
        if top_n < 0:
            raise ValueError(f"top_n must be >= 0, got {top_n}")
        self._top_n = top_n
        self._static = [group for group in self._groups if group.pidfile is None]
        self._by_pidfile = [group for group in self._groups if group.pidfile is not None]
        # Keyed by (pid, start time since boot in clock ticks): pid reuse gives a new key, and a
        # wall-clock step does not change it.
        self._procs: dict[tuple[int, float], _Tracked] = {}
        self._members: dict[str, dict[ProcKey, str]] = {group.name: {} for group in self._groups}
        self._baseline_done = False

    def cached_process(self, pid: int) -> psutil.Process | None:
        """The ``psutil.Process`` kept for a live pid (None if unknown); for introspection and tests."""
        for tracked in self._procs.values():
            if tracked.proc.pid == pid:
                return tracked.proc
        return None

    def scan(self, now: float) -> ScanResult:
        """Walk the process table once; ``now`` is the wall-clock time stamped on the result and events."""
        started = time.perf_counter()
        pidfile_pids = {path: read_pidfile(path) for path in {g.pidfile for g in self._by_pidfile if g.pidfile}}
        seen: dict[tuple[int, float], _Tracked] = {}
        rows: list[_Row] = []
        by_state: Counter[str] = Counter()
        member_rows: dict[str, list[_Row]] = {group.name: [] for group in self._groups}
        vanished = 0
        for pid in psutil.pids():
            # One read of /proc/<pid>/stat gives identity, state, CPU and RSS: the scan's whole cost
            # for a process already known (three psutil reads would open three files).
            stat = _proc_stat(pid)
            if stat is None:
                vanished += 1  # exited since the listing
                continue
            status, cpu_s, identity, rss_bytes = stat
            tracked = self._procs.get((pid, identity))
            try:
                if tracked is None:
                    tracked = self._first_sight(psutil.Process(pid), time.monotonic(), user=None)
                elif not tracked.settled:
                    tracked = self._first_sight(tracked.proc, tracked.first_seen_mono, user=tracked.user)
            except psutil.NoSuchProcess:
                vanished += 1
                continue
            at = time.monotonic()
            previous = self._procs.get((pid, identity))
            cpu_pct = 0.0
            if previous is not None and previous.cpu_s is not None and at > previous.cpu_at:
                cpu_pct = max(0.0, 100.0 * (cpu_s - previous.cpu_s) / (at - previous.cpu_at))
            tracked.cpu_s, tracked.cpu_at = cpu_s, at
            row = _Row(tracked.key, tracked, cpu_pct, rss_bytes)
            seen[(pid, identity)] = tracked
            rows.append(row)
            by_state[status] += 1
            for name in tracked.static_groups:
                member_rows[name].append(row)
            for group in self._by_pidfile:
                if matches(group, tracked.facts, pidfile_pid=pidfile_pids.get(group.pidfile or "")):
                    member_rows[group.name].append(row)
        # Dropping what was not seen keeps the cache as large as the process table, no larger.
        self._procs = seen

        groups: dict[str, GroupStats] = {}
        members: dict[str, dict[ProcKey, str]] = {}
        changes: list[GroupChange] = []
        for group in self._groups:
            in_group = member_rows[group.name]
            groups[group.name] = _group_stats(in_group)
            members[group.name] = {row.key: row.tracked.facts.name for row in in_group}
            if self._baseline_done:
                changes.extend(diff_members(group.name, self._members[group.name], members[group.name]))
        self._members = members
        self._baseline_done = True

        top_cpu = heapq.nlargest(self._top_n, rows, key=lambda r: (r.cpu_pct, r.rss_bytes, -r.key[0]))
        top_rss = heapq.nlargest(self._top_n, rows, key=lambda r: (r.rss_bytes, r.cpu_pct, -r.key[0]))
        result = ScanResult(
            ts=now,
            total=len(rows),
            by_state=dict(by_state),
            top_cpu=[self._info(row) for row in top_cpu],
            top_rss=[self._info(row) for row in top_rss],
            groups=groups,
            group_pids={name: sorted(key[0] for key in keys) for name, keys in members.items()},
            changes=changes,
        )
        log.debug(
            "event=process_scan total=%d vanished=%d groups=%d changes=%d elapsed_ms=%.1f",
            result.total,
            vanished,
            len(groups),
            len(changes),
            (time.perf_counter() - started) * 1000,
        )
        return result

    def _first_sight(self, proc: psutil.Process, first_seen_mono: float, user: str | None) -> _Tracked:
        read_at = time.time()  # same clock as create_time
        with proc.oneshot():
            started_at = float(_read(proc.create_time, 0.0))  # psutil caches it on the object
            name = str(_read(proc.name, ""))
            needs = self._needs(name)
            exe = str(_read(proc.exe, "")) if "exe" in needs else ""
            cmdline = tuple(_read(proc.cmdline, [])) if "cmdline" in needs else ()
            if "user" in needs:
                user = str(_read(proc.username, ""))
        cgroups = read_cgroups(proc.pid) if "cgroups" in needs else ()
        facts = ProcessFacts(pid=proc.pid, name=name, exe=exe, cmdline=cmdline, user=user or "", cgroups=cgroups)
        settled = read_at - started_at >= _SETTLE_S or time.monotonic() - first_seen_mono >= _SETTLE_S
        return _Tracked(
            proc=proc,
            key=(proc.pid, started_at),
            facts=facts,
            static_groups=frozenset(group.name for group in self._static if matches(group, facts)),
            settled=settled,
            first_seen_mono=first_seen_mono,
            user=user,
        )

    def _needs(self, name: str) -> set[str]:
        """Facts some selector could use for a process of this name (the name is always read)."""
        needs: set[str] = set()
        for group in self._groups:
            if group.process_name is not None and group.process_name != name:
                continue  # this selector cannot match, so its other criteria cost nothing
            if group.exe is not None:
                needs.add("exe")
            if group.cmdline_regex is not None:
                needs.add("cmdline")
            if group.user is not None:
                needs.add("user")
            if group.systemd_unit is not None:
                needs.add("cgroups")
        return needs

    def _info(self, row: _Row) -> ProcessInfo:
        tracked = row.tracked
        if tracked.user is None:
            # Only top-N entries need a user when no selector does: read it for them, once.
            try:
                tracked.user = str(_read(tracked.proc.username, ""))
            except psutil.NoSuchProcess:
                tracked.user = ""
        return ProcessInfo(
            pid=row.key[0],
            name=tracked.facts.name,
            user=tracked.user,
            cpu_pct=row.cpu_pct,
            rss_bytes=row.rss_bytes,
            started_at=row.key[1],
        )


_LINUX_STATES = {
    "R": psutil.STATUS_RUNNING,
    "S": psutil.STATUS_SLEEPING,
    "D": psutil.STATUS_DISK_SLEEP,
    "Z": psutil.STATUS_ZOMBIE,
    "T": psutil.STATUS_STOPPED,
    "t": psutil.STATUS_TRACING_STOP,
    "X": psutil.STATUS_DEAD,
    "x": psutil.STATUS_DEAD,
    "I": "idle",
    "P": "parked",
    "W": psutil.STATUS_WAKING,
    "K": "wake-kill",
}
_HAS_PROC = os.path.exists("/proc/self/stat")
_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if _HAS_PROC else 100
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if _HAS_PROC else 4096


def _proc_stat(pid: int) -> tuple[str, float, float, int] | None:
    """(status, CPU seconds, identity, RSS bytes) of a process, or None if it is gone.

    ``identity`` is the start time since boot: with the pid it names one process for its
    whole life. On Linux this is a single read of /proc/<pid>/stat; elsewhere psutil.
    """
    if not _HAS_PROC:
        return _psutil_stat(pid)
    try:
        # os.open/os.read: no buffered file object per process (a third of the read's cost).
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return _psutil_stat(pid)
    try:
        data = os.read(fd, 4096)  # the line is < 1 KiB; the name (field 2) is at most 64 bytes
    except ProcessLookupError:
        return None  # exited between open and read
    finally:
        os.close(fd)
    # The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        state = _LINUX_STATES.get(fields[0].decode(), _UNKNOWN_STATUS)
        cpu_s = (int(fields[11]) + int(fields[12])) / _TICKS_PER_S  # utime + stime
        return state, cpu_s, float(fields[19]), int(fields[21]) * _PAGE_BYTES  # starttime, rss
    except (IndexError, ValueError):
        return _psutil_stat(pid)


def _psutil_stat(pid: int) -> tuple[str, float, float, int] | None:
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            times = _read(proc.cpu_times, None)
            return (
                str(_read(proc.status, _UNKNOWN_STATUS)),
                0.0 if times is None else times.user + times.system,
                float(_read(proc.create_time, 0.0)),
                int(_read(lambda: proc.memory_info().rss, 0)),
            )
    except psutil.NoSuchProcess:
        return None


def _group_stats(rows: list[_Row]) -> GroupStats:
    if not rows:
        return GroupStats(count=0, cpu_pct=0.0, rss_bytes=0)
    starts = [row.key[1] for row in rows]
    return GroupStats(
        count=len(rows),
        cpu_pct=sum(row.cpu_pct for row in rows),
        rss_bytes=sum(row.rss_bytes for row in rows),
        oldest_start=min(starts),
        newest_start=max(starts),
    )


def _read(getter: Callable[[], _T], default: _T) -> _T:
    """One psutil read; denied or zombie-missing fields become ``default``, a vanished process raises."""
    try:
        return getter()
    except (psutil.AccessDenied, psutil.ZombieProcess):  # ZombieProcess first: it is a NoSuchProcess
        return default
