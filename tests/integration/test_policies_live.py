"""Policies through a real worker on the real broker: live apply, refusal, processes, schedules."""

from __future__ import annotations

import asyncio
import calendar
import signal
import time
from pathlib import Path

from collector.contract import (
    Alert,
    GroupStats,
    MetricBatch,
    ProcessEvent,
    ProcessSummary,
    Topics,
    encode,
)
from policies.control import POLICY_KEY, PublishedPolicy
from policies.loader import load_policy_path
from tests.cli import fleetpulse
from tests.integration.helpers import collect_alerts, produce, wait_for_log, worker, write_policy


def _cli(kafka_bootstrap: str, topics: Topics, *args: str) -> list[str]:
    return [*args, "--bootstrap", kafka_bootstrap, "--topic-prefix", topics.prefix]


def test_policy_apply_changes_what_fires_without_restart_and_a_bad_set_keeps_the_last_good(
    kafka_bootstrap: str, topics: Topics, home: Path, unique: str
) -> None:
    # Flap damping off: this test flips one alert on and off on purpose.
    rule = "rules:\n  - name: cpu_hot\n    when: cpu_pct > {}\n    flap: {{changes: 0}}\n"
    strict = write_policy(home / "strict" / "cpu.yaml", rule.format(90))
    loose = write_policy(home / "loose" / "cpu.yaml", rule.format(40))
    host, t0 = "live-1", time.time() - 3600

    def sample(at: float, cpu: float) -> list[tuple[bytes, bytes]]:
        return [(host.encode(), encode(MetricBatch(host, "it", t0 + at, 10.0, {"cpu_pct": cpu})))]

    w = worker(kafka_bootstrap, topics, unique, strict.parent, home)
    try:
        # Under the first set (> 90): 95 fires, 50 resolves.
        asyncio.run(produce(kafka_bootstrap, topics.metrics, sample(0, 95) + sample(10, 50)))
        collect_alerts(kafka_bootstrap, topics, lambda a: any(x.state == "resolved" for x in a), watch=[w])

        applied = fleetpulse(*_cli(kafka_bootstrap, topics, "policy", "apply", str(loose.parent)))
        assert applied.returncode == 0, applied.stderr
        version = load_policy_path(loose.parent).version
        assert version in applied.stdout
        wait_for_log(w, f"event=policy_applied version={version}")

        # The same reading (50) now fires: the new threshold (> 40) is live, no restart.
        asyncio.run(produce(kafka_bootstrap, topics.metrics, sample(20, 50)))
        alerts = collect_alerts(kafka_bootstrap, topics, lambda a: len(a) >= 3, watch=[w])
        assert [(a.state, a.at - t0, a.threshold) for a in alerts] == [
            ("firing", 0, 90),
            ("resolved", 10, 90),
            ("firing", 20, 40),
        ]

        # A broken set is refused by the command (nothing published) ...
        broken = write_policy(home / "broken" / "cpu.yaml", rule.format(90) + "    sevrity: high\n")
        refused = fleetpulse(*_cli(kafka_bootstrap, topics, "policy", "apply", str(broken.parent)))
        assert refused.returncode == 2
        assert f"{broken}:5:" in refused.stderr and "sevrity" in refused.stderr
        # ... and when one reaches the topic anyway, the worker names file:line and keeps the last good set.
        bad = PublishedPolicy({"ops/cpu.yaml": broken.read_text()}, "bad", time.time(), "test")
        asyncio.run(produce(kafka_bootstrap, topics.policies, [(POLICY_KEY, bad.encode())]))
        log = wait_for_log(w, "event=policy_refused")
        assert "ops/cpu.yaml:5:" in log and "sevrity" in log
        # 45 is still a breach only under the last good set (> 40): no resolution at 30, then 30 resolves.
        asyncio.run(produce(kafka_bootstrap, topics.metrics, sample(30, 45) + sample(40, 30)))
        alerts = collect_alerts(kafka_bootstrap, topics, lambda a: len(a) >= 4, watch=[w])
        assert [(a.state, a.at - t0) for a in alerts[2:]] == [("firing", 20), ("resolved", 40)]

        listed = fleetpulse(*_cli(kafka_bootstrap, topics, "policy", "list"))
        # the topic's latest set is the refused one: list says so and that workers keep their last good set
        assert listed.returncode == 2 and "policy bad applied" in listed.stdout, listed.stdout + listed.stderr
        assert "does not load (workers keep their last good set)" in listed.stderr and "sevrity" in listed.stderr
    finally:
        w.kill(signal.SIGTERM)


def _day_start(days_ago: int) -> float:
    today = time.gmtime(time.time() - days_ago * 86400)
    return float(calendar.timegm((today.tm_year, today.tm_mon, today.tm_mday, 0, 0, 0)))


def _summary(host: str, ts: float, groups: dict[str, int], interval: float) -> tuple[bytes, bytes]:
    stats = {
        g: GroupStats(n, 1.0 * n, 10_000_000 * n, ts - 5 if n else None, ts - 5 if n else None)
        for g, n in groups.items()
    }
    event = ProcessSummary(host, "it", ts, interval, 100, {"sleeping": 100}, [], [], stats)
    return host.encode(), encode(event)


