"""Small real file systems for disk-fault tests: a tmpfs of a given size, optionally read-only.

A full disk and a read-only one are the real thing here, not a mock: ``mount -t tmpfs`` needs
root (CI and the dev container run as root); elsewhere the test is skipped with the reason.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tmpfs(where: Path, size: str = "1m") -> Iterator[Path]:
    """``where`` as a fresh tmpfs of ``size`` until the block ends (then unmounted)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the disk-fault tests run as root in CI)")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)], capture_output=True
    )
    if done.returncode:
        pytest.skip(f"mount -t tmpfs is not permitted here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(where)], check=False)  # still busy: detach it


def remount(where: Path, read_only: bool) -> None:
    subprocess.run(["mount", "-o", f"remount,{'ro' if read_only else 'rw'}", str(where)], check=True)


def fill(directory: Path, name: str = "filler") -> Path:
    """Take every free byte of ``directory``'s file system with one file; returns it."""
    path = directory / name
    with open(path, "ab", buffering=0) as out:
        for chunk in (1 << 16, 4096, 1):  # big writes first, then the last partial page
            try:
                while True:
                    out.write(b"\0" * chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    return path
