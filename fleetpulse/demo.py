"""``fleetpulse demo``: the whole pipeline on this host, with a CPU alert that fires and resolves.

It starts local Kafka (unless one is given), a Faust worker, the sink and an agent as child
processes, tails the alert and metric topics in-process to show what happens, burns CPU on
every core for a while, and at the end stops everything it started and queries ClickHouse.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from collector.aio import sleep_unless
from collector.connection import Bootstrap, as_connection, connection_from_env, start_client
from collector.contract import Alert, MetricBatch, Topics, decode_as
from collector.kafka_io import bootstrap_servers
from fleetpulse.alerts import format_alert

if TYPE_CHECKING:
    from sinks.clickhouse import ClickHouseTarget

ROOT = Path(__file__).resolve().parents[1]
DEMO_POLICY = ROOT / "deploy" / "demo" / "policy.yaml"
EXAMPLES = ROOT / "policies" / "examples"
DEMO_RULE = "demo_cpu_high"


@dataclass
class DemoOptions:
    """Knobs of one demo run (all have CLI flags)."""

    home: Path
    duration_s: float = 240.0
    interval_s: float = 2.0
    burn_after_s: float = 20.0
    burn_for_s: float = 40.0
    keep_kafka: bool = False
    topic_prefix: str = "fleetpulse"
    seen: dict[str, int] = field(default_factory=lambda: {"firing": 0, "resolved": 0})


def say(message: str) -> None:
    """The demo's narration, on stdout and flushed (it may be piped)."""
    print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _spawn(name: str, args: list[str], logs: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A ``fleetpulse`` child; ``env`` is laid over ours (how secrets reach it: never by argument)."""
    log_path = logs / f"{name}.log"
    out = open(log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetpulse.cli", *args],
        env={**os.environ, **(env or {})},
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches the demo only; it stops children in order
    )
    say(f"started {name} (pid {proc.pid}), log: {log_path}")
    return proc


def start_sink(store: ClickHouseTarget, common: list[str], logs: Path) -> subprocess.Popen[bytes]:
    """The demo's sink, told its ClickHouse target (and password) by environment, not by argument."""
    return _spawn("sink", ["sink", *common], logs, env=store.environment())


def _stop(name: str, proc: subprocess.Popen[bytes], grace_s: float = 20.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    say(f"stopped {name}")


def _burners() -> list[subprocess.Popen[bytes]]:
    code = "import time\nend = time.time() + 3600\nwhile time.time() < end: pass\n"
    return [subprocess.Popen([sys.executable, "-c", code], start_new_session=True) for _ in range(os.cpu_count() or 1)]


async def _watch(opts: DemoOptions, bootstrap: Bootstrap, stop: asyncio.Event) -> None:
    """Narrate alerts and this host's CPU while the demo runs."""
    from aiokafka import AIOKafkaConsumer

    topics = Topics(opts.topic_prefix)
    consumer = AIOKafkaConsumer(
        topics.alerts,
        topics.metrics,
        **as_connection(bootstrap).client_options(),
        group_id=None,
        auto_offset_reset="latest",
    )
    await start_client(consumer, bootstrap)
    shown = [0]
    try:
        while not stop.is_set():
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                for record in records:
                    _narrate(opts, tp.topic == topics.alerts, record.value, shown)
    finally:
        await consumer.stop()


def _narrate(opts: DemoOptions, is_alert: bool, value: bytes, shown: list[int]) -> None:
    """Say an alert as it comes, and every third metric batch of this host."""
    if is_alert:
        alert = decode_as(value, Alert)
        if alert.rule == DEMO_RULE:
            opts.seen[alert.state] += 1
        say(f"ALERT {format_alert(alert)}")
        return
    batch = decode_as(value, MetricBatch)
    shown[0] += 1
    if shown[0] % 3 == 1:
        say(
            f"agent {batch.host_id}: cpu_pct={batch.metrics.get('cpu_pct', 0):.0f} "
            f"mem_used_pct={batch.metrics.get('mem_used_pct', 0):.0f} "
            f"({len(batch.metrics)} metrics)"
        )


async def _story(opts: DemoOptions, children: dict[str, subprocess.Popen[bytes]], stop: asyncio.Event) -> None:
    start = time.monotonic()
    burners: list[subprocess.Popen[bytes]] = []
    burn_started = burn_ended = False
    try:
        while not stop.is_set():
            elapsed = time.monotonic() - start
            if elapsed >= opts.duration_s:
                say(f"--duration {opts.duration_s:g}s reached")
                break
            for name, proc in children.items():
                if proc.poll() is not None:
                    say(f"{name} exited with code {proc.returncode}; see its log. Stopping.")
                    return
            if not burn_started and elapsed >= opts.burn_after_s:
                burners = _burners()
                burn_started = True
                say(
                    f"burning CPU on {len(burners)} core(s) for {opts.burn_for_s:g}s: "
                    "the policy 'cpu_pct > 70 for 10s' should fire"
                )
            if burn_started and not burn_ended and elapsed >= opts.burn_after_s + opts.burn_for_s:
                for b in burners:
                    b.kill()
                burn_ended = True
                say("CPU load stopped: the alert should resolve at the next sample")
            if opts.seen["resolved"] and burn_ended:
                await asyncio.sleep(3 * opts.interval_s)  # let the sink store the last batches
                say("alert fired and resolved: the story is complete")
                break
            await sleep_unless(stop, 1.0)
    finally:
        for b in burners:
            if b.poll() is None:
                b.kill()
            b.wait()


def _apply_policies(bootstrap: Bootstrap, prefix: str) -> None:
    """Publish the example policies plus the demo's short rule, as ``fleetpulse policy apply`` does."""
    from fleetpulse.control import publish_policy
    from policies.loader import load_policy_texts, policy_files

    files = {**policy_files(EXAMPLES), **policy_files(DEMO_POLICY)}
    policy = load_policy_texts(files)
    asyncio.run(publish_policy(bootstrap, Topics(prefix), files, policy.version))
    say(
        f"applied policy {policy.version}: {len(policy)} rules from {EXAMPLES.relative_to(ROOT)}/ "
        f"and {DEMO_POLICY.relative_to(ROOT)} (every rule kind; the demo watches {DEMO_RULE})"
    )


def run_demo(opts: DemoOptions) -> int:
    """Run the demo; returns 0 when an alert fired and resolved, 1 otherwise."""
    from fleetpulse.kafka_local import LocalKafka
    from sinks.clickhouse import resolve_target

    logging.getLogger("aiokafka").setLevel(logging.WARNING)  # the narration is the demo's output
    logs = opts.home / "demo"
    logs.mkdir(parents=True, exist_ok=True)
    kafka: LocalKafka | None = None
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        bootstrap = bootstrap_servers()
        say(f"using the broker at {bootstrap} (KAFKA_BOOTSTRAP_SERVERS)")
    else:
        kafka = LocalKafka(opts.home)
        say("starting local Apache Kafka (first run downloads it from Maven Central)...")
        t0 = time.monotonic()
        started = kafka.start()
        say(
            f"Kafka {'started' if started else 'was already running'} at {kafka.bootstrap} "
            f"in {time.monotonic() - t0:.1f}s; log: {kafka.log_path}"
        )
        bootstrap = kafka.bootstrap
        if not started:
            kafka = None  # not ours to stop

    # The children read the same FLEETPULSE_KAFKA_* credentials from the environment (never argv).
    common = ["--home", str(opts.home), "--bootstrap", bootstrap, "--topic-prefix", opts.topic_prefix]
    connection = connection_from_env(os.environ, bootstrap=bootstrap)
    store = resolve_target(None, opts.home)  # $CLICKHOUSE_URL (and its password) or chDB under --home
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        _apply_policies(connection, opts.topic_prefix)
        children["worker"] = _spawn("worker", ["worker", *common, "--app-id", "fleetpulse-demo"], logs)
        children["sink"] = start_sink(store, common, logs)
        time.sleep(2)  # topics are created by the worker; the agent retries anyway
        children["agent"] = _spawn(
            "agent", ["agent", *common, "--interval", str(opts.interval_s), "--region", "demo"], logs
        )

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            watcher = asyncio.create_task(_watch(opts, connection, stop))
            await _story(opts, children, stop)
            stop.set()
            await watcher

        asyncio.run(main())
    finally:
        for name in ("agent", "worker", "sink"):  # agent first: the sink drains what it sent
            if name in children:
                _stop(name, children[name])
        if kafka is not None and not opts.keep_kafka:
            kafka.stop()
            say("stopped local Kafka")

    _report(store, opts)
    ok = opts.seen["firing"] > 0 and opts.seen["resolved"] > 0
    say(
        f"alerts seen: {opts.seen['firing']} firing, {opts.seen['resolved']} resolved"
        + ("" if ok else " (the full fire-and-resolve story was not seen)")
    )
    return 0 if ok else 1


def _report(store: ClickHouseTarget, opts: DemoOptions) -> None:
    from sinks.clickhouse import connect
    from sinks.query import render, run_query

    client = connect(store)
    for sql in (
        "SELECT count() AS metric_rows, uniq(host_id) AS hosts, min(ts) AS first, max(ts) AS last FROM metrics",
        "SELECT at, state, rule, host_id, round(value, 1) AS value, summary FROM alerts FINAL ORDER BY at",
    ):
        columns, rows = run_query(client, sql, "fleetpulse")
        print(f"\n{sql}\n{render(columns, rows)}")
    home = "" if opts.home == Path(".fleetpulse").resolve() else f" --home {opts.home}"
    print(
        "\nThe data stays in ClickHouse; ask it more, for example:\n"
        f'  .venv/bin/fleetpulse query{home} "SELECT count() FROM metrics"\n'
        f'  .venv/bin/fleetpulse query{home} "SELECT name, round(avg(value), 1) AS avg, max(value) AS max '
        "FROM metrics WHERE instance = '' GROUP BY name ORDER BY name\""
    )
