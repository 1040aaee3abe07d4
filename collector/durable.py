"""Crash-safe small-file writes shared by the agent's state files (spool cursor, log offsets, sequence)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable (not possible everywhere: best effort)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write ``<path>.tmp``, fsync, rename over ``path``: a crash leaves the old or the new file.

    One writer per path (each state file has one owner); a stale ``.tmp`` from a crash is
    simply overwritten by the next write.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            if fsync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if fsync:
        fsync_dir(path.parent)


class StateDirBusy(RuntimeError):
    """Another process holds the lock of a state directory; the message names it."""


def lock_dir(directory: Path, owner: str) -> int:
    """Take the exclusive lock of ``directory`` for this process; returns the fd to keep open.

    Two agents sharing a state directory would interleave spool writes and each see the
    other's records as corrupt: the second one is refused instead. The kernel releases the
    lock when the process ends, however it ends.
    """
    import fcntl

    path = directory / f"{owner}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise StateDirBusy(
            f"{directory} is in use by another {owner} (pid {holder}); give each its own state dir"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
