"""Command-line options of ``fleetpulse sink`` and ``fleetpulse query --report``.

Kept free of heavy imports: the parser is built for every ``fleetpulse`` command. Every sink
option can also come from the environment as ``FLEETPULSE_SINK_<OPTION>`` (upper case,
dashes as underscores), e.g. ``FLEETPULSE_SINK_RAW_TTL_DAYS=14``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

_SINK_OPTIONS: tuple[tuple[str, type, Any, str], ...] = (
    ("batch-rows", int, 200_000, "insert when this many rows are buffered"),
    ("batch-bytes", int, 32 * 1024 * 1024, "insert when this many record bytes are buffered"),
    ("batch-wait", float, 1.0, "insert buffered rows at the latest after this many seconds"),
    ("max-buffered-rows", int, 1_000_000, "pause fetching above this many rows in memory (back-pressure)"),
    ("max-buffered-bytes", int, 128 * 1024 * 1024, "pause fetching above this many record bytes in memory"),
    ("raw-ttl-days", int, 30, "days raw tables keep rows (0 = forever)"),
    ("rollup-ttl-days", int, 400, "days rollups and alert history keep rows (0 = forever)"),
    ("session-timeout", float, 10.0, "seconds before a crashed sink's partitions move to another sink"),
)


def _env_default(name: str, kind: type, default: Any) -> Any:
    key = "FLEETPULSE_SINK_" + name.upper().replace("-", "_")
    raw = os.environ.get(key)
    if raw is None:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise SystemExit(f"fleetpulse sink: {key} must be {kind.__name__}, got {raw!r}") from None


def add_sink_arguments(p: argparse.ArgumentParser) -> None:
    """Batching, back-pressure and retention options of the sink."""
    for name, kind, default, text in _SINK_OPTIONS:
        p.add_argument(
            f"--{name}", type=kind, default=_env_default(name, kind, default), help=f"{text} (default %(default)s)"
        )
    # Fault injection for the crash-recovery test: exit after N inserted batches, before commit.
    p.add_argument("--crash-after-batches", type=int, default=0, help=argparse.SUPPRESS)


def sink_settings(args: argparse.Namespace) -> Any:
    """The typed settings object of a sink process from parsed options (validated)."""
    from sinks.schema import SchemaSettings
    from sinks.writer import SinkSettings

    return SinkSettings(
        batch_rows=args.batch_rows,
        batch_bytes=args.batch_bytes,
        batch_wait_s=args.batch_wait,
        max_buffered_rows=args.max_buffered_rows,
        max_buffered_bytes=args.max_buffered_bytes,
        session_timeout_ms=int(args.session_timeout * 1000),
        schema=SchemaSettings(raw_ttl_days=args.raw_ttl_days, rollup_ttl_days=args.rollup_ttl_days),
        crash_after_batches=args.crash_after_batches,
    )


def query_epilog() -> str:
    """The report list and examples shown by ``fleetpulse query --help``."""
    import textwrap

    from sinks.reports import REPORTS

    lines = ["reports (--report NAME, over [--since, --until)):"]
    for r in REPORTS:
        lines.append(textwrap.fill(r.description, 96, initial_indent=f"  {r.name:<21}", subsequent_indent=" " * 23))
    return "\n".join(lines) + "\n\n" + _EXAMPLES


_EXAMPLES = """examples:
  fleetpulse query "SELECT name, count() FROM metrics GROUP BY name"
  fleetpulse query --report top-hosts-cpu --since 24h --limit 20
  fleetpulse query --report region-availability --since 7d --format csv
"""


def add_query_arguments(p: argparse.ArgumentParser) -> None:
    """SQL or a canned report, the window and the output format."""
    p.add_argument("sql", nargs="?", help='SQL, e.g. "SELECT name, count() FROM metrics GROUP BY name"')
    from sinks.reports import REPORTS

    names = [r.name for r in REPORTS]
    p.add_argument("--report", choices=names, metavar="NAME", help="run a canned report (see below)")
    p.add_argument("--since", default="24h", help="report window start: 90m, 24h, 7d or an ISO time (default 24h)")
    p.add_argument("--until", default="now", help="report window end: now, a duration back or an ISO time")
    p.add_argument("--limit", type=int, help="rows of a top-N report (default per report)")
    p.add_argument("--step", type=int, default=3600, help="bucket seconds of time-series reports (default 3600)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
