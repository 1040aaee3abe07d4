"""The command line's shared options and per-action functions, parsed in-process (no subprocess, no broker)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from collector.connection import ENV_KEYS, ConnectionSettingsError, KafkaConnection
from collector.contract import DEFAULT_TOPIC_PREFIX, Topics
from fleetpulse.cli import build_parser, policy, silence, simulate
from fleetpulse.cli.agent import agent_config
from fleetpulse.cli.common import KafkaTarget, kafka_target

# Every command line that talks to the broker, with what it needs besides the broker options.
KAFKA_COMMANDS = (
    ["agent"],
    ["worker"],
    ["sink"],
    ["alerts", "tail"],
    ["policy", "apply", "policies/examples"],
    ["policy", "list"],
    ["silence", "add", "-m", "rule=x"],
    ["silence", "list"],
    ["silence", "expire", "some-id"],
    ["simulate", "suite"],
    ["score", "--truth", "t.json"],
)


@pytest.fixture(autouse=True)
def no_broker_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("FLEETPULSE_TOPIC_PREFIX", raising=False)
    for _, var in ENV_KEYS:
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize("command", KAFKA_COMMANDS, ids=" ".join)
def test_every_command_that_talks_to_kafka_takes_the_same_broker_options(command: list[str]) -> None:
    args = build_parser().parse_args([*command, "--bootstrap", "broker:9093", "--topic-prefix", "staging"])
    assert kafka_target(args) == KafkaTarget(KafkaConnection("broker:9093"), Topics("staging"))


SECURE = ["--security-protocol", "SASL_SSL", "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "worker"]


@pytest.mark.parametrize("command", KAFKA_COMMANDS, ids=" ".join)
def test_every_command_that_talks_to_kafka_takes_the_security_settings(
    command: list[str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "worker.password"
    secret.write_text("s3cret-from-file\n")
    args = build_parser().parse_args([*command, *SECURE, "--sasl-password-file", str(secret)])
    if command == ["agent"]:
        config, _ = agent_config(args)
        kafka: KafkaConnection = config.kafka
    else:
        kafka = kafka_target(args).kafka
    assert (kafka.security_protocol, kafka.sasl_mechanism, kafka.sasl_username) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
        "worker",
    )
    assert kafka.sasl_password == "s3cret-from-file"
    assert "s3cret" not in repr(kafka) and "s3cret" not in kafka.describe()
    options = kafka.client_options()
    assert options["sasl_plain_password"] == "s3cret-from-file" and options["ssl_context"] is not None


def test_a_password_is_never_a_flag_and_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["policy", "list", "--sasl-password", "hunter2"])
    assert refused.value.code == 2
    assert "never a command-line flag" in capsys.readouterr().err
    monkeypatch.setenv("FLEETPULSE_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("FLEETPULSE_KAFKA_SASL_USERNAME", "admin")
    monkeypatch.setenv("FLEETPULSE_KAFKA_SASL_PASSWORD", "hunter2")
    kafka = kafka_target(build_parser().parse_args(["policy", "list"])).kafka
    assert (kafka.security_protocol, kafka.sasl_username, kafka.sasl_password) == ("SASL_PLAINTEXT", "admin", "hunter2")
    assert (
        kafka_target(build_parser().parse_args(["policy", "list", "--sasl-username", "bob"])).kafka.sasl_username
        == "bob"
    )


def test_connection_settings_that_cannot_work_are_refused_by_key_without_the_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLEETPULSE_KAFKA_SASL_PASSWORD", "hunter2")
    for argv, key in (
        (["--security-protocol", "SASL_SSL"], "sasl_username"),
        (["--security-protocol", "TLS"], "security_protocol"),
        (["--sasl-mechanism", "GSSAPI"], "sasl_mechanism"),
        (["--ssl-cafile", "/no/such/ca.pem"], "ssl_cafile"),
        (["--sasl-password-file", "/no/such/file"], "sasl_password_file"),
    ):
        with pytest.raises(ConnectionSettingsError) as caught:
            kafka_target(build_parser().parse_args(["silence", "list", *argv]))
        assert str(caught.value).startswith(key) and "hunter2" not in str(caught.value)
    monkeypatch.delenv("FLEETPULSE_KAFKA_SASL_PASSWORD")
    with pytest.raises(ConnectionSettingsError, match="sasl_password: required"):
        kafka_target(build_parser().parse_args(["silence", "list", *SECURE]))


def test_broker_options_fall_back_to_the_environment_then_the_local_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    args = build_parser().parse_args(["worker"])
    assert kafka_target(args) == KafkaTarget(KafkaConnection("127.0.0.1:9092"), Topics(DEFAULT_TOPIC_PREFIX))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "env-broker:9092")
    monkeypatch.setenv("FLEETPULSE_TOPIC_PREFIX", "envprefix")
    assert kafka_target(args) == KafkaTarget(KafkaConnection("env-broker:9092"), Topics("envprefix"))


def test_agent_broker_flags_override_its_config_file() -> None:
    args = build_parser().parse_args(
        ["agent", "--config", "deploy/agent.toml", "--bootstrap", "broker:9093", "--topic-prefix", "staging"]
    )
    config, _ = agent_config(args)
    assert (config.kafka.bootstrap_servers, config.kafka.topic_prefix) == ("broker:9093", "staging")
    unchanged, _ = agent_config(build_parser().parse_args(["agent", "--config", "deploy/agent.toml"]))
    assert unchanged.kafka.topic_prefix == DEFAULT_TOPIC_PREFIX


@pytest.mark.parametrize(
    ("command", "func"),
    [
        (["policy", "validate", "p.yaml"], policy.run_validate),
        (["policy", "apply", "p.yaml"], policy.run_apply),
        (["policy", "list"], policy.run_list),
        (["silence", "add", "-m", "rule=x"], silence.run_add),
        (["silence", "list"], silence.run_list),
        (["silence", "expire", "some-id"], silence.run_expire),
        (["simulate", "suite"], simulate.run),
        (["score", "--truth", "t.json"], simulate.run_score),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else value.__name__,
)
def test_each_action_runs_its_own_function(command: list[str], func: Any) -> None:
    assert build_parser().parse_args(command).func is func


def test_settled_alerts_are_read_until_the_settle_time_after_the_run_and_dropped_when_interrupted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[tuple[float, float]] = []

    async def read_alerts(bootstrap: str, topics: Topics, since: float, until: float, *, stop: asyncio.Event) -> list:
        asked.append((since, until))
        return ["an alert"]

    monkeypatch.setattr("fleetpulse.alerts.read_alerts", read_alerts)
    target = KafkaTarget(KafkaConnection("broker:9093"), Topics("staging"))
    truth: Any = SimpleNamespace(start=1000.0, end=1120.0, slack_s=6.0)
    settle_s = simulate.settle_after_end_s(truth, None)
    assert settle_s == 6.0 + simulate.SETTLE_MARGIN_S
    assert simulate.settle_after_end_s(truth, 30.0) == 30.0

    async def read(interrupted: bool) -> list | None:
        stop = asyncio.Event()
        if interrupted:
            stop.set()
        return await simulate.read_settled_alerts(target, truth, settle_s, stop)

    assert asyncio.run(read(interrupted=False)) == ["an alert"]
    assert asyncio.run(read(interrupted=True)) is None
    assert asked == [(1000.0, 1120.0 + settle_s)] * 2
