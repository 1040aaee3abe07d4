"""Bad input, the control records (silences and published policy sets) and command-line matchers:
whatever a record or a matcher holds, reading it raises nothing but ControlError, and what
does read can be shown (times a calendar holds) and matched in linear time."""

from __future__ import annotations

import time
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
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
from tests.bad_input import hostile_numbers, hostile_text, json_values, mutations, only

SILENCE: dict[str, Any] = {
    "id": "abc",
    "matchers": [["rule", "=", "cpu_hot", []], ["host_id", "=~", "web-.*", []], ["tier", "in", "", ["a", "b"]]],
    "starts_at": 1_700_000_000.0,
    "ends_at": 1_700_003_600.0,
    "created_by": "alice@h",
    "comment": "upgrade",
}
POLICY: dict[str, Any] = {"files": {"a.yaml": "rules: []\n"}, "version": "v1", "applied_at": 1.5, "applied_by": "bob"}
_hostile = st.one_of(json_values, hostile_text.filter(lambda t: "\ud800" not in t), hostile_numbers)


def _json(body: Any) -> bytes:
    try:
        return orjson.dumps(body)
    except TypeError:  # ints beyond 64 bits: written by hand as JSON allows
        return repr(body).encode()


def _shown(starts_at: float, ends_at: float) -> None:
    """What ``silence list`` does with a record's times."""
    for moment in (starts_at, ends_at):
        time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(moment))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations(SILENCE, _hostile))
def test_any_silence_record_reads_and_shows_or_is_a_control_error(body: dict[str, Any]) -> None:
    with only(ControlError):
        silence = decode_silence(_json(body))
        _shown(silence.starts_at, silence.ends_at)
        assert decode_silence(encode_silence(silence)) == silence
        for matcher in silence.matchers:
            matcher.matches({matcher.label: "a" * 10_000 + "!"})


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_hostile, max_size=5), max_size=3))
def test_any_matcher_list_of_a_silence_record_reads_or_is_a_control_error(matchers: list[list[Any]]) -> None:
    with only(ControlError):
        decode_silence(_json({**SILENCE, "matchers": matchers}))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations(POLICY, _hostile))
def test_any_policy_record_reads_and_shows_or_is_a_control_error(body: dict[str, Any]) -> None:
    with only(ControlError):
        published = PublishedPolicy.decode(_json(body))
        _shown(published.applied_at, published.applied_at)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=300), json_values.map(orjson.dumps)))
def test_arbitrary_bytes_are_control_errors_for_both_record_kinds(raw: bytes) -> None:
    with only(ControlError):
        decode_silence(raw)
    with only(ControlError):
        PublishedPolicy.decode(raw)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        hostile_text,
        st.builds(
            lambda label, op, value: f"{label}{op}{value}",
            st.sampled_from(["rule", "host_id", "a.b", "_x", "9bad", ""]),
            st.sampled_from(["=", "!=", "=~", "!~", "==", "~"]),
            hostile_text,
        ),
    )
)
def test_any_command_line_matcher_parses_and_matches_in_linear_time_or_is_a_control_error(text: str) -> None:
    with only(ControlError):
        matcher = parse_matcher(text)
        assert format_matcher(matcher)
        matcher.matches({matcher.label: "a" * 20_000 + "!"})


@settings(max_examples=150, deadline=None)
@given(hostile_numbers, st.one_of(st.none(), hostile_numbers))
def test_a_new_silence_of_any_duration_and_start_is_stored_or_a_control_error(duration: Any, start: Any) -> None:
    with only(ControlError):
        silence = new_silence([parse_matcher("rule=x")], duration, start=start)
        _shown(silence.starts_at, silence.ends_at)
        assert decode_silence(encode_silence(silence)) == silence
