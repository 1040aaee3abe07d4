"""``fleetpulse simulate`` and ``fleetpulse score``: play a scenario of virtual hosts, score the alerts it drew.

Both read a run's alerts the same way, with :func:`read_settled_alerts`: from the run's start
until it has settled (its slack after the end, plus :data:`SETTLE_MARGIN_S`), unless interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from fleetpulse.cli.common import KafkaTarget, Subparsers, add_common_options, home_dir, kafka_target, run_until_signal

if TYPE_CHECKING:
    from collector.contract import Alert
    from fleetpulse.sim.scenario import Scenario
    from fleetpulse.sim.score import Report
    from fleetpulse.sim.truth import Truth

# How long after the scoring window closes alerts still count as arriving: the worker
# publishes a decision within a tick, the broker makes it readable a little later.
SETTLE_MARGIN_S = 2.0


def add_parser(subparsers: Subparsers) -> None:
    """Both subcommands: ``simulate`` and ``score``."""
    add_simulate_parser(subparsers)
    add_score_parser(subparsers)


def add_simulate_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
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
    add_common_options(p)
    p.add_argument("scenario", help="scenario YAML file, or the name of a shipped one (fleetpulse/scenarios/)")
    p.add_argument(
        "--truth",
        help="where to write the ground truth JSON (default <home>/simulate/<scenario name>.truth.json)",
    )
    p.add_argument("--hosts", type=int, help="override the scenario's number of hosts")
    p.add_argument("--regions", type=int, help="override the scenario's regions with this many (r1..rN)")
    p.add_argument("--interval", type=duration, help="override the heartbeat interval (seconds or e.g. 500ms)")
    p.add_argument("--duration", type=duration, help="override the run's duration (seconds or e.g. 2m)")
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
        type=duration,
        help="with --score: read alerts until this long after the run's end (default the run's slack, "
        f"timeout + 2 intervals, plus {SETTLE_MARGIN_S:g}s)",
    )
    p.add_argument("--json", action="store_true", help="with --score: print the report as JSON")
    p.set_defaults(func=run)


def add_score_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
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
    add_common_options(p)
    p.add_argument("--truth", required=True, help="ground truth JSON written by 'fleetpulse simulate'")
    p.add_argument(
        "--alerts",
        help="read alerts from this file of wire-JSON lines ('fleetpulse alerts tail --json') instead of Kafka",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--settle",
        type=duration,
        help="read alerts until this long after the run's end (default the run's slack, "
        f"timeout + 2 intervals, plus {SETTLE_MARGIN_S:g}s)",
    )
    p.set_defaults(func=run_score)


# -- simulate ---------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """``simulate``: describe the scenario, play it offline, or play it into Kafka (and score it)."""
    from fleetpulse.sim.scenario import ScenarioError, describe, load_scenario

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
        return play_offline(scenario)
    return play_live(args, scenario)


def play_live(args: argparse.Namespace, scenario: Scenario) -> int:
    """Play ``scenario`` into Kafka in real time, write its truth, and with ``--score`` score its alerts."""
    from aiokafka.errors import KafkaError

    from fleetpulse.sim.runner import run_simulation
    from fleetpulse.sim.score import score

    truth_path = Path(args.truth) if args.truth else home_dir(args) / "simulate" / f"{scenario.name}.truth.json"
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    kafka = kafka_target(args)

    async def play(stop: asyncio.Event) -> tuple[Truth, list[Alert] | None]:
        """The run's truth and (with --score) its alerts; None for them when interrupted."""
        truth = await run_simulation(
            scenario, kafka.kafka, kafka.topics, truth_path=truth_path, stop=stop, progress=progress
        )
        alerts: list[Alert] | None = []
        if args.score and not stop.is_set():
            settle_s = settle_after_end_s(truth, args.settle)
            progress(f"reading alerts until {settle_s:g}s after the run's end")
            alerts = await read_settled_alerts(kafka, truth, settle_s, stop)
        return truth, None if stop.is_set() else alerts

    try:
        truth, alerts = run_until_signal(play)
    except (KafkaError, OSError) as exc:
        sys.stderr.write(f"fleetpulse simulate: Kafka at {kafka.kafka.describe()}: {exc}\n")
        return 1
    progress(f"truth written to {truth_path}")
    if alerts is None:
        sys.stderr.write("fleetpulse simulate: interrupted; the run is incomplete and was not scored\n")
        return 1
    if not args.score:
        return 0
    return show_report(score(truth, alerts), args.json)


