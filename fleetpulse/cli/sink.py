"""``fleetpulse sink``: write every event from Kafka into ClickHouse."""

from __future__ import annotations

import argparse
import asyncio
import logging

from collector.kafka_io import partitions_from_env
from fleetpulse.cli.common import Subparsers, add_common_options, home_dir, kafka_target, run_until_signal
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
        "FLEETPULSE_SINK_<OPTION> environment variables.",
    )
    add_common_options(p, clickhouse=True)
    p.add_argument("--group-id", default=SINK_GROUP, help="consumer group (default %(default)s)")
    add_sink_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from collector.kafka_io import ensure_all_topics
    from sinks.clickhouse import connect, default_target, redacted
    from sinks.options import sink_settings
    from sinks.writer import Sink

    settings = sink_settings(args)  # validated before anything connects
    target = args.clickhouse_url or default_target(home_dir(args))
    client = connect(target)
    kafka = kafka_target(args)
    # A sink may be the first process of a deployment: create the topics it reads and writes.
    asyncio.run(ensure_all_topics(kafka.kafka, kafka.topics, partitions_from_env()))
    sink = Sink(client, kafka.kafka, kafka.topics, args.database, args.group_id, settings)
    log.info("event=sink_target target=%s", redacted(target))
    run_until_signal(sink.run)
    return 0
