"""``fleetpulse alerts tail``: print alerts as they arrive."""

from __future__ import annotations

import argparse

from fleetpulse.cli.common import Subparsers, add_common_options, kafka_target, run_until_signal


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("alerts", help="subscribe to alerts", description="Work with the alert topic.")
    actions = p.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    tail = actions.add_parser("tail", help="print alerts as they arrive (Ctrl-C to stop)")
    add_common_options(tail)
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest retained alert")
    tail.add_argument("--json", action="store_true", help="print the wire JSON instead of a line per alert")
    tail.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``alerts tail``."""
    from fleetpulse.alerts import printer, tail_alerts

    show = printer(as_json=args.json)
    kafka = kafka_target(args)
    run_until_signal(lambda stop: tail_alerts(kafka.kafka, kafka.topics, stop, show, args.from_beginning))
    return 0
