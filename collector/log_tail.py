"""Log keyword tailing: count lines matching user rules in log files, with capped excerpts.

The agent calls :meth:`LogTailer.poll` once per interval; a poll reads every new *complete*
line of every configured file, and :func:`to_events` turns its result into contract events.

Guarantees (no line lost, none read twice), with the limits of what a tailer can see:

* Files are identified by ``(st_dev, st_ino)`` and their descriptors stay open across polls,
  so a renamed file (``app.log -> app.log.1``, new ``app.log``) is read to its end through the
  old descriptor before the new file at the path is read. A file that left the configured
  paths (renamed away or deleted) is drained on every poll and closed only after a poll that
  found nothing new at least ``rotate_wait_s`` after the rename was seen, because writers
  keep writing to the old file until they reopen.
* A file smaller than what was already read, or whose first bytes (checksummed, up to
  1 KiB) changed, was truncated (``copytruncate`` or otherwise): it is read again from the
  start. Lines written between the last poll and a ``copytruncate`` live only in the copy,
  and a file truncated and refilled past the old offset with the same first bytes between
  two polls cannot be told from a file that grew.
* Offsets of fully consumed lines are checkpointed atomically in ``state_path`` after each
  poll, keyed by ``(st_dev, st_ino)`` with the path and a checksum of the file's first bytes
  (a reused inode number is then a new file, not a resume point).
* A line without its newline yet is not matched and its start is the committed offset. The
  exception is the unterminated last line of a rotated or deleted file when it is closed:
  nothing can complete it any more, so it is matched then rather than lost.

A line counts once per rule it matches. Matching sees at most ``max_line_bytes`` of a line
(cut at a character boundary), without a trailing carriage return, decoded as UTF-8 with invalid
bytes replaced by U+FFFD.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import json
import logging
import os
import stat
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import re2

from collector.contract import LogCounts, LogMatch
from collector.durable import WriteHealth, atomic_write
from collector.log_paths import (
    Budget,
    LinkPolicy,
    NotRegular,
    WalkLimits,
    components_below,
    expand,
    open_beneath,
    pseudo_devices,
    source_directory,
)

log = logging.getLogger(__name__)

_CHUNK_BYTES = 64 * 1024
# Enough leading bytes to tell two files apart after an inode number was reused.
_FINGERPRINT_BYTES = 1024
_STATE_VERSION = 1
_MAX_WARNED = 10_000  # distinct paths warned about, at most
# In a regex, these make a match depend on what surrounds a line or on flags we set, so the
# "no match in a block of lines => no match in any of its lines" shortcut would not hold.
_BLOCK_UNSAFE_TOKENS = ("$", "\\A", "\\z", "\\b", "\\B", "(?")

FileId = tuple[int, int]


# -- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LogRule:
    """A keyword (``regex=False``, matched literally) or an RE2 regex to look for in each line.

    Patterns come from users, so they are compiled by RE2 (linear-time matching, no
    backtracking blow-ups); an invalid regex raises :class:`ValueError` at construction.
    """

    name: str
    pattern: str
    regex: bool = False
    ignore_case: bool = False
    severity: str = "warning"

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("log rule name must not be empty")
        if not self.pattern:
            raise ValueError(
                f"log rule {self.name!r}: pattern must not be empty (use the regex '^' to count all lines)"
            )
        if not self.severity:
            raise ValueError(f"log rule {self.name!r}: severity must not be empty")
        _compile_rule(self)  # validate now: a config error belongs at load time, not at the first poll


@dataclass(frozen=True)
class LogSource:
    """Files (plain paths or globs, re-expanded on every poll) and the rules applied to them.

    Symlinks below a path's source directory are refused unless ``follow_symlinks``, and
    then followed only to targets under that directory or an ``allowed_roots`` entry (see
    :mod:`collector.log_paths`).
    """

    paths: list[str]
    rules: list[LogRule]
    follow_symlinks: bool = False
    allowed_roots: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.paths:
            raise ValueError("log source needs at least one path")
        relative = [root for root in self.allowed_roots if not os.path.isabs(root)]
        if relative:
            raise ValueError(f"log source {self.paths!r}: allowed_roots must be absolute paths, got {relative[0]!r}")
        if not self.rules:
            raise ValueError(f"log source {self.paths!r} needs at least one rule")
        names = [rule.name for rule in self.rules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"log source {self.paths!r}: duplicate rule names {duplicates}")


def _re2_options(ignore_case: bool) -> Any:
    options = re2.Options()
    options.case_sensitive = not ignore_case
    options.log_errors = False  # RE2 would print parse errors to stderr; we raise them instead
    return options


def _compile_rule(rule: LogRule) -> tuple[Any, bool]:
    """The compiled pattern and whether it may be run over a block of lines at once."""
    options = _re2_options(rule.ignore_case)
    if not rule.regex:
        return re2.compile(re2.escape(rule.pattern), options), True
    try:
        re2.compile(rule.pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"log rule {rule.name!r}: invalid regex {rule.pattern!r}: {reason}") from None
    if any(token in rule.pattern for token in _BLOCK_UNSAFE_TOKENS):
        return re2.compile(rule.pattern, options), False
    # Multi-line mode: '^' matches at each line start of a block exactly as at the start of one line.
    return re2.compile("(?m)" + rule.pattern, options), True


class _Matcher:
    """The rules of one file, compiled once."""

    def __init__(self, rules: Sequence[LogRule]) -> None:
        self.rules = tuple(rules)
        compiled = [_compile_rule(rule) for rule in rules]
        self.regexes = [regex for regex, _ in compiled]
        self.block_safe = [i for i, (_, safe) in enumerate(compiled) if safe]
        self.block_safe_set = frozenset(self.block_safe)
        self.line_only = [i for i, (_, safe) in enumerate(compiled) if not safe]
        self.all = list(range(len(self.rules)))

    def block_candidates(self, block: bytes) -> list[int]:
        """Rules that can match some line of ``block`` (complete lines, each ending in a newline).

        A safe pattern that matches no line finds nothing in the whole block either, so one
        scan of 64 KiB replaces a Python loop over its lines in the common no-match case.
        Invalid UTF-8 is matched after replacement, so such blocks take the per-line path.
        """
        if not _valid_utf8(block):
            return self.all
        found = [i for i in self.block_safe if self.regexes[i].search(block) is not None]
        return sorted(found + self.line_only) if self.line_only else found


# -- poll results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MatchHit:
    """One line that matched one rule; ``offset`` is the byte offset of the line's start."""

    path: str
    offset: int
    rule: str
    severity: str
    excerpt: str


