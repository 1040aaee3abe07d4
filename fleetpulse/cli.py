"""``fleetpulse``: one command line for the agent, workers, sink, queries and local infrastructure.

Heavy dependencies (Faust, ClickHouse) are imported inside the subcommands that need them,
so an agent-only install runs ``fleetpulse agent`` without them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from collector.contract import DEFAULT_TOPIC_PREFIX, Topics

if TYPE_CHECKING:
    from collector.config import AgentConfig
    from collector.contract import Alert
    from fleetpulse.sim.scenario import Scenario
    from fleetpulse.sim.score import Report
    from policies.model import PolicySet
from collector.kafka_io import bootstrap_servers, partitions_from_env

log = logging.getLogger("fleetpulse")

EPILOG = """environment:
  KAFKA_BOOTSTRAP_SERVERS  broker (host:port[,host:port]); unset = local broker on 127.0.0.1:9092
  FLEETPULSE_HOME          data directory (local Kafka, worker state, embedded ClickHouse);
                           default ./.fleetpulse
  FLEETPULSE_TOPIC_PREFIX  topic prefix (default 'fleetpulse': fleetpulse.metrics, fleetpulse.alerts, ...)
  FLEETPULSE_PARTITIONS    partitions of the pipeline's topics when they are created (default 8)
  CLICKHOUSE_URL           ClickHouse server (http://user:pw@host:8123); unset = embedded chDB engine
"""


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
        stream=sys.stderr,
    )


def _labels(items: Sequence[str]) -> dict[str, str]:
    labels = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"fleetpulse: --label expects key=value, got {item!r}")
        labels[key] = value
    return labels


def _topics(args: argparse.Namespace) -> Topics:
    return Topics(args.topic_prefix or os.environ.get("FLEETPULSE_TOPIC_PREFIX") or DEFAULT_TOPIC_PREFIX)


def _home(args: argparse.Namespace) -> Path:
    from fleetpulse.kafka_local import default_home

    return Path(args.home).resolve() if args.home else default_home()


def _run_until_signal(coro_factory: Callable[[asyncio.Event], Awaitable[object]]) -> None:
    """Run an ``async def f(stop)`` until SIGINT/SIGTERM sets ``stop``."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await coro_factory(stop)

    asyncio.run(main())


# -- subcommands ---------------------------------------------------------------------------


def _agent_config(args: argparse.Namespace) -> tuple[AgentConfig, Path]:
    """The config file (if any) with command-line flags applied on top; and the state dir."""
    import dataclasses

    from collector.config import KafkaSettings, load_agent_config

    config = load_agent_config(args.config)
    changes: dict[str, object] = {}
    for flag, key in (("host_id", "host_id"), ("region", "region"), ("interval", "interval_s")):
        if getattr(args, flag) is not None:
            changes[key] = getattr(args, flag)
    if args.label:
        changes["labels"] = {**config.labels, **_labels(args.label)}
    kafka: KafkaSettings = config.kafka
    if args.bootstrap:
        kafka = dataclasses.replace(kafka, bootstrap_servers=args.bootstrap)
    prefix = args.topic_prefix or os.environ.get("FLEETPULSE_TOPIC_PREFIX")
    if prefix:
        kafka = dataclasses.replace(kafka, topic_prefix=prefix)
    config = dataclasses.replace(config, kafka=kafka, **changes)  # type: ignore[arg-type]
    if args.interval is not None and not args.interval > 0:
        raise ValueError(f"--interval must be > 0, got {args.interval}")
    if args.state_dir:
        state_dir = Path(args.state_dir)
    elif args.config or "FLEETPULSE_AGENT_STATE_DIR" in os.environ:
        state_dir = config.state_dir
    else:
        state_dir = _home(args) / "agent"  # no config file: a development run, keep state local
    return config, state_dir


def cmd_agent(args: argparse.Namespace) -> int:
    from collector.agent import Collector, run_agent
    from collector.config import ConfigError
    from collector.contract import encode

    try:
        config, state_dir = _agent_config(args)
    except ConfigError as exc:
        sys.stderr.write(f"fleetpulse agent: invalid configuration:\n{exc}\n")
        return 2
    if args.check_config:
        print(
            f"{config.source}: valid. host_id={config.host_id} region={config.region} "
            f"interval_s={config.interval_s:g} kafka={config.kafka.bootstrap_servers} "
            f"({config.kafka.security_protocol}) groups={len(config.groups)} log_sources={len(config.logs)} "
            f"witness_peers={len(config.witness.peers)} "
            f"state_dir={state_dir}"
        )
        return 0
    if args.stdout:
        import time

        collector = Collector(config, None)
        cycles = 1 if args.once else None
        done = 0
        while cycles is None or done < cycles:
            time.sleep(min(1.0, config.interval_s) if done == 0 else config.interval_s)
            for event in collector.collect(time.time()):
                if args.heartbeat or event.TYPE != "heartbeat":
                    sys.stdout.write(encode(event).decode() + "\n")
            sys.stdout.flush()
            done += 1
        return 0
    from collector.durable import StateDirBusy

    try:
        _run_until_signal(lambda stop: run_agent(config, state_dir, stop, cycles=1 if args.once else None))
    except StateDirBusy as exc:
        sys.stderr.write(f"fleetpulse agent: {exc}\n")
        return 1
    return 0


def worker_args(
    bootstrap: str,
    topic_prefix: str,
    app_id: str,
    policy: Path | None,
    home: Path,
    partitions: int,
    session_timeout_s: float | None = None,
    log_level: str | None = None,
) -> list[str]:
    """The ``fleetpulse`` arguments that start a worker (one definition, for tests and benchmarks)."""
    return [
        *(["--log-level", log_level] if log_level else []),
        "worker",
        "--bootstrap",
        bootstrap,
        "--topic-prefix",
        topic_prefix,
        "--app-id",
        app_id,
        *(["--policy", str(policy)] if policy is not None else []),
        "--home",
        str(home),
        "--partitions",
        str(partitions),
        *(["--session-timeout", f"{session_timeout_s:g}"] if session_timeout_s is not None else []),
    ]


def cmd_worker(args: argparse.Namespace) -> int:
    from policies.loader import PolicyError, load_policy_path
    from policies.model import PolicySet

    policy = PolicySet()
    if args.policy:
        try:
            policy = load_policy_path(args.policy)
        except PolicyError as exc:
            sys.stderr.write(f"fleetpulse worker: invalid policy:\n{exc}\n")
            return 2
    from streams.app import WorkerSettings, run_worker

    home = _home(args)
    settings = WorkerSettings(
        bootstrap=bootstrap_servers(args.bootstrap),
        topics=_topics(args),
        policy=policy,
        app_id=args.app_id,
        partitions=args.partitions or partitions_from_env(),
        datadir=home / "worker",
        session_timeout_s=args.session_timeout,
    )
    run_worker(settings, loglevel=args.log_level)
    return 0


def cmd_sink(args: argparse.Namespace) -> int:
    from collector.kafka_io import ensure_all_topics
    from sinks.clickhouse import connect, default_target, redacted
    from sinks.options import sink_settings
    from sinks.writer import Sink

    settings = sink_settings(args)  # validated before anything connects
    target = args.clickhouse_url or default_target(_home(args))
    client = connect(target)
    bootstrap = bootstrap_servers(args.bootstrap)
    topics = _topics(args)
    # A sink may be the first process of a deployment: create the topics it reads and writes.
    asyncio.run(ensure_all_topics(bootstrap, topics, partitions_from_env()))
    sink = Sink(client, bootstrap, topics, args.database, args.group_id, settings)
    log.info("event=sink_target target=%s", redacted(target))
    _run_until_signal(sink.run)
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    from fleetpulse.alerts import printer, tail_alerts

    show = printer(as_json=args.json)
    bootstrap = bootstrap_servers(args.bootstrap)
    _run_until_signal(lambda stop: tail_alerts(bootstrap, _topics(args), stop, show, args.from_beginning))
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from sinks.clickhouse import connect, default_target
    from sinks.query import render, run_query
    from sinks.reports import parse_when, run_report

    if bool(args.sql) == bool(args.report):
        sys.stderr.write("fleetpulse query: give either SQL or --report NAME (fleetpulse query --help lists reports)\n")
        return 2
    if args.report:
        now = datetime.now(UTC)
        since, until = parse_when(args.since, now), parse_when(args.until, now)  # ValueError: exit 2
    target = args.clickhouse_url or default_target(_home(args))
    try:
        client = connect(target)
        if args.report:
            columns, rows = run_report(client, args.database, args.report, since, until, args.limit, args.step)
        else:
            columns, rows = run_query(client, args.sql, args.database)
    except Exception as exc:
        sys.stderr.write(f"fleetpulse query: {exc}\n")
        return 1
    print(render(columns, rows, args.format))
    return 0


def cmd_kafka(args: argparse.Namespace) -> int:
    from fleetpulse.kafka_local import KafkaLocalError, LocalKafka

    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        print(
            f"KAFKA_BOOTSTRAP_SERVERS is set ({os.environ['KAFKA_BOOTSTRAP_SERVERS']}): the local broker is not used."
        )
        return 0
    kafka = LocalKafka(_home(args), port=args.port)
    try:
        if args.action == "start":
            started = kafka.start()
            state = "started" if started else "already running"
            print(f"Kafka {state} at {kafka.bootstrap} (pid {kafka.pid()}); log: {kafka.log_path}")
        elif args.action == "stop":
            print("Kafka stopped" if kafka.stop() else "Kafka was not running (started by us)")
        else:
            ready = kafka.is_ready()
            pid = kafka.pid()
            print(
                f"Kafka at {kafka.bootstrap}: {'ready' if ready else 'not answering'}"
                f"{f' (pid {pid})' if pid else ''}; log: {kafka.log_path}"
            )
            return 0 if ready else 1
    except KafkaLocalError as exc:
        sys.stderr.write(f"fleetpulse kafka: {exc}\n")
        return 1
    return 0


def _describe(policy: PolicySet) -> list[str]:
    """One line per rule, maintenance window, inhibit rule and down-check scope of a policy set."""
    lines = []
    for rule in policy.metric_rules:
        bounds = " ".join(f"{t.side}.{t.severity}={t.value:g}" for t in rule.thresholds)
        window = f" {rule.agg}/{rule.window_s:g}s" if rule.window_s else ""
        scope = "" if rule.selector.is_everything else " scoped"
        lines.append(
            f"{rule.source}: {rule.kind} {rule.name} {rule.metric}{window} {bounds} for={rule.for_s:g}s{scope}"
        )
    for sched in policy.schedule_rules:
        lines.append(f"{sched.source}: schedule {sched.name} {sched.group} '{sched.cron}' within={sched.within_s:g}s")
    for group in policy.group_rules:
        bounds = " ".join(f"{t.side}.{t.severity}={t.value:g}" for t in group.thresholds)
        scale = " scale" if group.scale else ""
        lines.append(f"{group.source}: group {group.name} {group.agg}({group.metric}) {bounds}{scale}")
    for quiet in policy.maintenance:
        lines.append(f"{quiet.source}: maintenance {quiet.name} '{quiet.cron}' for {quiet.duration_s:g}s")
    for inhibit in policy.inhibit:
        lines.append(f"{inhibit.source}: inhibit {inhibit.name} equal={','.join(inhibit.equal) or '-'}")
    for dc in policy.downcheck:
        c = dc.settings
        lines.append(
            f"{dc.source}: downcheck {dc.name} missed={c.missed:g} late={c.late:g} grace={c.grace_s:g}s"
            f" region_share={c.region_share:g} min_region_hosts={c.min_region_hosts}"
            f"{'' if dc.selector.is_everything else ' scoped'}"
        )
    return lines


def cmd_policy(args: argparse.Namespace) -> int:
    from policies.loader import PolicyError, load_policy_texts, policy_files

    if args.policy_command == "list":
        from fleetpulse.control import current_policy

        published = asyncio.run(current_policy(bootstrap_servers(args.bootstrap), _topics(args)))
        if published is None:
            print("no policy set has been applied (workers use their --policy files)")
            return 1
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(published.applied_at))
        print(f"policy {published.version} applied {when} by {published.applied_by or '-'}")
        print(f"files: {', '.join(sorted(published.files))}")
        try:
            applied = load_policy_texts(published.files)
        except PolicyError as exc:
            sys.stderr.write(f"the published set does not load (workers keep their last good set):\n{exc}\n")
            return 2
        for line in _describe(applied):
            print(f"  {line}")
        return 0
    try:
        files = policy_files(args.path)
        policy = load_policy_texts(files)
    except PolicyError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    if args.policy_command == "validate":
        for line in _describe(policy):
            print(line)
        print(f"{len(policy)} rule(s) valid in {len(files)} file(s), version {policy.version}")
        return 0
    from fleetpulse.control import publish_policy

    published = asyncio.run(publish_policy(bootstrap_servers(args.bootstrap), _topics(args), files, policy.version))
    print(f"applied policy {published.version}: {len(policy)} rule(s) from {len(files)} file(s)")
    return 0


