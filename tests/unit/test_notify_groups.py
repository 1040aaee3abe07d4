"""Aggregation groups: Alertmanager's group_wait / group_interval / repeat_interval, resolutions,
mute and active intervals, notification ids and a state that survives a restart."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.contract import Alert
from sinks.notify.config import RouteConfig, parse_matcher
from sinks.notify.groups import STATE_VERSION, Flush, Groups, StateError
from sinks.notify.intervals import CalendarWindow, TimeInterval
from sinks.notify.routes import Route, build_tree
from tests.bad_input import mutations, only
from tests.notify_alerts import alert

WAIT, INTERVAL, REPEAT = 30.0, 300.0, 3600.0
T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC).timestamp()  # a Monday noon


def tree(**route: Any) -> Route:
    intervals = {k: route.pop(k) for k in ("mute_time_intervals", "active_time_intervals") if k in route}
    if intervals:  # the root takes none: a child that takes every alert does
        route["routes"] = (RouteConfig(matchers=(parse_matcher('rule=~".+"'),), **intervals),)
    return build_tree(
        RouteConfig(
            receiver="ops",
            group_by=("rule",),
            group_wait_s=WAIT,
            group_interval_s=INTERVAL,
            repeat_interval_s=REPEAT,
            **route,
        )
    )


def groups(send_resolved: bool = True, intervals: dict[str, TimeInterval] | None = None, **route: Any) -> Groups:
    return Groups(tree(**route), lambda receiver: send_resolved, intervals)


def fire(fp: str, t: float, **fields: Any) -> Alert:
    return alert(fp, started_at=t, **fields)


def resolve(fp: str, started: float, t: float, **fields: Any) -> Alert:
    return alert(fp, "resolved", started_at=started, at=t, **fields)


def said(flushes: list[Flush]) -> list[tuple[float, list[tuple[str, str]]]]:
    return [(f.at, [(a.fingerprint, a.state) for a in f.alerts]) for f in flushes]


def run(g: Groups, until: float, step: float = 1.0, start: float = T0) -> list[Flush]:
    """Every flush from ``start`` to ``until``, asking every ``step`` seconds (a notifier's loop)."""
    out, t = [], start
    while t <= until:
        out.extend(g.due(t))
        t += step
    return out


# --- the timers -----------------------------------------------------------------------------------


def test_the_first_notification_waits_group_wait_and_gathers_the_group() -> None:
    g = groups()
    g.ingest(fire("a", T0), T0)
    g.ingest(fire("b", T0 + 10), T0 + 10)
    assert g.due(T0 + WAIT - 1) == []
    assert said(g.due(T0 + WAIT)) == [(T0 + WAIT, [("a", "firing"), ("b", "firing")])]


def test_an_alert_joining_after_the_first_notification_waits_for_the_group_interval() -> None:
    g = groups()
    g.ingest(fire("a", T0), T0)
    g.due(T0 + WAIT)
    g.ingest(fire("b", T0 + 40), T0 + 40)
    assert run(g, T0 + WAIT + INTERVAL - 1, start=T0 + 41) == []
    assert said(g.due(T0 + WAIT + INTERVAL)) == [(T0 + WAIT + INTERVAL, [("a", "firing"), ("b", "firing")])]


def test_an_unchanged_firing_group_is_sent_again_after_the_repeat_interval() -> None:
    g = groups()
    g.ingest(fire("a", T0), T0)
    flushes = run(g, T0 + 8000, step=10.0)
    # ticks every 300s from T0+30; a repeat at the first tick more than 3600s after the last send
    assert [f.at - T0 for f in flushes] == [30.0, 3930.0, 7830.0]
    assert [f.seq for f in flushes] == [1, 2, 3]
    assert len({f.notification_id for f in flushes}) == 3


def test_an_alert_that_started_long_ago_is_not_held_for_group_wait() -> None:
    g = groups()
    g.ingest(alert("a", started_at=T0 - 3600, at=T0), T0)
    assert said(g.due(T0)) == [(T0, [("a", "firing")])]


def test_groups_are_keyed_by_the_group_labels() -> None:
    g = groups()
    g.ingest(fire("a", T0, rule="cpu"), T0)
    g.ingest(fire("b", T0, rule="disk"), T0)
    assert sorted(f.group_key for f in g.due(T0 + WAIT)) == ['{}:{rule="cpu"}', '{}:{rule="disk"}']


def test_next_due_is_the_earliest_tick() -> None:
    g = groups()
    assert g.next_due() is None
    g.ingest(fire("a", T0), T0)
    assert g.next_due() == T0 + WAIT
    g.due(T0 + WAIT)
    assert g.next_due() == T0 + WAIT + INTERVAL


# --- resolutions ----------------------------------------------------------------------------------


def test_a_resolution_is_sent_once_then_the_empty_group_is_deleted() -> None:
    g = groups()
    g.ingest(fire("a", T0), T0)
    g.ingest(fire("b", T0), T0)
    g.due(T0 + WAIT)
    g.ingest(resolve("a", T0, T0 + 100), T0 + 100)
    assert said(g.due(T0 + WAIT + INTERVAL)) == [(T0 + WAIT + INTERVAL, [("a", "resolved"), ("b", "firing")])]
    g.ingest(resolve("b", T0, T0 + 400), T0 + 400)
    last = g.due(T0 + WAIT + 2 * INTERVAL)
    assert said(last) == [(T0 + WAIT + 2 * INTERVAL, [("b", "resolved")])] and last[0].status == "resolved"
    assert g.groups == {} and g.next_due() is None


def test_an_alert_that_fired_and_resolved_within_group_wait_is_never_sent() -> None:
    g = groups()
    g.ingest(fire("a", T0), T0)
    g.ingest(resolve("a", T0, T0 + 5), T0 + 5)
    assert g.due(T0 + WAIT) == [] and g.groups == {}


def test_a_resolution_without_a_firing_alert_makes_no_group() -> None:
    g = groups()
    assert g.ingest(resolve("a", T0, T0 + 5), T0 + 5) == [] and g.groups == {}


def test_receivers_without_send_resolved_hear_only_of_firing_alerts() -> None:
    g = groups(send_resolved=False)
    g.ingest(fire("a", T0), T0)
    g.ingest(fire("b", T0), T0)
    g.due(T0 + WAIT)
    g.ingest(resolve("a", T0, T0 + 60), T0 + 60)
    assert g.due(T0 + WAIT + INTERVAL) == []  # b unchanged, a's end is not news to this receiver
    g.ingest(resolve("b", T0, T0 + 400), T0 + 400)
    assert g.due(T0 + WAIT + 2 * INTERVAL) == [] and g.groups == {}


def test_a_replayed_older_transition_is_ignored() -> None:
    g = groups()
    g.ingest(fire("a", T0), T0)
    g.ingest(resolve("a", T0, T0 + 10), T0 + 10)
    assert g.ingest(fire("a", T0), T0 + 11) == []  # the firing at T0 again, e.g. a consumer replay
    assert g.due(T0 + WAIT) == []


def test_an_alert_whose_labels_move_it_to_another_route_resolves_in_the_old_group() -> None:
    critical = RouteConfig(receiver="pager", matchers=(parse_matcher("severity=critical"),))
    g = groups(routes=(critical,))
    g.ingest(fire("a", T0), T0)
    g.due(T0 + WAIT)
    escalated = alert("a", severity="critical", started_at=T0, at=T0 + 60)
    assert len(g.ingest(escalated, T0 + 60)) == 2
    flushes = g.due(T0 + WAIT + INTERVAL)
    assert sorted((f.receiver, [(a.fingerprint, a.state) for a in f.alerts]) for f in flushes) == [
        ("ops", [("a", "resolved")]),
        ("pager", [("a", "firing")]),
    ]


# --- mute and active intervals --------------------------------------------------------------------

AFTERNOON = TimeInterval("afternoon", (CalendarWindow(times=((12 * 60, 13 * 60),)),))


def test_a_tick_in_a_mute_interval_is_skipped_not_queued() -> None:
    g = groups(intervals={"afternoon": AFTERNOON}, mute_time_intervals=("afternoon",))
    g.ingest(fire("a", T0), T0)  # noon: muted until 13:00
    flushes = run(g, T0 + 3600 + INTERVAL, step=10.0)
    # ticks at +30, +330, ... +3330 fall in the mute; the first tick after 13:00 sends
    assert [f.at - T0 for f in flushes] == [3630.0]


def test_a_resolution_the_receiver_has_not_heard_survives_a_mute() -> None:
    g = groups(intervals={"afternoon": AFTERNOON}, mute_time_intervals=("afternoon",))
    before = T0 - 600
    g.ingest(fire("a", before), before)
    assert said(g.due(before + WAIT)) == [(before + WAIT, [("a", "firing")])]
    assert run(g, T0 + 50, step=10.0, start=before + WAIT + 10) == []
    g.ingest(resolve("a", before, T0 + 60), T0 + 60)
    # every tick from 12:05:30 on would tell of the resolution, and is muted until 13:00
    flushes = run(g, T0 + 3600 + INTERVAL, step=10.0, start=T0 + 60)
    assert said(flushes) == [(before + WAIT + 14 * INTERVAL, [("a", "resolved")])]


def test_outside_every_active_interval_notifications_are_held_back() -> None:
    g = groups(intervals={"afternoon": AFTERNOON}, active_time_intervals=("afternoon",))
    morning = T0 - 7200
    g.ingest(fire("a", morning), morning)
    flushes = run(g, T0 + 600, step=10.0, start=morning)
    assert [f.at - morning for f in flushes] == [7230.0]  # the first tick after noon


# --- ids and state --------------------------------------------------------------------------------


def test_the_same_flush_gets_the_same_id_after_a_restart() -> None:
    g = groups()
    g.ingest(fire("a", T0), T0)
    saved = orjson.loads(orjson.dumps(g.to_dict()))
    first = g.due(T0 + WAIT)
    again = Groups.from_dict(saved, g.tree, lambda r: True).due(T0 + WAIT)
    assert first == again and first[0].notification_id == again[0].notification_id


def test_state_carries_a_version_and_refuses_others() -> None:
    g = groups()
    g.ingest(fire("a", T0), T0)
    state = g.to_dict()
    assert state["version"] == STATE_VERSION and len(state["groups"]) == 1
    with pytest.raises(StateError, match="version"):
        Groups.from_dict({**state, "version": 99}, g.tree, lambda r: True)
    for broken in ({"version": 1}, {"version": 1, "groups": [{"key": "k"}]}, [], None):
        with pytest.raises(StateError):
            Groups.from_dict(broken, g.tree, lambda r: True)
    bad_alert = {**state["groups"][0], "alerts": [{"fingerprint": "x"}]}
    with pytest.raises(StateError):
        Groups.from_dict({"version": 1, "groups": [bad_alert]}, g.tree, lambda r: True)


# --- invariants over generated histories -----------------------------------------------------------

FPS = ["a", "b", "c", "d"]
RULES = ["cpu", "disk"]
_steps = st.lists(
    st.tuples(
        st.floats(0, 400, allow_nan=False),  # seconds after the previous step
        st.sampled_from(["fire", "resolve", "tick"]),
        st.sampled_from(FPS),
        st.sampled_from(RULES),
    ),
    max_size=40,
)


class History:
    """Replays generated steps against groups, remembering every alert's latest transition."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}

    def step(self, g: Groups, t: float, action: str, fp: str, rule: str) -> list[Flush]:
        if action == "fire" and fp not in self.started:
            self.started[fp] = t
            g.ingest(alert(fp, rule=rule, started_at=t, at=t), t)
        elif action == "resolve" and fp in self.started:
            g.ingest(alert(fp, "resolved", rule=rule, started_at=self.started.pop(fp), at=t), t)
        elif action == "tick":
            return g.due(t)
        return []


def _replay(g: Groups, steps: list[tuple[float, str, str, str]], history: History) -> list[Flush]:
    t, out = T0, []
    for gap, action, fp, rule in steps:
        t += gap
        out.extend(history.step(g, t, action, fp, rule))
    return out


@settings(max_examples=300, deadline=None)
@given(_steps, st.booleans())
def test_flush_timing_follows_the_group_timers(steps: list[tuple[float, str, str, str]], resolved: bool) -> None:
    g, history = groups(send_resolved=resolved), History()
    t, last_sent, created = T0, {}, {}
    for gap, action, fp, rule in steps:
        t += gap
        for key, group in g.groups.items():
            created.setdefault(key, group.created_at)
        for flush in history.step(g, t, action, fp, rule):
            assert flush.at >= created[flush.group_key] + WAIT  # never before group_wait
            if flush.group_key in last_sent:
                assert flush.at >= last_sent[flush.group_key] + INTERVAL  # never twice in an interval
            last_sent[flush.group_key] = flush.at
            assert flush.alerts and (resolved or flush.status == "firing")
        for key in set(created) - set(g.groups):
            created.pop(key)
            last_sent.pop(key, None)


@settings(max_examples=300, deadline=None)
@given(_steps)
def test_a_notification_id_never_stands_for_two_contents(steps: list[tuple[float, str, str, str]]) -> None:
    flushes = _replay(groups(), steps, History())
    content: dict[str, tuple[Any, ...]] = {}
    for f in flushes:
        seen = (f.group_key, f.seq, tuple((a.fingerprint, a.state, a.event_id) for a in f.alerts))
        assert content.setdefault(f.notification_id, seen) == seen


@settings(max_examples=300, deadline=None)
@given(_steps, _steps)
def test_a_restored_state_makes_the_same_future_flushes(
    before: list[tuple[float, str, str, str]], after: list[tuple[float, str, str, str]]
) -> None:
    g, history = groups(), History()
    _replay(g, before, history)
    restored = Groups.from_dict(orjson.loads(orjson.dumps(g.to_dict())), g.tree, lambda r: True)
    assert restored.to_dict() == g.to_dict()
    twin = History()
    twin.started = dict(history.started)
    start = T0 + sum(step[0] for step in before)
    flushes_a = _replay_from(g, after, history, start)
    flushes_b = _replay_from(restored, after, twin, start)
    assert flushes_a == flushes_b


def _replay_from(g: Groups, steps: list[Any], history: History, start: float) -> list[Flush]:
    t, out = start, []
    for gap, action, fp, rule in steps:
        t += gap
        out.extend(history.step(g, t, action, fp, rule))
    out.extend(g.due(t + 10 * REPEAT))
    return out


@settings(max_examples=200, deadline=None)
@given(_steps)
def test_every_alert_still_firing_is_eventually_notified(steps: list[tuple[float, str, str, str]]) -> None:
    g, history = groups(), History()
    flushes = _replay(g, steps, history)
    end = T0 + sum(step[0] for step in steps)
    flushes.extend(g.due(end + WAIT + INTERVAL))
    notified = {a.fingerprint for f in flushes for a in f.firing}
    assert set(history.started) <= notified


@settings(max_examples=200, deadline=None)
@given(_steps)
def test_no_notification_is_sent_inside_a_mute_interval(steps: list[tuple[float, str, str, str]]) -> None:
    quarter = TimeInterval("quarter", (CalendarWindow(times=((12 * 60, 12 * 60 + 15),)),))  # 12:00-12:15
    g = groups(intervals={"quarter": quarter}, mute_time_intervals=("quarter",))
    for f in _replay(g, steps, History()):
        assert not quarter.contains(f.at)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_damaged_state_is_refused_with_a_state_error(data: st.DataObject) -> None:
    g = groups()
    g.ingest(fire("a", T0), T0)
    g.due(T0 + WAIT)
    state = g.to_dict()
    group = data.draw(mutations(state["groups"][0]))
    top = data.draw(mutations({**state, "groups": [group]}))
    with only(StateError):
        restored = Groups.from_dict(top, g.tree, lambda r: True)
        restored.due(T0 + 10 * REPEAT)
        restored.to_dict()
