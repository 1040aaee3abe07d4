"""The whole pipeline as an operator runs it, on any broker: one definition for the plain and the secured one.

Every piece is a ``fleetpulse`` process or command: ``control keygen``, ``policy apply`` and
``silence add`` (signed, as the admin principal), the worker (trusting only that key), the
sink (into its own embedded ClickHouse), the agent and ``alerts tail``. :func:`run_whole_pipeline`
returns what arrived where, and every log and command output, for the caller's assertions.
"""

from __future__ import annotations

import csv
import io
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from collector.contract import Topics
from fleetpulse.cli import worker_args
from tests.cli import fleetpulse
from tests.integration.helpers import WAIT_S, Proc, wait_for_log


@dataclass(frozen=True)
class PipelineBroker:
    """How the pipeline's processes reach a broker: each principal's flags, and the agent's ``[kafka]`` table."""

    bootstrap: str
    topics: Topics
    app_id: str
    sink_group: str
    flags: Callable[[str], list[str]]  # principal -> its TLS/SASL flags (none on a plain broker)
    agent_kafka_toml: Callable[[], str]  # the agent's [kafka] table (its principal's settings)


@dataclass
class PipelineRun:
    """What the run saw: alerts as ``alerts tail --json`` printed them, rows the sink stored, every output."""

    host: str
    alerts: list[dict[str, object]]
    stored_metrics: int
    stored_alerts: list[tuple[str, str]]
    outputs: dict[str, str] = field(default_factory=dict)  # process or command -> everything it printed
    argv: dict[str, str] = field(default_factory=dict)  # live process -> its /proc cmdline


def _command(run: PipelineRun, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    done = fleetpulse(*args)
    run.outputs[name] = done.stdout + done.stderr
    assert done.returncode == 0, f"{name}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    return done


def _tail_alerts(tail: Proc) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in tail.log().splitlines() if line.startswith("{")]


def _wait_until(what: str, done: Callable[[], bool], procs: list[Proc]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not done():
        for p in procs:
            assert p.alive(), f"{p.name} exited while waiting for {what}; its log:\n{p.log()[-4000:]}"
        if time.monotonic() > deadline:
            logs = "".join(f"\n--- {p.name}:\n{p.log()[-3000:]}" for p in procs)
            raise AssertionError(f"timed out waiting for {what}{logs}")
        time.sleep(0.5)


def _stored(sink_home: Path, sql: str) -> list[list[str]]:
    done = fleetpulse("query", "--home", str(sink_home), "--format", "csv", sql)
    assert done.returncode == 0, done.stdout + done.stderr
    return list(csv.reader(io.StringIO(done.stdout)))[1:]  # after the header row


def run_whole_pipeline(broker: PipelineBroker, base: Path) -> PipelineRun:
    """Apply a signed policy and silence, run worker, sink, agent and ``alerts tail`` until the agent's alert is stored.

    The policy has two rules every sample of the agent's host crosses: ``memory_seen`` (must
    arrive everywhere) and ``cpu_seen`` (silenced for this host before anything runs: must
    arrive nowhere).
    """
    host = f"pipe-{uuid.uuid4().hex[:6]}"
    prefix = ["--bootstrap", broker.bootstrap, "--topic-prefix", broker.topics.prefix]
    keys, policy, worker_home, sink_home, agent_home = (base / d for d in ("keys", "policy", "w", "s", "a"))
    for d in (keys, policy, worker_home, sink_home, agent_home):
        d.mkdir()
    (policy / "seen.yaml").write_text(
        "rules:\n  - name: memory_seen\n    when: mem_used_pct > 0\n  - name: cpu_seen\n    when: cpu_pct < 101\n"
    )
    run = PipelineRun(host=host, alerts=[], stored_metrics=0, stored_alerts=[])
    _command(run, "control keygen", "control", "keygen", "--out", str(keys))
    signing = ["--signing-key", str(keys / "control.key")]
    admin = [*broker.flags("admin"), *prefix]
    _command(run, "policy apply", "policy", "apply", str(policy), *admin, *signing)
    silence = ["-m", "rule=cpu_seen", "-m", f"host_id={host}", "-d", "1h", "--comment", "pipeline test"]
    silence_id = _command(run, "silence add", "silence", "add", *silence, *admin, *signing).stdout.strip()

    worker = Proc(
        "worker",
        [
            *worker_args(
                broker.bootstrap,
                broker.topics.prefix,
                broker.app_id,
                None,
                worker_home,
                partitions=2,
                session_timeout_s=6,
                trusted_keys=(keys / "control.pub",),
            ),
            *broker.flags("worker"),
        ],
        worker_home,
    ).start()
    sink = Proc(
        "sink",
        ["sink", "--home", str(sink_home), *broker.flags("sink"), *prefix, "--group-id", broker.sink_group],
        sink_home,
    ).start()
    tail = Proc("alerts tail", ["alerts", "tail", "--json", "--from-beginning", *admin], base).start()
    procs = [worker, sink, tail]
    agent: Proc | None = None
    try:
        wait_for_log(worker, "event=policy_applied")
        wait_for_log(worker, f"event=silence_put id={silence_id}")
        wait_for_log(sink, "event=partitions_assigned")  # it stores what arrives from now on
        config = agent_home / "agent.toml"
        config.write_text(broker.agent_kafka_toml())
        agent = Proc(
            "agent",
            [
                "agent",
                "--config",
                str(config),
                "--topic-prefix",
                broker.topics.prefix,
                "--interval",
                "1",
                "--host-id",
                host,
                "--region",
                "it",
                "--home",
                str(agent_home),
            ],
            agent_home,
        ).start()
        procs.append(agent)

        def memory_alert_seen() -> bool:
            return any(a.get("host_id") == host and a.get("rule") == "memory_seen" for a in _tail_alerts(tail))

        _wait_until("the memory_seen alert on alerts tail", memory_alert_seen, procs)
        time.sleep(3)  # a few more samples: cpu_seen crossed on each, silenced on each
        run.argv = {
            p.name: Path(f"/proc/{p.proc.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            for p in procs
            if p.proc is not None and p.alive()
        }
    finally:
        for p in reversed(procs):
            p.kill(signal.SIGTERM)
    for p in procs:
        run.outputs[p.name] = p.log()
    run.alerts = [a for a in _tail_alerts(tail) if a.get("host_id") == host]
    where = f"host_id = '{host}'"
    run.stored_metrics = int(_stored(sink_home, f"SELECT count() FROM metrics WHERE {where}")[0][0])
    run.stored_alerts = [(r[0], r[1]) for r in _stored(sink_home, f"SELECT rule, state FROM alerts WHERE {where}")]
    return run


def assert_everything_arrived(run: PipelineRun) -> None:
    """The agent's samples reached the worker and the sink, its alert ``alerts tail`` and ClickHouse,
    the signed policy set and silence were obeyed (the silenced rule arrived nowhere)."""
    rules = {(a["rule"], a["state"]) for a in run.alerts}
    assert ("memory_seen", "firing") in rules, run.alerts
    assert not any(rule == "cpu_seen" for rule, _ in rules), run.alerts  # silenced for this host
    assert run.stored_metrics >= 2, run.stored_metrics
    assert ("memory_seen", "firing") in run.stored_alerts and not any(r == "cpu_seen" for r, _ in run.stored_alerts)
    worker = run.outputs["worker"]
    assert "event=policy_applied" in worker and "rules=2" in worker, worker[-3000:]
    assert "event=control_unauthenticated" not in worker  # it trusted the key
    assert "Traceback" not in "".join(run.outputs.values())
