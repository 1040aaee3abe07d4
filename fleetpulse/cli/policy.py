"""``fleetpulse policy validate|apply|list``: alert policies offline and on the policy topic."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import TYPE_CHECKING

from fleetpulse.cli.common import Subparsers, add_common_options, add_signing_option, control_signer, kafka_target

if TYPE_CHECKING:
    from policies.model import PolicySet


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "policy",
        help="validate, apply and list alert policies",
        description="Policies are YAML files (a directory of them). 'validate' checks them offline; "
        "'apply' validates and publishes the set to the policy topic, where running workers pick it "
        "up without restart; 'list' shows the set the workers run.",
    )
    actions = p.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    validate = actions.add_parser("validate", help="validate a file or directory; exit 2 on errors")
    validate.add_argument("path")
    validate.set_defaults(func=run_validate)
    apply = actions.add_parser(
        "apply", help="validate and publish a policy set to running workers; exit 2 (nothing published) on errors"
    )
    add_common_options(apply)
    add_signing_option(apply)
    apply.add_argument("path", help="policy file or directory of *.yaml files")
    apply.set_defaults(func=run_apply)
    listing = actions.add_parser("list", help="show the applied policy set; exit 1 when none was applied")
    add_common_options(listing)
    listing.set_defaults(func=run_list)


def run_validate(args: argparse.Namespace) -> int:
    """``policy validate PATH``: a line per rule and a summary; exit 2 on errors."""
    loaded = load_files(args.path)
    if loaded is None:
        return 2
    files, policy = loaded
    for line in describe(policy):
        print(line)
    print(f"{len(policy)} rule(s) valid in {len(files)} file(s), version {policy.version}")
    return 0


def run_apply(args: argparse.Namespace) -> int:
    """``policy apply PATH``: validate, then publish to the policy topic; exit 2 (nothing published) on errors."""
    from fleetpulse.control import publish_policy

    loaded = load_files(args.path)
    if loaded is None:
        return 2
    files, policy = loaded
    kafka = kafka_target(args)
    signer = control_signer(args)
    published = asyncio.run(publish_policy(kafka.kafka, kafka.topics, files, policy.version, signer))
    print(f"applied policy {published.version}: {len(policy)} rule(s) from {len(files)} file(s)")
    return 0


def run_list(args: argparse.Namespace) -> int:
    """``policy list``: the set published on the policy topic; exit 1 when none was, 2 when it does not load."""
    from fleetpulse.control import current_policy
    from policies.loader import PolicyError, load_policy_texts

    kafka = kafka_target(args)
    published = asyncio.run(current_policy(kafka.kafka, kafka.topics))
    if published is None:
        print("no policy set has been applied (workers use their --policy files)")
        return 1
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(published.applied_at))
    print(f"policy {published.version} applied {when} by {published.applied_by or '-'}")
    print(f"files: {', '.join(sorted(published.files))}")
    try:
        applied = load_policy_texts(published.files)
    except PolicyError as exc:
        sys.stderr.write(f"the published set does not load (workers keep their last good set):\n{exc}\n")
        return 2
    for line in describe(applied):
        print(f"  {line}")
    return 0


def load_files(path: str) -> tuple[dict[str, str], PolicySet] | None:
    """The policy files under ``path`` and the set they make; None (the errors printed) when they do not load."""
    from policies.loader import PolicyError, load_policy_texts, policy_files

    try:
        files = policy_files(path)
        policy = load_policy_texts(files)
    except PolicyError as exc:
        sys.stderr.write(f"{exc}\n")
        return None
    return files, policy


def describe(policy: PolicySet) -> list[str]:
    """One line per rule, maintenance window, inhibit rule and down-check scope of a policy set."""
    lines = []
    for rule in policy.metric_rules:
        bounds = " ".join(f"{t.side}.{t.severity}={t.value:g}" for t in rule.thresholds)
        window = f" {rule.agg}/{rule.window_s:g}s" if rule.window_s else ""
        scope = "" if rule.selector.is_everything else " scoped"
        lines.append(
            f"{rule.source}: {rule.kind} {rule.name} {rule.metric}{window} {bounds} for={rule.for_s:g}s{scope}"
        )
    for sched in policy.schedule_rules:
        lines.append(f"{sched.source}: schedule {sched.name} {sched.group} '{sched.cron}' within={sched.within_s:g}s")
    for group in policy.group_rules:
        bounds = " ".join(f"{t.side}.{t.severity}={t.value:g}" for t in group.thresholds)
        scale = " scale" if group.scale else ""
        lines.append(f"{group.source}: group {group.name} {group.agg}({group.metric}) {bounds}{scale}")
    for quiet in policy.maintenance:
        lines.append(f"{quiet.source}: maintenance {quiet.name} '{quiet.cron}' for {quiet.duration_s:g}s")
    for inhibit in policy.inhibit:
        lines.append(f"{inhibit.source}: inhibit {inhibit.name} equal={','.join(inhibit.equal) or '-'}")
    for dc in policy.downcheck:
        c = dc.settings
        lines.append(
            f"{dc.source}: downcheck {dc.name} missed={c.missed:g} late={c.late:g} grace={c.grace_s:g}s"
            f" region_share={c.region_share:g} min_region_hosts={c.min_region_hosts}"
            f"{'' if dc.selector.is_everything else ' scoped'}"
        )
    return lines
