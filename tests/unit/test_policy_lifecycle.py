"""An alert's lifecycle: flapping, rules leaving the policy, the alert topic as truth, state and replay."""

from __future__ import annotations

import math

from collector.contract import Alert, decode, encode
from policies.engine import Evaluator, HostState, ScheduleState
from policies.group import GroupState
from policies.lifecycle import AlertState, Announced, advance
from policies.model import Notify, Threshold
from policies.window import Window
from tests.policy_events import Fleet, batch, logs, metrics, policy, procs, said

FLAPPY = """
rules:
  - name: link
    metric: link_errors
    max: 0
    flap: {window: 10m, changes: 4}
"""


def errors(fleet: Fleet, values: list[float], start: float = 0.0, step: float = 10.0) -> list[Alert]:
    return fleet.feed(*(batch(start + i * step, link_errors=v) for i, v in enumerate(values)))


def test_a_flapping_alert_stays_announced_and_pages_no_more_until_it_calms_down() -> None:
    fleet = Fleet.of(FLAPPY)
    alerts = errors(fleet, [1, 0] * 10)  # 0..190 s: up and down every 10 s
    # two pages, then the fourth change inside 10 minutes marks it flapping: it stays open
    assert said(alerts) == [("firing", "warning", 0.0), ("resolved", "warning", 10.0), ("firing", "warning", 20.0)]
    alerts = errors(fleet, [0] * 60, start=200)  # calm from 200 s
    # resolved once fewer than 4 changes remain in the last 10 minutes (170, 180 and 190 are left at 760)
    assert said(alerts) == [("resolved", "warning", 760.0)]


def test_by_default_an_alert_that_reopens_inside_the_flap_window_pages_once() -> None:
    fleet = Fleet.of("rules:\n  - name: link\n    metric: link_errors\n    max: 0\n")  # 3 changes in 10 min
    alerts = errors(fleet, [1, 0, 1, 1, 0, 1, 0, 1])
    assert said(alerts) == [("firing", "warning", 0.0), ("resolved", "warning", 10.0)]
    # still firing once it calms down (fewer than 3 changes in 10 minutes): announced then
    alerts = errors(fleet, [1] * 60, start=80)
    assert said(alerts) == [("firing", "warning", 650.0)]  # 60 and 70 are the changes left at 650
    assert alerts[0].started_at == 70.0


def test_flap_damping_can_be_turned_off() -> None:
    fleet = Fleet.of(FLAPPY.replace("changes: 4", "changes: 0"))
    alerts = errors(fleet, [1, 0] * 5)
    assert [a.transition for a in alerts] == ["firing", "resolved"] * 5


def test_changes_outside_the_flap_window_do_not_count() -> None:
    fleet = Fleet.of(FLAPPY)
    # a change every 5 minutes: never 4 inside 10 minutes
    alerts = errors(fleet, [1, 0] * 6, step=300)
    assert [a.transition for a in alerts] == ["firing", "resolved"] * 6


def test_a_flapping_alert_still_escalates() -> None:
    fleet = Fleet.of(
        "rules:\n  - name: l\n    metric: e\n    max: {warning: 0, critical: 10}\n    flap: {window: 10m, changes: 2}\n"
    )
    alerts = fleet.feed(*(batch(t, e=v) for t, v in [(0, 1), (10, 0), (20, 50)]))
    assert [a.transition for a in alerts] == ["firing", "escalated"]


# --- the policy changes ----------------------------------------------------------------------


def test_removing_a_rule_resolves_its_announced_alerts() -> None:
    fleet = Fleet.of("rules:\n  - name: hot\n    metric: x\n    max: 1\n  - name: other\n    metric: y\n    max: 1\n")
    opened = fleet.feed(batch(0, x=5, y=0))
    assert said(opened) == [("firing", "warning", 0.0)]
    fleet.evaluator.policy = policy("rules:\n  - name: other\n    metric: y\n    max: 1\n")
    closed = fleet.feed(batch(10, x=5, y=0))
    assert said(closed) == [("resolved", "warning", 10.0)]
    assert closed[0].fingerprint == opened[0].fingerprint and closed[0].started_at == 0.0
    assert decode(encode(closed[0])) == closed[0]  # a record the alert topic's readers accept
    assert fleet.states["h1"].alerts == {}
    assert fleet.feed(batch(20, x=5, y=0)) == []


