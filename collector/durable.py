"""Crash-safe, private small-file writes shared by the agent's state files (spool cursor, log
offsets, sequence), the state directory's lock and mode, and the once-per-change report of a
write that a sick disk (ENOSPC, EROFS, EIO, EDQUOT) makes fail."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


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


def create_private(path: Path, flags: int = os.O_WRONLY | os.O_TRUNC) -> int:
    """Open ``path`` for writing, created (or kept) mode 0600 whatever the umask; no link followed."""
    fd = os.open(path, flags | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the mode given to open is masked by the umask, and an old file kept its own
    except BaseException:
        os.close(fd)
        raise
    return fd


def atomic_write(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write ``<path>.tmp`` (mode 0600), fsync, rename over ``path``: a crash leaves the old or the new file.

    One writer per path (each state file has one owner); a stale ``.tmp`` from a crash is
    simply overwritten by the next write.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(create_private(tmp), "wb") as out:
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


def private_dir(directory: Path, owned: Callable[[str], bool] = lambda name: False) -> None:
    """Make ``directory`` (mode 0700) if it is missing; tighten it if it holds only what
    ``owned`` recognises as this process's own files, else warn about a looser mode.

    A state directory that others can list or enter reveals what the agent follows and
    spools. An existing one is tightened only when it is clearly ours: an operator may have
    pointed ``state_dir`` at a shared directory, whose mode is not ours to change.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = directory.stat()
    if not st.st_mode & 0o077:
        return
    names = os.listdir(directory)
    if st.st_uid == os.geteuid() and all(owned(name) for name in names):
        with contextlib.suppress(OSError):
            os.chmod(directory, 0o700)
            log.info("event=state_dir_tightened path=%s mode_was=%04o mode=0700", directory, st.st_mode & 0o7777)
            return
    log.warning(
        "event=state_dir_permissions path=%s mode=%04o advice=%r",
        directory,
        st.st_mode & 0o7777,
        "give the agent a directory of its own, mode 0700 (systemd: StateDirectoryMode=0700)",
    )


class WriteHealth:
    """One kind of write that a sick disk can fail: logged once when it starts failing (``event=
    <what>_unavailable``) and once when it works again (``event=<what>_recovered``), however
    often it is tried in between."""

    def __init__(self, what: str, logger: logging.Logger) -> None:
        self.what = what
        self.log = logger
        self.reason: str | None = None  # the errno name while failing
        self.failures = 0  # failed writes since the last recovery
        self._since = 0.0

    @property
    def failing(self) -> bool:
        return self.reason is not None

    def failed(self, exc: OSError, **context: object) -> None:
        self.failures += 1
        if self.reason is not None:
            return
        self.reason = errno.errorcode.get(exc.errno or 0, "OSError")
        self._since = time.monotonic()
        extra = "".join(f" {key}={value}" for key, value in context.items())
        self.log.warning(
            "event=%s_unavailable reason=%s error=%r%s", self.what, self.reason, exc.strerror or str(exc), extra
        )

    def ok(self, **context: object) -> None:
        if self.reason is None:
            return
        extra = "".join(f" {key}={value}" for key, value in context.items())
        self.log.info(
            "event=%s_recovered after_s=%.1f failed_writes=%d was=%s%s",
            self.what,
            time.monotonic() - self._since,
            self.failures,
            self.reason,
            extra,
        )
        self.reason, self.failures = None, 0


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
    try:
        fd = create_private(path, os.O_RDWR)
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        try:  # a read-only state dir: lock it all the same, write nothing
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            raise exc from None  # no lock file to lock: the reason is still the read-only disk
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise StateDirBusy(
            f"{directory} is in use by another {owner} (pid {holder}); give each its own state dir"
        ) from None
    with contextlib.suppress(OSError):  # the pid is for humans; a full or read-only disk costs only it
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
