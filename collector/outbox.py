"""Where the agent's records wait for Kafka: the disk spool, and what a sick disk changes.

Every cycle's records go to the :class:`~collector.spool.DiskSpool`; the sender peeks, sends
and acknowledges from there. When the spool cannot be written (ENOSPC, EROFS, EIO, EDQUOT...,
or it could not even be opened at start), the outbox is *unavailable* and the agent goes on:

* ``event=spool_unavailable reason=ENOSPC`` is logged once, not once per cycle;
* each cycle's heartbeat bypasses the spool: it waits in memory (at most ``held_max``, the
  newest kept) for the sender, so the down-checker keeps hearing from a live host;
* every other record is dropped and counted (``dropped["disk_error"]`` in the next heartbeat);
  the agent stops reading its log files meanwhile, so their unread lines wait where they are;
* the spool is tried again every ``retry_s``; the first write that succeeds logs
  ``event=spool_recovered`` (with how long it lasted) and everything goes through it again.

Sending keeps draining what the spool already holds, which on a full disk is also what
frees the space. A cursor that cannot be written is reported once (``spool_cursor``) and
costs nothing but a re-send after a restart; a spool that cannot be read (``spool_read``) is
retried on the next cycle while heartbeats still go out directly.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from collector.durable import WriteHealth
from collector.spool import DEFAULT_MAX_BYTES, DEFAULT_SEGMENT_BYTES, DiskSpool, SpooledRecord, SpoolWriteError

log = logging.getLogger(__name__)

Record = tuple[str, bytes, bytes]  # topic, key, value


class Outgoing(NamedTuple):
    """A record held in memory for the sender (the spool being unwritable)."""

    topic: str
    key: bytes
    value: bytes


class Outbox:
    """The spool, with the fallback above; synchronous, used from the agent's event loop only."""

    def __init__(
        self,
        directory: Path,
        max_bytes: int = DEFAULT_MAX_BYTES,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        retry_s: float = 5.0,
        held_max: int = 360,
        fsync: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self.max_bytes, self.segment_bytes, self.fsync = max_bytes, segment_bytes, fsync
        self.retry_s = retry_s
        self.clock = clock
        self.spool: DiskSpool | None = None
        self.health = WriteHealth("spool", log)
        self.cursor_health = WriteHealth("spool_cursor", log)
        self.read_health = WriteHealth("spool_read", log)
        self.held: deque[Outgoing] = deque()
        self.held_max = held_max
        self.disk_error_records = 0
        self._retry_at = 0.0
        self._open_spool()

    # -- the collector's side ----------------------------------------------------------------

    @property
    def unavailable(self) -> bool:
        """Whether new records cannot be kept on disk right now."""
        return self.spool is None or self.health.failing

    def put(self, records: Sequence[Record], heartbeat: Record) -> None:
        """Keep one cycle's records (heartbeat last); what cannot be kept is counted as dropped."""
        unkept = self._append([*records, heartbeat])
        if unkept and unkept[-1] is heartbeat:
            self._hold(Outgoing(*heartbeat))
            unkept = unkept[:-1]
        self.disk_error_records += len(unkept)

    # -- the sender's side -------------------------------------------------------------------

    def take_held(self) -> list[Outgoing]:
        """Every held record, oldest first; give back what could not be sent."""
        out = list(self.held)
        self.held.clear()
        return out

    def give_back(self, records: Sequence[Outgoing]) -> None:
        """Unsent held records go back in front of newer ones (the bound still applies)."""
        self.held.extendleft(reversed(records))
        while len(self.held) > self.held_max:
            self.held.popleft()
            self.disk_error_records += 1

    def peek(self, max_records: int) -> list[SpooledRecord]:
        if self.spool is None:
            return []
        try:
            batch = self.spool.peek(max_records)
        except OSError as exc:
            self.read_health.failed(exc, dir=self.directory)
            return []
        self.read_health.ok()
        return batch

    def ack(self, record: SpooledRecord) -> None:
        if self.spool is None:
            return
        self.spool.ack(record)
        if self.spool.cursor_error is not None:
            self.cursor_health.failed(self.spool.cursor_error, dir=self.directory, action="acked_in_memory")
        else:
            self.cursor_health.ok()

    # -- counters ----------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Records waiting to be sent: spooled and held."""
        return (len(self.spool) if self.spool is not None else 0) + len(self.held)

    def __len__(self) -> int:
        return self.pending

    def dropped(self) -> dict[str, int]:
        """Records lost since the agent started, by reason (the heartbeat's ``dropped``); no zeros."""
        spool = self.spool
        counts = {
            "spool_full": spool.evicted_records if spool else 0,
            "spool_rejected": spool.rejected_records if spool else 0,
            "spool_corrupt": spool.corrupt_records if spool else 0,
            "disk_error": self.disk_error_records,
        }
        return {reason: n for reason, n in counts.items() if n}

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()

    # -- internals ---------------------------------------------------------------------------

    def _open_spool(self) -> None:
        try:
            self.spool = DiskSpool(self.directory, self.max_bytes, self.segment_bytes, self.fsync)
        except OSError as exc:
            self.health.failed(exc, dir=self.directory, action="heartbeats_direct_others_dropped")
            self._retry_at = self.clock() + self.retry_s

    def _append(self, batch: list[Record]) -> list[Record]:
        """Spool ``batch``; returns the records it could not keep (those refused as too large
        for the cap are not among them: the spool counts them itself)."""
        if self.unavailable and self.clock() < self._retry_at:
            return batch  # a broken disk is not hammered every cycle (an EIO can take long)
        if self.spool is None:
            self._open_spool()
            if self.spool is None:
                return batch
        spool = self.spool
        try:
            spool.append_many(batch)
        except ValueError:
            fitting = [record for record in batch if spool.fits(*record)]
            return self._append(fitting) if fitting else []
        except SpoolWriteError as exc:
            self.health.failed(exc, dir=self.directory, action="heartbeats_direct_others_dropped")
            self._retry_at = self.clock() + self.retry_s
            return batch[exc.kept :]
        self.health.ok(dir=self.directory, disk_error_total=self.disk_error_records)
        return []

    def _hold(self, record: Outgoing) -> None:
        self.held.append(record)
        while len(self.held) > self.held_max:
            self.held.popleft()
            self.disk_error_records += 1