def cmd_silence(args: argparse.Namespace) -> int:
    from fleetpulse import control as ctl
    from policies.control import ControlError, format_matcher, new_silence, parse_matcher
    from policies.model import Silence, parse_duration

    bootstrap, topics = bootstrap_servers(args.bootstrap), _topics(args)
    if args.silence_command == "add":
        try:
            matchers = [parse_matcher(m) for m in args.match]
            silence = new_silence(
                matchers, parse_duration(args.duration), args.comment, ctl.operator(), _start_time(args.start)
            )
        except (ControlError, ValueError) as exc:
            sys.stderr.write(f"fleetpulse silence add: {exc}\n")
            return 2
        asyncio.run(ctl.put_silence(bootstrap, topics, silence))
        print(silence.id)
        return 0
    found = asyncio.run(ctl.silences(bootstrap, topics))
    now = time.time()
    if args.silence_command == "expire":
        target = next((s for s in found if s.id == args.id), None)
        if target is None:
            sys.stderr.write(f"fleetpulse silence expire: no silence {args.id!r}\n")
            return 1
        ended = Silence(
            target.id, target.matchers, target.starts_at, min(target.ends_at, now), target.created_by, target.comment
        )
        asyncio.run(ctl.put_silence(bootstrap, topics, ended))
        print(f"expired {target.id}")
        return 0
    shown = [s for s in found if args.all or s.ends_at > now]
    for s in shown:
        state = "active" if s.active(now) else ("pending" if s.starts_at > now else "expired")
        ends = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s.ends_at))
        shown_matchers = " ".join(format_matcher(m) for m in s.matchers)
        print(f"{s.id}  {state:<8} until {ends} UTC  {shown_matchers}  by {s.created_by or '-'}  {s.comment}")
    if not shown:
        print("no silences")
    return 0


