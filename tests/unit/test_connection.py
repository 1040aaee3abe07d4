"""The one Kafka connection settings object: validation by key, no secret in any text, failures in words."""

from __future__ import annotations

import asyncio
import ssl

import pytest
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed

from collector.connection import (
    KafkaConnection,
    KafkaUnreachable,
    as_connection,
    connection_from_env,
    explain_failure,
    failure_reason,
    start_client,
)
from fleetpulse.ports import free_port

SCRAM = KafkaConnection(
    "broker:9093", "SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username="agent", sasl_password="hunter2"
)


def test_a_plain_string_is_a_plaintext_connection() -> None:
    assert as_connection("a:1,b:2") == KafkaConnection("a:1,b:2")
    assert as_connection(SCRAM) is SCRAM
    assert as_connection("a:1").client_options() == {"bootstrap_servers": "a:1", "security_protocol": "PLAINTEXT"}


def test_the_password_appears_in_client_options_only() -> None:
    assert "hunter2" not in repr(SCRAM) and "hunter2" not in SCRAM.describe()
    assert SCRAM.describe() == "broker:9093 [SASL_SSL] as agent (SCRAM-SHA-512)"
    options = SCRAM.client_options()
    assert options["sasl_plain_password"] == "hunter2" and isinstance(options["ssl_context"], ssl.SSLContext)


def test_environment_keys_and_given_values_and_the_password_file(tmp_path: object) -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "k:9092",
        "FLEETPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "FLEETPULSE_KAFKA_SASL_USERNAME": "env-user",
        "FLEETPULSE_KAFKA_SASL_PASSWORD": "from-env",
    }
    read = connection_from_env(env)
    assert (read.bootstrap_servers, read.sasl_username, read.sasl_password) == ("k:9092", "env-user", "from-env")
    assert connection_from_env(env, {"sasl_username": "flag-user", "ssl_cafile": None}).sasl_username == "flag-user"
    assert connection_from_env(env, bootstrap="other:1").bootstrap_servers == "other:1"


def test_failures_are_said_in_words_without_the_password() -> None:
    refused = failure_reason(SaslAuthenticationFailed("Authentication failed during authentication"), SCRAM, "b:1")
    assert refused.startswith("SASL authentication failed for user 'agent' (SCRAM-SHA-512) at b:1")
    leaky = failure_reason(SaslAuthenticationFailed("bad password hunter2"), SCRAM, "b:1")
    assert "hunter2" not in leaky and "***" in leaky
    assert "cannot connect to b:1" in failure_reason(ConnectionRefusedError(111, "Connection refused"), SCRAM, "b:1")
    assert "did not answer in time" in failure_reason(TimeoutError(), SCRAM, "b:1")


def test_a_client_that_cannot_bootstrap_raises_why() -> None:
    class Refused:
        stopped = False

        async def start(self) -> None:
            raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 1)]")

        async def stop(self) -> None:
            self.stopped = True

    port = free_port()  # nothing listens there: the reason is the refused connection
    client = Refused()
    with pytest.raises(KafkaUnreachable, match=f"cannot connect to 127.0.0.1:{port}"):
        asyncio.run(start_client(client, f"127.0.0.1:{port}"))
    assert client.stopped
    assert "cannot connect" in asyncio.run(explain_failure(f"127.0.0.1:{port}", timeout_s=2.0))
