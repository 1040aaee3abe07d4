"""Command-line options of ``fleetpulse sink`` and ``fleetpulse query --report``.

Kept free of heavy imports: the parser is built for every ``fleetpulse`` command. Every sink
option can also come from the environment as ``FLEETPULSE_SINK_<OPTION>`` (upper case,
dashes as underscores), e.g. ``FLEETPULSE_SINK_RAW_TTL_DAYS=14``.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from typing import Any

Parse = Callable[[str], Any]


def whole_number(lo: int, hi: int) -> Parse:
    """An argparse type: a whole number in ``[lo, hi]`` (a bad one is a usage error, exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:40]!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be between {lo:,} and {hi:,}, got {value:,}")
        return value

    parse.__name__ = "int"  # argparse and the messages below name a type by it
    return parse


def seconds(hi: float) -> Parse:
    """An argparse type: a finite number of seconds in ``(0, hi]`` (every timeout and wait is positive)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected seconds, got {text[:40]!r}") from None
        if not (math.isfinite(value) and 0 < value <= hi):
            raise argparse.ArgumentTypeError(f"must be more than 0 and at most {hi:g} seconds, got {text[:40]}")
        return value

    parse.__name__ = "float"
    return parse


_MANY = 2**40  # rows or bytes: more than any one process holds
_DAYS = 36_500  # a century: the most a ClickHouse TTL is asked to keep
_SINK_OPTIONS: tuple[tuple[str, Parse, Any, str], ...] = (
    ("batch-rows", whole_number(1, _MANY), 200_000, "insert when this many rows are buffered"),
    ("batch-bytes", whole_number(1, _MANY), 32 * 1024 * 1024, "insert when this many record bytes are buffered"),
    ("batch-wait", seconds(3600), 1.0, "insert buffered rows at the latest after this many seconds"),
    (
        "max-buffered-rows",
        whole_number(1, _MANY),
        1_000_000,
        "pause fetching above this many rows in memory (back-pressure)",
    ),
    (
        "max-buffered-bytes",
        whole_number(1, _MANY),
        128 * 1024 * 1024,
        "pause fetching above this many record bytes in memory",
    ),
    ("raw-ttl-days", whole_number(0, _DAYS), 30, "days raw tables keep rows (0 = forever)"),
    ("rollup-ttl-days", whole_number(0, _DAYS), 400, "days rollups and alert history keep rows (0 = forever)"),
    ("session-timeout", seconds(1800), 10.0, "seconds before a crashed sink's partitions move to another sink"),
)


def _env_default(name: str, parse: Parse, default: Any) -> Any:
    key = "FLEETPULSE_SINK_" + name.upper().replace("-", "_")
    raw = os.environ.get(key)
    if raw is None:
        return default
    try:
        return parse(raw)
    except argparse.ArgumentTypeError as exc:
        raise SystemExit(f"fleetpulse sink: {key} must be {parse.__name__}: {exc}") from None


def add_sink_arguments(p: argparse.ArgumentParser) -> None:
    """Batching, back-pressure and retention options of the sink."""
    for name, parse, default, text in _SINK_OPTIONS:
        p.add_argument(
            f"--{name}", type=parse, default=_env_default(name, parse, default), help=f"{text} (default %(default)s)"
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
    from policies.model import MAX_DURATION_S
    from sinks.reports import REPORTS

    names = [r.name for r in REPORTS]
    p.add_argument("--report", choices=names, metavar="NAME", help="run a canned report (see below)")
    p.add_argument(
        "--since", type=when, default="24h", help="report window start: 90m, 24h, 7d or an ISO time (default 24h)"
    )
    p.add_argument("--until", type=when, default="now", help="report window end: now, a duration back or an ISO time")
    p.add_argument("--limit", type=whole_number(1, MAX_REPORT_ROWS), help="rows of a top-N report (default per report)")
    p.add_argument(
        "--step",
        type=whole_number(1, int(MAX_DURATION_S)),
        default=3600,
        help="bucket seconds of time-series reports (default 3600)",
    )
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")


MAX_REPORT_ROWS = 1_000_000


def when(text: str) -> str:
    """An argparse type for ``--since``/``--until``: checked now (a usage error, exit 2), resolved
    by :func:`sinks.reports.parse_when` against one clock when the report runs."""
    from datetime import UTC, datetime

    from sinks.reports import parse_when

    try:
        parse_when(text, datetime.now(UTC))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text
