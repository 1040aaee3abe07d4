"""``fleetpulse kafka start|stop|status|acls``: the local single-node broker for development, and
the pipeline's ACLs as ``kafka-acls.sh`` commands for an operator's own cluster."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from fleetpulse.cli.common import Subparsers, add_home_option, add_topic_prefix_option, home_dir, topic_prefix
from fleetpulse.kafka_acls import DEFAULT_BOOTSTRAP, DEFAULT_COMMAND_CONFIG, PRINCIPALS, SINK_GROUP, WORKER_APP_ID

if TYPE_CHECKING:
    from fleetpulse.kafka_acls import Acl
    from fleetpulse.kafka_local import LocalKafka


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "kafka",
        help="start/stop/status of the local single-node Kafka; print the pipeline's ACLs",
        description="Manage a local Apache Kafka (KRaft) broker fetched from Maven Central "
        "(start/stop/status do nothing when KAFKA_BOOTSTRAP_SERVERS is set). With --secure it runs "
        "with SASL_SSL (SCRAM-SHA-512), a throwaway CA and ACLs for the principals admin, worker, "
        "agent and sink. 'acls' prints those ACLs as kafka-acls.sh commands for your own cluster.",
    )
    p.add_argument("action", choices=[*ACTIONS, "acls"])
    add_home_option(p)
    p.add_argument("--port", type=int, default=9092, help="client port (controller uses port+1; default 9092)")
    p.add_argument(
        "--secure",
        action="store_true",
        help="start: SASL_SSL, SCRAM credentials and ACLs (status and stop find out by themselves)",
    )
    add_topic_prefix_option(p)
    acls = p.add_argument_group("ACLs (start --secure, acls)")
    acls.add_argument("--app-id", default=WORKER_APP_ID, help="the workers' Faust app id (default %(default)s)")
    acls.add_argument("--sink-group", default=SINK_GROUP, help="the sink's consumer group (default %(default)s)")
    acls.add_argument(
        "--bootstrap", default=DEFAULT_BOOTSTRAP, help="acls: --bootstrap-server of the commands (default %(default)s)"
    )
    acls.add_argument(
        "--command-config",
        default=DEFAULT_COMMAND_CONFIG,
        help="acls: an admin client config of your cluster (default %(default)s)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "acls":
        return print_acls(args)
    from fleetpulse.kafka_local import KafkaLocalError, LocalKafka

    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        print(
            f"KAFKA_BOOTSTRAP_SERVERS is set ({os.environ['KAFKA_BOOTSTRAP_SERVERS']}): the local broker is not used."
        )
        return 0
    kafka = LocalKafka(home_dir(args), port=args.port)
    kafka.secure = args.secure or (args.action != "start" and kafka.started_secure())
    if kafka.secure:
        kafka.acls = _rules(args)
    try:
        return ACTIONS[args.action](kafka)
    except KafkaLocalError as exc:
        sys.stderr.write(f"fleetpulse kafka: {exc}\n")
        return 1


def start(kafka: LocalKafka) -> int:
    started = kafka.start()
    state = "started" if started else "already running"
    print(f"Kafka {_mode(kafka)}{state} at {kafka.bootstrap} (pid {kafka.pid()}); log: {kafka.log_path}")
    if kafka.secure:
        secure = kafka.secure_dir
        print(f"  CA to trust: {kafka.ca_file}")
        print(f"  credentials: {secure.path}/{{{','.join(PRINCIPALS)}}}.password (SCRAM-SHA-512)")
        print(f"  admin config for Kafka's tools (--command-config): {secure.admin_config}")
    return 0


def stop(kafka: LocalKafka) -> int:
    print(f"Kafka {_mode(kafka)}stopped" if kafka.stop() else "Kafka was not running (started by us)")
    return 0


def status(kafka: LocalKafka) -> int:
    """Exit 0 when the broker answers (a secured one: to its admin), 1 when it does not."""
    ready = kafka.is_ready()
    pid = kafka.pid()
    print(
        f"Kafka {_mode(kafka)}at {kafka.bootstrap}: {'ready' if ready else 'not answering'}"
        f"{f' (pid {pid})' if pid else ''}; log: {kafka.log_path}"
    )
    return 0 if ready else 1


def print_acls(args: argparse.Namespace) -> int:
    """The ACLs of one deployment as kafka-acls.sh commands (nothing is contacted)."""
    from fleetpulse.kafka_acls import acl_commands

    print(
        f"# FleetPulse ACLs: topic prefix {topic_prefix(args)!r}, worker app id {args.app_id!r}, "
        f"sink group {args.sink_group!r}.\n"
        "# Run as a cluster admin; principals are User:admin, User:worker, User:agent, User:sink."
    )
    for line in acl_commands(_rules(args), args.bootstrap, args.command_config):
        print(line)
    return 0


def _rules(args: argparse.Namespace) -> list[Acl]:
    from collector.contract import Topics
    from fleetpulse.kafka_acls import acl_rules

    return acl_rules(Topics(topic_prefix(args)), args.app_id, args.sink_group)


def _mode(kafka: LocalKafka) -> str:
    return "(SASL_SSL, ACLs) " if kafka.secure else ""


# The positional ACTIONs on the local broker, in the order the help lists them (then "acls").
ACTIONS = {"start": start, "stop": stop, "status": status}
