"""A ClickHouse target as it may appear in a log line."""

from __future__ import annotations

from sinks.clickhouse import redacted


def test_a_password_in_the_url_is_replaced() -> None:
    shown = redacted("http://fleet:s3cr3t@db.example:8123/?database=fp")
    assert "s3cr3t" not in shown
    assert shown == "http://fleet:***@db.example:8123/?database=fp"


def test_a_url_without_a_password_is_shown_as_it_is() -> None:
    for target in ("chdb:///var/lib/fleetpulse/clickhouse", "http://db.example:8123", "https://fleet@db:8443"):
        assert redacted(target) == target