class PollResult(NamedTuple):
    """Excerpted hits (capped per rule) and exact per-rule line counts of one poll."""

    hits: list[MatchHit]
    counts: dict[str, int]


@dataclass(frozen=True)
class FileCursor:
    """Where the tailer stands in one open file (for status pages and tests)."""

    path: str
    dev: int
    ino: int
    offset: int
    rotated: bool


def to_events(
    hits: Sequence[MatchHit],
    counts: dict[str, int],
    host_id: str,
    region: str,
    ts: float,
    interval_s: float,
    labels: dict[str, str] | None = None,
) -> tuple[list[LogMatch], LogCounts]:
    """Contract events for one poll: a ``LogMatch`` per hit and one ``LogCounts`` with every rule."""
    labels = labels or {}
    matches = [
        LogMatch(
            host_id=host_id,
            region=region,
            ts=ts,
            path=hit.path,
            offset=hit.offset,
            rule=hit.rule,
            severity=hit.severity,
            excerpt=hit.excerpt,
            labels=dict(labels),
        )
        for hit in hits
    ]
    totals = LogCounts(
        host_id=host_id, region=region, ts=ts, interval_s=interval_s, counts=dict(counts), labels=dict(labels)
    )
    return matches, totals


# -- tailing ---------------------------------------------------------------------------------


