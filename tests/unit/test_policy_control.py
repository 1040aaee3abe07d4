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
