"""Control records (published policy sets, silences) and command-line matchers."""

from __future__ import annotations

import contextlib

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.control import (
    ControlError,
    PublishedPolicy,
    decode_silence,
    encode_silence,
    format_matcher,
    new_silence,
    parse_matcher,
)
from policies.model import LabelMatch, Silence


@pytest.mark.parametrize(
    ("text", "label", "op", "value"),
    [
        ("env=prod", "env", "=", "prod"),
        ("env != prod", "env", "!=", "prod"),
        ("host_id=~web-[0-9]+", "host_id", "=~", "web-[0-9]+"),
        ("rule!~disk_.*", "rule", "!~", "disk_.*"),
        ("team=", "team", "=", ""),  # the label is missing or empty
        ("a.b=x=y", "a.b", "=", "x=y"),
    ],
)
def test_parse_matcher(text: str, label: str, op: str, value: str) -> None:
    m = parse_matcher(text)
    assert (m.label, m.op, m.value) == (label, op, value)


@pytest.mark.parametrize("text", ["", "env", "=prod", "1abc=x", "env~prod", "env=~(unclosed", "env!~[z-a]"])
def test_unreadable_matchers_raise_control_error_saying_why(text: str) -> None:
    with pytest.raises(ControlError) as info:
        parse_matcher(text)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize("text", ["env=prod", "env!=prod", "host_id=~web-.*", "rule!~disk"])
def test_format_matcher_is_the_inverse_of_parse_matcher(text: str) -> None:
    m = parse_matcher(text)
    assert format_matcher(m) == text and parse_matcher(format_matcher(m)) == m


def test_format_matcher_shows_set_conditions() -> None:
    assert format_matcher(LabelMatch("tier", "in", values=("web", "api"))) == "tier in (web, api)"
    assert format_matcher(LabelMatch("tier", "not in", values=("db",))) == "tier not in (db)"


def test_matchers_match_like_prometheus() -> None:
    assert parse_matcher("env=~prod|staging").matches({"env": "staging"})
    assert not parse_matcher("env=~prod").matches({"env": "production"})  # anchored
    assert parse_matcher("env!=prod").matches({})  # a missing label is ""
    assert parse_matcher("env=").matches({})


def test_silence_records_round_trip() -> None:
    silence = Silence(
        "abc123",
        (
            LabelMatch("rule", "=", "cpu_hot"),
            LabelMatch("host_id", "=~", "web-.*"),
            LabelMatch("tier", "in", values=("web", "api")),
            LabelMatch("env", "not in", values=("dev",)),
            LabelMatch("zone", "!~", "b"),
            LabelMatch("team", "!=", "db"),
        ),
        1000.5,
        4600.5,
        "alice",
        "deploy of web ✓",
    )
    assert decode_silence(encode_silence(silence)) == silence


def test_new_silence_lasts_its_duration_from_its_start() -> None:
    silence = new_silence([parse_matcher("rule=x")], 600.0, "why", "bob", start=1000.0)
    assert (silence.starts_at, silence.ends_at, silence.created_by, silence.comment) == (1000.0, 1600.0, "bob", "why")
    assert silence.active(1000.0) and silence.active(1599.9) and not silence.active(1600.0)
    assert not silence.active(999.0)
    other = new_silence([parse_matcher("rule=x")], 600.0, start=1000.0)
    assert other.id != silence.id and len(silence.id) == 12


def test_a_silence_needs_a_matcher_and_a_positive_duration() -> None:
    with pytest.raises(ControlError, match="at least one matcher"):
        new_silence([], 60.0)
    with pytest.raises(ControlError, match="duration > 0"):
        new_silence([parse_matcher("a=b")], 0.0)


GOOD = {"id": "s", "matchers": [["a", "=", "b", []]], "starts_at": 0, "ends_at": 10}


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"null",
        b"[]",
        b'"text"',
        orjson.dumps({**GOOD, "matchers": [["a", "~", "b", []]]}),  # unknown operator
        orjson.dumps({**GOOD, "matchers": [["a", "=~", "(", []]]}),  # a regex that does not compile
        orjson.dumps({**GOOD, "matchers": [["a", "="]]}),  # too short
        orjson.dumps({**GOOD, "matchers": "a=b"}),
        orjson.dumps({**GOOD, "matchers": [["a", "in", "", None]]}),
        orjson.dumps({**GOOD, "starts_at": "soon"}),
        orjson.dumps({k: v for k, v in GOOD.items() if k != "ends_at"}),
        orjson.dumps({k: v for k, v in GOOD.items() if k != "id"}),
    ],
)
def test_bad_silence_records_raise_control_error(raw: bytes) -> None:
    with pytest.raises(ControlError, match="unreadable silence record"):
        decode_silence(raw)


