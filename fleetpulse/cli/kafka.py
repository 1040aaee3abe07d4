"""``fleetpulse kafka start|stop|status``: the local single-node broker for development."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from fleetpulse.cli.common import Subparsers, add_home_option, home_dir

if TYPE_CHECKING:
    from fleetpulse.kafka_local import LocalKafka


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "kafka",
        help="start/stop/status of the local single-node Kafka",
        description="Manage a local Apache Kafka (KRaft) broker fetched from Maven Central. "
        "Does nothing when KAFKA_BOOTSTRAP_SERVERS is set.",
    )
    p.add_argument("action", choices=list(ACTIONS))
    add_home_option(p)
    p.add_argument("--port", type=int, default=9092, help="client port (controller uses port+1; default 9092)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fleetpulse.kafka_local import KafkaLocalError, LocalKafka

    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        print(
            f"KAFKA_BOOTSTRAP_SERVERS is set ({os.environ['KAFKA_BOOTSTRAP_SERVERS']}): the local broker is not used."
        )
        return 0
    kafka = LocalKafka(home_dir(args), port=args.port)
    try:
        return ACTIONS[args.action](kafka)
    except KafkaLocalError as exc:
        sys.stderr.write(f"fleetpulse kafka: {exc}\n")
        return 1


def start(kafka: LocalKafka) -> int:
    started = kafka.start()
    state = "started" if started else "already running"
    print(f"Kafka {state} at {kafka.bootstrap} (pid {kafka.pid()}); log: {kafka.log_path}")
    return 0


def stop(kafka: LocalKafka) -> int:
    print("Kafka stopped" if kafka.stop() else "Kafka was not running (started by us)")
    return 0


def status(kafka: LocalKafka) -> int:
    """Exit 0 when the broker answers, 1 when it does not."""
    ready = kafka.is_ready()
    pid = kafka.pid()
    print(
        f"Kafka at {kafka.bootstrap}: {'ready' if ready else 'not answering'}"
        f"{f' (pid {pid})' if pid else ''}; log: {kafka.log_path}"
    )
    return 0 if ready else 1


# The positional ACTION, in the order the help lists them.
ACTIONS = {"start": start, "stop": stop, "status": status}
