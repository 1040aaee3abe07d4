"""Process-table summaries: selectors, group stats, start/exit events and cheap rescans, on real processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import processes
from collector.contract import GroupStats, ProcessEvent, ProcessSummary, decode, encode
from collector.processes import (
    GroupChange,
    GroupSelector,
    ProcessFacts,
    ProcessScanner,
    diff_members,
    matches,
    read_cgroups,
    read_pidfile,
    to_events,
    to_summary,
)

SLEEP = "import time; time.sleep(30)"
BURN = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end: pass"


class Spawner:
    """Starts children with a distinctive process name and argv marker; kills and reaps them all at teardown."""

    def __init__(self, tmp_path: Path) -> None:
        token = uuid.uuid4().hex
        self.marker = f"fleetpulse-test-{token}"
        # The kernel names a process after the file it exec()s: a symlink gives a unique name,
        # kept under the 15 characters of /proc/<pid>/comm.
        self.name = f"fpt{token[:8]}"
        self.link = tmp_path / self.name
        self.link.symlink_to(sys.executable)
        self.children: list[subprocess.Popen[bytes]] = []

    def spawn(self, code: str = SLEEP) -> subprocess.Popen[bytes]:
        child = subprocess.Popen([str(self.link), "-c", code, self.marker], stdin=subprocess.DEVNULL)
        self.children.append(child)
        # Popen returns once exec() is committed: the name is final then, but the kernel fills
        # /proc/<pid>/cmdline a moment later (on a busy machine, noticeably later). Tests mean
        # "a process that has started", so wait for its argv (a scanner re-reads young
        # processes until they settle, so the agent itself only reports such a start later).
        deadline = time.monotonic() + 10
        while self.marker not in psutil.Process(child.pid).cmdline():
            assert time.monotonic() < deadline, "child never showed its argv"
            time.sleep(0.005)
        return child

    def kill(self, child: subprocess.Popen[bytes]) -> None:
        child.kill()
        child.wait(timeout=5)  # reaped: a zombie would still be in the process table

    def close(self) -> None:
        for child in self.children:
            if child.poll() is None:
                self.kill(child)


@pytest.fixture
def spawner(tmp_path: Path) -> Iterator[Spawner]:
    spawned = Spawner(tmp_path)
    try:
        yield spawned
    finally:
        spawned.close()


def by_marker(spawner: Spawner, name: str = "test", **criteria: str) -> GroupSelector:
    return GroupSelector(name, cmdline_regex=re.escape(spawner.marker), **criteria)


def create_times(children: list[subprocess.Popen[bytes]]) -> list[float]:
    return [psutil.Process(child.pid).create_time() for child in children]


# -- selectors on real processes ---------------------------------------------------------------


def test_a_cmdline_regex_group_finds_exactly_the_spawned_children(spawner: Spawner) -> None:
    children = [spawner.spawn() for _ in range(3)]
    scanner = ProcessScanner([by_marker(spawner)])

    result = scanner.scan(time.time())

    stats = result.groups["test"]
    assert stats.count == 3
    assert result.group_pids["test"] == sorted(child.pid for child in children)
    assert stats.oldest_start == min(create_times(children))
    assert stats.newest_start == max(create_times(children))
    assert stats.rss_bytes > 0
    assert result.total >= 3
    assert sum(result.by_state.values()) == result.total


def test_a_process_name_group_matches_the_exact_psutil_name_only(spawner: Spawner) -> None:
    children = [spawner.spawn() for _ in range(3)]
    scanner = ProcessScanner(
        [GroupSelector("exact", process_name=spawner.name), GroupSelector("prefix", process_name=spawner.name[:-1])]
    )

    result = scanner.scan(time.time())

    assert result.groups["exact"].count == 3
    assert result.group_pids["exact"] == sorted(child.pid for child in children)
    assert result.groups["prefix"].count == 0


def test_a_user_group_matches_the_current_users_processes(spawner: Spawner) -> None:
    children = [spawner.spawn() for _ in range(3)]
    me = psutil.Process().username()
    scanner = ProcessScanner(
        [
            GroupSelector("mine", user=me),
            by_marker(spawner, "mine_and_marked", user=me),
            by_marker(spawner, "nobody_marked", user="fleetpulse-no-such-user"),
        ]
    )

    result = scanner.scan(time.time())

    assert {child.pid for child in children} | {os.getpid()} <= set(result.group_pids["mine"])
    assert result.groups["mine_and_marked"].count == 3
    assert result.groups["nobody_marked"].count == 0


def test_an_exe_group_matches_the_exact_path_or_a_glob(spawner: Spawner) -> None:
    children = [spawner.spawn() for _ in range(3)]
    exe = psutil.Process(children[0].pid).exe()  # the resolved interpreter, not the symlink
    scanner = ProcessScanner(
        [
            by_marker(spawner, "exact", exe=exe),
            by_marker(spawner, "glob", exe=os.path.join(os.path.dirname(exe), "pyth*")),
            GroupSelector("glob_alone", exe=os.path.dirname(exe) + "/*"),
            GroupSelector("elsewhere", exe="/fleetpulse-no-such-dir/*"),
        ]
    )

    result = scanner.scan(time.time())

    assert result.groups["exact"].count == 3
    assert result.groups["glob"].count == 3
    assert {child.pid for child in children} <= set(result.group_pids["glob_alone"])
    assert result.groups["elsewhere"].count == 0


def test_a_pidfile_group_matches_only_the_pid_in_the_file(spawner: Spawner, tmp_path: Path) -> None:
    children = [spawner.spawn() for _ in range(3)]
    pidfile = tmp_path / "child.pid"
    pidfile.write_text(f"{children[1].pid}\n")
    garbage = tmp_path / "garbage.pid"
    garbage.write_text("not a pid\n")
    scanner = ProcessScanner(
        [
            GroupSelector("by_pidfile", pidfile=str(pidfile)),
            GroupSelector("missing", pidfile=str(tmp_path / "absent.pid")),
            GroupSelector("garbage", pidfile=str(garbage)),
        ]
    )

    result = scanner.scan(time.time())

    assert result.group_pids["by_pidfile"] == [children[1].pid]
    assert result.groups["missing"].count == 0
    assert result.groups["garbage"].count == 0


def test_a_rewritten_pidfile_moves_membership_with_an_exit_and_a_start(spawner: Spawner, tmp_path: Path) -> None:
    first, second = spawner.spawn(), spawner.spawn()
    pidfile = tmp_path / "service.pid"
    pidfile.write_text(str(first.pid))
    scanner = ProcessScanner([GroupSelector("svc", pidfile=str(pidfile))])
    scanner.scan(time.time())

    pidfile.write_text(str(second.pid))
    result = scanner.scan(time.time())

    assert [(c.kind, c.pid) for c in result.changes] == [("exit", first.pid), ("start", second.pid)]


def test_a_systemd_unit_group_matches_nothing_outside_that_unit(spawner: Spawner) -> None:
    spawner.spawn()
    scanner = ProcessScanner(
        [
            GroupSelector("unit", systemd_unit="fleetpulse-test-no-such.service"),
            by_marker(spawner, "unit_and_marked", systemd_unit="fleetpulse-test-no-such.service"),
        ]
    )

    result = scanner.scan(time.time())

    assert result.groups["unit"].count == 0
    assert result.groups["unit_and_marked"].count == 0


def test_an_unreadable_cgroup_file_means_no_match_not_a_crash(
    spawner: Spawner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawner.spawn()
    calls: list[int] = []

    def unreadable(pid: int, proc_root: str | None = None) -> tuple[str, ...]:
        calls.append(pid)
        return read_cgroups(pid, proc_root=str(tmp_path / "noproc"))  # nothing is readable there

    monkeypatch.setattr(processes, "read_cgroups", unreadable)
    scanner = ProcessScanner([by_marker(spawner, systemd_unit="fleetpulse-test.service")])

    result = scanner.scan(time.time())

    assert calls, "the scanner reads cgroups when a selector needs them"
    assert result.groups["test"].count == 0


def test_read_cgroups_parses_v1_and_v2_lines_and_tolerates_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "100").mkdir()
    (tmp_path / "100" / "cgroup").write_text(
        "12:pids:/system.slice/nginx.service\n1:name=systemd:/system.slice/nginx.service\n0::/weird:path\n"
    )
    (tmp_path / "200" / "cgroup").mkdir(parents=True)  # a directory: unreadable as a file even for root

    assert read_cgroups(100, proc_root=str(tmp_path)) == (
        "/system.slice/nginx.service",
        "/system.slice/nginx.service",
        "/weird:path",
    )
    assert read_cgroups(200, proc_root=str(tmp_path)) == ()
    assert read_cgroups(300, proc_root=str(tmp_path)) == ()
    assert read_cgroups(os.getpid()), "a live process on Linux is in at least one cgroup"


def test_read_pidfile_accepts_only_a_positive_decimal_pid(tmp_path: Path) -> None:
    cases = {"plain": "123", "padded": "  456 \n", "trailing": "789 extra", "word": "nginx", "plus": "+5"}
    cases |= {"zero": "0", "underscore": "1_0", "empty": ""}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    got = {name: read_pidfile(str(tmp_path / name)) for name in cases}

    assert got == {name: None for name in cases} | {"plain": 123, "padded": 456, "trailing": 789}
    assert read_pidfile(str(tmp_path / "absent")) is None
    assert read_pidfile(str(fifo)) is None  # and it returned: a FIFO without a writer does not block


def test_a_group_with_no_matches_reports_count_zero_and_no_start_times(spawner: Spawner) -> None:
    spawner.spawn()
    scanner = ProcessScanner(
        [by_marker(spawner, "present"), GroupSelector("absent", process_name="fleetpulse-none")], top_n=2
    )

    result = scanner.scan(time.time())

    assert set(result.groups) == {"present", "absent"}
    assert result.groups["absent"] == GroupStats(
        count=0, cpu_pct=0.0, rss_bytes=0, oldest_start=None, newest_start=None
    )
    assert result.group_pids["absent"] == []


def test_zombies_are_counted_by_state_not_dropped(spawner: Spawner) -> None:
    child = spawner.spawn("pass")
    deadline = time.monotonic() + 5
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:  # exited, not yet reaped
        assert time.monotonic() < deadline, "child did not exit"
        time.sleep(0.01)

    result = ProcessScanner([by_marker(spawner)]).scan(time.time())

    assert result.by_state.get(psutil.STATUS_ZOMBIE, 0) >= 1


# -- events --------------------------------------------------------------------------------------


def test_the_first_scan_is_a_baseline_without_start_events(spawner: Spawner) -> None:
    [spawner.spawn() for _ in range(2)]
    scanner = ProcessScanner([by_marker(spawner)])

    first = scanner.scan(time.time())
    second = scanner.scan(time.time())

    assert first.groups["test"].count == 2
    assert first.changes == []
    assert second.changes == []


def test_a_child_started_after_a_scan_starts_in_the_next_and_exits_after_it_is_killed(spawner: Spawner) -> None:
    scanner = ProcessScanner([by_marker(spawner)])
    assert scanner.scan(time.time()).changes == []

    child = spawner.spawn()
    started_at = psutil.Process(child.pid).create_time()
    second = scanner.scan(now=1000.0)
    spawner.kill(child)
    third = scanner.scan(now=2000.0)

    assert second.changes == [GroupChange("test", "start", child.pid, spawner.name, started_at)]
    assert third.changes == [GroupChange("test", "exit", child.pid, spawner.name, started_at)]
    assert second.ts == 1000.0
    assert third.groups["test"].count == 0


def test_a_reused_pid_shows_as_an_exit_and_a_start() -> None:
    before = {(42, 100.0): "old", (7, 50.0): "steady"}
    after = {(42, 200.0): "new", (7, 50.0): "steady"}

    changes = diff_members("g", before, after)

    assert changes == [GroupChange("g", "exit", 42, "old", 100.0), GroupChange("g", "start", 42, "new", 200.0)]


# -- top-N, CPU and reuse ------------------------------------------------------------------------


def test_top_lists_are_sorted_and_bounded(spawner: Spawner) -> None:
    [spawner.spawn() for _ in range(3)]
    scanner = ProcessScanner([], top_n=3)
    scanner.scan(time.time())
    time.sleep(0.05)

    result = scanner.scan(time.time())

    assert result.total > 3
    assert len(result.top_cpu) == 3
    assert len(result.top_rss) == 3
    cpu = [p.cpu_pct for p in result.top_cpu]
    rss = [p.rss_bytes for p in result.top_rss]
    assert cpu == sorted(cpu, reverse=True)
    assert rss == sorted(rss, reverse=True)
    assert rss[0] > 0
    assert all(p.name and p.started_at > 0 for p in result.top_rss)
    assert result.top_rss[0].user, "usernames are read for top-N entries even with no user selector"
    assert ProcessScanner([], top_n=0).scan(time.time()).top_cpu == []


def test_cpu_is_zero_on_first_sight_then_measured_since_the_previous_scan(spawner: Spawner) -> None:
    spawner.spawn(BURN)
    scanner = ProcessScanner([by_marker(spawner)])

    first = scanner.scan(time.time())
    time.sleep(0.3)
    second = scanner.scan(time.time())

    assert first.groups["test"].cpu_pct == 0.0
    assert all(p.cpu_pct == 0.0 for p in first.top_cpu), "every process is new to a first scan"
    assert second.groups["test"].cpu_pct > 10.0


def test_process_objects_are_reused_across_scans_and_dropped_when_gone(spawner: Spawner) -> None:
    child = spawner.spawn()
    scanner = ProcessScanner([by_marker(spawner)])

    scanner.scan(time.time())
    cached = scanner.cached_process(child.pid)
    scanner.scan(time.time())

    assert cached is not None
    assert scanner.cached_process(child.pid) is cached
    spawner.kill(child)
    scanner.scan(time.time())
    assert scanner.cached_process(child.pid) is None


# -- selector validation -------------------------------------------------------------------------


def test_invalid_selectors_raise_value_errors_naming_the_group() -> None:
    with pytest.raises(ValueError, match=r"'web'.*no criteria"):
        GroupSelector("web")
    with pytest.raises(ValueError, match=r"'web'.*cmdline_regex"):
        GroupSelector("web", cmdline_regex="(unclosed")
    with pytest.raises(ValueError, match=r"'web'.*cmdline_regex"):
        GroupSelector("web", cmdline_regex=r"(?<=look)behind")  # RE2 has no look-around
    with pytest.raises(ValueError, match=r"'web'.*user must be a non-empty"):
        GroupSelector("web", user="")
    with pytest.raises(ValueError, match="non-empty name"):
        GroupSelector("", process_name="nginx")
    with pytest.raises(ValueError, match="duplicate process group names: web"):
        ProcessScanner([GroupSelector("web", process_name="a"), GroupSelector("web", process_name="b")])
    with pytest.raises(ValueError, match="top_n"):
        ProcessScanner([], top_n=-1)


# -- contract records ----------------------------------------------------------------------------


def test_summary_and_events_carry_host_region_labels_and_survive_the_contract(spawner: Spawner) -> None:
    scanner = ProcessScanner([by_marker(spawner)], top_n=2)
    scanner.scan(time.time())
    child = spawner.spawn()
    result = scanner.scan(now=1234.5)
    labels = {"env": "test"}

    summary = to_summary(result, "host-1", "eu-west", 1234.5, 10.0, labels)
    events = to_events(result, "host-1", "eu-west", labels)

    assert summary.host_id == "host-1" and summary.region == "eu-west" and summary.labels == labels
    assert summary.interval_s == 10.0 and summary.total == result.total and summary.groups == result.groups
    assert decode(encode(summary)) == summary
    assert isinstance(decode(encode(summary)), ProcessSummary)
    assert events == [
        ProcessEvent(
            host_id="host-1",
            region="eu-west",
            ts=1234.5,
            group="test",
            kind="start",
            pid=child.pid,
            name=spawner.name,
            started_at=psutil.Process(child.pid).create_time(),
            labels=labels,
        )
    ]
    assert decode(encode(events[0])) == events[0]


# -- pure matching -------------------------------------------------------------------------------

NGINX = ProcessFacts(
    pid=10,
    name="nginx",
    exe="/usr/sbin/nginx",
    cmdline=("nginx:", "master", "process", "/usr/sbin/nginx", "-c", "/etc/nginx/nginx.conf"),
    user="www-data",
    cgroups=("/system.slice/nginx.service",),
)


@pytest.mark.parametrize(
    ("selector", "facts", "pidfile_pid", "expected"),
    [
        (GroupSelector("g", process_name="nginx"), NGINX, None, True),
        (GroupSelector("g", process_name="ngin"), NGINX, None, False),
        (GroupSelector("g", process_name="nginx", user="root"), NGINX, None, False),  # AND
        (GroupSelector("g", process_name="nginx", user="www-data"), NGINX, None, True),
        (GroupSelector("g", exe="/usr/sbin/nginx"), NGINX, None, True),
        (GroupSelector("g", exe="/usr/*/ng?nx"), NGINX, None, True),
        (GroupSelector("g", exe="/usr/bin/*"), NGINX, None, False),
        (GroupSelector("g", exe="*"), ProcessFacts(pid=1, name="x"), None, False),  # unknown exe
        (GroupSelector("g", cmdline_regex=r"master process \S+nginx"), NGINX, None, True),
        (GroupSelector("g", cmdline_regex=r"^master"), NGINX, None, False),  # searched, but anchors hold
        (GroupSelector("g", cmdline_regex=".*"), ProcessFacts(pid=1, name="kworker/0:1"), None, False),
        (GroupSelector("g", cmdline_regex="caf\u00e9"), ProcessFacts(pid=1, cmdline=("caf\u00e9",)), None, True),
        (GroupSelector("g", systemd_unit="nginx.service"), NGINX, None, True),
        (GroupSelector("g", systemd_unit="x.service"), NGINX, None, False),
        (GroupSelector("g", systemd_unit="inx.service"), NGINX, None, False),  # a whole path component
        (GroupSelector("g", systemd_unit="nginx.service"), ProcessFacts(pid=1, cgroups=("/",)), None, False),
        (GroupSelector("g", pidfile="/run/nginx.pid"), NGINX, 10, True),
        (GroupSelector("g", pidfile="/run/nginx.pid"), NGINX, 11, False),
        (GroupSelector("g", pidfile="/run/nginx.pid"), NGINX, None, False),
        (GroupSelector("g", pidfile="/run/nginx.pid", user="root"), NGINX, 10, False),
    ],
)
def test_matching_on_hand_made_facts(
    selector: GroupSelector, facts: ProcessFacts, pidfile_pid: int | None, expected: bool
) -> None:
    assert matches(selector, facts, pidfile_pid=pidfile_pid) is expected


def test_a_non_utf8_byte_in_a_cmdline_is_one_unknown_character() -> None:
    # psutil hands a raw 0xff argv byte over as the lone surrogate U+DCFF; "." and ".*" must still step over it.
    facts = ProcessFacts(pid=1, cmdline=("run", "a\udcffb", "--flag"))
    assert matches(GroupSelector("g", cmdline_regex="^run a.b --flag$"), facts) is True
    assert matches(GroupSelector("g", cmdline_regex="^run .* --flag$"), facts) is True
    assert matches(GroupSelector("g", cmdline_regex="a\ufffdb"), facts) is True
    odd = ProcessFacts(pid=1, cmdline=("x\ud800y",))  # a surrogate psutil never produces: still no crash
    assert matches(GroupSelector("g", cmdline_regex="^x.y$"), odd) is True


ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=40)  # surrogates included
MAYBE_TEXT = st.none() | ANY_TEXT


@settings(max_examples=300, deadline=None)
@given(
    process_name=MAYBE_TEXT,
    exe=MAYBE_TEXT,
    cmdline_regex=MAYBE_TEXT,
    user=MAYBE_TEXT,
    pidfile=MAYBE_TEXT,
    systemd_unit=MAYBE_TEXT,
    facts=st.builds(
        ProcessFacts,
        pid=st.integers(min_value=0, max_value=2**22),
        name=ANY_TEXT,
        exe=ANY_TEXT,
        cmdline=st.lists(ANY_TEXT, max_size=5).map(tuple),
        user=ANY_TEXT,
        cgroups=st.lists(ANY_TEXT, max_size=3).map(tuple),
    ),
    pidfile_pid=st.none() | st.integers(min_value=0, max_value=2**22),
)
def test_selectors_and_matching_never_raise_anything_but_value_error_on_arbitrary_strings(
    process_name: str | None,
    exe: str | None,
    cmdline_regex: str | None,
    user: str | None,
    pidfile: str | None,
    systemd_unit: str | None,
    facts: ProcessFacts,
    pidfile_pid: int | None,
) -> None:
    try:
        selector = GroupSelector(
            "g",
            process_name=process_name,
            exe=exe,
            cmdline_regex=cmdline_regex,
            user=user,
            pidfile=pidfile,
            systemd_unit=systemd_unit,
        )
    except ValueError:
        return  # bad user input is a ValueError; anything else fails the test
    assert isinstance(matches(selector, facts, pidfile_pid=pidfile_pid), bool)
