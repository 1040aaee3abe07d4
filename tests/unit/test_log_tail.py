"""Log tailing on real files: rules, caps, rotation, truncation, restarts, and the checkpoint.

The invariant under test everywhere: every complete line is matched once, none is lost and
none is read twice, whatever happens to the file between two polls.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.contract import LogCounts, LogMatch, decode, encode
from collector.log_tail import LogRule, LogSource, LogTailer, MatchHit, PollResult, to_events

ANY = LogRule("any", "^", regex=True, severity="info")  # matches every line: its excerpts are the lines


def make_tailer(tmp_path: Path, paths: list[str], rules: list[LogRule] | None = None, **kwargs: Any) -> LogTailer:
    """A tailer whose excerpts are whole lines unless a test asks otherwise."""
    options: dict[str, Any] = {"excerpts_per_rule_per_interval": 1_000_000, "excerpt_bytes": 4096, **kwargs}
    return LogTailer([LogSource(paths, rules or [ANY])], tmp_path / "state" / "log_tail.json", **options)


def append(path: Path, data: str | bytes) -> None:
    with path.open("ab") as out:
        out.write(data.encode() if isinstance(data, str) else data)


def lines(result: PollResult, rule: str = "any") -> list[str]:
    return [hit.excerpt for hit in result.hits if hit.rule == rule]


def state_of(tmp_path: Path) -> Any:
    return json.loads((tmp_path / "state" / "log_tail.json").read_bytes())


class Clock:
    """Poll times ten seconds apart: past the default rotate wait of five seconds."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        self.now += 10.0
        return self.now


# -- rules -----------------------------------------------------------------------------------