@dataclass(eq=False)
class _Tail:
    """One open file. Invariant: the committed offset (start of the unfinished line) is
    ``read_pos - pending_bytes``; only that offset is ever checkpointed."""

    path: str
    fd: int
    dev: int
    ino: int
    matcher: _Matcher
    read_pos: int
    pending_bytes: int = 0
    # The first max_line_bytes + 1 bytes of the unfinished line: enough to match and to cut
    # at a character boundary, so a line with no newline for gigabytes costs bounded memory.
    head: bytearray = field(default_factory=bytearray)
    # The unfinished line began before where we started (start at end): consume, don't match.
    skipping: bool = False
    rotated_at: float | None = None
    fp_len: int = 0
    fp_crc: int = 0

    @property
    def committed(self) -> int:
        return self.read_pos - self.pending_bytes

    @property
    def file_id(self) -> FileId:
        return (self.dev, self.ino)


@dataclass
class _Poll:
    counts: dict[str, int]
    excerpts_left: dict[str, int]
    hits: list[MatchHit] = field(default_factory=list)


class _Found(NamedTuple):
    path: str  # the name it goes by (in hits and the checkpoint)
    sources: tuple[int, ...]
    root: str  # opened from this directory down ``rel``, following no link on the way
    rel: tuple[str, ...]


