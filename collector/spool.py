"""A bounded, crash-safe on-disk spool: a FIFO of Kafka records kept while the broker is away.

When Kafka is unreachable or slow the agent appends encoded events (``topic, key, value``) here;
when the broker is back it replays them in order with their original bytes (event times live
inside the values, so a late delivery still says when things happened)::

    spool.append(topic, key, value)           # broker down
    batch = spool.peek(100)                   # broker back: oldest first, nothing removed yet
    ...send every record, wait for the broker's confirmation...
    spool.ack(batch[-1])                      # now remove them (and everything before)

Acking only after the broker confirmed makes delivery at-least-once: a crash between send
and ack re-sends that batch after the restart, nothing is ever lost for want of an ack.

On disk (``directory``):

* ``<seq:012d>.seg`` segment files, oldest first, appended to until ``segment_bytes``. Each
  record is one frame, integers little-endian::

      magic b"\\xf5FPs" | payload_len u32 | payload_crc32 u32 | header_crc32 u32   (16 bytes)
      payload = topic_len u16 | key_len u32 | value_len u32 | topic utf-8 | key | value

  ``header_crc32`` covers the first 12 bytes (magic, length, payload crc), so a length that
  passes it can be trusted to find the next frame.
* ``cursor``: where reading resumes (``b"FPcu" | seq u64 | offset u64 | crc32 u32``), the byte
  offset of the first unacked record in segment ``seq``. It is replaced atomically (temp
  file, fsync, ``os.replace``) on every ack; segments older than ``seq`` are fully acked and
  deleted (again on open, should a crash have come between the two).

Damage found on open (or on a later read) is skipped, never fatal:

* a record whose payload fails its crc but whose header is intact is skipped exactly (the
  header crc vouches for its length) and counted as one corrupt record;
* a damaged header is skipped by resynchronising on the next offset holding the magic and a
  valid header crc; the bytes in between count as one corrupt record (at least one was lost);
* damage after the last valid record of the newest segment is a torn tail (a crash during
  an append): it is logged, counted and truncated away, and appends continue after it.

The cap (``max_bytes``) bounds the segment files' total size. Making room drops the oldest
whole segment(s), so the newest data is kept and at least ``max_bytes - segment_bytes`` stays
usable. Counters (``evicted_*``, ``rejected_*``, ``corrupt_*``, summed in ``dropped_*``) cover
this process's lifetime only.

Disk faults (ENOSPC, EROFS, EIO...) never leave it inconsistent: a failed append raises
:class:`SpoolWriteError` saying how many records of the batch were kept, and the partial frame
is cut off; a cursor that cannot be written does not fail an ack (the records are acked in
memory, ``cursor_error`` says why the file is behind; a restart then re-sends, never loses).

The directory is mode 0700 and every file in it 0600, whatever the umask.

One ``DiskSpool`` per directory at a time; it is synchronous and not thread-safe.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import os
import re
import struct
import zlib
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from io import BufferedWriter
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

from collector.durable import atomic_write, create_private, fsync_dir, private_dir

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_SEGMENT_BYTES = 4 * 1024 * 1024

_MAGIC = b"\xf5FPs"  # not ASCII: JSON values cannot produce it by chance
_HEADER = struct.Struct("<4sIII")  # magic, payload length, payload crc32, header crc32
_HEADER_CRC_SPAN = 12  # the header crc covers magic, length and payload crc
_FIELDS = struct.Struct("<HII")  # topic, key and value lengths at the start of the payload
_MAX_PAYLOAD_BYTES = 0xFFFFFFFF
_MAX_TOPIC_BYTES = 0xFFFF

_CURSOR = struct.Struct("<4sQQI")
_CURSOR_MAGIC = b"FPcu"
_CURSOR_NAME = "cursor"
_CURSOR_TMP_NAME = "cursor.tmp"
_SEGMENT_RE = re.compile(r"^(\d{12})\.seg$")

# What ``_check`` found at an offset.
_OK, _BAD_PAYLOAD, _BAD_HEADER = 0, 1, 2


class SpoolWriteError(OSError):
    """An append failed on the disk; the first ``kept`` records of the batch were spooled."""

    def __init__(self, cause: OSError, kept: int) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause))
        self.kept = kept


class SpoolPosition(NamedTuple):
    """Where a record starts: segment sequence number and byte offset; orders like the records."""

    segment: int
    offset: int


@dataclass(frozen=True)
class SpooledRecord:
    """One record as appended, with the position to pass to :meth:`DiskSpool.ack`."""

    topic: str
    key: bytes
    value: bytes
    position: SpoolPosition


@dataclass
class _Segment:
    seq: int
    path: Path
    size: int = 0  # bytes in the file (valid records, plus skipped damage in older segments)
    # Start of every valid record; 8 bytes each, so a full 64 MiB spool of 1 KiB events costs 512 KiB.
    offsets: array[int] = field(default_factory=lambda: array("Q"))


class DiskSpool:
    """A FIFO of ``(topic, key, value)`` records in segment files under ``directory``.

    ``max_bytes`` caps the files' total size (oldest segments are dropped to make room);
    ``segment_bytes`` is the size at which a new segment starts (and the unit of dropping);
    ``fsync`` makes every append and ack durable before it returns (off: durable against
    a process crash, not against a power loss).
    """

    def __init__(
        self,
        directory: Path | str,
        max_bytes: int = DEFAULT_MAX_BYTES,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        fsync: bool = True,
    ) -> None:
        if segment_bytes < 1:
            raise ValueError(f"segment_bytes must be >= 1, got {segment_bytes}")
        # Dropping works in whole segments: with fewer than two per cap, one drop could empty the spool.
        if max_bytes < 2 * segment_bytes:
            raise ValueError(f"max_bytes must be >= 2 * segment_bytes, got {max_bytes} < 2 * {segment_bytes}")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.appended_records = 0
        self.evicted_records = 0
        self.evicted_bytes = 0
        self.rejected_records = 0
        self.rejected_bytes = 0
        self.corrupt_records = 0
        self.corrupt_bytes = 0
        self.cursor_error: OSError | None = None  # why the cursor file is behind the acks, if it is
        self._segments: list[_Segment] = []
        self._head_idx = 0  # records of the oldest segment that are acked
        self._next_seq = 0
        self._writer: BufferedWriter | None = None
        self._pending: list[bytes] = []  # frames of the current append, not yet written
        self._pending_len = 0
        self._flushed = 0  # frames of the current append already in the file
        self._open()

    # -- public ------------------------------------------------------------------------------

    def append(self, topic: str, key: bytes, value: bytes) -> None:
        """Add one record at the end; raises ValueError (and counts it) if it exceeds ``max_bytes``."""
        self.append_many([(topic, key, value)])

    def append_many(self, records: Iterable[tuple[str, bytes, bytes]]) -> int:
        """Add records in order with a single fsync; returns how many (all of them).

        All or nothing on validation: if one record is too large, none is written (the large
        ones are counted as rejected) and ValueError is raised. On an OSError from the disk,
        :class:`SpoolWriteError` says how many records, from the first, were spooled anyway
        (an fsync that fails after the write keeps them all: they are read back and sent).
        """
        frames = [_frame(topic, key, value) for topic, key, value in records]
        too_large = [len(frame) for frame in frames if len(frame) > self.max_bytes]
        if too_large:
            self.rejected_records += len(too_large)
            self.rejected_bytes += sum(too_large)
            log.warning(
                "event=spool_rejected records=%d largest_bytes=%d max_bytes=%d",
                len(too_large),
                max(too_large),
                self.max_bytes,
            )
            raise ValueError(f"{len(too_large)} record(s) larger than max_bytes={self.max_bytes}: {max(too_large)}")
        if not frames:
            return 0
        self._flushed = 0
        try:
            for frame in frames:
                self._make_room(len(frame))
                self._ensure_tail(len(frame))
                self._pending.append(frame)
                self._pending_len += len(frame)
            self._flush_pending()
            if self.fsync and self._writer is not None:
                os.fsync(self._writer.fileno())
        except OSError as exc:
            self.appended_records += self._flushed
            raise SpoolWriteError(exc, self._flushed) from exc
        finally:
            # After a failure, frames still held here must not slip into the next append.
            self._pending.clear()
            self._pending_len = 0
        self.appended_records += len(frames)
        return len(frames)

    def fits(self, topic: str, key: bytes, value: bytes) -> bool:
        """Whether one record is small enough for ``max_bytes`` (else append refuses it)."""
        return len(_frame(topic, key, value)) <= self.max_bytes

    def peek(self, max_records: int = 100) -> list[SpooledRecord]:
        """Up to ``max_records`` oldest unacked records, oldest first; nothing is removed."""
        if max_records < 1:
            raise ValueError(f"max_records must be >= 1, got {max_records}")
        out: list[SpooledRecord] = []
        for number, seg in enumerate(self._segments):
            if len(out) >= max_records:
                break
            i = self._head_idx if number == 0 else 0
            while i < len(seg.offsets) and len(out) < max_records:
                # One read per chunk of records rather than one per record.
                last = min(len(seg.offsets), i + max_records - len(out))
                start = seg.offsets[i]
                data = _read(seg.path, start, _record_end(seg, last))
                while i < last:
                    fields = _decode(data, seg.offsets[i] - start)
                    if fields is None:
                        # Damaged after it was validated on open (disk rot): skip it like on open.
                        self._forget(seg, i)
                        last -= 1
                        continue
                    out.append(SpooledRecord(*fields, position=SpoolPosition(seg.seq, seg.offsets[i])))
                    i += 1
        return out

    def ack(self, up_to: SpooledRecord | SpoolPosition | tuple[int, int]) -> None:
        """Remove every record up to and including ``up_to`` (a peeked record or its position).

        Call it once the broker confirmed delivery. Acking an already acked (or dropped)
        record does nothing; a position past the end raises ValueError.
        """
        pos = up_to.position if isinstance(up_to, SpooledRecord) else SpoolPosition(*up_to)
        if not self._segments or pos.segment < self._segments[0].seq:
            return  # acked, or dropped by the cap, before
        for number, seg in enumerate(self._segments):
            if seg.seq < pos.segment:
                continue
            if seg.seq == pos.segment:
                if pos.offset >= seg.size:
                    raise ValueError(f"position {pos} is past the end of segment {seg.seq} ({seg.size} bytes)")
                target = (number, bisect.bisect_right(seg.offsets, pos.offset))
            else:
                target = (number, 0)  # pos lies in a gap between segments: everything before this one
            break
        else:
            raise ValueError(f"position {pos} is past the end of the spool (last segment {self._segments[-1].seq})")
        if target <= (0, self._head_idx):
            return
        number, idx = target
        seg = self._segments[number]
        # The cursor goes first: a crash before the deletions below leaves files the next open deletes.
        # If it cannot be written (a full disk), the ack still holds in memory and the deletions
        # go ahead: they free the space, and a restart with the old cursor only re-sends.
        try:
            self._save_cursor(SpoolPosition(seg.seq, _record_end(seg, idx)))
            self.cursor_error = None
        except OSError as exc:
            self.cursor_error = exc
        for old in self._segments[:number]:
            _unlink(old.path)
        del self._segments[:number]
        self._head_idx = idx
        self._drop_acked_head()

    @property
    def pending_records(self) -> int:
        """Records appended and not yet acked."""
        return sum(len(seg.offsets) for seg in self._segments) - self._head_idx

    def __len__(self) -> int:
        return self.pending_records

    @property
    def pending_bytes(self) -> int:
        """On-disk bytes (framing included) from the first unacked record to the end."""
        if not self._segments:
            return 0
        head = self._segments[0]
        return self.disk_bytes - _record_end(head, self._head_idx)

    @property
    def disk_bytes(self) -> int:
        """Total size of the segment files: what ``max_bytes`` bounds (acked bytes of the oldest included)."""
        return sum(seg.size for seg in self._segments) + self._pending_len

    @property
    def dropped_records(self) -> int:
        """Records lost by the spool for any reason: dropped by the cap, rejected, corrupt."""
        return self.evicted_records + self.rejected_records + self.corrupt_records

    @property
    def dropped_bytes(self) -> int:
        """Bytes of :attr:`dropped_records`."""
        return self.evicted_bytes + self.rejected_bytes + self.corrupt_bytes

    def close(self) -> None:
        """Release the open segment file; the spool can be used again (it reopens lazily)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> DiskSpool:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- opening ------------------------------------------------------------------------------

    def _open(self) -> None:
        private_dir(self.directory, owned=_spool_file)
        _unlink(self.directory / _CURSOR_TMP_NAME)  # an interrupted cursor write; the old cursor stands
        _tighten(self.directory / _CURSOR_NAME)
        cursor = self._load_cursor()
        seqs = sorted(int(m.group(1)) for name in os.listdir(self.directory) if (m := _SEGMENT_RE.match(name)))
        for seq in seqs:
            path = self.directory / f"{seq:012d}.seg"
            if cursor is not None and seq < cursor.segment:
                _unlink(path)  # fully acked; a crash came between the cursor write and the deletion
                continue
            _tighten(path)  # written 0644 by an older version
            self._segments.append(self._load_segment(seq, path, seq == seqs[-1], cursor))
        if cursor is not None and self._segments and self._segments[0].seq == cursor.segment:
            head = self._segments[0]
            self._head_idx = bisect.bisect_left(head.offsets, cursor.offset)
            # The cursor can point past a truncated torn tail (acked without fsync, then a power
            # loss): new records would be appended below it and look acked after the next restart.
            if _record_end(head, self._head_idx) != cursor.offset:
                self._save_cursor(SpoolPosition(head.seq, _record_end(head, self._head_idx)))
        # Never reuse a number the cursor may name, or fresh records could look acked.
        self._next_seq = max(
            self._segments[-1].seq + 1 if self._segments else 0, cursor.segment + 1 if cursor is not None else 0
        )
        self._drop_acked_head()
        self._make_room(0)  # the cap may have been lowered since the files were written
        log.info(
            "event=spool_opened dir=%s segments=%d pending_records=%d pending_bytes=%d",
            self.directory,
            len(self._segments),
            self.pending_records,
            self.pending_bytes,
        )

    def _load_segment(self, seq: int, path: Path, newest: bool, cursor: SpoolPosition | None) -> _Segment:
        data = path.read_bytes()
        offsets, valid_end, skipped = _scan(data)
        seg = _Segment(seq, path, len(data), offsets)
        # Damage in the acked part of the oldest segment cost nothing: do not count it.
        counted_from = cursor.offset if cursor is not None and cursor.segment == seq else 0
        corrupt = [(at, length) for at, length in skipped if at >= counted_from]
        torn = [(at, length) for at, length in corrupt if at >= valid_end]
        middle = [(at, length) for at, length in corrupt if at < valid_end]
        self.corrupt_records += len(corrupt)
        self.corrupt_bytes += sum(length for _, length in corrupt)
        if middle:
            log.warning(
                "event=spool_corrupt segment=%d records=%d bytes=%d first_offset=%d action=skipped",
                seq,
                len(middle),
                sum(length for _, length in middle),
                middle[0][0],
            )
        if newest and valid_end < len(data):
            # A crash during an append: cut it off so the next record starts on a clean boundary.
            log.warning(
                "event=spool_torn_tail segment=%d offset=%d bytes=%d action=truncated",
                seq,
                valid_end,
                len(data) - valid_end,
            )
            os.truncate(path, valid_end)
            if self.fsync:
                _fsync_file(path)
            seg.size = valid_end
        elif torn:
            log.warning(
                "event=spool_corrupt segment=%d offset=%d bytes=%d action=skipped",
                seq,
                torn[0][0],
                sum(length for _, length in torn),
            )
        return seg

    def _load_cursor(self) -> SpoolPosition | None:
        path = self.directory / _CURSOR_NAME
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        if len(raw) == _CURSOR.size:
            magic, seq, offset, crc = _CURSOR.unpack(raw)
            if magic == _CURSOR_MAGIC and zlib.crc32(raw[:-4]) == crc:
                return SpoolPosition(seq, offset)
        # Replaying from the oldest segment re-sends acked records at worst: at-least-once holds.
        log.warning("event=spool_cursor_invalid path=%s bytes=%d action=replay_oldest_segment", path, len(raw))
        return None

    # -- writing ------------------------------------------------------------------------------

    def _save_cursor(self, pos: SpoolPosition) -> None:
        body = struct.pack("<4sQQ", _CURSOR_MAGIC, pos.segment, pos.offset)
        # The temp name is _CURSOR_TMP_NAME ("cursor" + ".tmp"), removed on open if a crash left it.
        atomic_write(self.directory / _CURSOR_NAME, body + struct.pack("<I", zlib.crc32(body)), fsync=self.fsync)

    def _make_room(self, frame_bytes: int) -> None:
        """Drop the oldest segments until ``frame_bytes`` more fit under the cap."""
        if self.disk_bytes + frame_bytes <= self.max_bytes:
            return
        self._flush_pending()  # the newest segment may go too: its frames must be in it first
        segments = records = dropped_bytes = 0
        while self._segments and self.disk_bytes + frame_bytes > self.max_bytes:
            seg = self._segments.pop(0)
            records += len(seg.offsets) - self._head_idx
            dropped_bytes += seg.size - _record_end(seg, self._head_idx)
            segments += 1
            self._head_idx = 0
            if not self._segments:
                self.close()  # it was the newest: the next append starts a new one
            _unlink(seg.path)
        self.evicted_records += records
        self.evicted_bytes += dropped_bytes
        log.warning(
            "event=spool_full action=dropped_oldest segments=%d records=%d bytes=%d max_bytes=%d",
            segments,
            records,
            dropped_bytes,
            self.max_bytes,
        )

    def _ensure_tail(self, frame_bytes: int) -> None:
        """Start a new segment if the newest one cannot take ``frame_bytes`` more."""
        if self._segments:
            used = self._segments[-1].size + self._pending_len
            # A record larger than segment_bytes gets a segment of its own rather than failing.
            if used == 0 or used + frame_bytes <= self.segment_bytes:
                return
        self._flush_pending()
        if self._writer is not None:
            if self.fsync:
                os.fsync(self._writer.fileno())
            self.close()
        seq = self._next_seq
        self._next_seq += 1
        path = self.directory / f"{seq:012d}.seg"
        os.close(create_private(path, os.O_WRONLY))
        if self.fsync:
            fsync_dir(self.directory)  # the new name must survive a power loss with its records
        self._segments.append(_Segment(seq, path))
        self._drop_acked_head()  # the previous newest may be fully acked: it was only kept for appending

    def _flush_pending(self) -> None:
        if not self._pending:
            return
        tail = self._segments[-1]
        if self._writer is None:
            self._writer = open(create_private(tail.path, os.O_WRONLY | os.O_APPEND), "ab")  # noqa: SIM115  # kept open
        try:
            self._writer.write(b"".join(self._pending))
            self._writer.flush()
        except OSError:
            self._pending.clear()
            self._pending_len = 0
            self._repair_tail(tail)
            raise
        at = tail.size
        for frame in self._pending:
            tail.offsets.append(at)
            at += len(frame)
        tail.size = at
        self._flushed += len(self._pending)
        self._pending.clear()
        self._pending_len = 0

    def _repair_tail(self, tail: _Segment) -> None:
        """After a failed write: cut the partial frame so later appends stay on a clean boundary."""
        if self._writer is not None:
            with contextlib.suppress(OSError):
                self._writer.close()
            self._writer = None
        try:
            os.truncate(tail.path, tail.size)
        except OSError as exc:
            log.error("event=spool_truncate_failed segment=%d error=%s", tail.seq, exc)
        # If the partial frame stayed, later records go after it and the next open skips it.
        with contextlib.suppress(OSError):
            tail.size = os.path.getsize(tail.path)

    def _drop_acked_head(self) -> None:
        """Delete fully acked segments, but keep the newest: it still takes appends."""
        while len(self._segments) > 1 and self._head_idx >= len(self._segments[0].offsets):
            _unlink(self._segments.pop(0).path)
            self._head_idx = 0

    def _forget(self, seg: _Segment, idx: int) -> None:
        """Skip a record found damaged after open; the next open finds and counts it again."""
        end = _record_end(seg, idx + 1)
        self.corrupt_records += 1
        self.corrupt_bytes += end - seg.offsets[idx]
        log.warning(
            "event=spool_corrupt segment=%d offset=%d bytes=%d action=skipped",
            seg.seq,
            seg.offsets[idx],
            end - seg.offsets[idx],
        )
        del seg.offsets[idx]


