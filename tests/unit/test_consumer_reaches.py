"""The worker's reaches into Faust and aiokafka (``streams.consumer``) on an app never started.

No broker: what is checked is how each reach behaves when what it reaches for is not there.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from streams.consumer import App, Fallbacks, assigned_partitions, fetch_reports


def _app(tmp_path: Path) -> App:
    return App("t", broker="kafka://localhost:1", store="memory://", datadir=str(tmp_path), autodiscover=False)


def test_without_a_started_consumer_fetch_reports_fall_back_to_the_wall_clock_and_say_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = _app(tmp_path)
    fallbacks = Fallbacks()  # the process's fallbacks taken so far: none
    first, second = fetch_reports(app, "heartbeats", fallbacks), fetch_reports(app, "other", fallbacks)
    with caplog.at_level(logging.WARNING, logger="streams.consumer"):
        assert [first(0), first(1), first(0), second(3)] == [None, None, None, None]
    assert [r.getMessage() for r in caplog.records] == [
        "event=fetch_reports_unavailable reason='ConsumerNotStarted: Consumer thread not yet started'"
        " fallback=wall_clock"
    ]
    assert fallbacks.taken == {"fetch_reports_unavailable"}


def test_an_app_not_assigned_anything_has_no_partitions_of_any_topic(tmp_path: Path) -> None:
    assert assigned_partitions(_app(tmp_path), "heartbeats") == frozenset()
