"""What the subcommands share: the options every one of them declares the same way, and running until a signal.

The broker options (``--bootstrap``, ``--topic-prefix`` and the TLS/SASL settings of
:mod:`collector.connection`) are declared only here, in :func:`add_kafka_options`, and read
back only through :func:`kafka_target` (a process that talks to Kafka) or
:func:`kafka_overrides` (the agent, over its config file): every subcommand that talks to
Kafka has every connection setting. A password is never a flag (argv is public).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from collector.connection import KafkaConnection, connection_from_env
from collector.contract import DEFAULT_TOPIC_PREFIX, Topics
from collector.kafka_io import bootstrap_servers

# The argparse types of every subcommand's numbers (a bad one is a usage error, exit 2).
from sinks.options import seconds as seconds
from sinks.options import whole_number as whole_number

if TYPE_CHECKING:
    from policies.signing import Signer, Verifier
    from sinks.clickhouse import ClickHouseTarget

T = TypeVar("T")


class Subparsers(Protocol):
    """What ``parser.add_subparsers()`` returns (argparse has no public name for it): each module adds its parsers."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...


def add_home_option(parser: argparse.ArgumentParser) -> None:
    """``--home``: the data directory (local Kafka, worker state, embedded ClickHouse)."""
    parser.add_argument("--home", help="data directory (default $FLEETPULSE_HOME or ./.fleetpulse)")


def add_topic_prefix_option(parser: argparse.ArgumentParser) -> None:
    """``--topic-prefix``: read back with :func:`topic_prefix`."""
    parser.add_argument(
        "--topic-prefix",
        help=f"topic name prefix (default $FLEETPULSE_TOPIC_PREFIX or {DEFAULT_TOPIC_PREFIX})",
    )


# The TLS/SASL flags: (flag, connection key, help). Each also reads FLEETPULSE_KAFKA_<KEY>.
SECURITY_FLAGS = (
    ("--security-protocol", "security_protocol", "PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL"),
    ("--ssl-cafile", "ssl_cafile", "CA certificate (PEM) the broker's certificate is checked against"),
    ("--ssl-certfile", "ssl_certfile", "client certificate (PEM), for mutual TLS"),
    ("--ssl-keyfile", "ssl_keyfile", "the client certificate's private key (PEM)"),
    ("--sasl-mechanism", "sasl_mechanism", "PLAIN (default), SCRAM-SHA-256 or SCRAM-SHA-512"),
    ("--sasl-username", "sasl_username", "SASL user"),
    (
        "--sasl-password-file",
        "sasl_password_file",
        "file holding the SASL password (or set FLEETPULSE_KAFKA_SASL_PASSWORD; never a flag)",
    ),
)


def add_kafka_options(parser: argparse.ArgumentParser) -> None:
    """How a subcommand reaches the broker and names its topics; read back with :func:`kafka_target`."""
    parser.add_argument(
        "--bootstrap",
        help="Kafka bootstrap servers (default $KAFKA_BOOTSTRAP_SERVERS or 127.0.0.1:9092)",
    )
    add_topic_prefix_option(parser)
    group = parser.add_argument_group("Kafka security (each also read from $FLEETPULSE_KAFKA_<NAME>)")
    for flag, key, text in SECURITY_FLAGS:
        group.add_argument(flag, dest=f"kafka_{key}", metavar=key.rpartition("_")[2].upper(), help=text)
    # Declared to be refused: argv is readable by every local user (ps), and unknown, the flag
    # would be taken as an abbreviation of --sasl-password-file.
    group.add_argument("--sasl-password", nargs="?", action=_RefusedPassword, help=argparse.SUPPRESS)


class _RefusedPassword(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, *_: Any, **__: Any) -> None:
        parser.error(
            "a password is never a command-line flag (every local user can read process arguments):"
            " set FLEETPULSE_KAFKA_SASL_PASSWORD or use --sasl-password-file"
        )


def add_clickhouse_options(parser: argparse.ArgumentParser) -> None:
    """The ClickHouse target and database of the sink and of queries; read back with :func:`clickhouse_target`."""
    parser.add_argument(
        "--clickhouse-url",
        help="chdb:///path, http://user@host:8123 or https://user@host:8443 "
        "(default $CLICKHOUSE_URL or embedded chDB under --home); the password comes from "
        "--clickhouse-password-file or $CLICKHOUSE_PASSWORD, never put it on the command line",
    )
    parser.add_argument(
        "--clickhouse-password-file",
        metavar="FILE",
        help="file holding the ClickHouse password (default $CLICKHOUSE_PASSWORD_FILE, else $CLICKHOUSE_PASSWORD)",
    )
    parser.add_argument(
        "--clickhouse-ca-cert",
        metavar="FILE",
        help="CA bundle (PEM) that signed the server's HTTPS certificate (default $CLICKHOUSE_CA_CERT)",
    )
    parser.add_argument("--database", default="fleetpulse", help="ClickHouse database (default %(default)s)")


def add_common_options(parser: argparse.ArgumentParser, kafka: bool = True, clickhouse: bool = False) -> None:
    """``--home``, then the broker options (unless ``kafka=False``), then ClickHouse's (with ``clickhouse=True``)."""
    add_home_option(parser)
    if kafka:
        add_kafka_options(parser)
    if clickhouse:
        add_clickhouse_options(parser)


def home_dir(args: argparse.Namespace) -> Path:
    """``--home``, else ``$FLEETPULSE_HOME``, else ``./.fleetpulse``."""
    from fleetpulse.kafka_local import default_home

    return Path(args.home).resolve() if args.home else default_home()


