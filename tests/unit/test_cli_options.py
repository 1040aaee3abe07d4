"""The command line's shared options and per-action functions, parsed in-process (no subprocess, no broker)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

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


@pytest.mark.parametrize("command", KAFKA_COMMANDS, ids=" ".join)
def test_every_command_that_talks_to_kafka_takes_the_same_broker_options(command: list[str]) -> None:
    args = build_parser().parse_args([*command, "--bootstrap", "broker:9093", "--topic-prefix", "staging"])
    assert kafka_target(args) == KafkaTarget("broker:9093", Topics("staging"))


def test_broker_options_fall_back_to_the_environment_then_the_local_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    args = build_parser().parse_args(["worker"])
    assert kafka_target(args) == KafkaTarget("127.0.0.1:9092", Topics(DEFAULT_TOPIC_PREFIX))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "env-broker:9092")
    monkeypatch.setenv("FLEETPULSE_TOPIC_PREFIX", "envprefix")
    assert kafka_target(args) == KafkaTarget("env-broker:9092", Topics("envprefix"))


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
    target = KafkaTarget("broker:9093", Topics("staging"))
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
