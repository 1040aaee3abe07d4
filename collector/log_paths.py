"""Which files a log source may read, found without following the links an attacker can plant.

The agent often runs as root and reads what users can write to (``/var/log/app/*.log``). A
user who can create ``/var/log/app/evil.log -> /etc/shadow`` must not get lines of
``/etc/shadow`` into the pipeline, and one who can create ``a/loop -> ..`` must not hang it.

* **Source directory.** Each path or glob of a source has a *source directory*: its leading
  components without wildcards (``/var/log/app`` for ``/var/log/app/**/*.log``; the parent
  for a plain path). The operator wrote those components, so links among them are trusted.
* **Symlinks below it** are refused unless the source says ``follow_symlinks = true``, and
  even then only when the link's resolved target lies under the source directory or one of
  its ``allowed_roots``. ``**`` never descends into a symlinked directory.
* **Opening** walks from the source directory (or the allowed root holding a followed
  link's target) one component at a time with ``O_NOFOLLOW``, so a link swapped in after
  the walk fails to open instead of being followed; the file must be a regular file
  (``O_NONBLOCK``: a FIFO swapped in cannot block the open).
* **Pseudo-files** (procfs, sysfs and other kernel file systems) are refused: their size
  says 0 whatever they hold, so a tailer would read and count them again on every poll.
* **Bounds.** One expansion examines at most ``max_entries`` directory entries, descends at
  most ``max_depth`` directories under a ``**`` and stops after ``time_s``; what was found
  until then is used and the cut is reported. Directories are visited once by
  ``(st_dev, st_ino)``, so bind-mount loops end too.

Matching follows :func:`glob.glob` with ``recursive=True`` on trees without links (``*``,
``?`` and ``[...]`` within one component, ``**`` for zero or more directories, names
starting with a dot only matched by a component starting with a dot).
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

FileId = tuple[int, int]

# Pseudo file systems: no real sizes, contents made up on read (and some reads have effects).
PSEUDO_FS_TYPES = frozenset(
    {
        "proc",
        "sysfs",
        "cgroup",
        "cgroup2",
        "debugfs",
        "tracefs",
        "securityfs",
        "configfs",
        "pstore",
        "bpf",
        "efivarfs",
        "fusectl",
        "binfmt_misc",
        "devpts",
        "mqueue",
        "hugetlbfs",
        "rpc_pipefs",
        "nsfs",
    }
)
PSEUDO_ROOTS = ("/proc", "/sys")

_MAGIC = re.compile(r"[*?[]")


def has_magic(component: str) -> bool:
    return _MAGIC.search(component) is not None


def _components(path: str) -> list[str]:
    return [part for part in path.split("/") if part and part != "."]


def split_pattern(pattern: str) -> tuple[str, list[str]]:
    """``(source directory, components below it)``: the directory is every leading component
    without a wildcard, except the last component of a plain path, which is the file."""
    parts = _components(pattern)
    anchor = "/" if pattern.startswith("/") else ""
    first_magic = next((i for i, part in enumerate(parts) if has_magic(part)), None)
    cut = max(len(parts) - 1, 0) if first_magic is None else first_magic
    base = anchor + "/".join(parts[:cut])
    return base or ".", parts[cut:]


def source_directory(pattern: str) -> str:
    return split_pattern(pattern)[0]


def components_below(path: str, base: str) -> tuple[str, ...]:
    """The components of ``path`` below directory ``base``, compared as written (empty if not below)."""
    parts, base_parts = _components(path), _components(base)
    if path.startswith("/") != base.startswith("/") or parts[: len(base_parts)] != base_parts:
        return ()
    return tuple(parts[len(base_parts) :])


def is_under(path: str, root: str) -> bool:
    """Whether normalised absolute ``path`` is ``root`` or lies below it (by components)."""
    if root == "/":
        return path.startswith("/")
    return path == root or path.startswith(root.rstrip("/") + "/")


def pseudo_path_reason(path: str) -> str | None:
    """Why a configured path names a pseudo-file (under /proc or /sys, as written or once its
    source directory is resolved), or None."""
    base = source_directory(path)
    for candidate in (os.path.normpath(os.path.abspath(path)), os.path.realpath(base)):
        for root in PSEUDO_ROOTS:
            if is_under(candidate, root):
                return (
                    f"{path} is under {root}, a kernel pseudo file system: its files have no real size,"
                    " so they would be read and counted again on every poll; follow a log file instead"
                )
    return None


def pseudo_devices(mountinfo: str = "/proc/self/mountinfo") -> frozenset[int]:
    """``st_dev`` of every mounted pseudo file system (from mountinfo; /proc and /sys at least)."""
    devices: set[int] = set()
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                fields, sep, rest = line.partition(" - ")
                parts = fields.split()
                if not sep or len(parts) < 3 or not rest:
                    continue
                major, _, minor = parts[2].partition(":")
                if rest.split()[0] in PSEUDO_FS_TYPES and major.isdigit() and minor.isdigit():
                    devices.add(os.makedev(int(major), int(minor)))
    except OSError:
        pass
    for root in PSEUDO_ROOTS:
        with contextlib.suppress(OSError):
            devices.add(os.lstat(root).st_dev)
    return frozenset(devices)


# -- policy and limits -----------------------------------------------------------------------


@dataclass(frozen=True)
class LinkPolicy:
    """Whether symlinks below a source directory are followed, and where they may lead."""

    follow_symlinks: bool = False
    allowed_roots: tuple[str, ...] = ()


@dataclass(frozen=True)
class WalkLimits:
    """Bounds of one expansion (every pattern of a poll together)."""

    max_entries: int = 50_000
    max_depth: int = 16
    time_s: float = 2.0


class Candidate(NamedTuple):
    """A regular file a pattern matched: shown as ``path``, opened from ``root`` down ``rel``."""

    path: str
    root: str
    rel: tuple[str, ...]
    file_id: FileId


class Refusal(NamedTuple):
    path: str
    reason: str


@dataclass
class Expansion:
    """Files found (sorted by path), refusals, and why the walk was cut short (if it was)."""

    found: list[Candidate] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    cut: str | None = None


class _Exhausted(Exception):
    pass


class Budget:
    """Entries and time left for the expansions of one poll."""

    def __init__(self, limits: WalkLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.entries_left = limits.max_entries
        self.clock = clock
        self.deadline = clock() + limits.time_s

    def spend(self) -> None:
        self.entries_left -= 1
        if self.entries_left < 0:
            raise _Exhausted(f"more than {self.limits.max_entries} directory entries")
        if self.clock() > self.deadline:
            raise _Exhausted(f"longer than {self.limits.time_s:g}s")


# -- expansion -------------------------------------------------------------------------------


def expand(
    pattern: str,
    policy: LinkPolicy,
    budget: Budget,
    pseudo_devs: frozenset[int] = frozenset(),
) -> Expansion:
    """The regular files ``pattern`` names under ``policy``, within ``budget``."""
    return _Walk(pattern, policy, budget, pseudo_devs).run()


class _Walk:
    def __init__(self, pattern: str, policy: LinkPolicy, budget: Budget, pseudo_devs: frozenset[int]) -> None:
        self.base, self.parts = split_pattern(pattern)
        self.policy = policy
        self.budget = budget
        self.pseudo_devs = pseudo_devs
        self.out = Expansion()
        # Directories each ``**`` (by pattern index) went through: a bind-mount loop ends too.
        self.seen_dirs: set[tuple[int, int, int]] = set()
        self.roots: list[str] | None = None  # resolved lazily: only a followed link needs them

    def run(self) -> Expansion:
        try:
            st = os.stat(self.base)  # the source directory: operator-given, may be a link
        except OSError:
            return self.out
        if self.parts and stat.S_ISDIR(st.st_mode):
            self.seen_dirs.update((i, st.st_dev, st.st_ino) for i, part in enumerate(self.parts) if part == "**")
            try:
                self._match(self.base, (), 0, 0, False)
            except _Exhausted as exc:
                self.out.cut = str(exc)
        self.out.found.sort()
        return self.out

    def _match(self, directory: str, rel: tuple[str, ...], i: int, depth: int, linked: bool) -> None:
        """Match ``parts[i:]`` inside ``directory`` (reached by ``rel`` below the base)."""
        part = self.parts[i]
        last = i == len(self.parts) - 1
        if part == "**":
            self._globstar(directory, rel, i, depth, linked)
        elif not has_magic(part):
            if part == "..":
                return  # never climb out of the source directory below a wildcard
            self.budget.spend()
            self._entry(os.path.join(directory, part), (*rel, part), i, last, depth, linked, None)
        else:
            regex = _compiled(part)
            for name, entry in self._list(directory):
                if name.startswith(".") and not part.startswith("."):
                    continue
                if regex(name):
                    self._entry(entry.path, (*rel, name), i, last, depth, linked, entry)

    def _globstar(self, directory: str, rel: tuple[str, ...], i: int, depth: int, linked: bool) -> None:
        last = i == len(self.parts) - 1
        if not last:
            self._match(directory, rel, i + 1, depth, linked)  # zero directories
        if depth >= self.budget.limits.max_depth:
            self.out.cut = self.out.cut or f"deeper than {self.budget.limits.max_depth} directories under **"
            return
        for name, entry in self._list(directory):
            if name.startswith("."):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            path, sub = entry.path, (*rel, name)
            if stat.S_ISDIR(st.st_mode) and st.st_dev not in self.pseudo_devs:
                if (i, st.st_dev, st.st_ino) not in self.seen_dirs:
                    self.seen_dirs.add((i, st.st_dev, st.st_ino))
                    self._globstar(path, sub, i, depth + 1, linked)
            elif last:
                # "dir/**": every file below, each judged like any other match.
                self._entry(path, sub, i, True, depth, linked, entry)
            # A link to a directory is never descended by **: that is how loops are made.

    def _list(self, directory: str) -> Iterable[tuple[str, os.DirEntry[str]]]:
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    self.budget.spend()
                    yield entry.name, entry
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            self.out.refused.append(Refusal(directory, f"cannot list: {exc.strerror}"))

    def _entry(
        self,
        path: str,
        rel: tuple[str, ...],
        i: int,
        last: bool,
        depth: int,
        linked: bool,
        entry: os.DirEntry[str] | None,
    ) -> None:
        try:
            st = entry.stat(follow_symlinks=False) if entry is not None else os.lstat(path)
        except OSError:
            return  # gone since listed, or a missing plain path: normal
        if stat.S_ISLNK(st.st_mode):
            target = self._followed(path)
            if target is None:
                return
            try:
                st = os.stat(target)
            except OSError:
                return  # a dangling link
            linked = True
        if st.st_dev in self.pseudo_devs:
            self.out.refused.append(Refusal(path, "a pseudo-file (procfs, sysfs...): it has no real size"))
            return
        if not last:
            if stat.S_ISDIR(st.st_mode):
                self._match(path, rel, i + 1, depth, linked)
            return
        if not stat.S_ISREG(st.st_mode):
            self.out.refused.append(Refusal(path, f"not a regular file ({_kind(st.st_mode)})"))
            return
        if linked:
            real = os.path.realpath(path)
            root = self._root_of(real)
            if root is None:  # a link below changed since it was checked
                self.out.refused.append(Refusal(path, f"resolves to {real}, outside the allowed roots"))
                return
            rel = tuple(_components(real[len(root) :]))
            self.out.found.append(Candidate(path, root, rel, (st.st_dev, st.st_ino)))
        else:
            self.out.found.append(Candidate(path, self.base, rel, (st.st_dev, st.st_ino)))

    def _followed(self, path: str) -> str | None:
        """The resolved target of a link if the policy lets it be followed (else a refusal)."""
        if not self.policy.follow_symlinks:
            self.out.refused.append(Refusal(path, "a symlink (the source does not set follow_symlinks = true)"))
            return None
        real = os.path.realpath(path)
        if self._root_of(real) is None:
            roots = ", ".join(self._allowed_roots())
            self.out.refused.append(Refusal(path, f"a symlink to {real}, which is not under {roots}"))
            return None
        return real

    def _allowed_roots(self) -> list[str]:
        if self.roots is None:
            self.roots = [os.path.realpath(r) for r in (self.base, *self.policy.allowed_roots)]
        return self.roots

    def _root_of(self, real: str) -> str | None:
        return next((root for root in self._allowed_roots() if is_under(real, root)), None)


_REGEX_CACHE: dict[str, Callable[[str], re.Match[str] | None]] = {}


def _compiled(part: str) -> Callable[[str], re.Match[str] | None]:
    match = _REGEX_CACHE.get(part)
    if match is None:
        if len(_REGEX_CACHE) > 1024:
            _REGEX_CACHE.clear()
        match = _REGEX_CACHE[part] = re.compile(fnmatch.translate(part)).match
    return match


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a file"


# -- opening ---------------------------------------------------------------------------------


class NotRegular(OSError):
    """What the walk found is no longer a regular file (replaced by a FIFO, a device...)."""


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY


def open_beneath(root: str, rel: tuple[str, ...]) -> tuple[int, os.stat_result]:
    """Open ``root/rel...`` without following a link below ``root``; a regular file only.

    Returns the descriptor and its ``fstat``. A link anywhere below ``root`` fails with
    ``ELOOP`` (or ``ENOTDIR``); anything but a regular file raises :class:`NotRegular`.
    """
    if not rel:
        raise NotRegular(f"{root} is a directory")
    fd = os.open(root, _DIR_FLAGS)
    try:
        for name in rel[:-1]:
            step = os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = step
        file_fd = os.open(rel[-1], _FILE_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)
    try:
        st = os.fstat(file_fd)
    except OSError:
        os.close(file_fd)
        raise
    if not stat.S_ISREG(st.st_mode):
        os.close(file_fd)
        raise NotRegular(f"{'/'.join((root, *rel))} is {_kind(st.st_mode)}")
    return file_fd, st