def _start_time(text: str | None) -> float | None:
    """``--start``: an ISO time (UTC unless it says otherwise) or a delay like ``30m``."""
    if not text:
        return None
    from datetime import UTC, datetime

    from policies.model import parse_duration

    try:
        return time.time() + parse_duration(text)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def cmd_demo(args: argparse.Namespace) -> int:
    from fleetpulse.demo import DemoOptions, run_demo

    return run_demo(
        DemoOptions(
            home=_home(args),
            duration_s=args.duration,
            interval_s=args.interval,
            burn_after_s=args.burn_after,
            burn_for_s=args.burn_for,
            keep_kafka=args.keep_kafka,
            topic_prefix=args.topic_prefix,
        )
    )


# How long after the scoring window closes alerts still count as arriving: the worker
# publishes a decision within a tick, the broker makes it readable a little later.
SETTLE_MARGIN_S = 2.0


def _duration(text: str) -> float:
    """An argparse type: seconds, or a duration like ``90s`` or ``2m``."""
    from policies.model import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _progress(line: str) -> None:
    """Simulation progress goes to stderr, so stdout holds only the description or the report."""
    sys.stderr.write(f"{line}\n")
    sys.stderr.flush()


def _show_report(report: Report, as_json: bool) -> int:
    """Print a score report; the exit code says its verdict (0 pass, 1 fail)."""
    if as_json:
        import json

        print(json.dumps(report.to_json(), indent=2))
    else:
        print("\n".join(report.lines()))
    return 0 if report.verdict == "pass" else 1


