"""Who may do what on Kafka: the pipeline's principals and their ACLs, defined once, as data.

:func:`acl_rules` is the one definition. The secured local broker applies it
(:func:`apply_acls`, Kafka's CreateAcls request as its admin) and ``fleetpulse kafka acls``
prints it as ``kafka-acls.sh`` commands for an operator's own cluster (:func:`acl_commands`).

Principals (SCRAM user names on the local broker):

* ``agent``: writes the telemetry topics, nothing else (no reads, no groups, no topic creation);
* ``worker``: the Faust workers; read telemetry and the control topics, write alerts, scale
  signals, their internal topics and changelogs (``<app_id>-*``), own the ``<app_id>`` group;
* ``sink``: the ClickHouse writer; reads what it stores, writes dead letters, owns its group.
  Not the worker's principal: it needs none of the worker's writes, and it runs beside the
  ClickHouse credentials, often on another host;
* ``admin``: operators and the CLI; writes policies and silences, creates the topics.
"""

from __future__ import annotations

import shlex
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from collector.contract import DEFAULT_SINK_GROUP, DEFAULT_WORKER_APP_ID, Topics

Resource = Literal["topic", "group"]
Pattern = Literal["literal", "prefixed"]
Operation = Literal["Read", "Write", "Create", "Describe", "DescribeConfigs"]

PRINCIPALS = ("admin", "worker", "agent", "sink")
WORKER_APP_ID = DEFAULT_WORKER_APP_ID
SINK_GROUP = DEFAULT_SINK_GROUP
DEFAULT_BOOTSTRAP = "$KAFKA_BOOTSTRAP_SERVERS"
DEFAULT_COMMAND_CONFIG = "$KAFKA_ADMIN_CONFIG"


@dataclass(frozen=True, order=True)
class Acl:
    """One allow rule: ``principal`` may do ``operation`` on the resource(s) ``name`` matches, from any host."""

    principal: str  # "User:agent"
    resource: Resource
    name: str
    pattern: Pattern
    operation: Operation


def acl_rules(topics: Topics, worker_app_id: str = WORKER_APP_ID, sink_group: str = SINK_GROUP) -> list[Acl]:
    """Every ACL of one deployment (its topic prefix, worker app id and sink group)."""
    from sinks.writer import sink_source_topics

    t = topics
    telemetry = [t.metrics, t.processes, t.logs, t.heartbeats]
    rules: list[Acl] = []

    def allow(user: str, resource: Resource, names: Iterable[str], ops: Iterable[Operation], pattern: Pattern) -> None:
        rules.extend(Acl(f"User:{user}", resource, name, pattern, op) for name in names for op in ops)

    # Idempotent producers (agent, CLI) need no IdempotentWrite on the cluster: since Kafka 3.0
    # (KIP-679) Write on any topic allows InitProducerId.
    allow("agent", "topic", telemetry, ("Write", "Describe"), "literal")

    allow("worker", "topic", [*telemetry, t.policies, t.silences], ("Read", "Describe"), "literal")
    # The alert topic is also the changelog of the `fired` table. Faust creates a changelog at start
    # only if its metadata lacks it, so this one, created by admin beforehand, needs no Create.
    allow("worker", "topic", [t.alerts, t.group_samples, t.downcheck], ("Read", "Write", "Describe"), "literal")
    allow("worker", "topic", [t.scale], ("Write", "Describe"), "literal")
    # Written by the sink only; the worker's start-up check must still see that it exists.
    allow("worker", "topic", [t.deadletter], ("Describe",), "literal")
    # Table changelogs (<app_id>-<table>-changelog), Faust's leader topic and repartition topics.
    allow(
        "worker",
        "topic",
        [f"{worker_app_id}-"],
        ("Read", "Write", "Create", "Describe", "DescribeConfigs"),
        "prefixed",
    )
    allow("worker", "group", [worker_app_id], ("Read",), "prefixed")

    allow("sink", "topic", sink_source_topics(t), ("Read", "Describe"), "literal")
    allow("sink", "topic", [t.deadletter], ("Write", "Describe"), "literal")
    allow("sink", "group", [sink_group], ("Read",), "literal")

    # The CLI: creates the pipeline's topics, reads any of them (alerts tail, policy list), and is
    # the only writer of the control topics.
    allow("admin", "topic", [f"{t.prefix}."], ("Create", "Describe", "DescribeConfigs", "Read"), "prefixed")
    allow("admin", "topic", [t.policies, t.silences], ("Write",), "literal")
    return rules