def test_narrowing_a_rule_scope_resolves_alerts_of_hosts_it_no_longer_covers() -> None:
    fleet = Fleet.of("rules:\n  - name: hot\n    metric: x\n    max: 1\n")
    assert len(fleet.feed(batch(0, host="db", labels={"role": "db"}, x=5))) == 1
    fleet.evaluator.policy = policy(
        "rules:\n  - name: hot\n    metric: x\n    max: 1\n    scope: {labels: {role: web}}\n"
    )
    assert said(fleet.feed(batch(10, host="db", labels={"role": "db"}, x=5))) == [("resolved", "warning", 10.0)]


def test_changing_a_threshold_keeps_the_open_alert() -> None:
    fleet = Fleet.of("rules:\n  - name: hot\n    metric: x\n    max: 1\n")
    fleet.feed(batch(0, x=5))
    fleet.evaluator.policy = policy("rules:\n  - name: hot\n    metric: x\n    max: {warning: 1, critical: 4}\n")
    assert [a.transition for a in fleet.feed(batch(10, x=5))] == ["escalated"]


def test_removing_a_schedule_rule_resolves_its_missed_alert() -> None:
    hour = 3600.0
    text = 'rules:\n  - name: backup\n    schedule: "0 2 * * *"\n    process: backup\n    within: 60m\n'
    fleet = Fleet.of(text)
    alerts = fleet.feed(*(procs(h * hour, {"backup": 0}, interval_s=hour) for h in range(1, 4)))
    assert said(alerts) == [("firing", "warning", 3 * hour)]
    fleet.evaluator.policy = policy("rules: []\n")
    closed = fleet.feed(procs(4 * hour, {"backup": 0}, interval_s=hour))
    assert said(closed) == [("resolved", "warning", 4 * hour)]
    assert closed[0].fingerprint == alerts[0].fingerprint and closed[0].kind == "schedule"
    assert decode(encode(closed[0])) == closed[0]
    assert fleet.states["h1"].schedules == {}


def test_a_rule_that_now_reads_another_metric_resolves_the_alert_of_the_old_one() -> None:
    text = "rules:\n  - name: hot\n    metric: x\n    max: 1\n  - name: disk\n    metric: disk_used_pct\n    max: 90\n"
    fleet = Fleet.of(text)
    opened = {a.rule: a for a in fleet.feed(metrics(0, {"x": 5, "disk_used_pct:/var": 95}))}
    assert set(opened) == {"hot", "disk"}
    fleet.evaluator.policy = policy(text.replace("metric: x", "metric: y"))  # same name, another metric
    closed = fleet.feed(metrics(10, {"x": 5, "y": 0, "disk_used_pct:/var": 95}))
    assert said(closed) == [("resolved", "warning", 10.0)]
    assert closed[0].fingerprint == opened["hot"].fingerprint and closed[0].metric == "x"
    # the rule on a base name still reads its instances: its alert stays open
    assert list(fleet.states["h1"].alerts) == ["disk_used_pct:/var"]
    assert fleet.feed(metrics(20, {"x": 5, "y": 0, "disk_used_pct:/var": 95})) == []


def test_a_schedule_rule_that_now_watches_another_process_resolves_the_old_groups_alert() -> None:
    hour = 3600.0
    text = 'rules:\n  - name: backup\n    schedule: "0 2 * * *"\n    process: backup\n    within: 60m\n'
    fleet = Fleet.of(text)
    opened = fleet.feed(*(procs(h * hour, {"backup": 0}, interval_s=hour) for h in range(1, 4)))
    assert said(opened) == [("firing", "warning", 3 * hour)]
    fleet.evaluator.policy = policy(text.replace("process: backup", "process: restic"))
    closed = fleet.feed(procs(4 * hour, {"backup": 0, "restic": 0}, interval_s=hour))
    assert said(closed) == [("resolved", "warning", 4 * hour)]
    assert closed[0].fingerprint == opened[0].fingerprint and closed[0].metric == "proc_count:backup"
    # the new group is watched from now on: no run of it can have been missed yet
    watched = fleet.states["h1"].schedules["backup"]
    assert (watched.group, watched.watching_since) == ("restic", 4 * hour)