def test_process_group_below_min_fires_and_the_nightly_batch_rule_fires_only_where_it_did_not_run(
    kafka_bootstrap: str, topics: Topics, home: Path, unique: str
) -> None:
    policy = write_policy(
        home / "p" / "processes.yaml",
        """rules:
  - name: nginx_workers
    process: nginx
    count: {min: 2}
    window: 30s
    severity: critical
  - name: nightly_batch
    schedule: "0 2 * * *"
    process: batch
    within: 60m
""",
    )
    records: list[tuple[bytes, bytes]] = []
    # web-1: a one-sample blip to 1 worker (no alert), then a sustained drop to 1 (alert).
    t0 = time.time() - 7200
    for i, count in enumerate([3, 3, 1, 3, 3, 1, 1, 1, 1]):
        records.append(_summary("web-1", t0 + 10 * i, {"nginx": count}, 10.0))
    # Three batch hosts watched from 01:30 to 03:20 of a past day, every 10 minutes.
    day = _day_start(2)
    for minute in range(90, 210, 10):
        ts = day + minute * 60
        records.append(_summary("batch-ran", ts, {"batch": 1 if minute == 140 else 0}, 600.0))
        records.append(_summary("batch-short", ts, {"batch": 0}, 600.0))
        records.append(_summary("batch-missed", ts, {"batch": 0}, 600.0))
        if minute == 130:  # ran for a minute between two samples: seen through its start event
            start = ProcessEvent("batch-short", "it", ts + 60, "batch", "start", 4242, "batch", ts + 60)
            records.append((b"batch-short", encode(start)))
    # A marker after the window on each host: nginx count 0 fires nginx_workers there, which
    # proves the host's events up to 03:30 were evaluated (same key, same partition, in order).
    for host in ("batch-ran", "batch-short", "batch-missed"):
        records.append(_summary(host, day + 210 * 60, {"batch": 0, "nginx": 0}, 600.0))

    w = worker(kafka_bootstrap, topics, unique, policy.parent, home)
    try:
        asyncio.run(produce(kafka_bootstrap, topics.processes, records))

        def settled(alerts: list[Alert]) -> bool:
            fired = {(a.host_id, a.rule) for a in alerts}
            return {("web-1", "nginx_workers.count_min")} | {
                (h, "nginx_workers.count_min") for h in ("batch-ran", "batch-short", "batch-missed")
            } <= fired

        alerts = collect_alerts(kafka_bootstrap, topics, settled, watch=[w])
    finally:
        w.kill(signal.SIGTERM)

    web = [(a.state, a.at - t0, a.value) for a in alerts if a.host_id == "web-1"]
    assert web == [("firing", 70, 1)], "the blip at +20 s must not fire; the drop held for 30 s must"
    batch = [(a.host_id, a.state, a.at - day) for a in alerts if a.rule == "nightly_batch"]
    assert batch == [("batch-missed", "firing", 3 * 3600)], "only the host where the batch never ran"


def test_silences_are_added_listed_and_expired_through_the_silence_topic(kafka_bootstrap: str, topics: Topics) -> None:
    added = fleetpulse(
        *_cli(kafka_bootstrap, topics, "silence", "add", "-m", "rule=cpu_hot", "-m", "host_id=~web-.*", "-d", "2h"),
        "--comment",
        "kernel upgrade",
    )
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.strip()
    listed = fleetpulse(*_cli(kafka_bootstrap, topics, "silence", "list"))
    (line,) = listed.stdout.splitlines()
    assert line.startswith(f"{silence_id}  active") and "rule=cpu_hot host_id=~web-.*" in line
    assert "kernel upgrade" in line

    refused = fleetpulse(*_cli(kafka_bootstrap, topics, "silence", "add", "-m", "rule cpu_hot"))
    assert refused.returncode == 2 and "cannot read matcher" in refused.stderr

    expired = fleetpulse(*_cli(kafka_bootstrap, topics, "silence", "expire", silence_id))
    assert expired.returncode == 0 and silence_id in expired.stdout
    assert fleetpulse(*_cli(kafka_bootstrap, topics, "silence", "list")).stdout.strip() == "no silences"
    everything = fleetpulse(*_cli(kafka_bootstrap, topics, "silence", "list", "--all")).stdout
    assert f"{silence_id}  expired" in everything
    assert fleetpulse(*_cli(kafka_bootstrap, topics, "silence", "expire", "nope")).returncode == 1