def acl_commands(
    rules: Iterable[Acl], bootstrap: str = DEFAULT_BOOTSTRAP, command_config: str = DEFAULT_COMMAND_CONFIG
) -> list[str]:
    """``kafka-acls.sh --add`` command lines adding exactly ``rules``.

    One command per principal, resource type, pattern type and set of operations, naming every
    resource that shares them. ``bootstrap`` and ``command_config`` may be shell variables
    (``$NAME``): they are left for the shell to expand.
    """
    ops_by_resource: dict[tuple[str, Resource, Pattern, str], set[Operation]] = defaultdict(set)
    for rule in rules:
        ops_by_resource[(rule.principal, rule.resource, rule.pattern, rule.name)].add(rule.operation)
    names_by_ops: dict[tuple[str, Resource, Pattern, tuple[Operation, ...]], list[str]] = defaultdict(list)
    for (principal, resource, pattern, name), ops in ops_by_resource.items():
        names_by_ops[(principal, resource, pattern, tuple(sorted(ops)))].append(name)
    lines = []
    for (principal, resource, pattern, operations), names in names_by_ops.items():
        words = [
            "kafka-acls.sh",
            "--bootstrap-server",
            _shell_word(bootstrap),
            "--command-config",
            _shell_word(command_config),
            "--add",
            "--allow-principal",
            shlex.quote(principal),
        ]
        for op in operations:
            words += ["--operation", op]
        words += ["--resource-pattern-type", pattern]
        for name in names:
            words += [f"--{resource}", shlex.quote(name)]
        lines.append(" ".join(words))
    return lines


def _shell_word(value: str) -> str:
    return f'"{value}"' if value.startswith("$") else shlex.quote(value)


# Kafka's protocol codes (org.apache.kafka.common.resource.* and .acl.*).
_RESOURCE_CODES = {"topic": 2, "group": 3}
_PATTERN_CODES = {"literal": 3, "prefixed": 4}
_OPERATION_CODES = {"Read": 3, "Write": 4, "Create": 5, "Describe": 8, "DescribeConfigs": 10}
_ALLOW = 3


async def apply_acls(bootstrap: str, rules: Iterable[Acl], client_options: Mapping[str, Any]) -> None:
    """Create ``rules`` on the broker as the principal ``client_options`` authenticate (it needs Alter on
    the cluster: a super user). Creating an ACL that exists is a no-op, so this is idempotent.

    aiokafka's admin client has no ACL call; its protocol layer has the CreateAcls request
    (v1, still served by Kafka 4.x), sent here to any broker, which forwards it to the controller.
    """
    from aiokafka.client import AIOKafkaClient
    from aiokafka.errors import for_code
    from aiokafka.protocol.admin import CreateAclsRequest

    client = AIOKafkaClient(bootstrap_servers=bootstrap, **client_options)
    await client.bootstrap()
    try:
        node_id = client.get_random_node()
        for rule in rules:
            request = CreateAclsRequest(
                resource_type=_RESOURCE_CODES[rule.resource],
                resource_name=rule.name,
                resource_pattern_type_filter=_PATTERN_CODES[rule.pattern],
                principal=rule.principal,
                host="*",
                operation=_OPERATION_CODES[rule.operation],
                permission_type=_ALLOW,
            )
            response = await client.send(node_id, request)
            for code, message in response.creation_responses:
                if code:
                    raise for_code(code)(f"creating ACL {rule}: {message}")
    finally:
        await client.close()


__all__ = [
    "PRINCIPALS",
    "SINK_GROUP",
    "WORKER_APP_ID",
    "Acl",
    "acl_commands",
    "acl_rules",
    "apply_acls",
]
