"""The disk spool: order, at-least-once acks, the cap, and survival of restarts and damaged files.

Every test works on real files in a temporary directory; "restart" means a new DiskSpool on the
same directory, with or without closing the old one (a killed process closes nothing).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.spool import DiskSpool, SpooledRecord, SpoolPosition

TOPIC = "fleetpulse.metrics"
HEADER_BYTES = 16  # magic, length, payload crc, header crc
FIELDS_BYTES = 10  # topic, key and value lengths


def frame_bytes(topic: str, key: bytes, value: bytes) -> int:
    return HEADER_BYTES + FIELDS_BYTES + len(topic.encode()) + len(key) + len(value)


def record(i: int) -> tuple[str, bytes, bytes]:
    return TOPIC, f"host-{i % 3}".encode(), b'{"seq":%d,"ts":1700000000.25}' % i


def triples(records: list[SpooledRecord]) -> list[tuple[str, bytes, bytes]]:
    return [(r.topic, r.key, r.value) for r in records]


def segment_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.seg"))


def segment_path(directory: Path, pos: SpoolPosition) -> Path:
    return directory / f"{pos.segment:012d}.seg"


def drain(spool: DiskSpool, batch: int = 7) -> list[tuple[str, bytes, bytes]]:
    out: list[tuple[str, bytes, bytes]] = []
    while records := spool.peek(batch):
        out.extend(triples(records))
        spool.ack(records[-1])
    return out


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


# -- basics ------------------------------------------------------------------------------------


def test_an_empty_spool_has_nothing_pending_and_peeks_nothing(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path / "spool")
    assert (tmp_path / "spool").is_dir()
    assert len(spool) == 0 and not spool
    assert spool.pending_records == 0
    assert spool.pending_bytes == 0
    assert spool.peek(10) == []
    spool.ack(SpoolPosition(0, 0))  # nothing to ack: a no-op, not an error
    assert spool.dropped_records == 0 and spool.dropped_bytes == 0
    assert segment_files(tmp_path / "spool") == []


def test_records_come_back_in_order_with_their_original_bytes(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path)
    sent = [record(i) for i in range(20)] + [("t", b"", b""), ("t\u00e9", b"\x00\xff", bytes(range(256)))]
    for topic, key, value in sent:
        spool.append(topic, key, value)
    assert len(spool) == len(sent)
    assert spool.pending_bytes == sum(frame_bytes(*r) for r in sent)
    assert triples(spool.peek(100)) == sent
    assert spool.appended_records == len(sent)


def test_peek_does_not_remove_and_ack_removes_up_to_and_including_the_record(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path)
    for i in range(10):
        spool.append(*record(i))
    first = spool.peek(4)
    assert triples(first) == [record(i) for i in range(4)]
    assert spool.peek(4) == first  # peeking twice gives the same records and positions
    assert len(spool) == 10

    spool.ack(first[2])
    assert len(spool) == 7
    assert triples(spool.peek(2)) == [record(3), record(4)]

    spool.ack(spool.peek(3)[-1].position)  # a position works as well as the record
    assert triples(spool.peek(100)) == [record(i) for i in range(6, 10)]
    assert spool.pending_bytes == sum(frame_bytes(*record(i)) for i in range(6, 10))


def test_acking_an_already_acked_record_again_is_a_no_op(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path)
    for i in range(5):
        spool.append(*record(i))
    batch = spool.peek(3)
    spool.ack(batch[-1])
    spool.ack(batch[-1])
    spool.ack(batch[0])
    assert triples(spool.peek(10)) == [record(3), record(4)]


def test_acking_past_the_end_is_rejected(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path)
    spool.append(*record(0))
    last = spool.peek(1)[0].position
    with pytest.raises(ValueError, match="past the end"):
        spool.ack(SpoolPosition(last.segment, 10_000))
    with pytest.raises(ValueError, match="past the end"):
        spool.ack(SpoolPosition(last.segment + 1, 0))
    assert len(spool) == 1


def test_append_many_writes_a_batch_in_order(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=4096, segment_bytes=256)
    spool.append_many([record(i) for i in range(30)])
    assert len(segment_files(tmp_path)) > 1  # the batch rolled over segments on the way
    assert drain(spool) == [record(i) for i in range(30)]


def test_bad_arguments_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="segment_bytes"):
        DiskSpool(tmp_path, segment_bytes=0)
    with pytest.raises(ValueError, match="max_bytes"):
        DiskSpool(tmp_path, max_bytes=1000, segment_bytes=600)
    spool = DiskSpool(tmp_path)
    with pytest.raises(ValueError, match="topic"):
        spool.append("", b"k", b"v")
    with pytest.raises(TypeError):
        spool.append(TOPIC, b"k", "not bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_records"):
        spool.peek(0)
    assert len(spool) == 0


# -- restarts ----------------------------------------------------------------------------------


def test_records_come_back_in_order_after_a_restart(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=8192, segment_bytes=300)
    for i in range(25):
        spool.append(*record(i))
    # No close(): a killed process does not close its files either.
    again = DiskSpool(tmp_path, max_bytes=8192, segment_bytes=300)
    assert len(again) == 25
    assert again.pending_bytes == spool.pending_bytes
    assert drain(again) == [record(i) for i in range(25)]


def test_a_restart_after_a_partial_ack_resumes_after_the_acked_records(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=8192, segment_bytes=300)
    for i in range(25):
        spool.append(*record(i))
    spool.ack(spool.peek(11)[-1])
    spool.close()

    again = DiskSpool(tmp_path, max_bytes=8192, segment_bytes=300)
    assert len(again) == 14
    assert triples(again.peek(1)) == [record(11)]
    for i in range(25, 30):
        again.append(*record(i))
    again.close()
    assert drain(DiskSpool(tmp_path, max_bytes=8192, segment_bytes=300)) == [record(i) for i in range(11, 30)]


def test_a_restart_after_everything_was_acked_delivers_only_new_records(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=8192, segment_bytes=300)
    for i in range(10):
        spool.append(*record(i))
    assert len(drain(spool)) == 10

    again = DiskSpool(tmp_path, max_bytes=8192, segment_bytes=300)
    assert len(again) == 0
    again.append(*record(10))
    assert drain(DiskSpool(tmp_path, max_bytes=8192, segment_bytes=300)) == [record(10)]


def test_a_crash_between_cursor_write_and_segment_deletion_does_not_redeliver(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=8192, segment_bytes=200)
    for i in range(12):
        spool.append(*record(i))
    oldest = tmp_path / segment_files(tmp_path)[0]
    saved = oldest.read_bytes()
    spool.ack(spool.peek(8)[-1])
    assert not oldest.exists()
    oldest.write_bytes(saved)  # as if the process died right after writing the cursor

    again = DiskSpool(tmp_path, max_bytes=8192, segment_bytes=200)
    assert not oldest.exists()
    assert drain(again) == [record(i) for i in range(8, 12)]


def test_an_unreadable_cursor_replays_instead_of_losing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = DiskSpool(tmp_path, max_bytes=8192, segment_bytes=4096)
    for i in range(6):
        spool.append(*record(i))
    spool.ack(spool.peek(2)[-1])
    spool.close()
    (tmp_path / "cursor").write_bytes(b"garbage")

    with caplog.at_level(logging.WARNING, logger="collector.spool"):
        again = DiskSpool(tmp_path, max_bytes=8192, segment_bytes=4096)
    assert "event=spool_cursor_invalid" in caplog.text
    # At-least-once: the acked records of the oldest segment come again, nothing is missing.
    assert drain(again) == [record(i) for i in range(6)]


def test_a_cursor_past_a_truncated_tail_does_not_hide_later_records(tmp_path: Path) -> None:
    # Without fsync a power loss can keep the cursor but lose the tail it pointed past.
    spool = DiskSpool(tmp_path, fsync=False)
    spool.append(*record(0))
    spool.append(*record(1))
    batch = spool.peek(2)
    spool.ack(batch[-1])
    spool.close()
    path = segment_path(tmp_path, batch[1].position)
    with open(path, "r+b") as fh:
        fh.truncate(batch[1].position.offset + 5)

    again = DiskSpool(tmp_path, fsync=False)
    assert len(again) == 0
    again.append(*record(2))
    again.close()
    assert drain(DiskSpool(tmp_path)) == [record(2)]


# -- the cap -----------------------------------------------------------------------------------


def test_the_cap_drops_the_oldest_segments_keeps_the_newest_and_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    size = frame_bytes(*record(10))
    spool = DiskSpool(tmp_path, max_bytes=12 * size, segment_bytes=4 * size)
    with caplog.at_level(logging.WARNING, logger="collector.spool"):
        for i in range(10, 40):  # same-size records: four per segment, three segments fit
            spool.append(*record(i))
    kept = drain(spool)
    assert kept == [record(i) for i in range(40 - len(kept), 40)]
    assert 8 < len(kept) <= 12
    assert spool.evicted_records == 30 - len(kept)
    assert spool.evicted_bytes == spool.evicted_records * size
    assert spool.dropped_records == spool.evicted_records
    assert "event=spool_full" in caplog.text
    assert "records=4" in caplog.text  # each warning says how many records went


def test_the_cap_counts_only_unacked_records_as_dropped(tmp_path: Path) -> None:
    size = frame_bytes(*record(10))
    spool = DiskSpool(tmp_path, max_bytes=8 * size, segment_bytes=4 * size)
    for i in range(10, 18):
        spool.append(*record(i))
    batch = spool.peek(3)
    spool.ack(batch[-1])
    spool.append(*record(18))  # drops the oldest segment, of which one record was still pending
    assert spool.evicted_records == 1
    spool.ack(batch[-1])  # acking a dropped record is a no-op
    assert triples(spool.peek(10)) == [record(i) for i in range(14, 19)]


def test_a_record_larger_than_the_cap_is_rejected_and_counted(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=1000, segment_bytes=200)
    spool.append(*record(0))
    with pytest.raises(ValueError, match="larger than max_bytes"):
        spool.append(TOPIC, b"k", b"x" * 1000)
    with pytest.raises(ValueError):
        spool.append_many([record(1), (TOPIC, b"k", b"x" * 2000)])  # all or nothing
    assert spool.rejected_records == 2
    assert spool.rejected_bytes == frame_bytes(TOPIC, b"k", b"x" * 1000) + frame_bytes(TOPIC, b"k", b"x" * 2000)
    assert spool.dropped_records == 2
    assert triples(spool.peek(10)) == [record(0)]

    exactly = b"x" * (1000 - frame_bytes(TOPIC, b"k", b""))
    spool.append(TOPIC, b"k", exactly)  # a record of exactly the cap fits (alone)
    assert triples(spool.peek(10)) == [(TOPIC, b"k", exactly)]
    assert spool.evicted_records == 1


def test_a_restart_with_a_lower_cap_drops_the_oldest(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=100_000, segment_bytes=400)
    for i in range(100):
        spool.append(*record(i))
    spool.close()
    smaller = DiskSpool(tmp_path, max_bytes=1600, segment_bytes=400)
    assert smaller.disk_bytes <= 1600
    assert smaller.evicted_records == 100 - len(smaller)
    kept = drain(smaller)
    assert kept == [record(i) for i in range(100 - len(kept), 100)]


# -- segments on disk --------------------------------------------------------------------------


def test_segments_roll_over_and_fully_acked_ones_are_deleted(tmp_path: Path) -> None:
    size = frame_bytes(*record(10))
    spool = DiskSpool(tmp_path, max_bytes=100 * size, segment_bytes=3 * size)
    for i in range(10, 20):
        spool.append(*record(i))
    assert segment_files(tmp_path) == [f"{n:012d}.seg" for n in range(4)]  # 3 + 3 + 3 + 1 records
    assert (tmp_path / "000000000000.seg").stat().st_size == 3 * size

    spool.ack(spool.peek(4)[-1])  # the first segment and one record of the second
    assert segment_files(tmp_path) == [f"{n:012d}.seg" for n in range(1, 4)]
    spool.ack(spool.peek(2)[-1])  # the rest of the second
    assert segment_files(tmp_path) == [f"{n:012d}.seg" for n in range(2, 4)]

    drain(spool)
    assert segment_files(tmp_path) == ["000000000003.seg"]  # the newest stays: it takes the next appends
    spool.append(*record(20))
    spool.append(*record(21))
    spool.append(*record(22))  # fills it up; the next one starts a new segment and the old goes
    spool.ack(spool.peek(3)[-1])
    spool.append(*record(23))
    assert segment_files(tmp_path) == ["000000000004.seg"]
    assert triples(spool.peek(10)) == [record(23)]


def test_segment_numbers_are_not_reused_after_everything_was_acked(tmp_path: Path) -> None:
    size = frame_bytes(*record(10))
    spool = DiskSpool(tmp_path, max_bytes=100 * size, segment_bytes=size)
    for i in range(10, 13):
        spool.append(*record(i))
    drain(spool)
    spool.close()
    for path in tmp_path.glob("*.seg"):
        path.unlink()  # e.g. cleaned by hand: the cursor still names segment 2

    again = DiskSpool(tmp_path, max_bytes=100 * size, segment_bytes=size)
    again.append(*record(13))
    assert segment_files(tmp_path) == ["000000000003.seg"]
    again.close()
    assert drain(DiskSpool(tmp_path, max_bytes=100 * size, segment_bytes=size)) == [record(13)]


# -- damaged files -----------------------------------------------------------------------------


def test_a_torn_tail_is_skipped_and_later_appends_still_work(tmp_path: Path) -> None:
    original = tmp_path / "original"
    spool = DiskSpool(original)
    for i in range(5):
        spool.append(*record(i))
    last = spool.peek(5)[-1].position
    spool.close()
    end = segment_path(original, last).stat().st_size

    for cut in range(last.offset + 1, end):  # every point inside the last record
        work = tmp_path / f"cut-{cut}"
        shutil.copytree(original, work)
        path = segment_path(work, last)
        with open(path, "r+b") as fh:
            fh.truncate(cut)

        again = DiskSpool(work)
        assert triples(again.peek(10)) == [record(i) for i in range(4)], cut
        assert again.corrupt_records == 1, cut
        assert path.stat().st_size == last.offset, cut  # the torn bytes are cut off
        again.append(*record(5))
        again.close()
        assert drain(DiskSpool(work)) == [record(i) for i in (0, 1, 2, 3, 5)], cut


def test_garbage_after_the_last_record_is_truncated(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = DiskSpool(tmp_path)
    for i in range(3):
        spool.append(*record(i))
    spool.close()
    path = tmp_path / segment_files(tmp_path)[-1]
    good = path.stat().st_size
    with open(path, "ab") as fh:
        fh.write(b"\x00" * 100)  # a crash can leave zeros where the data never arrived

    with caplog.at_level(logging.WARNING, logger="collector.spool"):
        again = DiskSpool(tmp_path)
    assert "event=spool_torn_tail" in caplog.text
    assert path.stat().st_size == good
    assert again.corrupt_bytes == 100
    again.append(*record(3))
    assert drain(again) == [record(i) for i in range(4)]


@pytest.mark.parametrize(
    ("where", "delta"),
    [
        ("magic", 0),
        ("length", 5),
        ("payload crc", 9),
        ("header crc", 13),
        ("topic", HEADER_BYTES + FIELDS_BYTES),
        ("value", -1),
    ],
)
def test_a_corrupted_record_in_the_middle_is_skipped_and_counted(tmp_path: Path, where: str, delta: int) -> None:
    spool = DiskSpool(tmp_path)
    for i in range(6):
        spool.append(*record(i))
    positions = [r.position for r in spool.peek(6)]
    spool.close()
    target = positions[2]
    flip_byte(segment_path(tmp_path, target), target.offset + delta if delta >= 0 else positions[3].offset + delta)

    again = DiskSpool(tmp_path)
    assert again.corrupt_records == 1, where
    assert again.corrupt_bytes == positions[3].offset - target.offset
    assert again.dropped_records == 1
    assert len(again) == 5
    again.append(*record(6))
    assert drain(again) == [record(i) for i in (0, 1, 3, 4, 5, 6)]


def test_damage_found_after_open_is_skipped_on_peek(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path)
    for i in range(4):
        spool.append(*record(i))
    positions = [r.position for r in spool.peek(4)]
    flip_byte(segment_path(tmp_path, positions[1]), positions[2].offset - 1)  # the disk rots under us

    assert triples(spool.peek(3)) == [record(0), record(2), record(3)]
    assert spool.corrupt_records == 1
    assert len(spool) == 3
    assert drain(spool) == [record(0), record(2), record(3)]


# -- property ----------------------------------------------------------------------------------

_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 5), st.integers(0, 120)),
        st.tuples(st.just("ack"), st.integers(1, 8), st.integers(0, 7)),
        st.tuples(st.just("restart"), st.booleans(), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(ops=_OPS)
def test_any_mix_of_appends_acks_and_restarts_delivers_every_record_once_in_order(
    ops: list[tuple[str, int, int]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)

        def open_spool() -> DiskSpool:
            # Small segments so that rollovers and deletions happen; a cap that never drops.
            return DiskSpool(directory, max_bytes=1 << 20, segment_bytes=256, fsync=False)

        spool = open_spool()
        appended: list[tuple[str, bytes, bytes]] = []
        acked: list[tuple[str, bytes, bytes]] = []
        for op, a, b in ops:
            expected = appended[len(acked) :]
            if op == "append":
                batch = [(TOPIC, b"k%d" % len(appended), b"v%d:" % (len(appended) + n) + b"x" * b) for n in range(a)]
                if a == 1:
                    spool.append(*batch[0])
                else:
                    spool.append_many(batch)
                appended.extend(batch)
            elif op == "ack":
                peeked = spool.peek(a)
                assert triples(peeked) == expected[:a]
                if peeked:
                    chosen = peeked[b % len(peeked)]
                    spool.ack(chosen)
                    acked.extend(triples(peeked[: b % len(peeked) + 1]))
            else:
                if a:
                    spool.close()
                spool = open_spool()
            assert len(spool) == len(appended) - len(acked)

        acked.extend(drain(spool))
        assert acked == appended
        assert spool.dropped_records == 0
        assert len(segment_files(directory)) <= 1
        spool.close()


def test_a_state_dir_has_one_owner_at_a_time(tmp_path: Path) -> None:
    import os

    from collector.durable import StateDirBusy, lock_dir

    fd = lock_dir(tmp_path, "agent")
    with pytest.raises(StateDirBusy, match=rf"in use by another agent \(pid {os.getpid()}\)"):
        lock_dir(tmp_path, "agent")
    os.close(fd)
    os.close(lock_dir(tmp_path, "agent"))  # free again once the owner let go