def test_a_minimal_silence_record_decodes() -> None:
    silence = decode_silence(orjson.dumps(GOOD))
    assert silence == Silence("s", (LabelMatch("a", "=", "b"),), 0.0, 10.0)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "id": _json,
            "matchers": st.lists(st.lists(_json, max_size=5), max_size=3) | _json,
            "starts_at": _json,
            "ends_at": _json,
            "created_by": _json,
            "comment": _json,
        },
    )
)
def test_silence_decoding_raises_nothing_but_control_error(body: dict[str, object]) -> None:
    with contextlib.suppress(ControlError):
        decode_silence(orjson.dumps(body))


def test_published_policy_round_trips_and_bad_records_raise_control_error() -> None:
    published = PublishedPolicy({"a.yaml": "rules: []\n"}, "v1", 12.5, "carol")
    assert PublishedPolicy.decode(published.encode()) == published
    for raw in (
        b"{}",
        b"nope",
        b"null",
        orjson.dumps({"files": {"a": 1}, "version": "v", "applied_at": 1}),
        orjson.dumps({"files": [], "version": "v", "applied_at": 1}),
        orjson.dumps({"files": {}, "version": "v", "applied_at": "later"}),
    ):
        with pytest.raises(ControlError):
            PublishedPolicy.decode(raw)


# --- records that used to escape validation (security review) --------------------------------


def test_a_silence_of_999_9_hours_is_refused_instead_of_lasting_forever() -> None:
    from policies.model import parse_duration

    with pytest.raises(ValueError, match="maximum of 400d"):
        parse_duration("9" * 400 + "h")
    for duration_s in (float("inf"), float("nan"), 401 * 86400.0):
        with pytest.raises(ControlError):
            new_silence([parse_matcher("a=b")], duration_s)
    with pytest.raises(ControlError, match="end before 2286"):
        new_silence([parse_matcher("a=b")], 3600.0, start=1e12)


@pytest.mark.parametrize("end", [None, 1e300, -1, "inf", True])
def test_a_silence_record_with_an_end_no_clock_reaches_is_unreadable(end: object) -> None:
    """An infinite end used to be written as null: every later read of the topic failed."""
    with pytest.raises(ControlError, match="unreadable silence record"):
        decode_silence(orjson.dumps({**GOOD, "ends_at": end}))


def test_a_policy_record_applied_at_an_impossible_time_is_unreadable() -> None:
    for at in (1e300, -5, None, "inf"):
        with pytest.raises(ControlError, match="unreadable policy record"):
            PublishedPolicy.decode(orjson.dumps({"files": {}, "version": "v", "applied_at": at}))


def test_matcher_regexes_are_re2_so_backreferences_are_a_control_error() -> None:
    with pytest.raises(ControlError, match="bad regex"):
        parse_matcher("host_id=~(a)\\1")
    assert not parse_matcher("role=~(a+)+$").matches({"role": "a" * 50_000 + "!"})
    with pytest.raises(ControlError, match="unreadable silence record"):
        decode_silence(orjson.dumps({**GOOD, "matchers": [["a", "=~", "(?=x)", []]]}))


def test_silence_list_and_expire_skip_one_unreadable_record_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from fleetpulse import control as ctl
    from fleetpulse.cli import main

    good = new_silence([parse_matcher("rule=cpu_hot")], 3600.0, "upgrade", "bob")
    topic = {
        good.id.encode(): encode_silence(good),
        b"broken": orjson.dumps({**GOOD, "id": "broken", "ends_at": None}),  # what an infinite end became
    }
    written: list[tuple[bytes, bytes | None]] = []

    async def nothing(*args: object) -> None:
        return None

    async def read_latest(bootstrap: str, name: str) -> dict[bytes, bytes | None]:
        return dict(topic)

    async def produce(bootstrap: str, name: str, key: bytes, value: bytes | None, signer: object = None) -> None:
        written.append((key, value))

    monkeypatch.setattr(ctl, "ensure_all_topics", nothing)
    monkeypatch.setattr(ctl, "read_latest", read_latest)
    monkeypatch.setattr(ctl, "_produce", produce)
    assert main(["silence", "list"]) == 0
    listed = capsys.readouterr().out
    assert listed.startswith(f"{good.id}  active") and "broken" not in listed
    assert "event=silence_unreadable id=broken" in caplog.text
    assert main(["silence", "expire", good.id]) == 0
    assert written[-1][0] == good.id.encode() and decode_silence(written[-1][1] or b"").ends_at <= good.ends_at
    assert main(["silence", "expire", "broken"]) == 0  # the unreadable record is removed: a tombstone
    assert written[-1] == (b"broken", None)
    assert "removed unreadable silence record broken" in capsys.readouterr().out