# --- the alert topic is the truth about what was announced -----------------------------------


def test_an_alert_the_topic_already_holds_is_not_announced_again() -> None:
    # the state was lost (or is older than the topic): the topic says the alert is open
    told = {}
    fleet = Fleet.of("rules:\n  - name: hot\n    metric: x\n    max: 1\n")
    fp = fleet.feed(batch(0, x=5))[0].fingerprint
    told[fp] = Announced("warning", 0.0, 0.0)
    fresh = Fleet(Evaluator(fleet.evaluator.policy, announced=told.get))
    assert fresh.feed(batch(100, x=5), batch(110, x=5)) == []
    closed = fresh.feed(batch(120, x=0))
    assert said(closed) == [("resolved", "warning", 120.0)] and closed[0].started_at == 0.0


def test_a_breach_replayed_into_lost_state_keeps_the_open_alert_open() -> None:
    # a crash lost the host state after the alert went out; the replay starts a new sustain
    # clock ("for" not yet reached) while the topic says the alert is open: it stays open
    told = {}
    fleet = Fleet.of("rules:\n  - name: hot\n    when: x > 1 for 20s\n")
    fp = fleet.feed(batch(0, x=5), batch(10, x=5), batch(20, x=5))[0].fingerprint
    told[fp] = Announced("warning", 0.0, 20.0)
    fresh = Fleet(Evaluator(fleet.evaluator.policy, announced=told.get))
    assert fresh.feed(batch(0, x=5), batch(10, x=5), batch(20, x=5), batch(30, x=5)) == []
    closed = fresh.feed(batch(40, x=0))
    assert said(closed) == [("resolved", "warning", 40.0)] and closed[0].started_at == 0.0


def test_an_alert_the_state_thinks_was_sent_but_the_topic_lacks_is_sent() -> None:
    # state written, then a crash before the alert was published: the topic has nothing
    fleet = Fleet(Evaluator(policy("rules:\n  - name: hot\n    metric: x\n    max: 1\n"), announced=lambda fp: None))
    assert [a.transition for a in fleet.feed(batch(0, x=5))] == ["firing"]
    assert [a.transition for a in fleet.feed(batch(10, x=5))] == ["firing"]  # still missing from the topic


def test_a_resolved_record_on_the_topic_lets_a_firing_alert_be_announced() -> None:
    fleet = Fleet(
        Evaluator(
            policy("rules:\n  - name: hot\n    metric: x\n    max: 1\n"),
            announced=lambda fp: Announced("", 0.0, 5.0),
        )
    )
    assert [a.transition for a in fleet.feed(batch(10, x=5))] == ["firing"]


def test_the_topic_severity_decides_escalation() -> None:
    fleet = Fleet(
        Evaluator(
            policy("rules:\n  - name: hot\n    metric: x\n    max: {warning: 1, critical: 4}\n"),
            announced=lambda fp: Announced("warning", 0.0, 0.0),
        )
    )
    alerts = fleet.feed(batch(10, x=5))
    assert [(a.transition, a.severity, a.started_at) for a in alerts] == [("escalated", "critical", 0.0)]


# --- state and replay ------------------------------------------------------------------------


