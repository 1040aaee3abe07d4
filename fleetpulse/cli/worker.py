"""``fleetpulse worker``: a Faust worker evaluating the alert policies (and :func:`worker_args` to start one)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from collector.kafka_io import partitions_from_env
from fleetpulse.cli.common import (
    Subparsers,
    add_common_options,
    add_trusted_key_option,
    control_verifier,
    home_dir,
    kafka_target,
    seconds,
    whole_number,
)
from fleetpulse.kafka_acls import WORKER_APP_ID


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "worker",
        help="evaluate alert policies on the metric stream (Faust)",
        description="Run a Faust worker: reads metric batches, process summaries and log counts, "
        "evaluates the policy and emits alerts (and scale signals of group rules). Policies "
        "applied with 'fleetpulse policy apply' take effect live. More workers with the same "
        "--app-id share the partitions.",
    )
    add_common_options(p)
    p.add_argument(
        "--policy",
        help="policy file or directory, used until a set is applied with 'fleetpulse policy apply' "
        "(the applied set on the policy topic wins when there is one)",
    )
    p.add_argument("--app-id", default=WORKER_APP_ID, help="Faust app id = consumer group (default %(default)s)")
    p.add_argument(
        "--partitions",
        type=whole_number(1, 10_000),
        default=partitions_from_env(),
        help="partitions of topics created at start (default $FLEETPULSE_PARTITIONS or 8)",
    )
    p.add_argument(
        "--session-timeout",
        type=seconds(1800),
        default=30.0,
        help="seconds before a crashed worker's partitions move to others (default 30; "
        "the broker's minimum is usually 6)",
    )
    add_trusted_key_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from policies.loader import PolicyError, load_policy_path
    from policies.model import PolicySet

    policy = PolicySet()
    if args.policy:
        try:
            policy = load_policy_path(args.policy)
        except PolicyError as exc:
            sys.stderr.write(f"fleetpulse worker: invalid policy:\n{exc}\n")
            return 2
    from streams.app import WorkerSettings, run_worker

    kafka = kafka_target(args)
    settings = WorkerSettings(
        bootstrap=kafka.kafka,
        topics=kafka.topics,
        policy=policy,
        app_id=args.app_id,
        partitions=args.partitions or partitions_from_env(),
        datadir=home_dir(args) / "worker",
        session_timeout_s=args.session_timeout,
        verifier=control_verifier(args),
    )
    run_worker(settings, loglevel=args.log_level)
    return 0


def worker_args(
    bootstrap: str,
    topic_prefix: str,
    app_id: str,
    policy: Path | None,
    home: Path,
    partitions: int,
    session_timeout_s: float | None = None,
    log_level: str | None = None,
    trusted_keys: tuple[Path, ...] = (),
) -> list[str]:
    """The ``fleetpulse`` arguments that start a worker (one definition, for tests and benchmarks)."""
    return [
        *(["--log-level", log_level] if log_level else []),
        "worker",
        "--bootstrap",
        bootstrap,
        "--topic-prefix",
        topic_prefix,
        "--app-id",
        app_id,
        *(["--policy", str(policy)] if policy is not None else []),
        "--home",
        str(home),
        "--partitions",
        str(partitions),
        *(["--session-timeout", f"{session_timeout_s:g}"] if session_timeout_s is not None else []),
        *[arg for key in trusted_keys for arg in ("--trusted-key", str(key))],
    ]
