"""``fleetpulse query``: SQL or a canned report on the ClickHouse store."""

from __future__ import annotations

import argparse
import sys

from fleetpulse.cli.common import Subparsers, add_common_options, clickhouse_target, quiet_logs


def add_parser(subparsers: Subparsers) -> None:
    from sinks.options import add_query_arguments, query_epilog

    p = subparsers.add_parser(
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
    add_common_options(p, kafka=False, clickhouse=True)
    add_query_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from sinks.clickhouse import TargetError, open_client
    from sinks.query import render, run_query
    from sinks.reports import parse_when, run_report

    if bool(args.sql) == bool(args.report):
        sys.stderr.write("fleetpulse query: give either SQL or --report NAME (fleetpulse query --help lists reports)\n")
        return 2
    if args.report:
        now = datetime.now(UTC)
        since, until = parse_when(args.since, now), parse_when(args.until, now)  # checked by the parser
    try:
        target = clickhouse_target(args)
        with quiet_logs():
            client = open_client(target)
    except TargetError as exc:  # unreachable, refused credentials: one line naming the target
        sys.stderr.write(f"error: {exc}\n")
        return 2
    try:
        if args.report:
            columns, rows = run_report(client, args.database, args.report, since, until, args.limit, args.step)
        else:
            columns, rows = run_query(client, args.sql, args.database)
    except Exception as exc:
        sys.stderr.write(f"fleetpulse query: {target.scrub(str(exc))}\n")
        return 1
    print(render(columns, rows, args.format))
    return 0