def same_float(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def test_alert_state_round_trips_through_lists() -> None:
    st = AlertState("firing", "critical", 10.0, math.inf, 95.0, "warning", 5.0, 20.0, [1.0, 2.0])
    back = AlertState.from_list(st.to_list())
    assert back == st


def test_host_state_round_trips_through_bytes_including_nan_and_infinities() -> None:
    state = HostState(
        windows={
            "x|60": Window(0.0, 50.0, [(40.0, 1.5), (45.0, math.inf), (50.0, -math.inf)]),
            "y|60": Window(),  # created, never fed: NaN start and last sample
        },
        alerts={"x": {"r": AlertState("firing", "warning", 0.0, math.inf, 1.0, "warning", 0.0, 0.0, [0.0])}},
        schedules={
            "s": ScheduleState(10.0),
            "t": ScheduleState(10.0, 20.0, AlertState(None, "", 0.0, math.nan), group="backup"),
        },
    )
    back = HostState.from_bytes(state.to_bytes())
    assert back.to_bytes() == state.to_bytes()
    assert back.windows["x|60"].points == [(40.0, 1.5), (45.0, math.inf), (50.0, -math.inf)]
    assert math.isnan(back.windows["y|60"].since) and math.isnan(back.windows["y|60"].last_ts)
    assert back.alerts["x"]["r"].value == math.inf
    assert back.schedules["s"].last_run == -math.inf and back.schedules["t"].last_run == 20.0
    assert back.schedules["t"].group == "backup"
    assert math.isnan(back.schedules["t"].missed.value)
    assert HostState.from_bytes(None) == HostState() and HostState.from_bytes(b"") == HostState()


def test_group_state_round_trips_through_bytes_including_nan_and_infinities() -> None:
    state = GroupState(
        hosts={"a": [1.5, 10.0], "b": [math.nan, 11.0], "c": [math.inf, 12.0]},
        alert=AlertState("pending", "warning", 3.0, -math.inf, 1.0),
        now=12.0,
        since=10.0,
    )
    back = GroupState.from_bytes(state.to_bytes())
    assert back.hosts["a"] == [1.5, 10.0] and math.isnan(back.hosts["b"][0]) and back.hosts["c"][0] == math.inf
    assert back.alert.value == -math.inf and back.now == 12.0 and back.last_scale_at == -math.inf
    assert back.since == 10.0 and back.to_bytes() == state.to_bytes()
    scaled = GroupState(now=5.0, last_scale_at=4.0)
    assert GroupState.from_bytes(scaled.to_bytes()).last_scale_at == 4.0
    assert math.isnan(GroupState.from_bytes(GroupState().to_bytes()).since)  # still nothing seen
    assert GroupState.from_bytes(None).hosts == {} and math.isnan(GroupState.from_bytes(None).since)


def test_state_written_and_read_back_mid_stream_takes_the_same_decisions() -> None:
    text = """
rules:
  - name: cpu
    metric: cpu_pct
    agg: avg
    window: 60s
    max: {warning: 80, critical: 95}
    for: 20s
  - name: oom
    log: oom
    at_least: 2
    within: 5m
"""
    events = [batch(10 * i, cpu_pct=(100 if 10 < i < 30 else 85 if i < 40 else 10)) for i in range(50)]
    log_events = [logs(10 * i + 5, {"oom": i % 7 == 0}) for i in range(50)]
    stream = sorted([*events, *log_events], key=lambda e: e.ts)

    whole = Fleet.of(text)
    expected = whole.feed_all(stream)
    assert {a.transition for a in expected} >= {"firing", "escalated", "deescalated", "resolved"}

    restarted = Fleet.of(text)
    got: list[Alert] = []
    for event in stream:
        state = restarted.states.get("h1", HostState())
        got.extend(restarted.evaluator.evaluate(event, state).alerts)
        restarted.states["h1"] = HostState.from_bytes(state.to_bytes())  # as the worker's table would
    assert got == expected


def test_a_replay_produces_the_same_alerts_with_the_same_event_ids() -> None:
    text = "rules:\n  - name: cpu\n    metric: cpu_pct\n    max: {warning: 80, critical: 95}\n    renotify: 30s\n"
    stream = [batch(10 * i, cpu_pct=v) for i, v in enumerate([50, 90, 99, 99, 99, 90, 50, 99, 50])]
    first = Fleet.of(text).feed_all(stream)
    second = Fleet.of(text).feed_all(stream)
    assert [a.event_id for a in first] == [a.event_id for a in second]
    assert first == second
    assert len({a.event_id for a in first}) == len(first)  # every notification has its own id

    # a crash after the 5th event: the state from before it, the same events again
    fleet = Fleet.of(text)
    fleet.feed_all(stream[:4])
    saved = fleet.states["h1"].to_bytes()
    tail = fleet.feed_all(stream[4:])
    fleet.states["h1"] = HostState.from_bytes(saved)
    assert fleet.feed_all(stream[4:]) == tail


def test_a_sample_at_or_before_the_last_one_judged_announces_nothing() -> None:
    # after a crash the host state can be ahead of the replayed events: what it has judged
    # already (the breach that resolved at 2000) must not open a new alert when replayed
    fleet = Fleet.of("rules:\n  - name: hot\n    metric: x\n    max: 1\n")
    opened_and_closed = fleet.feed(batch(100, x=5), batch(2000, x=0))
    assert said(opened_and_closed) == [("firing", "warning", 100.0), ("resolved", "warning", 2000.0)]
    assert fleet.feed(batch(1990, x=5), batch(2000, x=5)) == []  # late, then a repeat of the newest ts
    assert said(fleet.feed(batch(2010, x=5))) == [("firing", "warning", 2010.0)]  # newer: judged


def test_event_ids_differ_between_hosts_and_transitions() -> None:
    fleet = Fleet.of("rules:\n  - name: cpu\n    metric: cpu_pct\n    max: 80\n")
    alerts = fleet.feed(batch(0, host="a", cpu_pct=90), batch(0, host="b", cpu_pct=90), batch(10, host="a", cpu_pct=0))
    assert len({a.event_id for a in alerts}) == 3


# --- advance() directly ----------------------------------------------------------------------

WARN = Threshold("max", 1.0, "warning", 1.0)
CRIT = Threshold("max", 5.0, "critical", 5.0)


def test_advance_pending_then_firing_then_resolved() -> None:
    st = AlertState()
    notify = Notify()
    assert advance(st, WARN, 2.0, 0.0, 30.0, notify) is None and st.phase == "pending"
    assert advance(st, WARN, 2.0, 29.0, 30.0, notify) is None
    fired = advance(st, WARN, 2.0, 30.0, 30.0, notify)
    assert fired is not None and (fired.transition, fired.started_at, fired.at) == ("firing", 0.0, 30.0)
    assert fired.state == "firing"
    done = advance(st, None, 0.0, 40.0, 30.0, notify)
    assert done is not None and (done.transition, done.state, done.severity) == ("resolved", "resolved", "warning")
    assert st.phase is None and not st.announced


def test_a_pending_alert_that_recovers_says_nothing() -> None:
    st = AlertState()
    assert advance(st, CRIT, 9.0, 0.0, 60.0, Notify()) is None
    assert advance(st, None, 0.0, 10.0, 60.0, Notify()) is None
    assert st.phase is None and st.idle


def test_a_reading_beyond_any_float_still_makes_a_decodable_alert() -> None:
    import math

    from collector.contract import decode, encode
    from policies.alerts import Subject, to_alert
    from policies.lifecycle import Notice
    from policies.model import Notify

    subject = Subject("sum_bytes", "group", Notify(), "fp", "", "", "x")
    alert = to_alert(subject, Notice("firing", "warning", 1.0, 2.0, math.inf, 10.0), {})
    back = decode(encode(alert))
    assert back == alert and back.value > 1e308


def test_the_state_cache_decodes_only_bytes_it_did_not_write() -> None:
    from policies.engine import HostState, StateCache

    cache = StateCache()
    state = HostState()
    raw = cache.store(b"h", state)
    assert cache.load(b"h", raw) is state  # the very bytes it wrote: no decode
    restored = cache.load(b"h", bytes(bytearray(raw)))  # equal bytes from elsewhere (a restore)
    assert restored is not state and restored.to_bytes() == raw
    assert cache.load(b"other", None).to_bytes() == HostState().to_bytes()
