"""Canned reports: one SQL definition rendered for the command line and for Grafana."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from sinks.reports import PLACEHOLDERS, REPORTS, cli_sql, get_report, grafana_sql, parse_when
from tests.cli import fleetpulse

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_windows_are_durations_back_from_now_or_iso_times() -> None:
    assert parse_when("now", NOW) == NOW
    assert parse_when("24h", NOW) == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert parse_when("90m", NOW) == datetime(2026, 11, 25, 10, 30, tzinfo=UTC)
    assert parse_when("7d", NOW) == datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
    assert parse_when("2026-11-01T06:00", NOW) == datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="ISO time"):
        parse_when("yesterday", NOW)


@pytest.mark.parametrize("report", REPORTS, ids=[r.name for r in REPORTS])
def test_every_placeholder_is_bound_on_the_command_line_and_a_macro_in_grafana(report: object) -> None:
    cli, panel = cli_sql(report), grafana_sql(report)  # type: ignore[arg-type]
    for placeholder in PLACEHOLDERS:
        assert placeholder not in cli and placeholder not in panel
    assert set(re.findall(r"\{(\w+):", cli)) <= {"since", "until", "limit", "step_s"}
    assert "{since:DateTime64(3)}" in cli and "$__fromTime" in panel and "$__toTime" in panel


def test_unknown_report_names_the_ones_there_are() -> None:
    with pytest.raises(ValueError, match="fleet-overview"):
        get_report("nope")


def test_query_needs_sql_or_a_report_and_lists_the_reports() -> None:
    both = fleetpulse("query", "SELECT 1", "--report", "fleet-overview")
    assert both.returncode == 2 and "either SQL or --report" in both.stderr
    unknown = fleetpulse("query", "--report", "nope")
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr
    bad_window = fleetpulse("query", "--report", "fleet-overview", "--since", "last tuesday")
    assert bad_window.returncode == 2 and "ISO time" in bad_window.stderr
    helped = fleetpulse("query", "--help")
    assert helped.returncode == 0
    for report in REPORTS:
        assert report.name in helped.stdout


def test_a_since_of_99999999999_days_is_a_usage_error_not_an_overflow() -> None:
    with pytest.raises(ValueError, match="maximum of 400d"):
        parse_when("99999999999d", NOW)
    assert parse_when("400d", NOW) == NOW - timedelta(days=400)
    for args in (["--since", "99999999999d"], ["--until", "1e400d"], ["--step", "0"], ["--limit", "-1"]):
        done = fleetpulse("query", "--report", "fleet-overview", *args)
        assert done.returncode == 2 and "usage:" in done.stderr and "Traceback" not in done.stderr, done.stderr