class LogTailer:
    """Tails the files of some sources, remembering its place in ``state_path`` across restarts.

    Files found at the first-ever start (no state file yet) are read from the beginning, so
    what was logged just before the agent was installed is not missed; pass
    ``start_at_end_for_new_files=True`` to skip their existing content instead (an unfinished
    last line is then skipped too). Files appearing later, including the new file after a
    rotation, are always read from the beginning: everything in them is new.

    Each poll reads at most ``max_read_bytes_per_poll`` from each file, so a large backlog
    is worked off over several polls instead of stalling one. Globs are expanded within
    ``walk_limits`` (entries, depth, time) and under each source's link policy; a refused
    path is reported once (``event=log_path_refused``), not on every poll.

    A poll is synchronous; the agent runs it in a thread of its own so that a slow file system
    never delays a heartbeat.
    """

    def __init__(
        self,
        sources: Sequence[LogSource],
        state_path: Path,
        max_line_bytes: int = 8192,
        excerpt_bytes: int = 256,
        excerpts_per_rule_per_interval: int = 10,
        start_at_end_for_new_files: bool = False,
        rotate_wait_s: float = 5.0,
        max_read_bytes_per_poll: int = 64 * 1024 * 1024,
        read_chunk_bytes: int = _CHUNK_BYTES,
        walk_limits: WalkLimits | None = None,
    ) -> None:
        if max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be >= 1, got {max_line_bytes}")
        if excerpt_bytes < 1:
            raise ValueError(f"excerpt_bytes must be >= 1, got {excerpt_bytes}")
        if excerpts_per_rule_per_interval < 0:
            raise ValueError(f"excerpts_per_rule_per_interval must be >= 0, got {excerpts_per_rule_per_interval}")
        if rotate_wait_s < 0:
            raise ValueError(f"rotate_wait_s must be >= 0, got {rotate_wait_s}")
        if max_read_bytes_per_poll < 1:
            raise ValueError(f"max_read_bytes_per_poll must be >= 1, got {max_read_bytes_per_poll}")
        if read_chunk_bytes < 1:
            raise ValueError(f"read_chunk_bytes must be >= 1, got {read_chunk_bytes}")
        self._sources = list(sources)
        self._state_path = Path(state_path)
        self._max_line_bytes = max_line_bytes
        self._excerpt_bytes = excerpt_bytes
        self._excerpt_cap = excerpts_per_rule_per_interval
        self._start_at_end = start_at_end_for_new_files
        self._rotate_wait_s = rotate_wait_s
        self._max_read_bytes = max_read_bytes_per_poll
        self._chunk_bytes = read_chunk_bytes
        self._walk_limits = walk_limits or WalkLimits()
        self._pseudo_devs = pseudo_devices()
        self._rule_names: list[str] = list(dict.fromkeys(r.name for s in self._sources for r in s.rules))
        self._matchers: dict[tuple[int, ...], _Matcher] = {}
        # Insertion order is open order: older files are read first within a poll.
        self._tails: dict[FileId, _Tail] = {}
        self._first_poll = True
        self._warned: set[str] = set()
        self._checkpoint_health = WriteHealth("log_checkpoint", log)
        self._last_state: bytes | None = None
        self._fresh_start, self._restored = self._load_state()

    # -- public ------------------------------------------------------------------------------

    def poll(self, now: float) -> PollResult:
        """Read every new complete line, match it and checkpoint; ``now`` times rotation waits."""
        acc = _Poll(
            counts=dict.fromkeys(self._rule_names, 0), excerpts_left=dict.fromkeys(self._rule_names, self._excerpt_cap)
        )
        found, unsure = self._discover()
        for file_id, tail in self._tails.items():
            where = found.get(file_id)
            if where is not None:
                # Still (or again) under a configured path, possibly a new name that a glob covers.
                tail.path, tail.matcher, tail.rotated_at = where.path, self._matcher(where.sources), None
            elif tail.rotated_at is None and not any(fnmatch.fnmatchcase(tail.path, p) for p in unsure):
                # (A pattern whose expansion was cut short may still cover it: not rotated then.)
                tail.rotated_at = now
                log.info("event=log_rotated path=%s offset=%d", tail.path, tail.committed)
        if self._first_poll:
            self._adopt_renamed(found, now)
        for file_id, where in found.items():
            if file_id not in self._tails:
                self._open(file_id, where)

        # Rotated files first: the rest of app.log.1 comes before the start of the new app.log.
        unfinished: set[str] = set()
        for tail in [t for t in self._tails.values() if t.rotated_at is not None]:
            read_bytes, at_eof = self._drain(tail, acc)
            if not at_eof:
                unfinished.add(tail.path)
            elif read_bytes == 0 and tail.rotated_at is not None and now - tail.rotated_at >= self._rotate_wait_s:
                self._close_rotated(tail, acc)
        for tail in [t for t in self._tails.values() if t.rotated_at is None]:
            if tail.path not in unfinished:
                self._drain(tail, acc)

        self._first_poll = False
        self._restored.clear()
        self._checkpoint()
        return PollResult(acc.hits, acc.counts)

    def cursors(self) -> list[FileCursor]:
        """The open files and their committed offsets."""
        return [FileCursor(t.path, t.dev, t.ino, t.committed, t.rotated_at is not None) for t in self._tails.values()]

    def close(self) -> None:
        """Close every file; the checkpoint of the last poll stays the resume point."""
        for tail in self._tails.values():
            _close_fd(tail.fd)
        self._tails.clear()

    def __enter__(self) -> LogTailer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- files -------------------------------------------------------------------------------

    def _matcher(self, sources: tuple[int, ...]) -> _Matcher:
        matcher = self._matchers.get(sources)
        if matcher is None:
            # A file under several sources is read once with all their rules; a rule name
            # shared by two sources is one rule for that file (the first source's).
            rules = {rule.name: rule for i in reversed(sources) for rule in self._sources[i].rules}
            ordered = [rules[name] for name in self._rule_names if name in rules]
            matcher = self._matchers[sources] = _Matcher(ordered)
        return matcher

    def _discover(self) -> tuple[dict[FileId, _Found], list[str]]:
        """The files every source names now, and the patterns whose expansion was cut short."""
        budget = Budget(self._walk_limits)
        by_path: dict[str, list[int]] = {}
        where: dict[str, tuple[str, tuple[str, ...], FileId]] = {}
        unsure: list[str] = []
        for i, source in enumerate(self._sources):
            policy = LinkPolicy(source.follow_symlinks, source.allowed_roots)
            for pattern in source.paths:
                expansion = expand(pattern, policy, budget, self._pseudo_devs)
                for refused in expansion.refused:
                    self._warn_once(
                        f"refused:{refused.path}",
                        "event=log_path_refused path=%s reason=%r",
                        refused.path,
                        refused.reason,
                    )
                if expansion.cut is not None:
                    unsure.append(pattern)
                    self._warn_once(
                        f"cut:{pattern}",
                        "event=log_glob_cut_short pattern=%s reason=%r action=using_files_found_so_far",
                        pattern,
                        expansion.cut,
                    )
                for candidate in expansion.found:
                    owners = by_path.setdefault(candidate.path, [])
                    if i not in owners:
                        owners.append(i)
                    where.setdefault(candidate.path, (candidate.root, candidate.rel, candidate.file_id))
        found: dict[FileId, _Found] = {}
        for path, owners in by_path.items():
            root, rel, file_id = where[path]
            # Two paths to one file (a followed link): read it once, under the first path.
            found.setdefault(file_id, _Found(path, tuple(owners), root, rel))
        return found, unsure

    def _open(self, file_id: FileId, where: _Found) -> _Tail | None:
        try:
            # No link followed below the root, a regular file only (a FIFO cannot block: O_NONBLOCK).
            fd, st = open_beneath(where.root, where.rel)
        except NotRegular as exc:
            self._warn_once(f"refused:{where.path}", "event=log_path_refused path=%s reason=%r", where.path, str(exc))
            return None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                reason = "a symlink appeared on the way since the path was checked"
                self._warn_once(f"refused:{where.path}", "event=log_path_refused path=%s reason=%r", where.path, reason)
            elif exc.errno != errno.ENOENT:
                self._warn_once(where.path, "event=log_open_failed path=%s error=%s", where.path, exc.strerror)
            return None
        try:
            real_id = (st.st_dev, st.st_ino)
            if st.st_dev in self._pseudo_devs or real_id in self._tails:
                _close_fd(fd)  # replaced between the walk and the open; the next poll sees the new state
                return None
            if real_id != file_id:
                log.debug("event=log_file_replaced_before_open path=%s", where.path)
            tail = _Tail(where.path, fd, st.st_dev, st.st_ino, self._matcher(where.sources), read_pos=0)
            restored = self._restored.pop(real_id, None)
            if restored is not None:
                self._resume(tail, restored, st.st_size)
            elif self._first_poll and self._fresh_start and self._start_at_end:
                tail.read_pos = st.st_size
                # Starting inside a line: its rest is consumed, not matched as if it were a line.
                tail.skipping = st.st_size > 0 and os.pread(fd, 1, st.st_size - 1) != b"\n"
                log.info("event=log_file_opened path=%s offset=%d start=end", tail.path, tail.read_pos)
            else:
                log.info("event=log_file_opened path=%s offset=0 start=beginning", tail.path)
        except OSError as exc:
            _close_fd(fd)
            self._warn_once(where.path, "event=log_open_failed path=%s error=%s", where.path, exc.strerror)
            return None
        self._tails[real_id] = tail
        return tail

    def _resume(self, tail: _Tail, entry: dict[str, Any], size: int) -> None:
        offset = entry["offset"]
        fp_len = min(entry["fp_len"], size)
        same_start = fp_len == entry["fp_len"] and zlib.crc32(os.pread(tail.fd, fp_len, 0)) == entry["fp_crc"]
        if offset <= size and same_start:
            tail.read_pos, tail.skipping = offset, entry["skip_partial"]
            tail.fp_len, tail.fp_crc = entry["fp_len"], entry["fp_crc"]
            log.info("event=log_file_resumed path=%s offset=%d", tail.path, offset)
        else:
            # Truncated, rewritten or a reused inode number while we were down: a new file.
            log.warning("event=log_file_changed_while_down path=%s offset=%d size=%d", tail.path, offset, size)

    def _adopt_renamed(self, found: dict[FileId, _Found], now: float) -> None:
        """At start, find checkpointed files that were renamed away from their path (a
        rotation while the agent was down or still draining) and drain them first."""
        by_path = {where.path: where.sources for where in found.values()}
        for file_id, entry in list(self._restored.items()):
            if file_id in found:
                continue
            path = entry["path"]
            sources = by_path.get(path) or tuple(
                i for i, s in enumerate(self._sources) if any(fnmatch.fnmatchcase(path, p) for p in s.paths)
            )
            renamed = _find_in_dir(os.path.dirname(path) or ".", file_id) if sources else None
            beneath = self._beneath(renamed, sources) if renamed is not None else None
            if renamed is None or beneath is None:
                self._restored.pop(file_id)
                continue
            # Opened under its old path's name so its hits keep the log's logical name.
            tail = self._open(file_id, _Found(renamed, sources, *beneath))
            if tail is not None:
                tail.path, tail.rotated_at = path, now
                log.info("event=log_rotated_while_down path=%s renamed=%s offset=%d", path, renamed, tail.committed)

    def _beneath(self, path: str, sources: tuple[int, ...]) -> tuple[str, tuple[str, ...]] | None:
        """``(root, rel)`` to open ``path`` from a source directory of ``sources`` that holds it."""
        for i in sources:
            for pattern in self._sources[i].paths:
                base = source_directory(pattern)
                rel = components_below(path, base)
                if rel:
                    return base, rel
        return None

    def _close_rotated(self, tail: _Tail, acc: _Poll) -> None:
        if tail.pending_bytes and not tail.skipping:
            # Nothing can complete this line any more: match it rather than lose it.
            self._match_line(tail, bytes(tail.head), tail.committed, tail.matcher.all, acc)
        _close_fd(tail.fd)
        del self._tails[tail.file_id]
        log.info("event=log_file_closed path=%s offset=%d", tail.path, tail.read_pos)

    # -- reading -----------------------------------------------------------------------------

    def _drain(self, tail: _Tail, acc: _Poll) -> tuple[int, bool]:
        """Read what is new in one file (up to the per-poll budget): (bytes read, reached EOF)."""
        try:
            size = os.fstat(tail.fd).st_size
            if size < tail.read_pos or self._rewritten(tail):
                log.warning("event=log_truncated path=%s offset=%d size=%d", tail.path, tail.read_pos, size)
                tail.read_pos, tail.pending_bytes, tail.skipping, tail.fp_len = 0, 0, False, 0
                tail.head.clear()
            read_bytes = 0
            while read_bytes < self._max_read_bytes:
                data = os.pread(tail.fd, min(self._chunk_bytes, self._max_read_bytes - read_bytes), tail.read_pos)
                if not data:
                    return read_bytes, True
                self._feed(tail, data, acc)
                tail.read_pos += len(data)
                read_bytes += len(data)
        except OSError as exc:
            # EIO, ESTALE on NFS...: report, and let a rotated file be closed rather than kept forever.
            self._warn_once(tail.path, "event=log_read_failed path=%s error=%s", tail.path, exc.strerror)
            return 0, True
        return read_bytes, False

    def _rewritten(self, tail: _Tail) -> bool:
        """Whether the first bytes we read changed: truncated and refilled past our offset
        between two polls (``copytruncate`` under a busy writer), which size alone misses."""
        if tail.fp_len == 0:
            return False
        return zlib.crc32(os.pread(tail.fd, tail.fp_len, 0)) != tail.fp_crc

    def _feed(self, tail: _Tail, data: bytes, acc: _Poll) -> None:
        """Consume one chunk read at ``tail.read_pos`` (not yet advanced)."""
        base, pos = tail.read_pos, 0
        if tail.pending_bytes or tail.skipping:
            newline = data.find(b"\n")
            if newline == -1:
                self._extend(tail, data)
                return
            line_start = base - tail.pending_bytes
            self._extend(tail, data[:newline])
            if not tail.skipping:
                self._match_line(tail, bytes(tail.head), line_start, tail.matcher.all, acc)
            tail.pending_bytes, tail.skipping = 0, False
            tail.head.clear()
            pos = newline + 1
        last_newline = data.rfind(b"\n", pos)
        if last_newline != -1:
            block = data[pos : last_newline + 1]
            candidates = tail.matcher.block_candidates(block)
            if candidates:
                self._match_block(tail, block, base + pos, candidates, acc)
            pos = last_newline + 1
        if pos < len(data):
            # The committed offset stays at this line's start: read_pos - pending_bytes.
            self._extend(tail, data[pos:])

    def _match_block(self, tail: _Tail, block: bytes, offset: int, candidates: list[int], acc: _Poll) -> None:
        """Match the complete lines of ``block`` against the rules that hit somewhere in it.

        Block-safe rules jump from match to match (cost per matching line, not per line); each
        line found is then checked on its own, which rejects a match spanning two lines and
        applies the line cap exactly as the per-line path does. Rules that are not block-safe,
        and blocks of invalid UTF-8, take the per-line loop.
        """
        matcher = tail.matcher
        line_only = [i for i in candidates if i not in matcher.block_safe_set]
        if line_only or not _valid_utf8(block):
            for line in block.split(b"\n")[:-1]:
                self._match_line(tail, line, offset, candidates, acc)
                offset += len(line) + 1
            return
        lines: dict[int, list[int]] = {}  # line start in block -> candidate rules found there
        for i in candidates:
            regex = matcher.regexes[i]
            at = 0
            while at < len(block) and (match := regex.search(block, at)) is not None:
                end = block.find(b"\n", match.start())
                if end == -1:
                    break  # an empty match after the last newline: no line there
                lines.setdefault(block.rfind(b"\n", 0, match.start()) + 1, []).append(i)
                at = end + 1  # the next line: one line is one count per rule
        for start in sorted(lines):
            end = block.find(b"\n", start)
            self._match_line(tail, block[start:end], offset + start, sorted(lines[start]), acc)

    def _extend(self, tail: _Tail, data: bytes) -> None:
        room = self._max_line_bytes + 1 - len(tail.head)
        if room > 0:
            tail.head += data[:room]
        tail.pending_bytes += len(data)

    def _match_line(self, tail: _Tail, line: bytes, offset: int, rules: list[int], acc: _Poll) -> None:
        if len(line) > self._max_line_bytes:
            line = _cut(line, self._max_line_bytes)
        elif line.endswith(b"\r"):
            line = line[:-1]
        if not line.isascii():
            line = line.decode("utf-8", "replace").encode("utf-8")
        matcher = tail.matcher
        for i in rules:
            match = matcher.regexes[i].search(line)
            if match is None:
                continue
            rule = matcher.rules[i]
            acc.counts[rule.name] += 1
            if acc.excerpts_left[rule.name] > 0:
                acc.excerpts_left[rule.name] -= 1
                excerpt = _excerpt(line, match.start(), match.end(), self._excerpt_bytes)
                acc.hits.append(MatchHit(tail.path, offset, rule.name, rule.severity, excerpt))

    # -- checkpoint --------------------------------------------------------------------------

    def _load_state(self) -> tuple[bool, dict[FileId, dict[str, Any]]]:
        """(first-ever start, checkpoint entries by file id)."""
        try:
            raw = self._state_path.read_bytes()
        except FileNotFoundError:
            return True, {}
        except OSError as exc:
            log.warning("event=log_state_unreadable path=%s error=%s", self._state_path, exc.strerror)
            return True, {}
        try:
            body = json.loads(raw)
            if body.get("version") != _STATE_VERSION:
                raise ValueError(f"unsupported version {body.get('version')!r}")
            entries: dict[FileId, dict[str, Any]] = {}
            for item in body["files"]:
                entry = {
                    "path": str(item["path"]),
                    "offset": int(item["offset"]),
                    "skip_partial": bool(item.get("skip_partial", False)),
                    "fp_len": int(item.get("fp_len", 0)),
                    "fp_crc": int(item.get("fp_crc", 0)),
                }
                entries[(int(item["dev"]), int(item["ino"]))] = entry
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # Unusable offsets: behave as on a first start rather than refuse to run.
            log.warning("event=log_state_corrupt path=%s error=%s", self._state_path, exc)
            return True, {}
        self._last_state = raw
        return False, entries

    def _checkpoint(self) -> None:
        files = []
        for tail in self._tails.values():
            self._refresh_fingerprint(tail)
            files.append(
                {
                    "path": tail.path,
                    "dev": tail.dev,
                    "ino": tail.ino,
                    "offset": tail.committed,
                    "skip_partial": tail.skipping,
                    "fp_len": tail.fp_len,
                    "fp_crc": tail.fp_crc,
                }
            )
        data = json.dumps({"version": _STATE_VERSION, "files": files}, indent=1).encode()
        if data == self._last_state:
            return  # an fsync per idle poll buys nothing
        try:
            atomic_write(self._state_path, data)
        except OSError as exc:
            # Keep tailing; the next poll retries. A restart before then re-reads, never skips.
            self._checkpoint_health.failed(exc, path=self._state_path)
            return
        self._checkpoint_health.ok()
        self._last_state = data

    def _refresh_fingerprint(self, tail: _Tail) -> None:
        want = min(tail.committed, _FINGERPRINT_BYTES)
        if want > tail.fp_len:
            # On a read error the previous fingerprint still describes the file.
            with contextlib.suppress(OSError):
                tail.fp_crc, tail.fp_len = zlib.crc32(os.pread(tail.fd, want, 0)), want

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        # A missing permission would otherwise log the same line every interval.
        if key in self._warned:
            return
        if len(self._warned) >= _MAX_WARNED:
            # Someone making new bad names all the time must not grow memory or flood the log.
            if len(self._warned) == _MAX_WARNED:
                self._warned.add("")
                log.warning("event=log_warnings_suppressed after=%d", _MAX_WARNED)
            return
        self._warned.add(key)
        log.warning(message, *args)


