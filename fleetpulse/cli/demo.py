"""``fleetpulse demo``: the whole pipeline on this host, with a CPU alert that fires and resolves."""

from __future__ import annotations

import argparse

from fleetpulse.cli.common import Subparsers, add_home_option, add_topic_prefix_option, home_dir, topic_prefix


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run the whole pipeline on this host and make a CPU alert fire and resolve",
        description="Start local Kafka (unless KAFKA_BOOTSTRAP_SERVERS is set), a worker, "
        "the sink and an agent; burn CPU so an alert fires, then stop burning "
        "so it resolves; finally query ClickHouse. Ctrl-C stops everything.",
    )
    add_home_option(p)
    add_topic_prefix_option(p)
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fleetpulse.demo import DemoOptions, run_demo

    return run_demo(
        DemoOptions(
            home=home_dir(args),
            duration_s=args.duration,
            interval_s=args.interval,
            burn_after_s=args.burn_after,
            burn_for_s=args.burn_for,
            keep_kafka=args.keep_kafka,
            topic_prefix=topic_prefix(args),
        )
    )