# -- framing ----------------------------------------------------------------------------------


def _frame(topic: str, key: bytes, value: bytes) -> bytes:
    if not isinstance(topic, str) or not topic:
        raise ValueError(f"topic must be a non-empty string, got {topic!r}")
    if not isinstance(key, bytes | bytearray) or not isinstance(value, bytes | bytearray):
        raise TypeError(f"key and value must be bytes, got {type(key).__name__} and {type(value).__name__}")
    name = topic.encode()
    if len(name) > _MAX_TOPIC_BYTES:
        raise ValueError(f"topic is too long ({len(name)} bytes)")
    payload = b"".join((_FIELDS.pack(len(name), len(key), len(value)), name, key, value))
    if len(payload) > _MAX_PAYLOAD_BYTES:
        raise ValueError(f"record is too large ({len(payload)} bytes)")
    head = struct.pack("<4sII", _MAGIC, len(payload), zlib.crc32(payload))
    return b"".join((head, struct.pack("<I", zlib.crc32(head)), payload))


def _check(view: memoryview, pos: int) -> tuple[int, int]:
    """What lies at ``pos``: ``(_OK | _BAD_PAYLOAD | _BAD_HEADER, frame length or 0)``."""
    if len(view) - pos < _HEADER.size:
        return _BAD_HEADER, 0
    magic, length, payload_crc, header_crc = _HEADER.unpack_from(view, pos)
    if magic != _MAGIC or zlib.crc32(view[pos : pos + _HEADER_CRC_SPAN]) != header_crc:
        return _BAD_HEADER, 0
    end = pos + _HEADER.size + length
    if end > len(view):
        return _BAD_HEADER, 0  # the header promises more than there is: torn
    payload = view[pos + _HEADER.size : end]
    if zlib.crc32(payload) != payload_crc or not _fields_fit(payload):
        return _BAD_PAYLOAD, end - pos
    return _OK, end - pos