def cmd_simulate(args: argparse.Namespace) -> int:
    from aiokafka.errors import KafkaError

    from fleetpulse.alerts import read_alerts
    from fleetpulse.sim.runner import run_simulation
    from fleetpulse.sim.scenario import ScenarioError, describe, load_scenario
    from fleetpulse.sim.score import score
    from fleetpulse.sim.truth import Truth

    try:
        scenario = load_scenario(
            args.scenario,
            hosts=args.hosts,
            regions=args.regions,
            interval_s=args.interval,
            duration_s=args.duration,
        )
    except ScenarioError as exc:
        sys.stderr.write("fleetpulse simulate: invalid scenario:\n" + "\n".join(exc.problems) + "\n")
        return 2
    if args.describe:
        print("\n".join(describe(scenario)))
        return 0
    if args.offline:
        return _simulate_offline(scenario)
    truth_path = Path(args.truth) if args.truth else _home(args) / "simulate" / f"{scenario.name}.truth.json"
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    bootstrap, topics = bootstrap_servers(args.bootstrap), _topics(args)
    done: dict[str, Truth] = {}
    alerts: list[Alert] = []
    interrupted = False

    async def play(stop: asyncio.Event) -> None:
        nonlocal interrupted
        truth = done["truth"] = await run_simulation(
            scenario, bootstrap, topics, truth_path=truth_path, stop=stop, progress=_progress
        )
        if args.score and not stop.is_set():
            settle = args.settle if args.settle is not None else truth.slack_s + SETTLE_MARGIN_S
            _progress(f"reading alerts until {settle:g}s after the run's end")
            alerts.extend(await read_alerts(bootstrap, topics, truth.start, truth.end + settle, stop=stop))
        interrupted = stop.is_set()

    try:
        _run_until_signal(play)
    except (KafkaError, OSError) as exc:
        sys.stderr.write(f"fleetpulse simulate: Kafka at {bootstrap}: {exc}\n")
        return 1
    _progress(f"truth written to {truth_path}")
    if interrupted:
        sys.stderr.write("fleetpulse simulate: interrupted; the run is incomplete and was not scored\n")
        return 1
    if not args.score:
        return 0
    return _show_report(score(done["truth"], alerts), args.json)