def test_keyword_is_literal_regex_is_a_pattern_and_ignore_case_folds(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    append(log_file, "a.b\naxb\nErr here\nERR there\nplain\nends with ERROR\r\n")
    rules = [
        LogRule("kw_dot", "a.b"),
        LogRule("rx_dot", "a.b", regex=True),
        LogRule("err_any_case", "err", ignore_case=True),
        LogRule("err_upper", "ERR"),
        LogRule("error_at_end", "ERROR$", regex=True),  # CRLF lines: the '\r' is not part of the line
    ]
    with make_tailer(tmp_path, [str(log_file)], rules) as tailer:
        result = tailer.poll(1.0)
    assert result.counts == {"kw_dot": 1, "rx_dot": 2, "err_any_case": 3, "err_upper": 2, "error_at_end": 1}
    assert lines(result, "kw_dot") == ["a.b"]
    assert lines(result, "err_any_case") == ["Err here", "ERR there", "ends with ERROR"]


def test_block_search_counts_each_matching_line_once_and_rejects_matches_across_lines(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    append(log_file, "a\nb x x\nplain\nERROR ERROR twice\n\nERROR\n")
    rules = [
        LogRule("spans", r"a\sb", regex=True),  # \s could match the newline between two lines
        LogRule("empty_ok", "x*", regex=True),  # matches the empty string: every line, once
        LogRule("errors", "ERROR"),
    ]
    with make_tailer(tmp_path, [str(log_file)], rules) as tailer:
        result = tailer.poll(1.0)
    assert result.counts == {"spans": 0, "empty_ok": 6, "errors": 2}
    assert [h.offset for h in result.hits if h.rule == "errors"] == [14, 33]


def test_bad_regex_raises_value_error_naming_the_rule_and_the_reason() -> None:
    with pytest.raises(ValueError, match=r"rule 'broken'.*invalid regex 'a\(': missing \)"):
        LogRule("broken", "a(", regex=True)
    with pytest.raises(ValueError, match=r"rule 'huge'.*invalid repetition size"):
        LogRule("huge", "(a{1000}){1000}", regex=True)
    LogRule("literal", "a(")  # the same text as a keyword is fine: it is escaped


def test_config_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="duplicate rule names"):
        LogSource(["/x"], [LogRule("a", "x"), LogRule("a", "y")])
    with pytest.raises(ValueError, match="pattern must not be empty"):
        LogRule("empty", "")
    with pytest.raises(ValueError, match="at least one path"):
        LogSource([], [ANY])


def test_counts_name_every_rule_with_zero_when_nothing_matched(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    log_file.touch()
    rules = [LogRule("oom", "Out of memory"), LogRule("panic", "panic", severity="critical")]
    with make_tailer(tmp_path, [str(log_file), str(tmp_path / "missing.log")], rules) as tailer:
        assert tailer.poll(1.0) == PollResult([], {"oom": 0, "panic": 0})
        append(log_file, "all quiet\n")
        assert tailer.poll(2.0) == PollResult([], {"oom": 0, "panic": 0})


def test_excerpts_are_capped_per_rule_per_poll_but_counts_stay_exact(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    append(log_file, "".join(f"ERROR {i}\n" for i in range(10)) + "WARN a\nWARN b\n")
    rules = [LogRule("error", "ERROR"), LogRule("warn", "WARN")]
    with make_tailer(tmp_path, [str(log_file)], rules, excerpts_per_rule_per_interval=3) as tailer:
        first = tailer.poll(1.0)
        assert first.counts == {"error": 10, "warn": 2}
        assert lines(first, "error") == ["ERROR 0", "ERROR 1", "ERROR 2"]
        assert [hit.offset for hit in first.hits if hit.rule == "error"] == [0, 8, 16]
        assert lines(first, "warn") == ["WARN a", "WARN b"]
        append(log_file, "ERROR 10\n")
        second = tailer.poll(2.0)  # the cap is per poll: a new interval gets new excerpts
        assert second.counts == {"error": 1, "warn": 0}
        assert lines(second, "error") == ["ERROR 10"]


def test_excerpt_shows_a_match_far_into_a_line(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    append(log_file, "x" * 500 + " NEEDLE " + "y" * 500 + "\n")
    with make_tailer(tmp_path, [str(log_file)], [LogRule("needle", "NEEDLE")], excerpt_bytes=64) as tailer:
        [hit] = tailer.poll(1.0).hits
    assert len(hit.excerpt) == 64
    assert "NEEDLE" in hit.excerpt


# -- lines -----------------------------------------------------------------------------------


def test_partial_line_is_matched_only_once_completed_and_not_checkpointed_past_its_start(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    append(log_file, "one\ntw")
    with make_tailer(tmp_path, [str(log_file)]) as tailer:
        assert lines(tailer.poll(1.0)) == ["one"]
        assert state_of(tmp_path)["files"][0]["offset"] == 4
        assert lines(tailer.poll(2.0)) == []
        append(log_file, "o\nthr")
        result = tailer.poll(3.0)
        assert lines(result) == ["two"]
        assert [hit.offset for hit in result.hits] == [4]
        assert state_of(tmp_path)["files"][0]["offset"] == 8


def test_long_line_is_capped_for_matching_and_excerpt_but_consumed_whole_and_counted_once(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    long_line = "ERROR " + "x" * 300_000 + " BEYOND_THE_CAP"  # spans several 64 KiB reads
    append(log_file, long_line[:100_000])
    rules = [LogRule("error", "ERROR"), LogRule("beyond", "BEYOND_THE_CAP")]
    with make_tailer(tmp_path, [str(log_file)], rules, max_line_bytes=100, excerpt_bytes=50) as tailer:
        assert tailer.poll(1.0).counts == {"error": 0, "beyond": 0}  # unfinished: nothing yet
        append(log_file, long_line[100_000:] + "\nnext ERROR\n")
        result = tailer.poll(2.0)
    assert result.counts == {"error": 2, "beyond": 0}
    assert [hit.offset for hit in result.hits] == [0, len(long_line) + 1]
    assert result.hits[0].excerpt == ("ERROR " + "x" * 300_000)[:50]
    assert result.hits[1].excerpt == "next ERROR"


def test_the_line_cap_never_splits_a_character(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    append(log_file, "123456789é and more\n")  # 'é' is bytes 10-11: a cap of 10 falls inside it
    with make_tailer(tmp_path, [str(log_file)], max_line_bytes=10) as tailer:
        assert lines(tailer.poll(1.0)) == ["123456789"]


def test_invalid_utf8_is_decoded_with_replacement_and_never_crashes(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    append(log_file, b"bad \xff\xfe ERROR\n\xc3\nok ERROR \xe2\x82\n\x00\x80binary\n")
    rules = [LogRule("error", "ERROR"), LogRule("two_odd_chars", "bad .. ERROR", regex=True), ANY]
    with make_tailer(tmp_path, [str(log_file)], rules) as tailer:
        result = tailer.poll(1.0)
    assert result.counts == {"error": 2, "two_odd_chars": 1, "any": 4}
    assert lines(result) == ["bad \ufffd\ufffd ERROR", "\ufffd", "ok ERROR \ufffd", "\x00\ufffdbinary"]


# -- rotation and truncation -----------------------------------------------------------------


def test_rename_rotation_reads_the_old_file_to_the_end_then_the_new_one(tmp_path: Path) -> None:
    log_file, rotated = tmp_path / "app.log", tmp_path / "app.log.1"
    clock = Clock()
    append(log_file, "old1\nold2\n")
    with make_tailer(tmp_path, [str(log_file)]) as tailer:
        assert lines(tailer.poll(clock())) == ["old1", "old2"]
        append(log_file, "old3\nold4\nold5-unfinished")
        log_file.rename(rotated)
        append(log_file, "new1\nnew2\n")
        assert lines(tailer.poll(clock())) == ["old3", "old4", "new1", "new2"]
        # The renamed file is closed after a poll found nothing new in it; its unfinished
        # last line can never be completed, so it is matched then instead of being lost.
        assert lines(tailer.poll(clock())) == ["old5-unfinished"]
        assert [(c.path, c.ino) for c in tailer.cursors()] == [(str(log_file), log_file.stat().st_ino)]
        append(log_file, "new3\n")
        assert lines(tailer.poll(clock())) == ["new3"]


def test_lines_written_to_the_renamed_file_before_the_writer_reopens_are_read(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    append(log_file, "a\n")
    with make_tailer(tmp_path, [str(log_file)]) as tailer, log_file.open("ab", buffering=0) as writer:
        assert lines(tailer.poll(100.0)) == ["a"]
        log_file.rename(tmp_path / "app.log.1")
        assert lines(tailer.poll(101.0)) == []  # rotation seen; the writer has not reopened yet
        writer.write(b"late\n")
        assert lines(tailer.poll(102.0)) == ["late"]
        writer.write(b"later\n")
        assert lines(tailer.poll(103.0)) == ["later"]
        assert len(tailer.cursors()) == 1  # kept open: written to within rotate_wait_s
        assert lines(tailer.poll(110.0)) == []
        assert tailer.cursors() == []  # quiet for a whole poll after the wait: closed


def test_copytruncate_restarts_from_the_beginning_without_rereading(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    append(log_file, "one\ntwo\npartial")
    inode = log_file.stat().st_ino
    with make_tailer(tmp_path, [str(log_file)]) as tailer:
        assert lines(tailer.poll(1.0)) == ["one", "two"]
        shutil.copyfile(log_file, tmp_path / "app.log.1")
        with log_file.open("r+b") as f:
            f.truncate(0)
        append(log_file, "three\n")
        assert log_file.stat().st_ino == inode
        assert lines(tailer.poll(2.0)) == ["three"]  # the unfinished line went with the copy
        append(log_file, "four\n")
        assert lines(tailer.poll(3.0)) == ["four"]


def test_truncation_then_refill_past_the_old_offset_is_seen_by_the_first_bytes(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    append(log_file, "2024-01-01T00:00:00 first\n")
    with make_tailer(tmp_path, [str(log_file)]) as tailer:
        assert lines(tailer.poll(1.0)) == ["2024-01-01T00:00:00 first"]
        os.truncate(log_file, 0)
        refill = [f"2024-01-02T00:00:0{i} busy writer" for i in range(3)]
        append(log_file, "".join(f"{line}\n" for line in refill))  # bigger than the old offset
        assert lines(tailer.poll(2.0)) == refill


def test_truncation_to_a_smaller_size_rereads_the_new_content_from_the_start(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    append(log_file, "a fairly long first line\nanother long line here\n")
    with make_tailer(tmp_path, [str(log_file)]) as tailer:
        assert len(lines(tailer.poll(1.0))) == 2
        log_file.write_text("short\n")  # O_TRUNC on the same inode
        assert lines(tailer.poll(2.0)) == ["short"]
        assert lines(tailer.poll(3.0)) == []


def test_deleted_file_is_drained_then_its_descriptor_closed(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    append(log_file, "a\n")

    def fds_on_log_file() -> int:
        fd_dir = Path("/proc/self/fd")
        targets = []
        for fd in fd_dir.iterdir():
            try:
                targets.append(os.readlink(fd))
            except OSError:
                continue
        return sum(target.startswith(str(log_file)) for target in targets)

    with make_tailer(tmp_path, [str(log_file)]) as tailer, log_file.open("ab", buffering=0) as writer:
        assert lines(tailer.poll(100.0)) == ["a"]
        log_file.unlink()
        writer.write(b"after delete\n")
        assert lines(tailer.poll(110.0)) == ["after delete"]
        assert fds_on_log_file() == 2  # the writer's and ours
        assert lines(tailer.poll(120.0)) == []
        assert fds_on_log_file() == 1  # ours is closed
        assert tailer.cursors() == []


def test_read_budget_spreads_a_backlog_over_polls_and_keeps_the_old_file_first(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    old = [f"old line {i:03d}" for i in range(40)]
    append(log_file, "".join(f"{line}\n" for line in old))
    clock = Clock()
    with make_tailer(tmp_path, [str(log_file)], max_read_bytes_per_poll=100) as tailer:
        seen = lines(tailer.poll(clock()))
        assert 0 < len(seen) < 10  # 100 bytes of a 520-byte backlog
        log_file.rename(tmp_path / "app.log.1")
        append(log_file, "new 1\nnew 2\n")
        for _ in range(10):
            seen += lines(tailer.poll(clock()))
        assert seen == [*old, "new 1", "new 2"]
        assert len(tailer.cursors()) == 1


# -- restarts and the checkpoint -------------------------------------------------------------


def test_restart_mid_file_resumes_from_the_checkpoint(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    append(log_file, "one\ntwo\nthr")
    with make_tailer(tmp_path, [str(log_file)]) as tailer:
        assert lines(tailer.poll(1.0)) == ["one", "two"]
    append(log_file, "ee\nfour\n")
    with make_tailer(tmp_path, [str(log_file)]) as tailer:
        result = tailer.poll(2.0)
        assert lines(result) == ["three", "four"]
        assert [hit.offset for hit in result.hits] == [8, 14]
        assert lines(tailer.poll(3.0)) == []


def test_restart_reads_a_file_whose_inode_changed_from_the_beginning(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    append(log_file, "old a\nold b\n")
    with make_tailer(tmp_path, [str(log_file)]) as tailer:
        assert lines(tailer.poll(1.0)) == ["old a", "old b"]
    old_inode = log_file.stat().st_ino
    replacement = tmp_path / "replacement"
    replacement.write_text("new a\nnew b\nnew c\n")  # longer than the old offset on purpose
    os.replace(replacement, log_file)
    assert log_file.stat().st_ino != old_inode
    with make_tailer(tmp_path, [str(log_file)]) as tailer:
        assert lines(tailer.poll(2.0)) == ["new a", "new b", "new c"]


def test_restart_detects_a_file_rewritten_in_place_while_down(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    append(log_file, "monday 1\n")
    with make_tailer(tmp_path, [str(log_file)]) as tailer:
        assert lines(tailer.poll(1.0)) == ["monday 1"]
    with log_file.open("r+b") as f:  # same inode, new content longer than the offset
        f.truncate(0)
        f.write(b"tuesday 1\ntuesday 2\n")
    with make_tailer(tmp_path, [str(log_file)]) as tailer:
        assert lines(tailer.poll(2.0)) == ["tuesday 1", "tuesday 2"]


def test_restart_during_rotation_finishes_the_renamed_file_first(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    append(log_file, "a\n")
    with make_tailer(tmp_path, [str(log_file)]) as tailer:
        assert lines(tailer.poll(1.0)) == ["a"]
    append(log_file, "b\nc\n")  # written while the agent is down, then rotated away
    log_file.rename(tmp_path / "app.log.1")
    append(log_file, "d\n")
    clock = Clock()
    with make_tailer(tmp_path, [str(log_file)]) as tailer:
        result = tailer.poll(clock())
        assert lines(result) == ["b", "c", "d"]
        assert {hit.path for hit in result.hits} == {str(log_file)}  # reported under the log's name
        assert lines(tailer.poll(clock())) == []
        assert [c.ino for c in tailer.cursors()] == [log_file.stat().st_ino]


def test_new_files_under_a_glob_are_read_from_the_start(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text("a1\n")
    with make_tailer(tmp_path, [str(tmp_path / "*.log")]) as tailer:
        assert lines(tailer.poll(1.0)) == ["a1"]
        (tmp_path / "b.log").write_text("b1\nb2\n")
        (tmp_path / "c.txt").write_text("not matched\n")
        append(tmp_path / "a.log", "a2\n")
        result = tailer.poll(2.0)
        assert sorted(lines(result)) == ["a2", "b1", "b2"]
        assert {hit.path for hit in result.hits} == {str(tmp_path / "a.log"), str(tmp_path / "b.log")}


def test_first_ever_start_reads_existing_files_from_the_beginning_by_default(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    append(log_file, "before install\n")
    with make_tailer(tmp_path, [str(log_file)]) as tailer:
        assert lines(tailer.poll(1.0)) == ["before install"]


def test_start_at_end_skips_existing_content_only_at_the_first_ever_start(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    append(log_file, "history 1\nhistory 2\nunfinis")
    glob_path = str(tmp_path / "*.log")
    with make_tailer(tmp_path, [glob_path], start_at_end_for_new_files=True) as tailer:
        assert lines(tailer.poll(1.0)) == []
        append(log_file, "hed\nfresh\n")
        assert lines(tailer.poll(2.0)) == ["fresh"]  # the line we started inside is skipped whole
        (tmp_path / "later.log").write_text("later 1\n")
        assert lines(tailer.poll(3.0)) == ["later 1"]  # appeared after the start: all of it is new
    (tmp_path / "while_down.log").write_text("down 1\n")
    append(log_file, "after restart\n")
    with make_tailer(tmp_path, [glob_path], start_at_end_for_new_files=True) as tailer:
        assert sorted(lines(tailer.poll(4.0))) == ["after restart", "down 1"]


def test_a_line_skipped_at_start_stays_skipped_across_a_restart(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    append(log_file, "history\nunfinis")
    with make_tailer(tmp_path, [str(log_file)], start_at_end_for_new_files=True) as tailer:
        assert lines(tailer.poll(1.0)) == []
    append(log_file, "hed\nfresh\n")
    with make_tailer(tmp_path, [str(log_file)], start_at_end_for_new_files=True) as tailer:
        assert lines(tailer.poll(2.0)) == ["fresh"]


def test_checkpoint_is_valid_json_after_every_poll_and_replaced_atomically(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    state_path = tmp_path / "state" / "log_tail.json"
    with make_tailer(tmp_path, [str(log_file)]) as tailer:
        for i in range(5):
            previous = state_path.open("rb") if state_path.exists() else None
            before = previous.read() if previous else b""
            append(log_file, f"line {i}\npart")
            tailer.poll(float(i))
            body = json.loads(state_path.read_bytes())
            [entry] = body["files"]
            assert entry["offset"] == log_file.stat().st_size - len("part")  # the unfinished line's start
            assert (entry["dev"], entry["ino"]) == (log_file.stat().st_dev, log_file.stat().st_ino)
            assert entry["path"] == str(log_file)
            if previous:
                # The old file is untouched (a reader holding it sees a whole, older checkpoint):
                # the new one was written aside and renamed over it, never rewritten in place.
                previous.seek(0)
                assert previous.read() == before
                assert os.fstat(previous.fileno()).st_ino != state_path.stat().st_ino
                previous.close()
            append(log_file, "ial\n")
    assert [p.name for p in state_path.parent.iterdir()] == ["log_tail.json"]  # no temp files left


def test_corrupt_checkpoint_is_reported_and_treated_as_a_first_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log_file = tmp_path / "app.log"
    append(log_file, "x\n")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "log_tail.json").write_text("{not json")
    with make_tailer(tmp_path, [str(log_file)]) as tailer:
        assert lines(tailer.poll(1.0)) == ["x"]
    assert "event=log_state_corrupt" in caplog.text
    assert state_of(tmp_path)["version"] == 1


def test_a_file_under_two_sources_is_read_once_with_both_rule_sets(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    append(log_file, "ERROR and panic\n")
    sources = [
        LogSource([str(log_file)], [LogRule("error", "ERROR")]),
        LogSource([str(tmp_path / "*.log")], [LogRule("panic", "panic", severity="critical")]),
    ]
    with LogTailer(sources, tmp_path / "state.json") as tailer:
        result = tailer.poll(1.0)
    assert result.counts == {"error": 1, "panic": 1}
    assert sorted((hit.rule, hit.severity, hit.offset) for hit in result.hits) == [
        ("error", "warning", 0),
        ("panic", "critical", 0),
    ]


def test_to_events_builds_contract_events_that_round_trip() -> None:
    hits = [MatchHit("/var/log/app.log", 42, "error", "critical", "ERROR disk full")]
    matches, counts = to_events(hits, {"error": 1, "oom": 0}, "web-1", "eu", 1700.0, 10.0, {"env": "prod"})
    assert matches == [
        LogMatch("web-1", "eu", 1700.0, "/var/log/app.log", 42, "error", "critical", "ERROR disk full", {"env": "prod"})
    ]
    assert counts == LogCounts("web-1", "eu", 1700.0, 10.0, {"error": 1, "oom": 0}, {"env": "prod"})
    assert decode(encode(matches[0])) == matches[0]
    assert decode(encode(counts)) == counts


# -- property: no line lost, none read twice -------------------------------------------------

_PIECES = [b"a", b"x", b"E", b"r", b"R", b"W7", b" ", b"\n", b"\n", "é".encode(), b"\xff", b"\xc3"]
_WRITE = st.tuples(st.just("write"), st.lists(st.sampled_from(_PIECES), max_size=20).map(b"".join))
_OPS = st.lists(
    st.one_of(_WRITE, _WRITE, st.sampled_from([("poll",), ("rotate",), ("truncate",), ("restart",)])),
    max_size=25,
)
# Tailer A has only rules a block of lines can be scanned for at once; B has rules that force
# matching line by line ('$', inline flags): both must see exactly the same lines.
_RULES_A = [ANY, LogRule("err", "err", ignore_case=True), LogRule("w7_or_a", "W7|^a", regex=True)]
_RULES_B = [ANY, LogRule("err", "(?i)err", regex=True), LogRule("x_end", "x$", regex=True)]


def _expected_counts(written: list[bytes]) -> dict[str, dict[str, int]]:
    return {
        "a": {
            "any": len(written),
            "err": sum(b"err" in line.lower() for line in written),
            "w7_or_a": sum(b"W7" in line or line.startswith(b"a") for line in written),
        },
        "b": {
            "any": len(written),
            "err": sum(b"err" in line.lower() for line in written),
            "x_end": sum(line.endswith(b"x") for line in written),
        },
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=_OPS,
    glob_rotated=st.booleans(),
    chunk_bytes=st.sampled_from([1, 5, 64 * 1024]),
    budget_bytes=st.sampled_from([64, 64 * 1024 * 1024]),
)
def test_property_every_written_line_is_matched_exactly_once(
    ops: list[tuple], glob_rotated: bool, chunk_bytes: int, budget_bytes: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        logs = root / "logs"
        logs.mkdir()
        log_file = logs / "app.log"
        log_file.touch()
        # Either only app.log is configured (rotated files are drained, then closed) or the glob
        # also covers the rotated files (they stay tailed under their new names).
        pattern = str(logs / "app.log*") if glob_rotated else str(log_file)

        def new_tailer(name: str, rules: list[LogRule]) -> LogTailer:
            return LogTailer(
                [LogSource([pattern], rules)],
                root / f"state_{name}.json",
                max_line_bytes=4096,
                excerpt_bytes=4096,
                excerpts_per_rule_per_interval=1_000_000,
                read_chunk_bytes=chunk_bytes,  # small reads put line ends anywhere in a read
                max_read_bytes_per_poll=budget_bytes,  # a small budget leaves a backlog across polls
            )

        tailers = {"a": new_tailer("a", _RULES_A), "b": new_tailer("b", _RULES_B)}
        seen: dict[str, list[MatchHit]] = {"a": [], "b": []}
        counts: dict[str, Counter[str]] = {"a": Counter(), "b": Counter()}
        clock = Clock()
        written: list[bytes] = []  # complete lines, as the tailers must report them
        written_bytes = 0
        partial = b""  # the writer's unfinished line
        rotations = 0
        current_file_unseen = True  # by any poll: created since the last one

        def poll() -> None:
            nonlocal current_file_unseen
            now = clock()
            for name, tailer in tailers.items():
                result = tailer.poll(now)
                seen[name] += result.hits
                counts[name].update(result.counts)
            current_file_unseen = False

        def drain() -> None:
            for _ in range(written_bytes // budget_bytes + 3):
                poll()

        for op in ops:
            if op[0] == "write":
                append(log_file, op[1])
                written_bytes += len(op[1])
                *done, partial = (partial + op[1]).split(b"\n")
                written += done
            elif op[0] == "poll":
                poll()
            elif op[0] == "rotate":
                if current_file_unseen:
                    poll()  # a file renamed away before any poll saw it is invisible to any tailer
                rotations += 1
                log_file.rename(logs / f"app.log.{rotations}")
                log_file.touch()
                if partial and not glob_rotated:
                    written.append(partial)  # matched when the renamed file is closed
                partial = b""  # the writer reopens: its next bytes start a line in the new file
                current_file_unseen = True
            elif op[0] == "truncate":
                # copytruncate: lines not read before the truncation live only in the copy, so
                # drain right before; poll right after, since a refill past the old offset
                # with the same first bytes would be invisible.
                drain()
                os.truncate(log_file, 0)
                partial = b""
                poll()
            elif op[0] == "restart":
                for name, rules in (("a", _RULES_A), ("b", _RULES_B)):
                    tailers[name].close()
                    tailers[name] = new_tailer(name, rules)
        if partial:
            append(log_file, b"\n")
            written.append(partial)
        drain()
        for tailer in tailers.values():
            tailer.close()

    want_lines = Counter(line.decode("utf-8", "replace") for line in written)
    expected = _expected_counts(written)
    for name in ("a", "b"):
        assert Counter(hit.excerpt for hit in seen[name] if hit.rule == "any") == want_lines
        assert dict(counts[name]) == expected[name]
        assert Counter(hit.rule for hit in seen[name]) == Counter(expected[name])
