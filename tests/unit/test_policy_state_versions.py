"""Stored state says which layout it has; one alert identity and one label set for every alert kind."""

from __future__ import annotations

import math

import orjson
import pytest

from collector.contract import Alert
from policies.alerts import ALERT_FIELDS, alert_event_id, downcheck_alert, event_id, labels_of
from policies.downcheck import DownNotice
from policies.engine import HostState
from policies.group import GroupState
from policies.lifecycle import STATE_VERSION, AlertState, Notice, StateVersionError, stored_version

# What workers wrote before stored state carried a version: alert states of 9 items (before
# seen_at was kept) and of 10, schedules of 3 items (before the group was kept) and of 4.
LEGACY_HOST = {
    "w": {},
    "a": {
        "cpu": {
            "old": ["firing", "warning", 1.0, 2.0, 3.0, "warning", 1.0, 4.0, []],
            "new": ["pending", "critical", 5.0, 6.0, 7.0, "", 0.0, 0.0, [5.0], 8.0],
        }
    },
    "s": {"nightly": [10.0, None, ["pending", "", 0.0, 0.0, 0.0, "", 0.0, 0.0, []]]},
}
LEGACY_GROUP = {
    "h": {"a": [1.0, 2.0]},
    "a": ["firing", "warning", 1.0, 2.0, 3.0, "warning", 1.0, 4.0, []],
    "n": 5.0,
    "l": None,
}


def test_legacy_host_state_is_read_by_its_old_shapes() -> None:
    state = HostState.from_bytes(orjson.dumps(LEGACY_HOST))
    assert state.alerts["cpu"]["old"].seen_at == -math.inf  # never seen: never skipped
    assert state.alerts["cpu"]["new"].seen_at == 8.0
    assert state.schedules["nightly"].group == ""
    assert state.schedules["nightly"].missed.phase == "pending"


def test_legacy_group_state_has_been_watching_long_enough() -> None:
    state = GroupState.from_bytes(orjson.dumps(LEGACY_GROUP))
    assert state.since == -math.inf and state.alert.seen_at == -math.inf and state.hosts == {"a": [1.0, 2.0]}


def test_stored_state_carries_the_current_version() -> None:
    host = HostState(alerts={"cpu": {"r": AlertState("firing", "warning", 1.0, 2.0, 3.0, seen_at=9.0)}})
    assert orjson.loads(host.to_bytes())["v"] == STATE_VERSION
    assert orjson.loads(GroupState(now=1.0).to_bytes())["v"] == STATE_VERSION
    assert HostState.from_bytes(host.to_bytes()) == host


def test_a_current_alert_state_is_read_by_position_not_by_length() -> None:
    # Version 1 always has seen_at: a short list there is damage, not an old layout.
    body = {"v": 1, "w": {}, "a": {"cpu": {"r": ["firing", "warning", 1.0, 2.0, 3.0, "", 0.0, 0.0, []]}}, "s": {}}
    with pytest.raises(IndexError):
        HostState.from_bytes(orjson.dumps(body))


@pytest.mark.parametrize("version", [STATE_VERSION + 1, -1, "1", 1.5])
def test_state_of_an_unknown_version_is_refused_with_what_to_do(version: object) -> None:
    with pytest.raises(StateVersionError, match="upgrade this worker"):
        stored_version({"v": version})
    with pytest.raises(StateVersionError):
        HostState.from_bytes(orjson.dumps({**LEGACY_HOST, "v": version}))
    with pytest.raises(StateVersionError):
        GroupState.from_bytes(orjson.dumps({**LEGACY_GROUP, "v": version}))


def test_rule_and_downcheck_alerts_share_one_identity_recipe() -> None:
    rule = Notice("firing", "warning", 50, 60.0, 1.0, 2.0)
    assert event_id("fp", rule) == alert_event_id("fp", "firing", "warning", 50.0, 60)
    down = DownNotice("host_down", "firing", "r1", "h1", 70.0, "silent")
    alert = downcheck_alert(down, 65)
    assert alert.event_id == alert_event_id(down.fingerprint, "firing", "critical", 65.0, 70.0)
    assert alert.event_id != alert_event_id(down.fingerprint, "resolved", "critical", 65.0, 70.0)


def test_labels_of_an_alert_are_its_labels_and_its_label_fields() -> None:
    alert = Alert(
        fingerprint="fp",
        rule="cpu_high",
        state="firing",
        severity="critical",
        host_id="h1",
        region="eu",
        metric="cpu_pct",
        value=95.0,
        threshold=90.0,
        started_at=1.0,
        at=2.0,
        summary="hot",
        event_id="e",
        labels={"team": "db", "region": "spoofed"},
        kind="host",
    )
    labels = labels_of(alert)
    assert set(labels) == ALERT_FIELDS | {"team"}
    assert labels["region"] == "eu" and labels["team"] == "db" and labels["rule"] == "cpu_high"
    down = downcheck_alert(DownNotice("group_unreachable", "firing", "r1", "", 1.0, "cut", group="zone=a"), 1.0)
    assert labels_of(down)["group"] == "zone=a" and labels_of(down)["rule"] == "group_unreachable"
