"""The worker's wiring (``streams.app``, ``streams.context`` and its stages), built without a broker.

Table names define changelog topic names and agents are subscribed by topic: the app a
worker builds must keep both, whichever module a stage lives in.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

import orjson
import pytest

from collector.contract import Alert, Heartbeat, Topics, encode
from policies.alerts import labels_of
from policies.control import parse_matcher
from policies.lifecycle import Announced
from policies.model import PolicySet, Silence
from streams.app import WorkerSettings, create_app, new_app
from streams.context import WorkerContext, announced_in
from streams.downcheck import BEHIND_S, DownCheckStage
from streams.evaluation import EvaluationStage
from streams.group_rules import GroupRuleStage


def _settings(tmp_path: Path) -> WorkerSettings:
    return WorkerSettings(bootstrap="localhost:1", topics=Topics(), policy=PolicySet(), datadir=tmp_path)


def _context(tmp_path: Path) -> WorkerContext:
    return create_app(_settings(tmp_path))


def _bare_context(tmp_path: Path) -> WorkerContext:
    """A context no stage was installed in yet (a stage's tables are created once per app)."""
    settings = _settings(tmp_path)
    return WorkerContext(settings, new_app(settings))


def _alert(state: str = "firing", **fields: object) -> Alert:
    body: dict[str, object] = {
        "fingerprint": "fp1",
        "rule": "host_down",
        "state": state,
        "severity": "critical",
        "host_id": "h1",
        "region": "eu",
        "metric": "heartbeat",
        "value": 1.0,
        "threshold": 0.0,
        "started_at": 100.0,
        "at": 110.0,
        "summary": "down",
        "event_id": "e1",
        "kind": "downcheck",
        "labels": {"group": "zone=a"},
    }
    body.update(fields)
    return Alert(**body)  # type: ignore[arg-type]


def test_the_worker_app_keeps_its_table_changelog_and_agent_names(tmp_path: Path) -> None:
    app = _context(tmp_path).app
    assert list(app.tables) == ["fired", "hosts", "groups", "beats", "downcheck"]
    assert sorted(t.changelog_topic.get_topic_name() for t in app.tables.values()) == [
        "fleetpulse-worker-beats-changelog",
        "fleetpulse-worker-downcheck-changelog",
        "fleetpulse-worker-groups-changelog",
        "fleetpulse-worker-hosts-changelog",
        "fleetpulse.alerts",  # fired's changelog is the alert topic
    ]
    assert {name: sorted(agent.channel.topics) for name, agent in app.agents.items()} == {
        "streams.app.evaluate": ["fleetpulse.logs", "fleetpulse.metrics", "fleetpulse.processes"],
        "streams.app.evaluate_groups": ["fleetpulse.group-samples"],
        "streams.downcheck.watch": ["fleetpulse.heartbeats"],
        "streams.downcheck.correlate": ["fleetpulse.downcheck"],
    }
    # Faust lists an app's tasks and timers nowhere public (read from faust-streaming 0.15.3)
    assert sorted(task.__name__ for task in app._app_tasks) == ["announce", "deadlines", "report"]


def test_every_table_and_agent_topic_carries_raw_bytes(tmp_path: Path) -> None:
    app = _context(tmp_path).app
    for table in app.tables.values():
        assert (table.key_serializer, table.value_serializer, table.partitions) == ("raw", "raw", 8)
    for agent in app.agents.values():
        assert (agent.channel.key_serializer, agent.channel.value_serializer) == ("raw", "raw")


def test_the_policy_holder_reads_what_was_announced_from_fired_from_its_construction(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    assert ctx.holder.evaluator.announced == ctx.announced
    assert ctx.announced("never-fired") is None


def test_a_fired_record_reads_back_as_what_was_announced(caplog: pytest.LogCaptureFixture) -> None:
    assert announced_in(encode(_alert())) == Announced("critical", 100.0, 110.0)
    assert announced_in(encode(_alert("resolved", fingerprint="fp2"))) == Announced("", 100.0, 110.0)
    with caplog.at_level(logging.WARNING, logger="streams.context"):
        assert announced_in(b"not an alert") is None
    assert "event=foreign_alert_record reason=unreadable" in caplog.text


def test_silences_and_inhibition_see_a_downcheck_alerts_fields_and_labels(tmp_path: Path) -> None:
    alert = _alert()
    assert labels_of(alert) == {
        "group": "zone=a",
        "rule": "host_down",
        "kind": "downcheck",
        "severity": "critical",
        "host_id": "h1",
        "region": "eu",
        "metric": "heartbeat",
    }
    spoofed = dataclasses.replace(alert, labels={"host_id": "label", "team": "db"})
    assert labels_of(spoofed)["host_id"] == "h1" and labels_of(spoofed)["team"] == "db"  # the fields win
    holder = _context(tmp_path).holder
    holder.suppressor.put_silence(Silence("s1", (parse_matcher("host_id=h2"),), 0.0, 1000.0), "s1")
    assert holder.muted(alert) is None
    holder.suppressor.put_silence(Silence("s2", (parse_matcher("group=zone=a"),), 0.0, 1000.0), "s2")
    assert holder.muted(alert) == "silence:s2"  # a zone's group alert is silenced by its group
    holder.suppressor.put_silence(Silence("s2", (parse_matcher("host_id=h1"),), 0.0, 1000.0), "s2")
    assert holder.muted(alert) == "silence:s2"


def test_a_group_record_that_does_not_read_is_counted_and_retiring_an_unknown_rule_does_nothing(
    tmp_path: Path,
) -> None:
    ctx = _bare_context(tmp_path)
    stage = GroupRuleStage(ctx)
    asyncio.run(stage.on_record(b"{"))
    asyncio.run(stage.on_record(orjson.dumps({"retire": "cpu_group"})))  # no metric: unreadable too
    assert ctx.stats.malformed == 2
    asyncio.run(stage.on_record(orjson.dumps({"retire": "cpu_group", "metric": "cpu_pct"})))
    assert ctx.stats.malformed == 2
    assert ctx.stats.alerts == 0


def test_only_evaluated_event_types_reach_the_policy_and_malformed_ones_are_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = _bare_context(tmp_path)
    stage = EvaluationStage(ctx)
    with caplog.at_level(logging.WARNING, logger="streams.evaluation"):
        assert stage.decoded(b"garbage") is None
    assert ctx.stats.malformed == 1
    assert "event=malformed_record" in caplog.text
    assert stage.decoded(encode(Heartbeat("h1", "eu", "b1", 1, 100.0, 5.0, "test"))) is None
    assert ctx.stats.malformed == 1


def test_a_worker_reading_heartbeats_late_says_so_once_and_once_when_caught_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = _bare_context(tmp_path)
    stage = DownCheckStage(ctx)
    with caplog.at_level(logging.WARNING, logger="streams.downcheck"):
        for lag_s in (1.0, BEHIND_S + 1, BEHIND_S + 5, 2.0, 1.0):
            stage.note_lag(lag_s)
    assert [r.getMessage().split()[0] for r in caplog.records] == [
        "event=heartbeats_behind",
        "event=heartbeats_caught_up",
    ]
    assert ctx.stats.heartbeat_lag_s == 1.0
