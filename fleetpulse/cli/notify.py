"""``fleetpulse notify check|routes|test``: the notifier's config offline, and a test delivery.

``check`` validates a ``notify.yaml`` (every problem as ``file:line: message``, exit 2) and
summarises its routing tree and receivers; ``routes`` says where an alert with given labels
would go (as ``amtool config routes test``); ``test`` sends a made-up notification to one
receiver through the real delivery code and reports how it went.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from typing import TYPE_CHECKING

from fleetpulse.cli.common import Subparsers, whole_number

if TYPE_CHECKING:
    from sinks.notify.config import NotifyConfig, Receiver
    from sinks.notify.routes import Route

_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")

EXAMPLES = """examples:
  fleetpulse notify check deploy/notify.yaml
  fleetpulse notify routes deploy/notify.yaml -l severity=critical -l rule=host_down -l region=eu-1
  PAGERDUTY_ROUTING_KEY=... fleetpulse notify test deploy/notify.yaml oncall-pagerduty --resolve

Secrets are read from the files and environment variables the config names (*_file, *_env),
never from the command line.
"""
CONFIG_HELP = "notifier config (YAML: route, receivers, time_intervals; see deploy/notify.yaml)"


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "notify",
        help="check the notifier's routing config, see where an alert goes, send a test notification",
        description="The notifier routes alerts to receivers (webhook, alertmanager, slack, pagerduty, email,"
        " exec) through an Alertmanager-style routing tree, grouping alerts into notifications. These"
        " actions work offline, without Kafka: 'check' validates a config, 'routes' shows which receivers"
        " and group an alert with given labels reaches, 'test' sends a test notification to one receiver.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="notify_command", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="validate a config and summarise its routes and receivers; exit 2 on errors",
        description="Validate CONFIG: every problem is printed as file:line: message (exit 2). A valid config"
        " is summarised: the routing tree (matchers, receiver, grouping, timers, continue, time intervals)"
        " and each receiver with where it delivers (secrets shown only as the file or variable holding them).",
    )
    check.add_argument("config", metavar="CONFIG", help=CONFIG_HELP)
    check.set_defaults(func=run_check)
    _add_routes(actions)
    _add_test(actions)


def _add_routes(actions: Subparsers) -> None:
    routes = actions.add_parser(
        "routes",
        help="which receivers and group an alert with these labels would reach",
        description="Route a made-up alert with the given labels through CONFIG's tree and print every route"
        " that takes it: its receiver, group key, group labels and timers (like 'amtool config routes test')."
        " Alerts carry the labels rule, severity, kind, host_id, region, metric and the rule's and host's labels.",
    )
    routes.add_argument("config", metavar="CONFIG", help=CONFIG_HELP)
    routes.add_argument(
        "--label",
        "-l",
        action="append",
        default=[],
        type=_label,
        metavar="NAME=VALUE",
        help="a label of the alert (repeat for more), e.g. --label severity=critical --label region=eu-1",
    )
    routes.set_defaults(func=run_routes)


def _add_test(actions: Subparsers) -> None:
    test = actions.add_parser(
        "test",
        help="send a test notification to one receiver; exit 1 when it is not delivered",
        description="Send one made-up 'fleetpulse_test' alert (severity info) to RECEIVER of CONFIG with the real"
        " delivery code: secrets are read from their files or variables, transient failures are retried."
        " Prints the result (sent, retry or failed, attempts, latency, reason); exit 1 unless sent.",
    )
    test.add_argument("config", metavar="CONFIG", help=CONFIG_HELP)
    test.add_argument("receiver", metavar="RECEIVER", help="the name of a receiver of CONFIG")
    test.add_argument(
        "--resolve",
        action="store_true",
        help="then send the test alert's resolution too (closes it in PagerDuty or an Alertmanager)",
    )
    test.add_argument(
        "--attempts",
        type=whole_number(1, 10),
        default=3,
        help="attempts in all for a transient failure (default %(default)s)",
    )
    test.set_defaults(func=run_test)


def _label(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not _LABEL_NAME.match(name):
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE (a label name is letters, digits, _ and .)")
    return name, value


def load(path: str) -> NotifyConfig | None:
    """The config at ``path``; None (every problem printed to stderr) when it does not load."""
    from sinks.notify.config import NotifyConfigError, load_notify_path

    try:
        return load_notify_path(path)
    except NotifyConfigError as exc:
        for problem in exc.problems:
            sys.stderr.write(f"{problem}\n")
        sys.stderr.write(f"{len(exc.problems)} problem(s) in {path}: nothing was checked further\n")
        return None


# --- check -------------------------------------------------------------------------------------


def run_check(args: argparse.Namespace) -> int:
    """``notify check CONFIG``: validate; print the tree, receivers and intervals; exit 2 on errors."""
    from sinks.notify.routes import build_tree

    config = load(args.config)
    if config is None:
        return 2
    tree = build_tree(config.route)
    tree_lines = describe_tree(tree)
    used = _receivers_used(tree)
    print(
        f"{args.config}: valid: {len(tree_lines)} route(s), {len(config.receivers)} receiver(s),"
        f" {len(config.time_intervals)} time interval(s)"
    )
    print("routes:")
    for line in tree_lines:
        print(f"  {line}")
    print("receivers:")
    width = max(len(name) for name in config.receivers)
    for name, receiver in config.receivers.items():
        unused = "" if name in used else "  (no route sends to it)"
        print(f"  {name:<{width}}  {receiver.kind:<12} {describe_receiver(receiver)}{unused}")
    if config.time_intervals:
        print("time intervals:")
        for name, interval in config.time_intervals.items():
            print(f"  {name}: {len(interval.windows)} window(s)")
    return 0


def duration(seconds: float) -> str:
    """``30s``, ``5m``, ``4h``, ``1d``: the largest whole unit (seconds otherwise)."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def describe_route(route: Route) -> str:
    """One line of the tree: matchers -> receiver, grouping, timers, continue, time intervals."""
    from sinks.notify.routes import format_matchers

    t = route.timers
    group = "[...]" if route.groups_by_all else "[" + ", ".join(route.group_by) + "]"
    parts = [
        f"{format_matchers(route.matchers)} -> {route.receiver}",
        f"group_by={group}",
        f"wait={duration(t.group_wait_s)} interval={duration(t.group_interval_s)}"
        f" repeat={duration(t.repeat_interval_s)}",
    ]
    if route.continue_matching:
        parts.append("continue")
    if route.mute_time_intervals:
        parts.append(f"muted in {','.join(route.mute_time_intervals)}")
    if route.active_time_intervals:
        parts.append(f"active in {','.join(route.active_time_intervals)}")
    return "  ".join(parts)


