"""How every FleetPulse process reaches Kafka: one settings object, TLS and SASL included.

The agent reads it from its TOML ``[kafka]`` table, every other process from the command line
and the environment; the keys are the same everywhere::

    TOML [kafka] key     environment                        command line
    bootstrap_servers    KAFKA_BOOTSTRAP_SERVERS            --bootstrap
    security_protocol    FLEETPULSE_KAFKA_SECURITY_PROTOCOL --security-protocol
    ssl_cafile           FLEETPULSE_KAFKA_SSL_CAFILE        --ssl-cafile
    ssl_certfile         FLEETPULSE_KAFKA_SSL_CERTFILE      --ssl-certfile   (mutual TLS)
    ssl_keyfile          FLEETPULSE_KAFKA_SSL_KEYFILE       --ssl-keyfile
    sasl_mechanism       FLEETPULSE_KAFKA_SASL_MECHANISM    --sasl-mechanism
    sasl_username        FLEETPULSE_KAFKA_SASL_USERNAME     --sasl-username
    sasl_password_file   FLEETPULSE_KAFKA_SASL_PASSWORD_FILE --sasl-password-file
    sasl_password        FLEETPULSE_KAFKA_SASL_PASSWORD     (never a flag: argv is public)

The password is never printed: not by ``repr``, not in :meth:`KafkaConnection.describe`, not in
errors. A broker that refuses the credentials is reported as such (:func:`explain_failure`),
not as aiokafka's "Unable to bootstrap".
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaError

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
# The connection keys, in the table's order: (key, environment variable).
ENV_KEYS = (
    ("security_protocol", "FLEETPULSE_KAFKA_SECURITY_PROTOCOL"),
    ("ssl_cafile", "FLEETPULSE_KAFKA_SSL_CAFILE"),
    ("ssl_certfile", "FLEETPULSE_KAFKA_SSL_CERTFILE"),
    ("ssl_keyfile", "FLEETPULSE_KAFKA_SSL_KEYFILE"),
    ("sasl_mechanism", "FLEETPULSE_KAFKA_SASL_MECHANISM"),
    ("sasl_username", "FLEETPULSE_KAFKA_SASL_USERNAME"),
    ("sasl_password_file", "FLEETPULSE_KAFKA_SASL_PASSWORD_FILE"),
    ("sasl_password", "FLEETPULSE_KAFKA_SASL_PASSWORD"),
)


class ConnectionSettingsError(ValueError):
    """Connection settings that cannot work; ``problems`` are ``key: message`` lines (no secrets)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class KafkaConnection:
    """A broker and how to authenticate to it (see the module docstring for the keys)."""

    bootstrap_servers: str = DEFAULT_BOOTSTRAP
    security_protocol: str = "PLAINTEXT"
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)

    @property
    def tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL")

    def problems(self) -> list[tuple[str, str]]:
        """``(key, message)`` for every setting that cannot work; empty when usable."""
        out = []
        if not self.bootstrap_servers.strip():
            out.append(("bootstrap_servers", "must not be empty"))
        if self.security_protocol not in SECURITY_PROTOCOLS:
            out.append(
                (
                    "security_protocol",
                    f"must be one of {', '.join(SECURITY_PROTOCOLS)}, got {self.security_protocol!r}",
                )
            )
        if self.sasl_mechanism not in SASL_MECHANISMS:
            out.append(("sasl_mechanism", f"must be one of {', '.join(SASL_MECHANISMS)}, got {self.sasl_mechanism!r}"))
        if self.sasl and not self.sasl_username:
            out.append(("sasl_username", f"required with security_protocol = {self.security_protocol}"))
        if self.sasl and not self.sasl_password:
            out.append(
                (
                    "sasl_password",
                    f"required with security_protocol = {self.security_protocol}"
                    " (FLEETPULSE_KAFKA_SASL_PASSWORD or a password file)",
                )
            )
        for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, key)
            if path and not Path(path).is_file():
                out.append((key, f"no such file: {path}"))
        if bool(self.ssl_certfile) != bool(self.ssl_keyfile):
            out.append(("ssl_keyfile", "a client certificate needs both ssl_certfile and ssl_keyfile"))
        return out

    def checked(self) -> KafkaConnection:
        """``self``, or :class:`ConnectionSettingsError` listing what cannot work."""
        problems = self.problems()
        if problems:
            raise ConnectionSettingsError([f"{key}: {message}" for key, message in problems])
        return self

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for SSL / SASL_SSL (the CA file, or the system's; a client certificate if given)."""
        if not self.tls:
            return None
        from aiokafka.helpers import create_ssl_context

        return create_ssl_context(
            cafile=self.ssl_cafile or None,
            certfile=self.ssl_certfile or None,
            keyfile=self.ssl_keyfile or None,
        )

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client: servers, TLS context and SASL when configured."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.tls:
            options["ssl_context"] = self.ssl_context()
        if self.sasl:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password
        return options

    def describe(self) -> str:
        """For logs and errors: where and as whom, never the password."""
        who = f" as {self.sasl_username} ({self.sasl_mechanism})" if self.sasl else ""
        return f"{self.bootstrap_servers} [{self.security_protocol}]{who}"


# A broker given as a plain ``host:port,...`` string is a PLAINTEXT connection: what tests,
# benches and local tools pass; every process that takes settings takes either.
Bootstrap = KafkaConnection | str


def as_connection(kafka: Bootstrap) -> KafkaConnection:
    """``kafka`` as settings (a string is a PLAINTEXT bootstrap list)."""
    return kafka if isinstance(kafka, KafkaConnection) else KafkaConnection(bootstrap_servers=kafka)


def connection_from_env(
    env: Mapping[str, str], given: Mapping[str, str | None] | None = None, bootstrap: str | None = None
) -> KafkaConnection:
    """Settings from ``given`` (command-line values; None = not given) over ``env``.

    ``sasl_password_file`` is read here (a missing file is a :class:`ConnectionSettingsError`);
    a password itself is only taken from the environment or such a file.
    """
    values: dict[str, str] = {}
    for key, var in ENV_KEYS:
        chosen = (given or {}).get(key) or env.get(var)
        if chosen:
            values[key] = chosen
    password_file = values.pop("sasl_password_file", "")
    if password_file:
        try:
            values["sasl_password"] = Path(password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConnectionSettingsError(
                [f"sasl_password_file: cannot read {password_file}: {exc.strerror or exc}"]
            ) from None
    servers = bootstrap or env.get("KAFKA_BOOTSTRAP_SERVERS") or DEFAULT_BOOTSTRAP
    return KafkaConnection(bootstrap_servers=servers, **values)


def with_servers(kafka: KafkaConnection, bootstrap_servers: str) -> KafkaConnection:
    """The same credentials for another broker list."""
    return replace(kafka, bootstrap_servers=bootstrap_servers)


async def explain_failure(kafka: Bootstrap, timeout_s: float = 10.0) -> str:
    """Why a client cannot reach the cluster, in words (aiokafka logs the cause and raises
    only "Unable to bootstrap"): one connection attempt per bootstrap server, the last reason."""
    from aiokafka.conn import create_conn

    conn = as_connection(kafka)
    reason = f"no bootstrap server in {conn.bootstrap_servers!r}"
    for server in [s.strip() for s in conn.bootstrap_servers.split(",") if s.strip()]:
        host, _, port = server.rpartition(":")
        try:
            opened = await create_conn(
                host or server,
                int(port) if port.isdigit() else 9092,
                request_timeout_ms=int(timeout_s * 1000),
                ssl_context=conn.ssl_context(),
                security_protocol=conn.security_protocol,
                sasl_mechanism=conn.sasl_mechanism,
                sasl_plain_username=conn.sasl_username or None,
                sasl_plain_password=conn.sasl_password or None,
            )
        except (OSError, KafkaError, TimeoutError) as exc:
            reason = failure_reason(exc, conn, server)
            continue
        opened.close()
        return f"{server} accepts connections [{conn.security_protocol}]: the cluster refused the request itself"
    return reason


def failure_reason(exc: BaseException, conn: KafkaConnection, server: str) -> str:
    """One connection failure in an operator's words (the password never appears)."""
    name = type(exc).__name__
    text = _redacted(str(exc), conn)
    if "Sasl" in name or "Authentication" in name or "SASL" in text:
        return (
            f"SASL authentication failed for user {conn.sasl_username!r} ({conn.sasl_mechanism}) at {server}: "
            f"{text or name}"
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: the certificate of {server} is not trusted ({exc.verify_message}); check ssl_cafile"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake with {server} failed: {exc.reason or text}"
    if isinstance(exc, TimeoutError):
        return f"{server} did not answer in time (is security_protocol {conn.security_protocol} what it expects?)"
    if isinstance(exc, ConnectionError | OSError) and not isinstance(exc, KafkaError):
        return f"cannot connect to {server}: {exc.strerror or text or name}"
    return f"{server}: {name}: {text}"


def _redacted(text: str, conn: KafkaConnection) -> str:
    return text.replace(conn.sasl_password, "***") if conn.sasl_password else text


class KafkaUnreachable(ConnectionError):
    """A client could not start; the message says why in an operator's words (no secrets)."""


async def start_client(client: Any, kafka: Bootstrap) -> None:
    """``await client.start()`` for any aiokafka client; "Unable to bootstrap" becomes
    :class:`KafkaUnreachable` saying why (a refused password, an untrusted certificate, ...)."""
    from aiokafka.errors import KafkaConnectionError

    try:
        await client.start()
    except KafkaConnectionError:
        with contextlib.suppress(Exception):  # a half-started client may fail to close too
            await client.stop() if hasattr(client, "stop") else await client.close()
        raise KafkaUnreachable(await explain_failure(kafka)) from None