def _fields_fit(payload: memoryview) -> bool:
    if len(payload) < _FIELDS.size:
        return False
    topic_len, key_len, value_len = _FIELDS.unpack_from(payload)
    return _FIELDS.size + topic_len + key_len + value_len == len(payload)


def _scan(data: bytes) -> tuple[array[int], int, list[tuple[int, int]]]:
    """Valid record offsets, the end of the last valid record, and skipped ``(offset, length)`` runs."""
    view = memoryview(data)
    offsets: array[int] = array("Q")
    skipped: list[tuple[int, int]] = []
    valid_end = pos = 0
    while pos < len(data):
        status, length = _check(view, pos)
        if status == _OK:
            offsets.append(pos)
            pos += length
            valid_end = pos
        elif status == _BAD_PAYLOAD:
            skipped.append((pos, length))  # the header crc vouches for the length: skip exactly one
            pos += length
        else:
            nxt = _resync(data, view, pos + 1)
            skipped.append((pos, nxt - pos))
            pos = nxt
    return offsets, valid_end, skipped


def _resync(data: bytes, view: memoryview, start: int) -> int:
    """The next offset holding a frame with a valid header, or the end of ``data``."""
    pos = data.find(_MAGIC, start)
    while pos != -1:
        if _check(view, pos)[0] != _BAD_HEADER:
            return pos
        pos = data.find(_MAGIC, pos + 1)
    return len(data)


