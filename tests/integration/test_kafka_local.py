"""The local broker from Maven jars: idempotent start, status, clean stop."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fleetpulse.kafka_local import LocalKafka, default_home
from fleetpulse.ports import free_port_pair

pytestmark = pytest.mark.integration


@pytest.mark.skipif(bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS")), reason="a broker is given; none is started")
def test_start_is_idempotent_and_stop_ends_the_broker(tmp_path: Path) -> None:
    kafka = LocalKafka(tmp_path, port=free_port_pair(), jar_cache=default_home() / "kafka")
    try:
        assert kafka.start(timeout_s=180) is True
        pid = kafka.pid()
        assert pid is not None and kafka.is_ready()
        assert kafka.start() is False  # already answering: nothing started
        assert kafka.pid() == pid
        assert "Kafka Server started" in kafka.log_path.read_text()
    finally:
        assert kafka.stop() is True
    assert kafka.pid() is None and not kafka.is_ready()
    assert kafka.stop() is False