def test_an_unreadable_silence_record_is_skipped_by_list_and_removed_by_expire(
    kafka_bootstrap: str, topics: Topics
) -> None:
    """A silence stored with an infinite end (written as null) made every later list and expire fail."""
    broken = b'{"id": "broken", "matchers": [["rule", "=", "x", []]], "starts_at": 1.0, "ends_at": null}'
    asyncio.run(produce(kafka_bootstrap, topics.silences, [(b"broken", broken)]))
    added = fleetpulse(*_cli(kafka_bootstrap, topics, "silence", "add", "-m", "rule=cpu_hot", "-d", "1h"))
    assert added.returncode == 0, added.stderr
    listed = fleetpulse(*_cli(kafka_bootstrap, topics, "silence", "list"))
    assert listed.returncode == 0 and listed.stdout.startswith(f"{added.stdout.strip()}  active"), listed.stderr
    assert "event=silence_unreadable id=broken" in listed.stderr and "Traceback" not in listed.stderr
    removed = fleetpulse(*_cli(kafka_bootstrap, topics, "silence", "expire", "broken"))
    assert removed.returncode == 0 and "removed unreadable silence record broken" in removed.stdout
    again = fleetpulse(*_cli(kafka_bootstrap, topics, "silence", "list"))
    assert again.returncode == 0 and "silence_unreadable" not in again.stderr
    too_long = fleetpulse(*_cli(kafka_bootstrap, topics, "silence", "add", "-m", "a=b", "-d", "9" * 30 + "h"))
    assert too_long.returncode == 2 and "maximum of 400d" in too_long.stderr


def test_removing_a_group_rule_resolves_its_open_alert(
    kafka_bootstrap: str, topics: Topics, home: Path, unique: str
) -> None:
    group = "rules:\n  - name: fleet_cpu\n    group: {metric: cpu_pct, agg: avg}\n    max: 80\n    stale: 30s\n"
    with_group = write_policy(home / "with" / "fleet.yaml", group)
    without = write_policy(home / "without" / "fleet.yaml", "rules:\n  - name: mem\n    when: mem_used_pct > 99\n")
    t0 = time.time() - 3600
    samples = [
        (h.encode(), encode(MetricBatch(h, "it", t0 + at, 10.0, {"cpu_pct": 95.0})))
        for at in range(0, 50, 10)
        for h in ("g-1", "g-2")
    ]
    w = worker(kafka_bootstrap, topics, unique, with_group.parent, home)
    try:
        asyncio.run(produce(kafka_bootstrap, topics.metrics, samples))
        (fired,) = collect_alerts(kafka_bootstrap, topics, lambda a: len(a) >= 1, watch=[w])
        assert (fired.rule, fired.kind, fired.state) == ("fleet_cpu", "group", "firing")

        applied = fleetpulse(*_cli(kafka_bootstrap, topics, "policy", "apply", str(without.parent)))
        assert applied.returncode == 0, applied.stderr
        # nothing judges the group any more: the worker holding its state closes the alert
        alerts = collect_alerts(kafka_bootstrap, topics, lambda a: len(a) >= 2, watch=[w])
        assert [(a.rule, a.transition, a.fingerprint) for a in alerts] == [
            ("fleet_cpu", "firing", fired.fingerprint),
            ("fleet_cpu", "resolved", fired.fingerprint),
        ]
    finally:
        w.kill(signal.SIGTERM)


def test_a_worker_with_a_trusted_key_applies_only_signed_policy_sets(
    kafka_bootstrap: str, topics: Topics, home: Path, unique: str
) -> None:
    keys = home / "keys"
    for name in ("ops", "mallory"):
        made = fleetpulse("control", "keygen", "--out", str(keys), "--name", name)
        assert made.returncode == 0, made.stderr
    rule = "rules:\n  - name: cpu_hot\n    when: cpu_pct > {}\n"
    first = write_policy(home / "first" / "cpu.yaml", rule.format(90))
    w = worker(kafka_bootstrap, topics, unique, first.parent, home, trusted_keys=(keys / "ops.pub",))
    try:
        wait_for_log(w, "event=worker_started")
        # Anyone who can produce to the topic (no ACLs here): unsigned, then signed with another key.
        unsigned = write_policy(home / "unsigned" / "cpu.yaml", rule.format(10))
        done = fleetpulse(*_cli(kafka_bootstrap, topics, "policy", "apply", str(unsigned.parent)))
        assert done.returncode == 0, done.stderr
        assert "reason=signature" in wait_for_log(w, "event=policy_refused")
        forged = fleetpulse(
            *_cli(kafka_bootstrap, topics, "policy", "apply", str(unsigned.parent)),
            "--signing-key",
            str(keys / "mallory.key"),
        )
        assert forged.returncode == 0, forged.stderr
        wait_for_log(w, "not trusted")
        # The holder of the trusted key: applied.
        signed = write_policy(home / "signed" / "cpu.yaml", rule.format(50))
        applied = fleetpulse(
            *_cli(kafka_bootstrap, topics, "policy", "apply", str(signed.parent)),
            "--signing-key",
            str(keys / "ops.key"),
        )
        assert applied.returncode == 0, applied.stderr
        wait_for_log(w, f"event=policy_applied version={load_policy_path(signed.parent).version}")
        assert f"event=policy_applied version={load_policy_path(unsigned.parent).version}" not in w.log()
    finally:
        w.kill(signal.SIGTERM)
