"""Bad input, report parameters (and the other numbers of the command line): whatever
``--since``/``--until``/``--step``/``--limit`` (or a sink tunable, a timeout) say, the parser
accepts a bounded value or it is a usage error (exit 2); ``parse_when`` raises only ValueError."""

from __future__ import annotations

import contextlib
import io
import math
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetpulse.cli import build_parser
from policies.model import MAX_DURATION_S
from sinks.reports import parse_when
from tests.bad_input import hostile_numbers, hostile_text, only

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
_when = st.one_of(
    hostile_text,
    st.builds(
        lambda n, unit: f"{n}{unit}",
        st.one_of(st.integers(0, 10**30), st.floats(min_value=0, allow_nan=False, allow_infinity=False)),
        st.sampled_from(["ms", "s", "m", "h", "d", "w", "y", ""]),
    ),
    st.datetimes(timezones=st.none() | st.just(UTC)).map(datetime.isoformat),
    st.sampled_from(["now", " now ", "24h", "9999-12-31T23:59:59", "0001-01-01", "99999999999d", "1e999d"]),
)


def _parse(args: list[str]) -> object | None:
    """The parsed namespace, or None when the parser refused ``args`` with a usage error (exit 2)."""
    with contextlib.redirect_stderr(io.StringIO()) as err:
        try:
            return build_parser().parse_args(args)
        except SystemExit as exit:
            assert exit.code == 2 and "usage:" in err.getvalue(), (exit.code, err.getvalue())
            return None


@settings(max_examples=300, deadline=None)
@given(_when)
def test_parse_when_returns_a_time_within_the_bounds_or_raises_value_error(text: str) -> None:
    with only(ValueError):
        when = parse_when(text, NOW)
        assert isinstance(when, datetime) and when.tzinfo is not None
        if re.fullmatch(r"\d+(?:\.\d+)?\s*[a-z]+", text.strip()):  # a duration back from now: bounded
            assert NOW - timedelta(seconds=MAX_DURATION_S) <= when <= NOW


@settings(max_examples=200, deadline=None)
@given(
    since=_when,
    until=_when,
    step=st.one_of(hostile_text, hostile_numbers.map(str)),
    limit=st.one_of(hostile_text, hostile_numbers.map(str)),
)
def test_report_parameters_parse_to_bounded_values_or_are_a_usage_error(
    since: str, until: str, step: str, limit: str
) -> None:
    for args in (["--since", since], ["--until", until], ["--step", step], ["--limit", limit]):
        if args[1].startswith("-") or "\x00" in args[1]:
            args = [f"{args[0]}={args[1]}"]
        parsed = _parse(["query", "--report", "fleet-overview", *args])
        if parsed is None:
            continue
        assert 1 <= parsed.step <= MAX_DURATION_S and (parsed.limit is None or 1 <= parsed.limit <= 1_000_000)
        parse_when(parsed.since, NOW), parse_when(parsed.until, NOW)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(
        [
            ["sink", "--batch-rows"],
            ["sink", "--batch-wait"],
            ["sink", "--session-timeout"],
            ["sink", "--raw-ttl-days"],
            ["worker", "--session-timeout"],
            ["worker", "--partitions"],
            ["agent", "--interval"],
        ]
    ),
    st.one_of(hostile_text, hostile_numbers.map(str), st.sampled_from(["nan", "inf", "-inf", "-5", "0", "1e400"])),
)
def test_every_number_of_the_command_line_is_positive_and_finite_or_a_usage_error(
    command: list[str], value: str
) -> None:
    parsed = _parse([*command[:-1], f"{command[-1]}={value}"])
    if parsed is None:
        return
    number = getattr(parsed, command[-1].lstrip("-").replace("-", "_"))
    assert math.isfinite(number) and (number > 0 or (command[-1] == "--raw-ttl-days" and number == 0)), number


@pytest.mark.parametrize("value", ["99999999999d", "1e999d", "401d"])
def test_a_window_beyond_400_days_is_a_usage_error_not_an_overflow(value: str) -> None:
    assert _parse(["query", "--report", "fleet-overview", "--since", value]) is None
