"""``fleetpulse``: one command line for the agent, workers, sink, queries and local infrastructure.

Each subcommand is a module of this package with ``add_parser(subparsers)`` and the function(s)
its parser runs (``set_defaults(func=...)``: ``run``, or one ``run_<action>`` per action); the
options they share (``--home``, the broker's, ClickHouse's) are declared once, in
:mod:`fleetpulse.cli.common`. A new subcommand is a new module listed in :data:`SUBCOMMANDS`.
Heavy dependencies (Faust, ClickHouse) are imported inside the functions that need them, so an
agent-only install runs ``fleetpulse agent`` without them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from collector.connection import KafkaUnreachable
from fleetpulse.cli import (
    agent,
    alerts,
    control,
    demo,
    kafka,
    notify,
    policy,
    query,
    silence,
    simulate,
    sink,
    worker,
)
from fleetpulse.cli.worker import worker_args

__all__ = ["build_parser", "main", "worker_args"]

EPILOG = """environment:
  KAFKA_BOOTSTRAP_SERVERS  broker (host:port[,host:port]); unset = local broker on 127.0.0.1:9092
  FLEETPULSE_HOME          data directory (local Kafka, worker state, embedded ClickHouse);
                           default ./.fleetpulse
  FLEETPULSE_TOPIC_PREFIX  topic prefix (default 'fleetpulse': fleetpulse.metrics, fleetpulse.alerts, ...)
  FLEETPULSE_PARTITIONS    partitions of the pipeline's topics when they are created (default 8)
  CLICKHOUSE_URL           ClickHouse server (http://user@host:8123, https://user@host:8443);
                           unset = embedded chDB engine
  CLICKHOUSE_PASSWORD      its password (or CLICKHOUSE_PASSWORD_FILE: a file holding it); never in argv
  CLICKHOUSE_CA_CERT       CA bundle (PEM) of the server's HTTPS certificate
"""

# The subcommand modules, in the order ``fleetpulse --help`` lists them (simulate adds score too).
SUBCOMMANDS = (agent, worker, sink, alerts, notify, query, kafka, policy, silence, control, demo, simulate)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; ``fleetpulse SUBCOMMAND --help`` explains each part."""
    parser = argparse.ArgumentParser(
        prog="fleetpulse",
        description="FleetPulse: fleet monitoring on Kafka, Faust and ClickHouse.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--log-level", default="info", help="debug, info, warning (default info)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fleetpulse`` command."""
    args = build_parser().parse_args(argv)
    _setup_logging(args.log_level)
    try:
        return int(args.func(args) or 0)
    except KafkaUnreachable as exc:  # a refused password, an untrusted certificate, no broker
        sys.stderr.write(f"fleetpulse {args.command}: Kafka: {exc}\n")
        return 1
    except ValueError as exc:  # settings that cannot work (connection settings included): usage
        sys.stderr.write(f"fleetpulse {args.command}: {exc}\n")
        return 2


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
        stream=sys.stderr,
    )