def _simulate_offline(scenario: Scenario) -> int:
    """Play ``scenario`` through the pure down-check logic on a simulated clock and judge it."""
    from fleetpulse.sim.judge import notice_lines, play, violations

    played = play(scenario)
    print("\n".join(notice_lines(played.notices)) or "no alerts")
    problems = violations(played)
    if problems:
        print(f"verdict: fail ({len(problems)} broken promise(s))")
        print("\n".join(f"  {p}" for p in problems))
        return 1
    print("verdict: pass (every promise the judge checks held)")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from collector.contract import Alert, DecodeError, decode_as
    from fleetpulse.sim.score import score
    from fleetpulse.sim.truth import load_truth

    try:
        truth = load_truth(args.truth)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        sys.stderr.write(f"fleetpulse score: {args.truth}: not a truth file written by 'fleetpulse simulate': {exc}\n")
        return 2
    alerts: list[Alert] = []
    if args.alerts:
        try:
            lines = Path(args.alerts).read_text(encoding="utf-8").splitlines()
            alerts = [decode_as(line, Alert) for line in lines if line.strip()]
        except (OSError, DecodeError) as exc:
            sys.stderr.write(f"fleetpulse score: {args.alerts}: {exc}\n")
            return 2
        return _show_report(score(truth, alerts), args.json)
    from aiokafka.errors import KafkaError

    from fleetpulse.alerts import read_alerts

    bootstrap = bootstrap_servers(args.bootstrap)
    settle = args.settle if args.settle is not None else truth.slack_s + SETTLE_MARGIN_S
    until = truth.end + settle
    if until > time.time():
        _progress(f"the run's alerts are complete in {until - time.time():.0f}s: reading until then")

    interrupted = False

    async def read(stop: asyncio.Event) -> None:
        nonlocal interrupted
        alerts.extend(await read_alerts(bootstrap, _topics(args), truth.start, until, stop=stop))
        interrupted = stop.is_set()

    try:
        _run_until_signal(read)
    except (KafkaError, OSError) as exc:
        sys.stderr.write(f"fleetpulse score: Kafka at {bootstrap}: {exc}\n")
        return 1
    if interrupted:
        sys.stderr.write("fleetpulse score: interrupted before the run's alerts were all read; not scored\n")
        return 1
    return _show_report(score(truth, alerts), args.json)