def clickhouse_target(args: argparse.Namespace) -> ClickHouseTarget:
    """The options of :func:`add_clickhouse_options` with the environment's defaults; raises ``TargetError``."""
    from sinks.clickhouse import resolve_target

    return resolve_target(args.clickhouse_url, home_dir(args), args.clickhouse_password_file, args.clickhouse_ca_cert)


def topic_prefix(args: argparse.Namespace) -> str:
    """``--topic-prefix``, else ``$FLEETPULSE_TOPIC_PREFIX``, else the default prefix."""
    return _given_topic_prefix(args) or DEFAULT_TOPIC_PREFIX


def kafka_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The broker options given, as ``collector.config.KafkaSettings`` fields: what the agent lays over its file.

    Only what the command line says, and ``$FLEETPULSE_TOPIC_PREFIX``: the agent's config
    loader already reads ``$KAFKA_BOOTSTRAP_SERVERS`` (and its ``FLEETPULSE_KAFKA_*`` variables).
    """
    overrides: dict[str, Any] = {}
    if args.bootstrap:
        overrides["bootstrap_servers"] = args.bootstrap
    given = {key: getattr(args, f"kafka_{key}", None) for _, key, _ in SECURITY_FLAGS}
    if any(given.values()):
        # Read through the one reader of these settings (the password file included), with no
        # environment: the agent's loader already applied its FLEETPULSE_KAFKA_* variables.
        read = connection_from_env({}, given)
        overrides.update({key: getattr(read, key) for key, value in given.items() if value and hasattr(read, key)})
        if given.get("sasl_password_file"):
            overrides["sasl_password"] = read.sasl_password
    prefix = _given_topic_prefix(args)
    if prefix:
        overrides["topic_prefix"] = prefix
    return overrides


def _given_topic_prefix(args: argparse.Namespace) -> str | None:
    return args.topic_prefix or os.environ.get("FLEETPULSE_TOPIC_PREFIX") or None


@dataclass(frozen=True)
class KafkaTarget:
    """The broker a subcommand talks to (with its credentials) and the names of the pipeline's topics on it."""

    kafka: KafkaConnection
    topics: Topics

    @property
    def servers(self) -> str:
        """The bootstrap list alone, for messages (connect with ``kafka``: it carries the credentials)."""
        return self.kafka.bootstrap_servers


def kafka_target(args: argparse.Namespace) -> KafkaTarget:
    """The broker options of :func:`add_kafka_options`, with the environment's defaults applied.

    Settings that cannot work are a :class:`~collector.connection.ConnectionSettingsError`
    (the CLI reports it as a usage error, exit 2)."""
    given = {key: getattr(args, f"kafka_{key}", None) for _, key, _ in SECURITY_FLAGS}
    kafka = connection_from_env(os.environ, given, bootstrap=bootstrap_servers(args.bootstrap)).checked()
    return KafkaTarget(kafka=kafka, topics=Topics(topic_prefix(args)))


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """No log lines meanwhile: a start check that fails says why in one line of its own, and the
    libraries it drives (urllib3, clickhouse-connect, aiokafka) would each log the same failure."""
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def run_until_signal(coro_factory: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """Run an ``async def f(stop)`` until it returns; SIGINT/SIGTERM set ``stop``. Returns what it returned."""

    async def main() -> T:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await coro_factory(stop)

    return asyncio.run(main())


def add_signing_option(parser: argparse.ArgumentParser) -> None:
    """``--signing-key``: the private key policy and silence records are signed with."""
    parser.add_argument(
        "--signing-key",
        metavar="FILE",
        help="Ed25519 private key (PEM) to sign the record with, so workers holding its public key"
        " obey it (default $FLEETPULSE_CONTROL_SIGNING_KEY; unset: unsigned; see fleetpulse control keygen)",
    )


def control_signer(args: argparse.Namespace) -> Signer | None:
    """The signer of ``--signing-key`` (or ``$FLEETPULSE_CONTROL_SIGNING_KEY``); None when neither is set."""
    from policies.signing import signer_from_pem

    path = args.signing_key or os.environ.get("FLEETPULSE_CONTROL_SIGNING_KEY")
    return None if not path else signer_from_pem(_key_file(path), path)


def add_trusted_key_option(parser: argparse.ArgumentParser) -> None:
    """``--trusted-key``: the public keys whose signed control records a worker obeys."""
    parser.add_argument(
        "--trusted-key",
        action="append",
        metavar="FILE",
        help="Ed25519 public key (PEM) policy and silence records must be signed with; repeat to trust"
        " several (a key rotation); default $FLEETPULSE_CONTROL_TRUSTED_KEYS (comma-separated files);"
        " unset: unsigned records are obeyed, with a warning",
    )


def control_verifier(args: argparse.Namespace) -> Verifier | None:
    """The verifier of ``--trusted-key`` files (or ``$FLEETPULSE_CONTROL_TRUSTED_KEYS``); None when none is given."""
    from policies.signing import verifier_from_pems

    paths = args.trusted_key or [p for p in os.environ.get("FLEETPULSE_CONTROL_TRUSTED_KEYS", "").split(",") if p]
    return None if not paths else verifier_from_pems((_key_file(p), p) for p in paths)


def _key_file(path: str) -> bytes:
    from policies.signing import SigningKeyError

    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"{path}: cannot read the key file: {exc.strerror or exc}") from None