def describe_tree(root: Route) -> list[str]:
    """Every node of the tree, depth first, indented two spaces per level."""
    lines: list[str] = []
    pending: list[tuple[Route, int]] = [(root, 0)]
    while pending:
        route, depth = pending.pop()
        lines.append("  " * depth + describe_route(route))
        pending.extend((child, depth + 1) for child in reversed(route.routes))
    return lines


def _receivers_used(root: Route) -> set[str]:
    used, pending = set(), [root]
    while pending:
        route = pending.pop()
        used.add(route.receiver)
        pending.extend(route.routes)
    return used


def describe_receiver(receiver: Receiver) -> str:
    """Where a receiver delivers, with secrets named by where they live (never their values)."""
    from sinks.notify import config as c

    r = receiver.integration
    if isinstance(r, c.WebhookReceiver):
        target = r.url or f"URL in {r.url_secret.shown() if r.url_secret else '?'}"
        extras = [*_auth_notes(r.auth), *(["signed"] if r.hmac_secret else [])]
        return target + (f" ({', '.join(extras)})" if extras else "")
    if isinstance(r, c.AlertmanagerReceiver):
        notes = _auth_notes(r.auth)
        return ", ".join(r.urls) + (f" ({', '.join(notes)})" if notes else "")
    if isinstance(r, c.SlackReceiver):
        return f"webhook URL in {r.url.shown()}" + (f", channel {r.channel}" if r.channel else "")
    if isinstance(r, c.PagerDutyReceiver):
        return f"{r.url} (routing key in {r.routing_key.shown()})"
    if isinstance(r, c.EmailReceiver):
        tls = "STARTTLS" if r.starttls else "no TLS"
        login = f", login {r.auth_username}" if r.auth_username else ""
        return f"{', '.join(r.to)} via {r.smarthost} ({tls}{login})"
    assert isinstance(r, c.ExecReceiver)
    return f"{' '.join(r.command)} (timeout {duration(r.timeout_s)})"