def play_offline(scenario: Scenario) -> int:
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


# -- score ------------------------------------------------------------------------------------


def run_score(args: argparse.Namespace) -> int:
    """``score``: judge a run's alerts (from ``--alerts`` or the alert topic) against its truth file."""
    from fleetpulse.sim.score import score
    from fleetpulse.sim.truth import load_truth

    try:
        truth = load_truth(args.truth)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        sys.stderr.write(f"fleetpulse score: {args.truth}: not a truth file written by 'fleetpulse simulate': {exc}\n")
        return 2
    if args.alerts:
        alerts = alerts_from_file(args.alerts)
        if alerts is None:
            return 2
        return show_report(score(truth, alerts), args.json)
    return score_from_kafka(args, truth)


def alerts_from_file(path: str) -> list[Alert] | None:
    """``--alerts``: a file of wire-JSON alert lines; None (the error printed) when it cannot be read."""
    from collector.contract import Alert, DecodeError, decode_as

    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return [decode_as(line, Alert) for line in lines if line.strip()]
    except (OSError, DecodeError) as exc:
        sys.stderr.write(f"fleetpulse score: {path}: {exc}\n")
        return None


def score_from_kafka(args: argparse.Namespace, truth: Truth) -> int:
    """Read the run's alerts from the alert topic (waiting for a run still going) and score them."""
    from aiokafka.errors import KafkaError

    from fleetpulse.sim.score import score

    kafka = kafka_target(args)
    settle_s = settle_after_end_s(truth, args.settle)
    until = truth.end + settle_s
    if until > time.time():
        progress(f"the run's alerts are complete in {until - time.time():.0f}s: reading until then")
    try:
        alerts = run_until_signal(lambda stop: read_settled_alerts(kafka, truth, settle_s, stop))
    except (KafkaError, OSError) as exc:
        sys.stderr.write(f"fleetpulse score: Kafka at {kafka.kafka.describe()}: {exc}\n")
        return 1
    if alerts is None:
        sys.stderr.write("fleetpulse score: interrupted before the run's alerts were all read; not scored\n")
        return 1
    return show_report(score(truth, alerts), args.json)


# -- shared by both ---------------------------------------------------------------------------


def settle_after_end_s(truth: Truth, settle_s: float | None) -> float:
    """``--settle``, else the run's slack (timeout + 2 intervals) plus :data:`SETTLE_MARGIN_S`."""
    return settle_s if settle_s is not None else truth.slack_s + SETTLE_MARGIN_S


async def read_settled_alerts(
    kafka: KafkaTarget, truth: Truth, settle_s: float, stop: asyncio.Event
) -> list[Alert] | None:
    """The alerts of ``truth``'s run, read from its start until ``settle_s`` after its end.

    None when ``stop`` was set (Ctrl-C, SIGTERM) before the reading was done: an incomplete
    set of alerts must not be scored.
    """
    from fleetpulse.alerts import read_alerts

    alerts = await read_alerts(kafka.kafka, kafka.topics, truth.start, truth.end + settle_s, stop=stop)
    return None if stop.is_set() else alerts


def duration(text: str) -> float:
    """An argparse type: seconds, or a duration like ``90s`` or ``2m``."""
    from policies.model import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def progress(line: str) -> None:
    """Simulation progress goes to stderr, so stdout holds only the description or the report."""
    sys.stderr.write(f"{line}\n")
    sys.stderr.flush()


def show_report(report: Report, as_json: bool) -> int:
    """Print a score report; the exit code says its verdict (0 pass, 1 fail)."""
    if as_json:
        import json

        print(json.dumps(report.to_json(), indent=2))
    else:
        print("\n".join(report.lines()))
    return 0 if report.verdict == "pass" else 1
