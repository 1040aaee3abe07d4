"""``fleetpulse sink``: write every event from Kafka into ClickHouse."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from collector.kafka_io import partitions_from_env
from fleetpulse.cli.common import (
    Subparsers,
    add_common_options,
    clickhouse_target,
    kafka_target,
    quiet_logs,
    run_until_signal,
)
from fleetpulse.kafka_acls import SINK_GROUP

log = logging.getLogger("fleetpulse")


def add_parser(subparsers: Subparsers) -> None:
    from sinks.options import add_sink_arguments

    p = subparsers.add_parser(
        "sink",
        help="write every event from Kafka into ClickHouse (raw tables, history, rollups)",
        description="Consume metrics, heartbeats, process summaries, log matches, alerts and scale "
        "signals and insert them into ClickHouse in columnar batches; migrations are applied at start. "
        "Offsets are committed only after the insert succeeded, and a retried insert writes nothing "
        "twice. Undecodable records go to the dead-letter topic. Options also come from "
        "FLEETPULSE_SINK_<OPTION> environment variables. A ClickHouse or Kafka that cannot be used "
        "at start is one line on stderr and exit 2.",
    )
    add_common_options(p, clickhouse=True)
    p.add_argument("--group-id", default=SINK_GROUP, help="consumer group (default %(default)s)")
    add_sink_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from aiokafka.errors import KafkaError

    from collector.kafka_io import ensure_topics
    from sinks.clickhouse import TargetError, open_store
    from sinks.options import sink_settings
    from sinks.writer import Sink, sink_source_topics

    settings = sink_settings(args)  # validated before anything connects
    try:
        target = clickhouse_target(args)
        with quiet_logs():
            client = open_store(target, args.database, settings.schema)
    except TargetError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    kafka = kafka_target(args)
    # A sink may be the first process of a deployment: create the topics it reads and writes
    # (only those: under ACLs it may not even see the others, and would try to create them).
    t = kafka.topics
    own = [*sink_source_topics(t), t.deadletter]
    try:
        with quiet_logs():
            asyncio.run(ensure_topics(kafka.kafka, own, partitions_from_env(), t.configs))
    except (KafkaError, OSError) as exc:
        sys.stderr.write(f"error: Kafka at {kafka.servers}: {' '.join(str(exc).split()) or type(exc).__name__}\n")
        return 2
    sink = Sink(client, kafka.kafka, kafka.topics, args.database, args.group_id, settings, migrated=True)
    log.info("event=sink_target target=%s database=%s", target.shown(), args.database)
    run_until_signal(sink.run)
    return 0