def _auth_notes(auth: object) -> list[str]:
    from sinks.notify.config import HttpAuth

    assert isinstance(auth, HttpAuth)
    if auth.bearer_token is not None:
        return [f"bearer token in {auth.bearer_token.shown()}"]
    if auth.basic_password is not None:
        return [f"basic auth as {auth.basic_username}"]
    return []


# --- routes ------------------------------------------------------------------------------------


def run_routes(args: argparse.Namespace) -> int:
    """``notify routes CONFIG --label k=v ...``: the receivers first (one line), then each route."""
    from sinks.notify.routes import build_tree, format_labels, route_alert

    config = load(args.config)
    if config is None:
        return 2
    labels = dict(args.label)
    matches = route_alert(build_tree(config.route), labels)
    print(",".join(m.receiver for m in matches))
    for m in matches:
        t = m.timers
        print(f"  receiver: {m.receiver}")
        print(f"    group key:    {m.group_key}")
        print(f"    group labels: {format_labels(m.group_labels)}")
        print(
            f"    timers:       wait={duration(t.group_wait_s)} interval={duration(t.group_interval_s)}"
            f" repeat={duration(t.repeat_interval_s)}"
        )
        if m.mute_time_intervals or m.active_time_intervals:
            mute, active = ",".join(m.mute_time_intervals) or "-", ",".join(m.active_time_intervals) or "-"
            print(f"    muted in:     {mute}  active in: {active}")
    return 0


# --- test --------------------------------------------------------------------------------------


def run_test(args: argparse.Namespace) -> int:
    """``notify test CONFIG RECEIVER``: deliver a test notification; exit 1 unless sent, 2 on a bad name."""
    from sinks.notify.deliver import Deliverer, DeliveryResult, sample_flush
    from sinks.notify.limits import RetryPolicy

    config = load(args.config)
    if config is None:
        return 2
    if args.receiver not in config.receivers:
        known = ", ".join(sorted(config.receivers))
        sys.stderr.write(f"fleetpulse notify test: no receiver {args.receiver!r} in {args.config} (it has: {known})\n")
        return 2
    receiver = config.receivers[args.receiver]
    now = time.time()
    flushes = [sample_flush(receiver.name, now)]
    if args.resolve:
        flushes.append(sample_flush(receiver.name, now, resolved=True))
    retry = RetryPolicy(max_attempts=args.attempts, base_s=0.5, cap_s=4.0, max_elapsed_s=60.0)

    async def send() -> list[DeliveryResult]:
        async with Deliverer(config, retry=retry) as deliverer:
            return [await deliverer.deliver(flush) for flush in flushes]

    ok = True
    for flush, result in zip(flushes, asyncio.run(send()), strict=True):
        what = f"{receiver.name} ({receiver.kind}): {flush.status} test notification {flush.notification_id}"
        outcome = f"{result.status} after {result.attempts} attempt(s) in {result.latency_s:.3f}s"
        print(f"{what}: {outcome}" + (f": {result.reason}" if result.reason else ""))
        ok = ok and result.sent
    return 0 if ok else 1
