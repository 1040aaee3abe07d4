"""``fleetpulse silence add|list|expire``: keep matching alerts quiet for a while."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from fleetpulse.cli.common import Subparsers, add_common_options, add_signing_option, control_signer, kafka_target


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "silence",
        help="silence alerts for a while",
        description="Silences keep matching alerts quiet (evaluation goes on; an alert still firing when "
        "its silence ends is announced then; resolutions are always sent). Matchers use the alert's "
        "labels: rule, severity, kind, host_id, region, metric and the host's and rule's labels.",
    )
    actions = p.add_subparsers(dest="silence_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add a silence; prints its id")
    add_common_options(add)
    add_signing_option(add)
    add.add_argument(
        "--match",
        "-m",
        action="append",
        required=True,
        help="label=value, label!=value, label=~regex or label!~regex (repeat: all must hold)",
    )
    add.add_argument("--duration", "-d", default="2h", help="how long (e.g. 30m, 2h; default %(default)s)")
    add.add_argument("--start", help="when it starts: ISO time (UTC unless given) or a delay like 30m (default now)")
    add.add_argument("--comment", "-c", default="", help="why (shown by 'silence list')")
    add.set_defaults(func=run_add)
    listing = actions.add_parser("list", help="list active and pending silences")
    add_common_options(listing)
    listing.add_argument("--all", action="store_true", help="include expired silences")
    listing.set_defaults(func=run_list)
    expire = actions.add_parser("expire", help="end a silence now")
    add_common_options(expire)
    add_signing_option(expire)
    expire.add_argument("id")
    expire.set_defaults(func=run_expire)


def run_add(args: argparse.Namespace) -> int:
    """``silence add``: validate the matchers and times (exit 2), publish the silence, print its id."""
    from fleetpulse import control as ctl
    from policies.control import ControlError, new_silence, parse_matcher
    from policies.model import parse_duration

    kafka = kafka_target(args)
    try:
        matchers = [parse_matcher(m) for m in args.match]
        silence = new_silence(
            matchers, parse_duration(args.duration), args.comment, ctl.operator(), start_time(args.start)
        )
    except (ControlError, ValueError) as exc:
        sys.stderr.write(f"fleetpulse silence add: {exc}\n")
        return 2
    asyncio.run(ctl.put_silence(kafka.kafka, kafka.topics, silence, control_signer(args)))
    print(silence.id)
    return 0


def run_list(args: argparse.Namespace) -> int:
    """``silence list``: active and pending silences (``--all``: expired ones too)."""
    from fleetpulse import control as ctl
    from policies.control import format_matcher

    kafka = kafka_target(args)
    found = asyncio.run(ctl.silences(kafka.kafka, kafka.topics)).silences  # unreadable ones: logged
    now = time.time()
    shown = [s for s in found if args.all or s.ends_at > now]
    for s in shown:
        state = "active" if s.active(now) else ("pending" if s.starts_at > now else "expired")
        ends = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s.ends_at))
        shown_matchers = " ".join(format_matcher(m) for m in s.matchers)
        print(f"{s.id}  {state:<8} until {ends} UTC  {shown_matchers}  by {s.created_by or '-'}  {s.comment}")
    if not shown:
        print("no silences")
    return 0


def run_expire(args: argparse.Namespace) -> int:
    """``silence expire ID``: end it now (a silence already over keeps its end); exit 1 when there is none.

    An unreadable record under that id is removed (it silences nothing: workers skip it too).
    """
    from fleetpulse import control as ctl
    from policies.model import Silence

    kafka = kafka_target(args)
    records = asyncio.run(ctl.silences(kafka.kafka, kafka.topics))
    now = time.time()
    target = next((s for s in records.silences if s.id == args.id), None)
    if target is None and args.id in records.unreadable:
        asyncio.run(ctl.delete_silence(kafka.kafka, kafka.topics, args.id, control_signer(args)))
        print(f"removed unreadable silence record {args.id}")
        return 0
    if target is None:
        sys.stderr.write(f"fleetpulse silence expire: no silence {args.id!r}\n")
        return 1
    ended = Silence(
        target.id, target.matchers, target.starts_at, min(target.ends_at, now), target.created_by, target.comment
    )
    asyncio.run(ctl.put_silence(kafka.kafka, kafka.topics, ended, control_signer(args)))
    print(f"expired {target.id}")
    return 0


def start_time(text: str | None) -> float | None:
    """``--start``: an ISO time (UTC unless it says otherwise) or a delay like ``30m``."""
    if not text:
        return None
    from datetime import UTC, datetime

    from policies.model import parse_duration

    try:
        return time.time() + parse_duration(text)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
