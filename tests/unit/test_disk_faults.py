"""A full, read-only or shared disk under the agent's state: nothing stops, nothing is lost unsaid.

Full and read-only disks are real small tmpfs mounts (root; skipped with the reason otherwise);
modes are checked under a permissive umask.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from collector.agent import SequenceState
from collector.durable import atomic_write, lock_dir, private_dir
from collector.outbox import Outbox
from collector.spool import DiskSpool, SpoolWriteError
from tests.mounts import fill, remount, tmpfs


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def cycle(i: int) -> tuple[list[tuple[str, bytes, bytes]], tuple[str, bytes, bytes]]:
    """One cycle's records (two data records of ~1.5 KiB) and its heartbeat."""
    data = [("t.metrics", b"h", b"m%d" % i + b"x" * 1500), ("t.processes", b"h", b"p%d" % i + b"y" * 1500)]
    return data, ("t.heartbeats", b"h", b"hb%d" % i)


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if f"event={name} " in r.getMessage() + " "]


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "fs", size="256k") as where:
        yield where


@pytest.fixture
def loose_umask() -> Iterator[None]:
    before = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(before)


# -- the spool on a full disk ----------------------------------------------------------------------


def test_a_failed_append_says_how_many_records_were_kept_and_leaves_a_clean_tail(small_fs: Path) -> None:
    spool = DiskSpool(small_fs / "spool", max_bytes=1 << 20, segment_bytes=1 << 19)
    spool.append_many(cycle(0)[0])
    filler = fill(small_fs)
    with pytest.raises(SpoolWriteError) as failure:
        for i in range(1, 200):
            spool.append_many([(t, k, v * 20) for t, k, v in cycle(i)[0]])
    assert failure.value.errno == errno.ENOSPC and 0 <= failure.value.kept < 2
    filler.unlink()
    spool.append_many(cycle(999)[0])
    spool.close()
    reopened = DiskSpool(small_fs / "spool", max_bytes=1 << 20, segment_bytes=1 << 19)
    assert reopened.corrupt_records == 0  # the partial frame was cut off, not left for the next open
    assert reopened.peek(1000)[-1].value.startswith(b"p999")


def test_an_ack_on_a_full_disk_holds_in_memory_and_frees_the_space(small_fs: Path) -> None:
    spool = DiskSpool(small_fs / "spool", max_bytes=1 << 20, segment_bytes=16 * 1024)
    for i in range(30):
        spool.append_many(cycle(i)[0])
    fill(small_fs)
    batch = spool.peek(100)
    spool.ack(batch[-2])  # the cursor file cannot be written: no page left for it
    assert spool.cursor_error is not None and spool.cursor_error.errno == errno.ENOSPC
    assert len(spool) == 1  # acked all the same, and the acked segments were deleted
    spool.append_many(cycle(100)[0])  # room again
    spool.ack(spool.peek(10)[0])
    assert spool.cursor_error is None


# -- the outbox: heartbeats bypass a broken spool, the rest is counted, recovery is by itself -----


def test_a_full_disk_keeps_heartbeats_counts_drops_logs_once_and_recovers(
    small_fs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="collector.outbox")
    clock = Clock()
    outbox = Outbox(small_fs / "spool", max_bytes=1 << 20, segment_bytes=1 << 19, retry_s=5.0, clock=clock)
    outbox.put(*cycle(0))
    filler = fill(small_fs)
    for i in range(1, 40):
        clock.now += 1.0
        outbox.put(*cycle(i))
    assert outbox.unavailable
    held = outbox.take_held()
    assert held and held[-1].value == b"hb39"  # the newest heartbeat waits for the sender in memory
    lost = outbox.dropped()["disk_error"]
    assert lost >= 2 * (39 - len(held)) - 2  # every data record of a cycle whose heartbeat was held
    assert len(events(caplog, "spool_unavailable")) == 1 and "reason=ENOSPC" in events(caplog, "spool_unavailable")[0]

    filler.unlink()
    clock.now += 5.0
    outbox.put(*cycle(40))
    assert not outbox.unavailable and not outbox.take_held()
    assert [r.value[:4] for r in outbox.peek(1000)][-3:] == [b"m40x", b"p40y", b"hb40"]
    assert len(events(caplog, "spool_recovered")) == 1 and "was=ENOSPC" in events(caplog, "spool_recovered")[0]
    assert outbox.dropped()["disk_error"] == lost  # nothing more lost once it recovered


def test_a_broken_spool_is_retried_only_every_retry_s(small_fs: Path) -> None:
    clock = Clock()
    outbox = Outbox(small_fs / "spool", max_bytes=1 << 20, segment_bytes=1 << 19, retry_s=5.0, clock=clock)
    filler = fill(small_fs)
    while not outbox.unavailable:
        outbox.put(*cycle(0))
    filler.unlink()
    clock.now += 4.0
    outbox.put(*cycle(1))
    assert outbox.unavailable  # not tried yet: counted, heartbeat held
    clock.now += 1.0
    outbox.put(*cycle(2))
    assert not outbox.unavailable


