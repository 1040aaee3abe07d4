"""The secured local broker (SASL_SSL, SCRAM-SHA-512, ACLs): each principal may do its job and no more."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import GroupAuthorizationFailedError, KafkaConnectionError, TopicAuthorizationFailedError

from collector.contract import Topics
from collector.kafka_io import broker_ready, ensure_all_topics, ensure_topics
from fleetpulse.kafka_acls import PRINCIPALS, SINK_GROUP, WORKER_APP_ID
from fleetpulse.kafka_local import LocalKafka, default_home
from fleetpulse.ports import free_port_pair
from fleetpulse.sim.scenario import load_scenario
from fleetpulse.sim.truth import ground_truth, write_truth
from tests.cli import fleetpulse
from tests.integration.helpers import Proc, wait_for_log
from tests.integration.whole_pipeline import PipelineBroker, assert_everything_arrived, run_whole_pipeline

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS")), reason="a broker is given; none is started"),
]


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A secured broker with the default deployment's ACLs (prefix "fleetpulse")."""
    broker = LocalKafka(
        tmp_path_factory.mktemp("kafka-secure"), port=free_port_pair(), jar_cache=default_home() / "kafka", secure=True
    )
    broker.start(timeout_s=180)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def topics(kafka: LocalKafka) -> Topics:
    """The pipeline's topics, created by admin (nobody else may)."""
    t = Topics()
    asyncio.run(ensure_all_topics(kafka.connection("admin"), t, 2))
    return t


def _producer(kafka: LocalKafka, principal: str) -> AIOKafkaProducer:
    # Idempotent like the agent's: no IdempotentWrite ACL is needed for it.
    return AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap, acks="all", enable_idempotence=True, **kafka.client_kwargs(principal)
    )


async def _consume_one(kafka: LocalKafka, principal: str, topic: str, group: str) -> bytes | None:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **kafka.client_kwargs(principal),
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=10_000)
        records = [r for rs in batches.values() for r in rs]
        await consumer.commit()  # needs Read on the group
        return records[0].value if records else None
    finally:
        await consumer.stop()


def test_the_agent_writes_telemetry_and_the_worker_reads_it_in_its_group(kafka: LocalKafka, topics: Topics) -> None:
    value = uuid.uuid4().bytes

    async def scenario() -> bytes | None:
        producer = _producer(kafka, "agent")
        await producer.start()
        try:
            await producer.send_and_wait(topics.metrics, value, key=b"host-1")
        finally:
            await producer.stop()
        return await _consume_one(kafka, "worker", topics.metrics, WORKER_APP_ID)

    assert asyncio.run(scenario()) == value


def test_the_agent_may_not_write_policies_nor_create_topics(kafka: LocalKafka, topics: Topics) -> None:
    async def write_policies() -> None:
        producer = _producer(kafka, "agent")
        await producer.start()
        try:
            await producer.send_and_wait(topics.policies, b"{}", key=b"policy")
        finally:
            await producer.stop()

    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(write_policies())
    with pytest.raises(TopicAuthorizationFailedError, match=r"fleetpulse\.extra"):
        asyncio.run(ensure_topics(kafka.connection("agent"), ["fleetpulse.extra"], 1, lambda name: {}))


def test_the_sink_may_not_join_the_workers_group(kafka: LocalKafka, topics: Topics) -> None:
    with pytest.raises(GroupAuthorizationFailedError):
        asyncio.run(_consume_one(kafka, "sink", topics.metrics, WORKER_APP_ID))
    asyncio.run(_consume_one(kafka, "sink", topics.metrics, SINK_GROUP))  # its own: fine


def test_a_wrong_password_or_no_tls_gets_no_session(
    kafka: LocalKafka, topics: Topics, caplog: pytest.LogCaptureFixture
) -> None:
    options = kafka.client_kwargs("agent") | {"sasl_plain_password": "not-the-password"}

    async def connect() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, **options)
        try:
            await producer.start()
        finally:
            await producer.stop()

    # aiokafka logs the broker's answer and raises only "Unable to bootstrap".
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError, match="bootstrap"):
        asyncio.run(connect())
    assert "SaslAuthenticationFailed" in caplog.text and "invalid credentials" in caplog.text
    assert asyncio.run(broker_ready(kafka.bootstrap, timeout_s=3.0)) is False  # plaintext: no answer


def test_secrets_are_private_and_off_the_command_line(kafka: LocalKafka, topics: Topics) -> None:
    secure = kafka.secure_dir.path
    assert stat.S_IMODE(secure.stat().st_mode) == 0o700
    files = [p for p in secure.iterdir() if p.is_file()]
    assert {p.name for p in files} >= {f"{p}.password" for p in PRINCIPALS} | {"ca.pem", "admin.properties"}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in [*files, kafka.config_path])
    assert "PRIVATE KEY" not in kafka.ca_file.read_text()  # the CA's key is gone
    cmdline = Path(f"/proc/{kafka.pid()}/cmdline").read_bytes().decode()
    passwords = kafka.secure_dir.passwords()
    assert not any(pw in cmdline or pw in kafka.log_path.read_text() for pw in passwords)
    assert not list(kafka.base.glob("format-*.args"))


def test_status_of_a_secured_broker_logs_in_as_admin(kafka: LocalKafka) -> None:
    done = fleetpulse("kafka", "status", "--home", str(kafka.home), "--port", str(kafka.port))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(SASL_SSL, ACLs)" in done.stdout and "ready" in done.stdout


