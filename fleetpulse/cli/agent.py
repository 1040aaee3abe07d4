"""``fleetpulse agent``: sample this host and send (or print) its events."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from fleetpulse.cli.common import (
    Subparsers,
    add_common_options,
    home_dir,
    kafka_overrides,
    run_until_signal,
    seconds,
)

if TYPE_CHECKING:
    from collector.config import AgentConfig


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "agent",
        help="sample this host; send metrics, processes, log matches and heartbeats",
        description="Every interval: sample the host, summarise the process table, follow the configured "
        "log files, and send it all with a heartbeat to Kafka through a disk spool (nothing is lost while "
        "Kafka is away). --stdout prints the events instead; no Kafka needed.",
    )
    add_common_options(p)
    p.add_argument("--config", help="agent TOML file (sample: deploy/agent.toml); the flags below override it")
    p.add_argument("--check-config", action="store_true", help="validate the configuration, print a summary, exit")
    p.add_argument("--interval", type=seconds(3600), help="seconds between samples (default 10)")
    p.add_argument("--host-id", help="host identity (default: hostname)")
    p.add_argument("--region", help="region of this host (default local)")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="host label (repeatable)")
    p.add_argument(
        "--state-dir", help="spool, log offsets, sequence (default: [agent] state_dir; <home>/agent without --config)"
    )
    p.add_argument("--once", action="store_true", help="send (or print) one cycle and exit")
    p.add_argument("--stdout", action="store_true", help="print JSON events instead of sending them; no Kafka needed")
    p.add_argument("--heartbeat", action="store_true", help="with --stdout, print the heartbeat too")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from collector.agent import run_agent
    from collector.config import ConfigError

    try:
        config, state_dir = agent_config(args)
    except ConfigError as exc:
        sys.stderr.write(f"fleetpulse agent: invalid configuration:\n{exc}\n")
        return 2
    if args.check_config:
        print(
            f"{config.source}: valid. host_id={config.host_id} region={config.region} "
            f"interval_s={config.interval_s:g} kafka={config.kafka.bootstrap_servers} "
            f"({config.kafka.security_protocol}) groups={len(config.groups)} log_sources={len(config.logs)} "
            f"witness_peers={len(config.witness.peers)} "
            f"state_dir={state_dir}"
        )
        return 0
    if args.stdout:
        print_events(config, cycles=1 if args.once else None, heartbeat=args.heartbeat)
        return 0
    from collector.durable import StateDirBusy

    try:
        run_until_signal(lambda stop: run_agent(config, state_dir, stop, cycles=1 if args.once else None))
    except StateDirBusy as exc:
        sys.stderr.write(f"fleetpulse agent: {exc}\n")
        return 1
    return 0


def print_events(config: AgentConfig, cycles: int | None, heartbeat: bool) -> None:
    """``--stdout``: collect every interval and print the events as wire JSON lines (heartbeats only if asked)."""
    import time

    from collector.agent import Collector
    from collector.contract import encode

    collector = Collector(config, None)
    done = 0
    while cycles is None or done < cycles:
        time.sleep(min(1.0, config.interval_s) if done == 0 else config.interval_s)
        for event in collector.collect(time.time()):
            if heartbeat or event.TYPE != "heartbeat":
                sys.stdout.write(encode(event).decode() + "\n")
        sys.stdout.flush()
        done += 1


def agent_config(args: argparse.Namespace) -> tuple[AgentConfig, Path]:
    """The config file (if any) with command-line flags applied on top; and the state dir."""
    import dataclasses

    from collector.config import load_agent_config

    config = load_agent_config(args.config)
    changes: dict[str, object] = {}
    for flag, key in (("host_id", "host_id"), ("region", "region"), ("interval", "interval_s")):
        if getattr(args, flag) is not None:
            changes[key] = getattr(args, flag)
    if args.label:
        changes["labels"] = {**config.labels, **labels(args.label)}
    kafka = dataclasses.replace(config.kafka, **kafka_overrides(args)).checked()
    config = dataclasses.replace(config, kafka=kafka, **changes)  # type: ignore[arg-type]
    if args.state_dir:
        state_dir = Path(args.state_dir)
    elif args.config or "FLEETPULSE_AGENT_STATE_DIR" in os.environ:
        state_dir = config.state_dir
    else:
        state_dir = home_dir(args) / "agent"  # no config file: a development run, keep state local
    return config, state_dir


def labels(items: Sequence[str]) -> dict[str, str]:
    """``--label key=value`` flags as a dict; a flag without ``=`` or key is a usage error."""
    found = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"fleetpulse: --label expects key=value, got {item!r}")
        found[key] = value
    return found