def test_held_heartbeats_are_bounded_and_what_falls_off_is_counted(small_fs: Path) -> None:
    clock = Clock()
    outbox = Outbox(small_fs / "spool", max_bytes=1 << 20, segment_bytes=1 << 19, held_max=3, clock=clock)
    fill(small_fs)
    for i in range(10):
        outbox.put(*cycle(i))
    held = outbox.take_held()
    assert [r.value for r in held] == [b"hb7", b"hb8", b"hb9"]
    outbox.give_back(held[1:])
    assert outbox.dropped()["disk_error"] == 20 + 7  # every data record, and the 7 oldest heartbeats
    assert outbox.pending == 2 + len(outbox.spool or [])


def test_a_read_only_state_dir_at_start_stops_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with tmpfs(tmp_path / "ro", size="64k") as where:
        remount(where, read_only=True)
        outbox = Outbox(where / "spool", retry_s=0.0)
        outbox.put(*cycle(0))
        outbox.put(*cycle(1))
        assert outbox.unavailable and [r.value for r in outbox.take_held()] == [b"hb0", b"hb1"]
        assert outbox.dropped() == {"disk_error": 4}
        assert len(events(caplog, "spool_unavailable")) == 1 and "reason=EROFS" in caplog.text
        seq = SequenceState(where / "agent-state.json", "boot-1")
        assert [seq.next(), seq.next()] == [1, 2]  # numbering goes on in memory
        assert len(events(caplog, "seq_state_unavailable")) == 1
        with pytest.raises(OSError):
            private_dir(where / "state")


def test_a_read_only_state_dir_with_an_old_spool_still_sends_what_it_holds(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "fs", size="256k") as where:
        old = DiskSpool(where / "spool")
        old.append_many(cycle(0)[0])
        old.close()
        (where / "agent.lock").touch()
        remount(where, read_only=True)
        os.close(lock_dir(where, "agent"))  # still locked against a second agent, read-only
        outbox = Outbox(where / "spool")
        batch = outbox.peek(10)
        assert [r.value[:2] for r in batch] == [b"m0", b"p0"]
        outbox.ack(batch[-1])  # acked in memory: the cursor cannot be written
        assert outbox.pending == 0


# -- permissions -----------------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_spool_and_state_files_are_private_whatever_the_umask(tmp_path: Path, loose_umask: None) -> None:
    spool = DiskSpool(tmp_path / "state" / "spool", segment_bytes=4096, max_bytes=1 << 20)
    for i in range(5):
        spool.append_many(cycle(i)[0])
    spool.ack(spool.peek(3)[-1])
    atomic_write(tmp_path / "state" / "log-offsets.json", b"{}")
    assert mode(tmp_path / "state" / "spool") == 0o700
    files = [p for p in (tmp_path / "state").rglob("*") if p.is_file()]
    assert files and {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}


def test_files_an_older_version_wrote_0644_are_tightened(tmp_path: Path, loose_umask: None) -> None:
    spool = DiskSpool(tmp_path / "spool")
    spool.append_many(cycle(0)[0])
    spool.ack(spool.peek(1)[0])
    spool.close()
    for path in [tmp_path / "spool", *(tmp_path / "spool").iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    DiskSpool(tmp_path / "spool").close()
    assert mode(tmp_path / "spool") == 0o700
    assert {mode(p) for p in (tmp_path / "spool").iterdir()} == {0o600}
    (tmp_path / "offsets.json").write_bytes(b"{}")
    (tmp_path / "offsets.json").chmod(0o644)
    atomic_write(tmp_path / "offsets.json", b"[]")
    assert mode(tmp_path / "offsets.json") == 0o600


def test_a_state_dir_is_made_0700_tightened_when_it_is_ours_and_warned_about_when_shared(
    tmp_path: Path, loose_umask: None, caplog: pytest.LogCaptureFixture
) -> None:
    def ours(name: str) -> bool:
        return name in ("spool", "agent.lock")

    private_dir(tmp_path / "new", owned=ours)
    assert mode(tmp_path / "new") == 0o700
    (tmp_path / "old").mkdir(mode=0o755)
    (tmp_path / "old" / "agent.lock").touch()
    private_dir(tmp_path / "old", owned=ours)
    assert mode(tmp_path / "old") == 0o700
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    (shared / "someone-elses.db").touch()
    private_dir(shared, owned=ours)
    assert mode(shared) == 0o755  # not ours to change
    assert "event=state_dir_permissions" in caplog.text and "StateDirectoryMode=0700" in caplog.text


def test_sequence_numbers_survive_a_full_disk_and_are_saved_again_after(
    small_fs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="collector.agent")
    seq = SequenceState(small_fs / "agent-state.json", "boot-1")
    assert seq.next() == 1
    filler = fill(small_fs)
    assert [seq.next() for _ in range(3)] == [2, 3, 4]
    filler.unlink()
    assert seq.next() == 5
    assert orjson.loads((small_fs / "agent-state.json").read_bytes())["seq"] == 5
    assert len(events(caplog, "seq_state_unavailable")) == 1 and len(events(caplog, "seq_state_recovered")) == 1