def _as(kafka: LocalKafka, principal: str, password_file: Path | None = None) -> list[str]:
    """The connection flags of every command, logging in as ``principal`` (the password from a file)."""
    return ["--bootstrap", kafka.bootstrap, *_security_flags(kafka, principal, password_file)]


def _security_flags(kafka: LocalKafka, principal: str, password_file: Path | None = None) -> list[str]:
    return [
        "--security-protocol",
        "SASL_SSL",
        "--ssl-cafile",
        str(kafka.ca_file),
        "--sasl-mechanism",
        "SCRAM-SHA-512",
        "--sasl-username",
        principal,
        "--sasl-password-file",
        str(password_file or kafka.password_file(principal)),
    ]


def test_the_control_commands_work_as_admin_and_the_agent_is_refused_the_policy_topic(
    kafka: LocalKafka, topics: Topics, tmp_path: Path
) -> None:
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "cpu.yaml").write_text("rules:\n  - name: cpu_hot\n    when: cpu_pct > 90\n")
    applied = fleetpulse("policy", "apply", str(policy), *_as(kafka, "admin"))
    assert applied.returncode == 0, applied.stderr
    listed = fleetpulse("policy", "list", *_as(kafka, "admin"))
    assert listed.returncode == 0 and "cpu_hot" in listed.stdout, listed.stdout + listed.stderr
    added = fleetpulse("silence", "add", "-m", "rule=cpu_hot", "-d", "1h", *_as(kafka, "admin"))
    assert added.returncode == 0, added.stderr
    silences = fleetpulse("silence", "list", *_as(kafka, "admin"))
    assert added.stdout.strip() in silences.stdout, silences.stdout + silences.stderr
    # The agent may write telemetry only: the broker refuses it the policy topic, nothing changes.
    refused = fleetpulse("policy", "apply", str(policy), *_as(kafka, "agent"))
    assert refused.returncode != 0 and "Authorization" in refused.stderr, refused.stderr
    again = fleetpulse("policy", "list", *_as(kafka, "admin"))
    assert again.stdout == listed.stdout


@pytest.mark.parametrize(
    "command",
    [
        ["policy", "list"],
        ["policy", "apply", "{policy}"],
        ["silence", "list"],
        ["silence", "add", "-m", "rule=cpu_hot", "-d", "1h"],
        ["alerts", "tail"],
        ["simulate", "blankets"],
        ["score", "--truth", "{truth}"],
        ["worker"],
        ["sink"],
    ],
    ids=" ".join,
)
def test_a_wrong_password_is_reported_as_an_authentication_failure_without_the_password(
    kafka: LocalKafka, topics: Topics, tmp_path: Path, command: list[str]
) -> None:
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password-0451\n")
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "p.yaml").write_text("rules:\n  - name: cpu_hot\n    when: cpu_pct > 90\n")
    write_truth(ground_truth(load_scenario("blankets"), start=0.0), tmp_path / "truth.json")
    args = [a.format(policy=tmp_path / "policy", truth=tmp_path / "truth.json") for a in command]
    done = fleetpulse(*args, "--home", str(tmp_path), *_as(kafka, "worker", wrong), timeout_s=120)
    out = done.stdout + done.stderr
    assert done.returncode in (1, 2), out  # 2: the sink's start checks (one line, like its ClickHouse ones)
    assert "SASL authentication failed for user 'worker' (SCRAM-SHA-512)" in out, out
    assert "not-the-password-0451" not in out and "Traceback" not in out


def test_an_agent_with_a_wrong_password_says_so_and_keeps_its_records(kafka: LocalKafka, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password-0451\n")
    agent = Proc(
        "agent",
        ["agent", "--home", str(tmp_path), "--interval", "1", "--host-id", "wrong-pw", *_as(kafka, "agent", wrong)],
        tmp_path,
    ).start()
    try:
        log = wait_for_log(agent, "event=broker_unreachable")
    finally:
        agent.kill(signal.SIGTERM)
    assert "SASL authentication failed for user 'agent' (SCRAM-SHA-512)" in log, log[-3000:]
    assert "not-the-password-0451" not in agent.log()


def test_the_whole_pipeline_runs_on_the_secured_broker_and_no_password_shows(
    kafka: LocalKafka, topics: Topics, tmp_path: Path
) -> None:
    """Agent -> worker -> sink, alerts tail, a signed policy apply and silence add, each as its own principal."""

    def agent_kafka() -> str:
        return (
            f'[kafka]\nbootstrap_servers = "{kafka.bootstrap}"\nsecurity_protocol = "SASL_SSL"\n'
            f'ssl_cafile = "{kafka.ca_file}"\nsasl_mechanism = "SCRAM-SHA-512"\nsasl_username = "agent"\n'
            f'sasl_password_file = "{kafka.password_file("agent")}"\n'
        )

    broker = PipelineBroker(
        bootstrap=kafka.bootstrap,
        topics=topics,
        app_id=WORKER_APP_ID,
        sink_group=SINK_GROUP,
        flags=lambda principal: _security_flags(kafka, principal),
        agent_kafka_toml=agent_kafka,
    )
    run = run_whole_pipeline(broker, tmp_path)
    assert_everything_arrived(run)
    passwords = kafka.secure_dir.passwords()
    assert passwords and set(run.argv) == {"worker", "sink", "alerts tail", "agent"}, run.argv
    seen = {name: text for name, text in (run.outputs | {f"argv of {k}": v for k, v in run.argv.items()}).items()}
    leaks = [name for name, text in seen.items() if any(pw in text for pw in passwords)]
    assert not leaks, f"a password shows in: {leaks}"