# -- helpers ---------------------------------------------------------------------------------


def _valid_utf8(block: bytes) -> bool:
    if block.isascii():
        return True
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _cut(line: bytes, max_bytes: int) -> bytes:
    """The first ``max_bytes`` of a longer line, moved back to a UTF-8 character boundary
    (so the cap never invents a replacement character; at most 3 bytes are given up)."""
    start = max_bytes  # line[max_bytes] is the first byte left out
    while start > max(0, max_bytes - 3) and line[start] & 0xC0 == 0x80:
        start -= 1  # a continuation byte: the character it belongs to began earlier
    # Cut before that character if it has a lead byte; stray continuation bytes get no care.
    return line[:start] if line[start] >= 0xC0 else line[:max_bytes]


def _excerpt(line: bytes, start: int, end: int, excerpt_bytes: int) -> str:
    """Up to ``excerpt_bytes`` of valid UTF-8 ``line``: its start, or a window showing the match."""
    if end <= excerpt_bytes or len(line) <= excerpt_bytes:
        window = line[:excerpt_bytes]
    else:
        begin = min(max(0, start - excerpt_bytes // 4), len(line) - excerpt_bytes)
        window = line[begin : begin + excerpt_bytes]
    # Only characters cut at the window's edges can be incomplete; drop them.
    return window.decode("utf-8", "ignore")


def _find_in_dir(directory: str, file_id: FileId) -> str | None:
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.inode() != file_id[1]:
                    continue
                st = entry.stat(follow_symlinks=False)
                if (st.st_dev, st.st_ino) == file_id and stat.S_ISREG(st.st_mode):
                    return entry.path
    except OSError:
        return None
    return None


def _close_fd(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
