"""The pipeline's ACLs as data, and the kafka-acls.sh commands printed from them."""

from __future__ import annotations

import itertools
import shlex

from collector.contract import Topics
from fleetpulse.kafka_acls import Acl, acl_commands, acl_rules
from tests.cli import fleetpulse


def _parse(command: str) -> set[Acl]:
    """The ACLs one printed ``kafka-acls.sh --add`` command adds (what AclCommand does with it)."""
    words = shlex.split(command)
    assert words[0] == "kafka-acls.sh" and "--add" in words
    value_of = dict(itertools.pairwise(words))
    principal = value_of["--allow-principal"]
    pattern = value_of["--resource-pattern-type"]
    operations = [words[i + 1] for i, w in enumerate(words) if w == "--operation"]
    resources = [(w[2:], words[i + 1]) for i, w in enumerate(words) if w in ("--topic", "--group")]
    return {Acl(principal, kind, name, pattern, op) for kind, name in resources for op in operations}  # type: ignore[arg-type]


def _allowed(rules: list[Acl], principal: str) -> set[tuple[str, str, str]]:
    return {(r.operation, r.resource, r.name) for r in rules if r.principal == f"User:{principal}"}


def test_the_printed_commands_add_exactly_every_rule() -> None:
    rules = acl_rules(Topics("acme"), "acme-worker", "acme-sink")
    commands = acl_commands(rules)
    added = [acl for command in commands for acl in _parse(command)]
    assert sorted(added) == sorted(set(rules)) and len(added) == len(set(rules)) == len(rules)
    assert len(commands) < len(rules)  # resources sharing operations share a command


def test_the_agent_may_only_write_and_describe_telemetry() -> None:
    t = Topics()
    assert _allowed(acl_rules(t), "agent") == {
        (op, "topic", name) for name in (t.metrics, t.processes, t.logs, t.heartbeats) for op in ("Write", "Describe")
    }


def test_only_admin_writes_the_control_topics_or_creates_pipeline_topics() -> None:
    t = Topics()
    rules = acl_rules(t)
    writers = {r.principal for r in rules if r.operation == "Write" and r.name in (t.policies, t.silences)}
    assert writers == {"User:admin"}
    creators = {(r.principal, r.name, r.pattern) for r in rules if r.operation == "Create"}
    assert creators == {("User:admin", "fleetpulse.", "prefixed"), ("User:worker", "fleetpulse-worker-", "prefixed")}


def test_the_worker_owns_its_group_and_changelogs_by_app_id_and_reads_what_it_evaluates() -> None:
    t = Topics("acme")
    worker = _allowed(acl_rules(t, worker_app_id="acme-worker"), "worker")
    assert ("Read", "group", "acme-worker") in worker
    assert {("Write", "topic", "acme-worker-"), ("Create", "topic", "acme-worker-")} <= worker
    reads = {name for op, kind, name in worker if op == "Read" and kind == "topic"}
    internal = {t.group_samples, t.downcheck, "acme-worker-"}  # its own topics: written and read back
    assert reads == {t.metrics, t.processes, t.logs, t.heartbeats, t.policies, t.silences, t.alerts} | internal
    assert not any(name.startswith("fleetpulse") for _, _, name in worker)


def test_the_sink_reads_what_it_stores_and_writes_only_dead_letters() -> None:
    t = Topics()
    sink = _allowed(acl_rules(t, sink_group="my-sink"), "sink")
    assert {name for op, _, name in sink if op == "Write"} == {t.deadletter}
    assert ("Read", "group", "my-sink") in sink and ("Read", "topic", t.policies) not in sink


def test_commands_leave_shell_variables_to_the_shell_and_quote_the_rest() -> None:
    rule = Acl("User:agent", "topic", "odd name", "literal", "Write")
    (default,) = acl_commands([rule])
    assert '--bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS"' in default and "--topic 'odd name'" in default
    (given,) = acl_commands([rule], bootstrap="kafka-1:9093", command_config="/etc/kafka/admin conf")
    assert "--bootstrap-server kafka-1:9093 --command-config '/etc/kafka/admin conf'" in given


def test_fleetpulse_kafka_acls_prints_the_commands_for_a_prefix() -> None:
    done = fleetpulse("kafka", "acls", "--topic-prefix", "acme", "--app-id", "acme-worker")
    assert done.returncode == 0, done.stderr
    commands = [line for line in done.stdout.splitlines() if not line.startswith("#")]
    assert commands == acl_commands(acl_rules(Topics("acme"), "acme-worker"))
