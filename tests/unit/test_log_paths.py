"""Which files a log source reads: symlink policy, file types, pseudo-files, bounded globs.

Real files, links, FIFOs and mounts in a temporary directory; the invariant everywhere: no
byte of a file outside what the source allows is ever read.
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.log_paths import (
    Budget,
    LinkPolicy,
    NotRegular,
    WalkLimits,
    components_below,
    expand,
    open_beneath,
    pseudo_devices,
    split_pattern,
)
from collector.log_tail import LogRule, LogSource, LogTailer

ANY = LogRule("any", "^", regex=True, severity="info")
SECRET = "root:$6$secret-hash:19000:0:99999:7:::"


def tailer(tmp_path: Path, paths: list[str], **source: object) -> LogTailer:
    return LogTailer(
        [LogSource(paths, [ANY], **source)],  # type: ignore[arg-type]
        tmp_path / "state" / "offsets.json",
        excerpts_per_rule_per_interval=1000,
        excerpt_bytes=4096,
    )


def excerpts(t: LogTailer, polls: int = 1) -> list[str]:
    out: list[str] = []
    for i in range(polls):
        out += [hit.excerpt for hit in t.poll(1000.0 + 10 * i).hits]
    return out


def found(pattern: str, policy: LinkPolicy | None = None, **limits: float) -> list[str]:
    expansion = expand(pattern, policy or LinkPolicy(), Budget(WalkLimits(**limits)))  # type: ignore[arg-type]
    return [c.path for c in expansion.found]


@pytest.fixture
def shadow(tmp_path: Path) -> Path:
    """A secret outside the log directory, and the log directory beside it."""
    secret = tmp_path / "etc" / "shadow"
    secret.parent.mkdir()
    secret.write_text(SECRET + "\n")
    (tmp_path / "logs" / "app").mkdir(parents=True)
    (tmp_path / "logs" / "app" / "good.log").write_text("a good line\n")
    return secret


# -- symlinks --------------------------------------------------------------------------------


def test_a_symlink_to_a_file_outside_the_source_is_never_read(
    tmp_path: Path, shadow: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "logs" / "app" / "evil.log").symlink_to(shadow)
    caplog.set_level(logging.WARNING, logger="collector.log_tail")
    with tailer(tmp_path, [str(tmp_path / "logs" / "app" / "*.log")]) as t:
        lines = excerpts(t, polls=3)
    assert lines == ["a good line"]
    refusals = [r.getMessage() for r in caplog.records if "event=log_path_refused" in r.getMessage()]
    assert len(refusals) == 1 and "evil.log" in refusals[0] and "symlink" in refusals[0]  # once, not per poll


def test_a_plain_path_that_is_a_symlink_is_refused_too(tmp_path: Path, shadow: Path) -> None:
    (tmp_path / "logs" / "app" / "current.log").symlink_to(shadow)
    with tailer(tmp_path, [str(tmp_path / "logs" / "app" / "current.log")]) as t:
        assert excerpts(t) == []


def test_follow_symlinks_follows_only_to_targets_under_the_source_directory(tmp_path: Path, shadow: Path) -> None:
    app = tmp_path / "logs" / "app"
    (app / "evil.log").symlink_to(shadow)
    (app / "current.log").symlink_to("good.log")  # inside: followed, and read once
    (app / "up.log").symlink_to("../../etc/shadow")  # relative, climbing out: refused
    with tailer(tmp_path, [str(app / "*.log")], follow_symlinks=True) as t:
        lines = excerpts(t, polls=2)
    assert lines == ["a good line"]
    assert SECRET not in "".join(lines)


def test_allowed_roots_let_a_followed_link_leave_the_source_directory(tmp_path: Path, shadow: Path) -> None:
    releases = tmp_path / "releases" / "v2"
    releases.mkdir(parents=True)
    (releases / "app.log").write_text("from the release\n")
    app = tmp_path / "logs" / "app"
    (app / "release.log").symlink_to(releases / "app.log")
    (app / "evil.log").symlink_to(shadow)
    source = {"follow_symlinks": True, "allowed_roots": (str(tmp_path / "releases"),)}
    with tailer(tmp_path, [str(app / "*.log")], **source) as t:
        lines = excerpts(t)
    assert sorted(lines) == ["a good line", "from the release"]


def test_a_symlinked_directory_below_the_source_directory_is_not_entered(tmp_path: Path, shadow: Path) -> None:
    (shadow.parent / "x.log").write_text(SECRET + "\n")
    (tmp_path / "logs" / "etc").symlink_to(shadow.parent)
    for pattern in ("*/x.log", "*/*.log", "**/*.log", "e*/x.log"):
        with tailer(tmp_path / pattern.replace("*", "s").replace("/", "_"), [str(tmp_path / "logs" / pattern)]) as t:
            assert SECRET not in "".join(excerpts(t)), pattern


def test_links_among_the_source_directorys_own_components_are_trusted(tmp_path: Path, shadow: Path) -> None:
    (tmp_path / "var-log").symlink_to(tmp_path / "logs")  # the operator wrote this path
    with tailer(tmp_path, [str(tmp_path / "var-log" / "app" / "*.log")]) as t:
        assert excerpts(t) == ["a good line"]


def test_a_link_swapped_in_after_the_walk_is_not_followed_by_the_open(tmp_path: Path, shadow: Path) -> None:
    app = tmp_path / "logs" / "app"
    (shadow.parent / "good.log").write_text(SECRET + "\n")
    (candidate,) = expand(str(tmp_path / "logs" / "*" / "good.log"), LinkPolicy(), Budget(WalkLimits())).found
    shutil.rmtree(app)
    app.symlink_to(shadow.parent)  # between the walk and the open
    with pytest.raises(OSError) as failure:
        open_beneath(candidate.root, candidate.rel)
    assert failure.value.errno in (errno.ELOOP, errno.ENOTDIR)
    app.unlink()
    app.mkdir()
    (app / "good.log").symlink_to(shadow)  # the last component swapped
    with pytest.raises(OSError) as failure:
        open_beneath(candidate.root, candidate.rel)
    assert failure.value.errno == errno.ELOOP


# -- file types and pseudo-files ---------------------------------------------------------------


def test_fifos_directories_and_devices_are_refused_without_blocking(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    os.mkfifo(logs / "pipe.log")  # opening it for reading would block without O_NONBLOCK
    (logs / "dir.log").mkdir()
    (logs / "ok.log").write_text("fine\n")
    caplog.set_level(logging.WARNING, logger="collector.log_tail")
    with tailer(tmp_path, [str(logs / "*.log"), "/dev/null"]) as t:
        assert excerpts(t, polls=2) == ["fine"]
    reasons = " ".join(r.getMessage() for r in caplog.records)
    assert "a FIFO" in reasons and "a directory" in reasons and "a character device" in reasons


def test_open_beneath_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(NotRegular, match="FIFO"):
        open_beneath(str(tmp_path), ("pipe",))


def test_a_proc_file_is_never_read_or_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # procfs says size 0 whatever a file holds: a tailer took every poll for a truncation and
    # counted the whole file again. Refused at the config check, and here if it gets this far.
    caplog.set_level(logging.WARNING, logger="collector.log_tail")
    with tailer(tmp_path, ["/proc/self/status", "/proc/uptime", "/sys/kernel/*"]) as t:
        results = [t.poll(1000.0 + 10 * i) for i in range(3)]
    assert all(r.counts == {"any": 0} and not r.hits for r in results)
    refusals = [r.getMessage() for r in caplog.records if "/proc/uptime" in r.getMessage()]
    assert len(refusals) == 1 and "pseudo-file" in refusals[0]


def test_pseudo_devices_include_proc_and_sys() -> None:
    devices = pseudo_devices()
    assert os.lstat("/proc").st_dev in devices and os.lstat("/sys").st_dev in devices
    assert os.lstat("/").st_dev not in devices


# -- bounded, loop-safe expansion --------------------------------------------------------------


def test_a_symlink_loop_under_globstar_ends_at_once_and_finds_each_file_once(tmp_path: Path) -> None:
    a = tmp_path / "logs" / "a"
    a.mkdir(parents=True)
    (a / "x.log").write_text("x\n")
    (a / "loop").symlink_to("..")
    (a / "loop2").symlink_to("../..")
    (tmp_path / "logs" / "self").symlink_to(".")
    started = time.monotonic()
    paths = found(str(tmp_path / "logs" / "**" / "*.log"), LinkPolicy(follow_symlinks=True))
    assert time.monotonic() - started < 1.0
    assert paths == [str(a / "x.log")]


@pytest.fixture
def bind_loop(tmp_path: Path) -> Iterator[Path]:
    """``logs/a/b`` is ``logs`` again (a bind mount): a loop without any symlink."""
    if os.geteuid() != 0:
        pytest.skip("a bind mount needs root")
    logs = tmp_path / "logs"
    (logs / "a" / "b").mkdir(parents=True)
    (logs / "top.log").write_text("top\n")
    if subprocess.run(["mount", "--bind", str(logs), str(logs / "a" / "b")], capture_output=True).returncode:
        pytest.skip("mount --bind is not permitted here")
    try:
        yield logs
    finally:
        subprocess.run(["umount", "-l", str(logs / "a" / "b")], check=False)


def test_a_bind_mount_loop_under_globstar_ends(bind_loop: Path) -> None:
    paths = found(str(bind_loop / "**" / "*.log"))
    assert str(bind_loop / "top.log") in paths and len(paths) <= 2  # logs/top.log, maybe once through a/b


def test_the_entry_bound_cuts_a_huge_directory_short_and_says_so(tmp_path: Path) -> None:
    for i in range(50):
        (tmp_path / f"{i:02d}.log").write_text("")
    expansion = expand(str(tmp_path / "*.log"), LinkPolicy(), Budget(WalkLimits(max_entries=10)))
    assert len(expansion.found) <= 10 and expansion.cut is not None and "10 directory entries" in expansion.cut


def test_the_depth_bound_stops_globstar_descending(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*"abcdefgh")
    deep.mkdir(parents=True)
    (deep / "deep.log").write_text("")
    (tmp_path / "a" / "shallow.log").write_text("")
    expansion = expand(str(tmp_path / "**" / "*.log"), LinkPolicy(), Budget(WalkLimits(max_depth=3)))
    assert [c.path for c in expansion.found] == [str(tmp_path / "a" / "shallow.log")]
    assert expansion.cut is not None and "deeper than 3" in expansion.cut


def test_the_time_bound_ends_an_expansion(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"{i}.log").write_text("")
    ticks = iter(range(100))
    budget = Budget(WalkLimits(time_s=2.5), clock=lambda: float(next(ticks)))
    expansion = expand(str(tmp_path / "*.log"), LinkPolicy(), budget)
    assert expansion.cut is not None and "longer than 2.5s" in expansion.cut and len(expansion.found) < 5


def test_a_tail_under_a_glob_cut_short_is_not_taken_for_rotated(tmp_path: Path) -> None:
    for i in range(20):
        (tmp_path / f"{i:02d}.log").write_text(f"line {i}\n")
    t = LogTailer([LogSource([str(tmp_path / "*.log")], [ANY])], tmp_path / "offsets.json")
    t.poll(1000.0)
    opened = {c.path for c in t.cursors()}
    t._walk_limits = WalkLimits(max_entries=3)
    t.poll(1010.0)
    assert not any(c.rotated for c in t.cursors() if c.path in opened)
    t.close()


# -- the pure pieces ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "base", "rest"),
    [
        ("/var/log/syslog", "/var/log", ["syslog"]),
        ("/var/log/app/**/*.log", "/var/log/app", ["**", "*.log"]),
        ("/var/log/app*/x.log", "/var/log", ["app*", "x.log"]),
        ("app.log", ".", ["app.log"]),
        ("/x.log", "/", ["x.log"]),
        ("logs//./a/[ab].log", "logs/a", ["[ab].log"]),
    ],
)
def test_the_source_directory_is_the_leading_part_without_wildcards(pattern: str, base: str, rest: list[str]) -> None:
    assert split_pattern(pattern) == (base, rest)


_NAME = st.sampled_from(["a", "b", "ab", ".h", "x.log", "y.log", ".z.log"])


@given(
    tree=st.lists(st.lists(_NAME, min_size=1, max_size=4), min_size=1, max_size=12),
    pattern=st.lists(
        st.sampled_from(["*", "**", "?", "a*", ".*", "*.log", "[ab]", "x.log", "a", "b", ".h"]), min_size=1, max_size=4
    ),
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_property_without_links_expansion_finds_what_glob_finds(tree: list[list[str]], pattern: list[str]) -> None:
    with tempfile.TemporaryDirectory() as root:
        for parts in tree:
            *dirs, leaf = parts
            where = Path(root, *dirs)
            try:
                where.mkdir(parents=True, exist_ok=True)
                Path(where, leaf).touch()
            except (FileExistsError, NotADirectoryError, IsADirectoryError):
                continue  # a name already taken by the other kind
        full = os.path.join(root, *pattern)
        expected = sorted(p for p in glob.glob(full, recursive=True) if os.path.isfile(p))
        assert sorted(set(found(full))) == sorted(set(expected))


@given(st.lists(st.sampled_from(["a", "b", ".", "c"]), max_size=5), st.lists(st.sampled_from(["a", "b"]), max_size=3))
def test_property_components_below_splits_exactly_what_lies_below(below: list[str], base: list[str]) -> None:
    base_path = "/" + "/".join(base)
    path = base_path.rstrip("/") + "/" + "/".join(below)
    rel = components_below(path, base_path)
    assert list(rel) == [p for p in below if p != "."]


def test_refusal_warnings_are_bounded_however_many_bad_names_appear(
    tmp_path: Path, shadow: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import collector.log_tail

    monkeypatch.setattr(collector.log_tail, "_MAX_WARNED", 5)
    app = tmp_path / "logs" / "app"
    caplog.set_level(logging.WARNING, logger="collector.log_tail")
    with tailer(tmp_path, [str(app / "*.log")]) as t:
        for i in range(4):
            for j in range(5):
                (app / f"evil-{i}-{j}.log").symlink_to(shadow)
            t.poll(1000.0 + i)
    refusals = [r for r in caplog.records if "event=log_path_refused" in r.getMessage()]
    assert len(refusals) == 5 and caplog.text.count("event=log_warnings_suppressed") == 1