# -- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; ``fleetpulse SUBCOMMAND --help`` explains each part."""
    from sinks.options import add_query_arguments, add_sink_arguments, query_epilog

    parser = argparse.ArgumentParser(
        prog="fleetpulse",
        description="FleetPulse: fleet monitoring on Kafka, Faust and ClickHouse.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--log-level", default="info", help="debug, info, warning (default info)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser, kafka: bool = True, clickhouse: bool = False) -> None:
        p.add_argument("--home", help="data directory (default $FLEETPULSE_HOME or ./.fleetpulse)")
        if kafka:
            p.add_argument(
                "--bootstrap",
                help="Kafka bootstrap servers (default $KAFKA_BOOTSTRAP_SERVERS or 127.0.0.1:9092)",
            )
            p.add_argument(
                "--topic-prefix",
                help=f"topic name prefix (default $FLEETPULSE_TOPIC_PREFIX or {DEFAULT_TOPIC_PREFIX})",
            )
        if clickhouse:
            p.add_argument(
                "--clickhouse-url",
                help="chdb:///path or http://user:pw@host:8123 (default $CLICKHOUSE_URL or embedded chDB under --home)",
            )
            p.add_argument("--database", default="fleetpulse", help="ClickHouse database (default %(default)s)")

    p = sub.add_parser(
        "agent",
        help="sample this host; send metrics, processes, log matches and heartbeats",
        description="Every interval: sample the host, summarise the process table, follow the configured "
        "log files, and send it all with a heartbeat to Kafka through a disk spool (nothing is lost while "
        "Kafka is away). --stdout prints the events instead; no Kafka needed.",
    )
    common(p)
    p.add_argument("--config", help="agent TOML file (sample: deploy/agent.toml); the flags below override it")
    p.add_argument("--check-config", action="store_true", help="validate the configuration, print a summary, exit")
    p.add_argument("--interval", type=float, help="seconds between samples (default 10)")
    p.add_argument("--host-id", help="host identity (default: hostname)")
    p.add_argument("--region", help="region of this host (default local)")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="host label (repeatable)")
    p.add_argument(
        "--state-dir", help="spool, log offsets, sequence (default: [agent] state_dir; <home>/agent without --config)"
    )
    p.add_argument("--once", action="store_true", help="send (or print) one cycle and exit")
    p.add_argument("--stdout", action="store_true", help="print JSON events instead of sending them; no Kafka needed")
    p.add_argument("--heartbeat", action="store_true", help="with --stdout, print the heartbeat too")
    p.set_defaults(func=cmd_agent)

    p = sub.add_parser(
        "worker",
        help="evaluate alert policies on the metric stream (Faust)",
        description="Run a Faust worker: reads metric batches, process summaries and log counts, "
        "evaluates the policy and emits alerts (and scale signals of group rules). Policies "
        "applied with 'fleetpulse policy apply' take effect live. More workers with the same "
        "--app-id share the partitions.",
    )
    common(p)
    p.add_argument(
        "--policy",
        help="policy file or directory, used until a set is applied with 'fleetpulse policy apply' "
        "(the applied set on the policy topic wins when there is one)",
    )
    p.add_argument("--app-id", default="fleetpulse-worker", help="Faust app id = consumer group (default %(default)s)")
    p.add_argument(
        "--partitions",
        type=int,
        default=partitions_from_env(),
        help="partitions of topics created at start (default $FLEETPULSE_PARTITIONS or 8)",
    )
    p.add_argument(
        "--session-timeout",
        type=float,
        default=30.0,
        help="seconds before a crashed worker's partitions move to others (default 30; "
        "the broker's minimum is usually 6)",
    )
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser(
        "sink",
        help="write every event from Kafka into ClickHouse (raw tables, history, rollups)",
        description="Consume metrics, heartbeats, process summaries, log matches, alerts and scale "
        "signals and insert them into ClickHouse in columnar batches; migrations are applied at start. "
        "Offsets are committed only after the insert succeeded, and a retried insert writes nothing "
        "twice. Undecodable records go to the dead-letter topic. Options also come from "
        "FLEETPULSE_SINK_<OPTION> environment variables.",
    )
    common(p, clickhouse=True)
    p.add_argument("--group-id", default="fleetpulse-sink", help="consumer group (default %(default)s)")
    add_sink_arguments(p)
    p.set_defaults(func=cmd_sink)

    p = sub.add_parser("alerts", help="subscribe to alerts", description="Work with the alert topic.")
    alerts_sub = p.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    tail = alerts_sub.add_parser("tail", help="print alerts as they arrive (Ctrl-C to stop)")
    common(tail)
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest retained alert")
    tail.add_argument("--json", action="store_true", help="print the wire JSON instead of a line per alert")
    tail.set_defaults(func=cmd_alerts)

    p = sub.add_parser(
        "query",
        help="run SQL or a canned report on the ClickHouse store and print the result",
        description="Run SQL, or a canned report (--report), against the same ClickHouse target as "
        "the sink. The default database is 'fleetpulse' (tables: metrics, alerts, heartbeats, "
        "process_summaries, process_groups, process_events, log_matches, log_counts, scale_signals, "
        "host_status, down_checks, dead_letters; rollups metrics_1m, metrics_region_1m, heartbeats_1m). "
        "Stop the sink first when using the embedded engine: it allows one process at a time.",
        epilog=query_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common(p, kafka=False, clickhouse=True)
    add_query_arguments(p)
    p.set_defaults(func=cmd_query)

    p = sub.add_parser(
        "kafka",
        help="start/stop/status of the local single-node Kafka",
        description="Manage a local Apache Kafka (KRaft) broker fetched from Maven Central. "
        "Does nothing when KAFKA_BOOTSTRAP_SERVERS is set.",
    )
    p.add_argument("action", choices=["start", "stop", "status"])
    p.add_argument("--home", help="data directory (default $FLEETPULSE_HOME or ./.fleetpulse)")
    p.add_argument("--port", type=int, default=9092, help="client port (controller uses port+1; default 9092)")
    p.set_defaults(func=cmd_kafka)

    p = sub.add_parser(
        "policy",
        help="validate, apply and list alert policies",
        description="Policies are YAML files (a directory of them). 'validate' checks them offline; "
        "'apply' validates and publishes the set to the policy topic, where running workers pick it "
        "up without restart; 'list' shows the set the workers run.",
    )
    policy_sub = p.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    validate = policy_sub.add_parser("validate", help="validate a file or directory; exit 2 on errors")
    validate.add_argument("path")
    validate.set_defaults(func=cmd_policy)
    apply = policy_sub.add_parser(
        "apply", help="validate and publish a policy set to running workers; exit 2 (nothing published) on errors"
    )
    common(apply)
    apply.add_argument("path", help="policy file or directory of *.yaml files")
    apply.set_defaults(func=cmd_policy)
    listing = policy_sub.add_parser("list", help="show the applied policy set; exit 1 when none was applied")
    common(listing)
    listing.set_defaults(func=cmd_policy)

    p = sub.add_parser(
        "silence",
        help="silence alerts for a while",
        description="Silences keep matching alerts quiet (evaluation goes on; an alert still firing when "
        "its silence ends is announced then; resolutions are always sent). Matchers use the alert's "
        "labels: rule, severity, kind, host_id, region, metric and the host's and rule's labels.",
    )
    silence_sub = p.add_subparsers(dest="silence_command", required=True, metavar="ACTION")
    add = silence_sub.add_parser("add", help="add a silence; prints its id")
    common(add)
    add.add_argument(
        "--match",
        "-m",
        action="append",
        required=True,
        help="label=value, label!=value, label=~regex or label!~regex (repeat: all must hold)",
    )
    add.add_argument("--duration", "-d", default="2h", help="how long (e.g. 30m, 2h; default %(default)s)")
    add.add_argument("--start", help="when it starts: ISO time (UTC unless given) or a delay like 30m (default now)")
    add.add_argument("--comment", "-c", default="", help="why (shown by 'silence list')")
    add.set_defaults(func=cmd_silence)
    lst = silence_sub.add_parser("list", help="list active and pending silences")
    common(lst)
    lst.add_argument("--all", action="store_true", help="include expired silences")
    lst.set_defaults(func=cmd_silence)
    expire = silence_sub.add_parser("expire", help="end a silence now")
    common(expire)
    expire.add_argument("id")
    expire.set_defaults(func=cmd_silence)

    p = sub.add_parser(
        "demo",
        help="run the whole pipeline on this host and make a CPU alert fire and resolve",
        description="Start local Kafka (unless KAFKA_BOOTSTRAP_SERVERS is set), a worker, "
        "the sink and an agent; burn CPU so an alert fires, then stop burning "
        "so it resolves; finally query ClickHouse. Ctrl-C stops everything.",
    )
    p.add_argument("--home", help="data directory (default $FLEETPULSE_HOME or ./.fleetpulse)")
    p.add_argument("--topic-prefix", default=os.environ.get("FLEETPULSE_TOPIC_PREFIX", DEFAULT_TOPIC_PREFIX))
    p.add_argument(
        "--duration",
        type=float,
        default=240.0,
        help="stop after this many seconds even if the story is not over (default 240)",
    )
    p.add_argument("--interval", type=float, default=2.0, help="agent interval in seconds (default 2)")
    p.add_argument("--burn-after", type=float, default=20.0, help="seconds before the CPU load starts (default 20)")
    p.add_argument("--burn-for", type=float, default=40.0, help="seconds of CPU load (default 40)")
    p.add_argument("--keep-kafka", action="store_true", help="leave the local broker running afterwards")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "simulate",
        help="play a scenario of virtual hosts and faults into Kafka; optionally score the alerts",
        description="Play a scenario (a YAML file of fleet size, interval and timed faults: crashes, "
        "reboots, partitions, ingest outages, flapping links, clock skew, slow delivery) into Kafka in "
        "real time, as heartbeats, metrics and witness probes of virtual hosts, and write the run's "
        "ground truth (what really happened and which alerts each fault owes) to --truth. Start a "
        "worker first ('fleetpulse worker') with down-check settings that match the scenario's "
        "'downcheck' block. With --score, read the alerts the worker raised and score them "
        "(see 'fleetpulse score'). Host ids repeat from run to run and a worker remembers them "
        "(boot ids, flap history): for a clean score use a fresh --topic-prefix, with a worker on it. "
        "Exit 2 on an invalid scenario; with --score, 1 when the verdict is fail.",
    )
    common(p)
    p.add_argument("scenario", help="scenario YAML file, or the name of a shipped one (fleetpulse/scenarios/)")
    p.add_argument(
        "--truth",
        help="where to write the ground truth JSON (default <home>/simulate/<scenario name>.truth.json)",
    )
    p.add_argument("--hosts", type=int, help="override the scenario's number of hosts")
    p.add_argument("--regions", type=int, help="override the scenario's regions with this many (r1..rN)")
    p.add_argument("--interval", type=_duration, help="override the heartbeat interval (seconds or e.g. 500ms)")
    p.add_argument("--duration", type=_duration, help="override the run's duration (seconds or e.g. 2m)")
    p.add_argument("--describe", action="store_true", help="print the fleet and its faults, then exit; no Kafka")
    p.add_argument(
        "--offline",
        action="store_true",
        help="no Kafka, no worker: play the scenario through the down-check logic on a simulated clock "
        "(its 'downcheck' settings), print the alerts and judge them against the ground truth "
        "(exit 1 when a promise broke); replays a scenario file the fuzzer printed, in seconds",
    )
    p.add_argument("--score", action="store_true", help="after the run, read the alerts and print the score")
    p.add_argument(
        "--settle",
        type=_duration,
        help="with --score: read alerts until this long after the run's end (default the run's slack, "
        f"timeout + 2 intervals, plus {SETTLE_MARGIN_S:g}s)",
    )
    p.add_argument("--json", action="store_true", help="with --score: print the report as JSON")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser(
        "score",
        help="score the down-checker's alerts of a simulated run against its ground truth",
        description="Read the alert topic, keep the down-check alerts fired during the run of --truth "
        "(from its start to its end plus the slack) and judge each one: true, false, or not scored "
        "(the fleet's silence after the end, hosts the worker knew from an earlier run). "
        "Prints pages per kind, missed downs, host_down precision and recall, detection latency and "
        "each expectation of the truth (e.g. exactly one region_unreachable per partition). Exit 0 "
        "when the verdict is pass, 1 when it is fail, 2 when the truth file cannot be read. A run "
        "still going is read until its alerts are complete.",
    )
    common(p)
    p.add_argument("--truth", required=True, help="ground truth JSON written by 'fleetpulse simulate'")
    p.add_argument(
        "--alerts",
        help="read alerts from this file of wire-JSON lines ('fleetpulse alerts tail --json') instead of Kafka",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--settle",
        type=_duration,
        help="read alerts until this long after the run's end (default the run's slack, "
        f"timeout + 2 intervals, plus {SETTLE_MARGIN_S:g}s)",
    )
    p.set_defaults(func=cmd_score)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fleetpulse`` command."""
    args = build_parser().parse_args(argv)
    _setup_logging(args.log_level)
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:
        sys.stderr.write(f"fleetpulse {args.command}: {exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