def _decode(data: bytes, pos: int) -> tuple[str, bytes, bytes] | None:
    """The record at ``pos`` in ``data``, or None if it does not check out."""
    view = memoryview(data)
    if _check(view, pos)[0] != _OK:
        return None
    start = pos + _HEADER.size
    topic_len, key_len, value_len = _FIELDS.unpack_from(view, start)
    at = start + _FIELDS.size
    try:
        topic = bytes(view[at : at + topic_len]).decode()
    except UnicodeDecodeError:
        return None
    at += topic_len
    return topic, bytes(view[at : at + key_len]), bytes(view[at + key_len : at + key_len + value_len])


def _record_end(seg: _Segment, idx: int) -> int:
    """Start of record ``idx`` of ``seg``, or the segment's end when there is none."""
    return seg.offsets[idx] if idx < len(seg.offsets) else seg.size


# -- files ------------------------------------------------------------------------------------


def _read(path: Path, start: int, end: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(start)
        return fh.read(end - start)


def _unlink(path: Path) -> None:
    # Only acked or dropped data is deleted: if a read-only disk keeps it, the worst is a re-send.
    with contextlib.suppress(OSError):
        path.unlink()


def _tighten(path: Path) -> None:
    with contextlib.suppress(OSError):
        if os.lstat(path).st_mode & 0o077:
            os.chmod(path, 0o600)


def _spool_file(name: str) -> bool:
    return name in (_CURSOR_NAME, _CURSOR_TMP_NAME) or _SEGMENT_RE.match(name) is not None


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
